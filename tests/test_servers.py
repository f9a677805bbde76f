"""Server definitions: the argv each ServerSpec builds, and every server for real.

The fast tests check the specs as data. The slow ones start each server with the raw
app on 127.0.0.1, wait for HTTP 200, run the real wrk against it (no socket errors
allowed, uWSGI included), check keep-alive with many connections open at once, stop it
with its own stop signal and require its whole process group to be gone.
A server that cannot run here fails with the reason; it is never skipped.
"""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path

import pytest
import serverutil

from harness.matrix.apps import APPS
from harness.matrix.servers import SERVERS
from harness.matrix.serverspec import Budget, ServerSpec, check_available, server_version
from harness.parse.wrk import parse_wrk
from harness.paths import APPS_DIR

RAW = APPS["raw"]
# Servers that keep connections alive; gunicorn's sync worker closes every connection.
KEEPS_ALIVE = sorted(set(SERVERS) - {"gunicorn"})


# --- the specs as data ------------------------------------------------------------------


@pytest.mark.parametrize("server_id", sorted(SERVERS))
def test_spec_argv_carries_address_budget_backlog_and_app(server_id: str) -> None:
    spec = SERVERS[server_id]
    argv = spec.argv("/venv/bin/python", RAW, "127.0.0.1", 18123, Budget(3, 5), 4321)
    joined = " ".join(argv)
    assert spec.id == server_id
    assert "18123" in joined and "127.0.0.1" in joined
    assert "4321" in argv, "backlog missing"
    assert "3" in argv, "worker count missing"
    assert argv[-1] == RAW.target or RAW.target in argv
    assert argv[0].startswith("/venv/bin/"), "must run from the given virtualenv"
    assert spec.env() == {"PYTHONPATH": str(APPS_DIR)}
    assert spec.stop_signal in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
    assert spec.worker_model and spec.settings
    assert all(isinstance(v, str) and v for v in spec.settings.values())


@pytest.mark.parametrize(
    "server_id", ["gunicorn-gthread", "uwsgi", "cheroot", "waitress", "granian"]
)
def test_threaded_servers_take_threads_from_the_budget(server_id: str) -> None:
    argv = SERVERS[server_id].argv("/p/python", RAW, "127.0.0.1", 1, Budget(1, 7), 1024)
    assert "7" in argv


def test_sync_gunicorn_never_gets_threads() -> None:
    # --threads > 1 would silently turn the sync worker into gthread.
    argv = SERVERS["gunicorn"].argv("/p/python", RAW, "127.0.0.1", 1, Budget(1, 8), 1024)
    assert "--threads" not in argv and "sync" in argv


def test_budget_and_backlog_are_validated() -> None:
    with pytest.raises(ValueError):
        Budget(workers=0)
    with pytest.raises(ValueError):
        SERVERS["gunicorn"].argv("/p/python", RAW, "127.0.0.1", 1, Budget(), 0)


def test_check_available_names_what_is_missing() -> None:
    ghost = ServerSpec(
        id="ghost",
        package="no-such-distribution-xyz",
        worker_model="none",
        settings={"x": "y"},
        stop_signal=signal.SIGTERM,
        build_argv=lambda *a: [],
    )
    assert check_available(ghost) == (
        "no-such-distribution-xyz is not installed (pip install no-such-distribution-xyz)"
    )
    bad_import = ServerSpec(
        id="bad",
        package="gunicorn",
        worker_model="none",
        settings={"x": "y"},
        stop_signal=signal.SIGTERM,
        build_argv=lambda *a: [],
        modules=("gunicorn.no_such_module",),
    )
    reason = check_available(bad_import)
    assert reason is not None and "ModuleNotFoundError" in reason


def test_uwsgi_without_binary_beside_python_is_unavailable(tmp_path: Path) -> None:
    reason = check_available(SERVERS["uwsgi"], python=str(tmp_path / "python"))
    assert reason is not None and "uwsgi" in reason and "not found" in reason


@pytest.mark.parametrize("server_id", sorted(SERVERS))
def test_every_server_is_available_here(server_id: str) -> None:
    spec = SERVERS[server_id]
    assert check_available(spec) is None
    assert server_version(spec)


# --- every server for real --------------------------------------------------------------

_REQUESTS = re.compile(r"^\s*(\d+) requests in ", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)$", re.M)


def _require_available(spec: ServerSpec) -> None:
    reason = check_available(spec)
    if reason:
        pytest.fail(f"{spec.id} cannot run on this machine: {reason}")
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not on PATH (apt-get install wrk)")


