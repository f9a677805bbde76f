"""The timing middleware: in-process unit tests, then a real two-worker gunicorn."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from harness.bench.servermetrics import scrape
from harness.matrix.apps import APPS
from harness.parse.prometheus import histogram_delta, merge_series, parse_histograms
from harness.serving.metrics import (
    DEFAULT_BUCKETS,
    METRIC_NAME,
    ServerTiming,
    multiproc_env,
    parse_buckets,
)
from tests.latency_live import gunicorn, wrk


def call(app: Any, path: str = "/", method: str = "GET") -> tuple[str, bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": method}
    setup_testing_defaults(environ)
    got: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
        got.append(status)
        return lambda data: None

    body = app(environ, start_response)
    try:
        data = b"".join(body)
    finally:
        getattr(body, "close", lambda: None)()
    return got[0], data


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom")
    status = "404 Not Found" if environ["PATH_INFO"] == "/missing" else "200 OK"
    start_response(status, [("Content-Type", "text/plain")])
    return [b"hi"]


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def test_counts_each_request_by_method_and_code_and_not_the_scrapes() -> None:
    app = ServerTiming(hello)
    assert call(app) == ("200 OK", b"hi")
    call(app, "/missing")
    call(app, "/x", "BREW")
    with pytest.raises(RuntimeError):
        call(app, "/boom", "POST")
    status, text = call(app, "/metrics")
    call(app, "/metrics")
    assert status == "200 OK"
    series = {
        dict(s.labels)["method"] + dict(s.labels)["code"]: s
        for s in parse_histograms(text.decode())
    }
    assert {k: s.total for k, s in series.items()} == {
        "GET200": 1,
        "GET404": 1,
        "other200": 1,
        "POST500": 1,
    }
    assert [le for le, _ in series["GET200"].buckets] == [*DEFAULT_BUCKETS, float("inf")]


def test_observes_when_the_server_closes_the_body_once() -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"a"

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Body:
        start_response("200 OK", [])
        return Body()

    timed = ServerTiming(app)
    environ: dict[str, Any] = {"PATH_INFO": "/", "REQUEST_METHOD": "GET"}
    body = timed(environ, lambda *a: None)
    assert list(body) == [b"a"]
    text = call(timed, "/metrics")[1].decode()
    assert parse_histograms(text) == []  # not yet closed: not yet observed
    body.close()  # type: ignore[attr-defined]
    body.close()  # type: ignore[attr-defined]
    assert closed == [True]
    assert parse_histograms(call(timed, "/metrics")[1].decode())[0].total == 1


def test_bucket_bounds_from_text() -> None:
    assert parse_buckets("0.005, 0.001,+Inf,0.001") == (0.001, 0.005)
    with pytest.raises(ValueError, match="numbers in seconds"):
        parse_buckets("1ms")
    with pytest.raises(ValueError, match="positive"):
        parse_buckets("0,1")


def test_multiproc_env_gives_a_fresh_directory(tmp_path: Path) -> None:
    d = tmp_path / "prom"
    d.mkdir()
    (d / "histogram_123.db").write_bytes(b"old")
    assert multiproc_env(d) == {"PROMETHEUS_MULTIPROC_DIR": str(d)}
    assert list(d.iterdir()) == []


@pytest.mark.slow
def test_two_workers_count_what_wrk_completed(tmp_path: Path) -> None:
    prom_dir = tmp_path / "prom"
    env = {**multiproc_env(prom_dir), "WSGI_BASELINE_APP": APPS["raw"].target}
    connections = 8
    target = "harness.serving.instrumented:app"
    with gunicorn(target, tmp_path / "server.log", workers=2, env=env) as url:
        before = scrape(url + "/metrics")
        report = tmp_path / "cell.lua.json"
        wrk(url + "/", 2, connections, "report.lua", {"WSGI_BASELINE_REPORT": str(report)})
        after = scrape(url + "/metrics")
    delta = histogram_delta(before, after)
    series = [s for s in parse_histograms(delta) if s.name == METRIC_NAME]
    assert {s.labels for s in series} == {(("code", "200"), ("method", "GET"))}
    count = merge_series(series).total
    completed = json.loads(report.read_text())["requests"]
    assert completed > 100
    # Requests in flight at either edge of the cell: at most one per connection.
    assert abs(count - completed) <= connections, (count, completed)
    # Both worker processes wrote their own files and /metrics merged them.
    assert len([p for p in os.listdir(prom_dir) if p.startswith("histogram_")]) >= 2
