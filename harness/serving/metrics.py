"""Server-side latency, serving stage: a WSGI middleware timing each request in the worker.

`ServerTiming(app)` wraps any WSGI app. Each request is observed in a prometheus-client
Histogram `http_request_duration_seconds{method, code}` with fine log-spaced buckets,
and `GET /metrics` returns the text exposition. With `PROMETHEUS_MULTIPROC_DIR` set in
the server's environment (before prometheus-client is imported: it picks its value
store at import time) every worker process writes its own files there and `/metrics`
merges them with `MultiProcessCollector`, so any worker answers for all of them.
`multiproc_env(dir)` prepares a fresh directory per server start for the bench stage.

What is timed: from the server calling the app until the server closes the response
iterable — the handler plus handing the body to the server, as the worker sees it.
Time spent before the call (accept backlog, the server's own queue, request parsing)
is invisible here; that gap is what the client-vs-server comparison measures.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRIC_NAME = "http_request_duration_seconds"
METRICS_PATH = "/metrics"
# Methods outside this set are labelled "other" so a client cannot grow the label space.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
# Preferred numbers (R10 series: ten per decade, each ~1.26x the previous) from 10 us
# to 10 s. Ten per decade keeps interpolation error within ~26 % of a value while a
# bimodal shape like the study's (1–2.5 ms and 25–50 ms) still shows as separate peaks.
_R10 = (1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0)
DEFAULT_BUCKETS: tuple[float, ...] = tuple(
    round(m * 10.0**e, 12) for e in range(-5, 1) for m in _R10
) + (10.0,)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def parse_buckets(text: str) -> tuple[float, ...]:
    """`"0.001,0.0025,0.005"` -> sorted upper bounds in seconds; +Inf is implicit."""
    try:
        bounds = sorted({float(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise ValueError(f"bucket bounds must be numbers in seconds, got {text!r}") from None
    if not bounds or bounds[0] <= 0:
        raise ValueError(f"bucket bounds must be positive seconds, got {text!r}")
    return tuple(b for b in bounds if b != float("inf"))


def multiproc_env(directory: Path) -> dict[str, str]:
    """Empty (or create) `directory` for one server start; return the env to give it.

    A fresh directory per start matters: files left by an earlier server would be
    merged into this one's counts.
    """
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return {MULTIPROC_ENV: str(directory)}


class _TimedBody:
    """The app's response iterable; observes the request when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self._body = body
        self._done: Callable[[], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        done, self._done = self._done, None
        if done is None:
            return  # closed already: forward and observe once only
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            done()


class ServerTiming:
    """WSGI middleware: time every request into a Histogram and serve `/metrics`."""

    def __init__(
        self,
        app: WSGIApp,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        metrics_path: str = METRICS_PATH,
    ) -> None:
        # Imported here, not at module top, so a caller can set PROMETHEUS_MULTIPROC_DIR
        # before prometheus-client chooses its value store.
        from prometheus_client import CollectorRegistry, Histogram

        self.app = app
        self.metrics_path = metrics_path
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry(auto_describe=True)
        self.histogram = Histogram(
            METRIC_NAME,
            "Time from the server calling the WSGI app to closing its response",
            ["method", "code"],
            buckets=tuple(buckets),
            registry=self.registry,
        )

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == self.metrics_path:
            return self._expose(start_response)
        start = time.perf_counter()
        method = str(environ.get("REQUEST_METHOD", ""))
        method = method if method in KNOWN_METHODS else "other"
        status = ["500"]  # what the client gets if the app raises before start_response

        def timed_start_response(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = status_line[:3]
            if exc_info is None:
                return start_response(status_line, headers)
            return start_response(status_line, headers, exc_info)

        def done() -> None:
            self.histogram.labels(method, status[0]).observe(time.perf_counter() - start)

        try:
            body = self.app(environ, timed_start_response)
        except BaseException:
            status[0] = "500"
            done()
            raise
        return _TimedBody(body, done)

    def _expose(self, start_response: StartResponse) -> list[bytes]:
        from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = self.registry
        if self.multiprocess:
            # A fresh registry per scrape: MultiProcessCollector reads every worker's
            # files at collect time, so whichever worker answers reports them all.
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        data = generate_latest(registry)
        start_response(
            "200 OK",
            [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4), ("Content-Length", str(len(data)))],
        )
        return [data]