def _load_and_stop(spec: ServerSpec, budget: Budget, tmp_path: Path) -> None:
    _require_available(spec)
    started = serverutil.start(spec, RAW, budget, tmp_path / "server.log")
    try:
        status, headers, body = serverutil.get(started.url + "/")
        assert (status, body) == (200, b"Hello, World!")
        assert headers["content-type"] == "text/plain; charset=utf-8"
        assert headers["content-length"] == "13"
        out = serverutil.run_wrk(started.url + "/", connections=10, duration_s=2)
        print(f"{spec.id} {budget}:\n{out}")
        assert "Socket errors" not in out, f"{spec.id}: wrk saw socket errors:\n{out}"
        assert "Non-2xx" not in out
        requests = _REQUESTS.search(out)
        rps = _RPS.search(out)
        assert requests and rps, f"wrk output not understood:\n{out}"
        result = parse_wrk(out)
        assert result.requests == int(requests.group(1)) > 0
        assert result.requests_per_sec == float(rps.group(1)) > 0
        assert result.errors_read == result.errors_connect == result.errors_timeout == 0
        assert started.proc.poll() is None, "server died under load"
    finally:
        stopped = serverutil.stop(started)
    name = signal.Signals(spec.stop_signal).name
    assert stopped.group_emptied, (
        f"{spec.id}: processes survived {name} and were SIGKILLed\n{started.log()[-2000:]}"
    )
    print(f"{spec.id}: stopped by {name} in {stopped.seconds:.2f} s, exit {stopped.exit_code}")


@pytest.mark.slow
@pytest.mark.parametrize("server_id", sorted(SERVERS))
def test_server_under_wrk_then_stops_cleanly(server_id: str, tmp_path: Path) -> None:
    _load_and_stop(SERVERS[server_id], Budget(workers=1, threads=2), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("server_id", sorted(SERVERS))
def test_server_with_two_workers(server_id: str, tmp_path: Path) -> None:
    # Two processes: exercises the pre-fork launcher's supervisor and every -w/--processes.
    _load_and_stop(SERVERS[server_id], Budget(workers=2, threads=2), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("server_id", KEEPS_ALIVE)
def test_keep_alive_holds_with_many_connections_open(server_id: str, tmp_path: Path) -> None:
    spec = SERVERS[server_id]
    _require_available(spec)
    started = serverutil.start(spec, RAW, Budget(workers=1, threads=2), tmp_path / "server.log")
    try:
        # 50 at once: above cheroot's default kept-alive cap (10).
        assert serverutil.closed_after_response(started.url + "/", connections=50) == 0
    finally:
        assert serverutil.stop(started).group_emptied


@pytest.mark.slow
def test_sync_gunicorn_closes_every_connection(tmp_path: Path) -> None:
    spec = SERVERS["gunicorn"]
    started = serverutil.start(spec, RAW, Budget(), tmp_path / "server.log")
    try:
        assert serverutil.closed_after_response(started.url + "/", connections=3) == 3
    finally:
        assert serverutil.stop(started).group_emptied


@pytest.mark.slow
@pytest.mark.parametrize("app_id", sorted(APPS))
def test_every_app_under_gunicorn(app_id: str, tmp_path: Path) -> None:
    spec = SERVERS["gunicorn"]
    _require_available(spec)
    started = serverutil.start(spec, APPS[app_id], Budget(), tmp_path / "server.log")
    try:
        status, headers, body = serverutil.get(started.url + "/")
        assert (status, body, headers["content-type"]) == (
            200,
            b"Hello, World!",
            "text/plain; charset=utf-8",
        )
        status, headers, body = serverutil.get(started.url + "/json")
        assert (status, body) == (200, b'{"message":"Hello, World!"}')
        assert headers["content-type"] == "application/json"
        status, headers, body = serverutil.get(started.url + "/nope")
        assert (status, body) == (404, b"Not Found")
        # The key-value store over real HTTP (one worker, so one store).
        kv = started.url + "/kv/k1"
        assert serverutil.request("POST", kv, b"v\x00\xff")[::2] == (201, b"Created")
        status, headers, body = serverutil.get(kv)
        assert (status, body) == (200, b"v\x00\xff")
        assert headers["content-type"] == "application/octet-stream"
        assert serverutil.request("DELETE", kv)[::2] == (200, b"Deleted")
        assert serverutil.get(kv)[::2] == (404, b"Not Found")
    finally:
        assert serverutil.stop(started).group_emptied
