"""Test helpers for the trust tests: start a test server, run wrk, turn its output into a row.

Servers run tests/trustapps.py through the lead's runner (own session, stopped by process
group), so these tests exercise the same process handling as `invoke bench`.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.bench import runner
from harness.parse.wrk import parse_wrk
from harness.tables.schema import figures

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"


def cheroot(
    port: int, threads: int, backlog: int | None = None, target: str = "trustapps:app"
) -> list[str]:
    """cheroot's CLI; its listen backlog (--request-queue-size) defaults to 5."""
    extra = ["--request-queue-size", str(backlog)] if backlog else []
    return [
        str(BIN / "cheroot"), "--bind", f"{HOST}:{port}", "--threads", str(threads),
        "--max-threads", str(threads), *extra, target,
    ]  # fmt: skip


def waitress(port: int, threads: int) -> list[str]:
    """waitress keeps every connection open and queues requests: a sound reference."""
    return [
        str(BIN / "waitress-serve"), f"--listen={HOST}:{port}", f"--threads={threads}",
        "--backlog=1024", "trustapps:app",
    ]  # fmt: skip


def uwsgi(port: int, socket_option: str) -> list[str]:
    """uWSGI with one process; `socket_option` is --http-socket or --http11-socket."""
    return [
        str(BIN / "uwsgi"), socket_option, f"{HOST}:{port}", "--wsgi-file",
        str(ROOT / "tests" / "trustapps.py"), "--callable", "app", "--die-on-term",
        "--disable-logging", "--listen", "1024",
    ]  # fmt: skip


@contextmanager
def serving(argv_for_port: Any, tmp: Path) -> Iterator[tuple[runner.ServerProcess, int]]:
    """Start the server on a free port, wait until `/` answers 200, stop it afterwards."""
    port = runner.free_port(HOST)
    server = runner.start_server(
        argv_for_port(port), {"PYTHONPATH": f"{ROOT / 'tests'}:{ROOT / 'apps'}"}, ROOT,
        tmp / f"server-{port}.log", signal.SIGTERM, None, 4096,
    )  # fmt: skip
    try:
        runner.wait_ready(server, f"http://{HOST}:{port}/", timeout_s=20)
        yield server, port
    finally:
        runner.stop_server(server, grace_s=5)


def wrk(
    port: int, path: str = "/", c: int = 10, t: int = 1, d: int = 1, **kw: Any
) -> runner.WrkRun:
    """Run wrk for `d` s; optional `timeout` ("1s": wrk takes whole seconds), `nofile` (soft)."""
    argv = ["wrk", f"-t{t}", f"-c{c}", f"-d{d}s"]
    if "timeout" in kw:
        argv.append(f"--timeout={kw['timeout']}")
    argv.append(f"http://{HOST}:{port}{path}")
    return runner.run_wrk(argv, {}, None, kw.get("nofile", 4096), limit_s=d + 15)


def row(run: runner.WrkRun, **extra: Any) -> dict[str, Any]:
    """The tidy-table columns flags read, as harness.tables.dataset would fill them for one cell."""
    result = parse_wrk(run.stdout.decode())
    threads, conns = result.threads or 1, result.connections or 0
    out = {
        "run_id": "test", "server": "s", "app": "a", "workload": "plaintext",
        "connections": conns, "repeat": 1, "status": "ok", "reason": None,
        "threads": threads, "connections_effective": threads * (conns // threads),
        "timeout_configured_s": 2.0, "nofile_limit": None,
        **figures(result),
    }  # fmt: skip
    out.update(extra)
    return out
