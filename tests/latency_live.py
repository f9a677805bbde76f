"""Test helper for the server-side latency tests: a real gunicorn on 127.0.0.1.

Uses the harness's own process code (`harness.bench.runner`): the server gets its own
session, readiness is polled as an HTTP 200 and the whole process group is checked
empty when the block ends, whatever happened inside it.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from signal import SIGTERM

from harness.bench import runner
from harness.paths import APPS_DIR

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "harness" / "bench" / "lua"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
NOFILE = 1024


@contextmanager
def gunicorn(
    target: str, log: Path, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Serve `module:callable` with gunicorn's sync workers; yield the base URL."""
    env = {"PYTHONPATH": f"{APPS_DIR}:{ROOT}", **(env or {})}
    for attempt in range(3):
        port = runner.free_port()
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            target,
        ]
        server = runner.start_server(argv, env, ROOT, log, SIGTERM, None, NOFILE)
        try:
            runner.wait_ready(server, f"http://127.0.0.1:{port}/", timeout_s=20)
        except runner.LaunchError:
            runner.stop_server(server)
            if "Address already in use" in server.stderr_tail() and attempt < 2:
                continue
            raise
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            runner.stop_server(server)
            assert not runner.group_alive(server.pgid), "server process group survived"
        return
    raise AssertionError("no free port after 3 attempts")


def wrk(
    url: str, threads: int, connections: int, script: str, env: dict[str, str]
) -> runner.WrkRun:
    """wrk for 2 s, bounded by a hard limit, with a Lua script from harness/bench/lua."""
    argv = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        "-d2s",
        "--timeout=2s",
        "-s",
        str(LUA / script),
        url,
    ]
    run = runner.run_wrk(argv, env, None, NOFILE, limit_s=30)
    assert run.exit_code == 0 and not run.timed_out, (run.exit_code, run.stderr, run.stdout)
    return run
