"""Bench orchestration: walk a `Matrix`, measure each cell, write `raw/<run-id>/`.

Takes a validated matrix and an output directory; returns the run id. Every cell
ends as a sidecar, `ok` or `failed` with its reason, so nothing measured is lost and
no failure hides. A run that stops early (Ctrl-C, SIGTERM, SIGKILL) is continued by
running the same command again or with `--resume`.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.bench import hostinfo, runner, servermetrics
from harness.bench.preflight import preflight
from harness.bench.sampler import Sampler, child_named, write_samples
from harness.errors import UserError
from harness.matrix import workloads
from harness.matrix.apps import AppSpec
from harness.matrix.customservers import CustomServer
from harness.matrix.model import WORKLOADS, Cell, Matrix
from harness.matrix.servers import Budget, ServerSpec
from harness.raw.records import PreflightResult, blocking
from harness.raw.store import RunStore, utc_now, write_atomic

if TYPE_CHECKING:  # remotecell imports this module; only the type is needed here
    from harness.bench.remote.cell import RemoteBench

AnyServer = ServerSpec | CustomServer

HOST = "127.0.0.1"
PORT_ATTEMPTS = 3


class BenchError(UserError):
    """A problem that stops the whole run before measuring (bad --out, no wrk, …)."""


@dataclass(frozen=True)
class CellOutcome:
    cell: Cell
    status: str
    reason: str | None
    requests_per_sec: str | None = None


def wrk_argv(
    wrk: str, matrix: Matrix, cell: Cell, url: str, seconds: float, measured: bool
) -> list[str]:
    threads = min(matrix.threads, cell.connections)
    argv = [wrk, f"-t{threads}", f"-c{cell.connections}", f"-d{int(seconds)}s"]
    argv += [f"--timeout={int(matrix.timeout_s)}s"]
    # The workload's script runs in the warm-up too (the session mix warms the store);
    # only the measured run is given a report path, so only it writes figures.
    argv += ["-s", str(workloads.lua_script(cell.workload))]
    if measured:
        argv += ["--latency"]
    return argv + [url]


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C so servers are stopped and the run marked interrupted."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def measure_cell(
    store: RunStore,
    matrix: Matrix,
    cell: Cell,
    wrk: str,
    unavailable: dict[str, str],
    servers: dict[str, AnyServer],
    remote: RemoteBench | None = None,
) -> CellOutcome:
    """Measure one cell and write its files; the sidecar is written last.

    With `remote` (server or clients on other hosts) the same sequence runs through
    harness/bench/remote/cell.py; the sidecar gets the same fields plus the hosts'.
    """
    spec, app = servers[cell.server], workloads.app_for(cell.app)
    files = store.cell_files(cell)
    base: dict[str, Any] = {
        "run_id": store.run_id,
        "server": cell.server,
        "app": cell.app,
        "workload": cell.workload,
        "connections": cell.connections,
        "repeat": cell.repeat,
        "threads": min(matrix.threads, cell.connections),
        "duration_s": matrix.duration_s,
        "warmup_s": matrix.warmup_s,
        "timeout_s": matrix.timeout_s,
        "server_cpus": list(matrix.server_cpus) if matrix.server_cpus else None,
        "client_cpus": list(matrix.client_cpus) if matrix.client_cpus else None,
        "nofile_limit": runner.nofile_needed(cell.connections),
        "started_at": utc_now(),
    }
    for what in (cell.server, cell.app):
        if what in unavailable:
            return _finish(store, cell, base, "failed", f"{what} unavailable: {unavailable[what]}")
    try:
        if remote is not None:
            return remote.measure(store, matrix, cell, spec, app, files, base)
        return _measure(store, matrix, cell, wrk, spec, app, files, base)
    except KeyboardInterrupt:
        # The servers are already stopped (finally blocks); record the cell as failed so
        # an interrupted run that is never resumed still shows it. --resume measures it
        # again (RunStore.is_finished does not count interrupted cells).
        reason = "interrupted (Ctrl-C or SIGTERM) during the cell; --resume measures it again"
        _finish(store, cell, {**base, "interrupted": True}, "failed", reason)
        raise


def _measure(
    store: RunStore,
    matrix: Matrix,
    cell: Cell,
    wrk: str,
    spec: AnyServer,
    app: AppSpec,
    files: dict[str, Path],
    base: dict[str, Any],
) -> CellOutcome:
    metrics = servermetrics.MetricsDir(cell.app)
    server = None
    try:
        started = _start_server(store, matrix, cell, spec, app, metrics, base)
        if isinstance(started, str):
            return _finish(store, cell, base, "failed", started)
        server, port = started
        url = f"http://{HOST}:{port}{WORKLOADS[cell.workload]}"
        base["url"] = url
        refused = _preflight(matrix, cell, port, base)
        if refused:
            return _finish(store, cell, base, "failed", refused)
        run = _load(store, matrix, cell, wrk, url, files, base, metrics, server, port)
        crashed = server.proc.poll()
        if crashed is None:
            base["server_exit_code"] = runner.end_server(server)
            base["server_stop"] = "sigkill-after-measurement"
        else:
            base["server_exit_code"] = runner.stop_server(server)
        base["server_stderr_tail"] = server.stderr_tail()
        server = None
        reason = _wrk_failure(run, crashed)
        return _finish(store, cell, base, "failed" if reason else "ok", reason, run.stdout)
    finally:
        if server is not None:
            runner.stop_server(server)
        mark_active(store, None)
        metrics.cleanup()


def _start_server(
    store: RunStore,
    matrix: Matrix,
    cell: Cell,
    spec: AnyServer,
    app: AppSpec,
    metrics: servermetrics.MetricsDir,
    base: dict[str, Any],
) -> tuple[runner.ServerProcess, int] | str:
    """Start the server on a free port and wait until it answers; or say why it did not."""
    budget = Budget(workers=matrix.workers, threads=matrix.server_threads)
    backlog = max(1024, 2 * max(matrix.connections))
    log_path = store.cell_base(cell).with_suffix(".server.log")
    for attempt in range(PORT_ATTEMPTS):
        port = runner.free_port(HOST)
        argv = spec.argv(sys.executable, app, HOST, port, budget, backlog)
        env = metrics.server_env(cell.app, spec.env())
        base.update(server_argv=argv, server_env=env, backlog=backlog)
        server = runner.start_server(
            argv, env, hostinfo.REPO_ROOT, log_path, spec.stop_signal,
            matrix.server_cpus, base["nofile_limit"],
        )  # fmt: skip
        mark_active(store, server)
        try:
            base["server_ready_s"] = round(runner.wait_ready(server, f"http://{HOST}:{port}/"), 3)
            return server, port
        except runner.LaunchError as e:
            tail = server.stderr_tail()
            base["server_exit_code"] = runner.stop_server(server)
            base["server_stderr_tail"] = tail
            if "Address already in use" not in tail or attempt + 1 == PORT_ATTEMPTS:
                return f"server did not start: {e}"
        except BaseException:
            runner.stop_server(server)  # interrupted while waiting: not yet the caller's
            raise
    return "server did not start"


def _load(
    store: RunStore,
    matrix: Matrix,
    cell: Cell,
    wrk: str,
    url: str,
    files: dict[str, Path],
    base: dict[str, Any],
    metrics: servermetrics.MetricsDir,
    server: runner.ServerProcess,
    port: int,
) -> runner.WrkRun:
    """Warm up, then the measured wrk run (scraping server metrics around it if asked)."""
    nofile = base["nofile_limit"]
    limit = matrix.duration_s + matrix.timeout_s + 30
    env = workloads.wrk_env(matrix, cell.workload)
    base["wrk_env"] = env
    if matrix.warmup_s > 0:
        warm = runner.run_wrk(
            wrk_argv(wrk, matrix, cell, url, matrix.warmup_s, measured=False),
            env, matrix.client_cpus, nofile, matrix.warmup_s + limit,
        )  # fmt: skip
        write_atomic(files["warmup"], warm.stdout)
    metrics_url = "/".join(url.split("/", 3)[:3]) + "/metrics"
    before = _scrape(metrics, metrics_url, files["metrics_before"], base)
    files["lua_json"].unlink(missing_ok=True)
    argv = wrk_argv(wrk, matrix, cell, url, matrix.duration_s, measured=True)
    report_env = {**env, "WSGI_BASELINE_REPORT": str(files["lua_json"])}
    with Sampler(server.pgid, child_named(Path(wrk).name), port) as sampler:
        run = runner.run_wrk(argv, report_env, matrix.client_cpus, nofile, limit)
    write_samples(files["samples"], sampler)
    base.update(wrk_argv=argv, wrk_exit_code=run.exit_code, wrk_stderr=run.stderr[-4000:])
    if run.stdout:
        write_atomic(files["stdout"], run.stdout)
    after = _scrape(metrics, metrics_url, files["metrics_after"], base)
    if before is not None and after is not None:
        servermetrics.store_delta(before, after, files["metrics"])
    return run


def _preflight(matrix: Matrix, cell: Cell, port: int, base: dict[str, Any]) -> str | None:
    """Check the answer before measuring it; the reason to refuse, or None to go on."""
    path, body, ctype = workloads.expected_response(cell.workload)
    return record_preflight(matrix, preflight(HOST, port, path, body, ctype), base)


def record_preflight(matrix: Matrix, check: PreflightResult, base: dict[str, Any]) -> str | None:
    """Put a preflight result in the sidecar; the reason to refuse the cell, or None.
    Shared with harness/bench/remote/cell.py, whose check runs on a client host."""
    why = blocking(check)
    base["preflight"] = {
        "ok": check.ok,
        "blocking": why,
        "ignored": bool(why and matrix.ignore_preflight),
        "checks": [list(c) for c in check.checks],
    }
    if why and not matrix.ignore_preflight:
        return f"preflight: {why}"
    return None


def _scrape(
    metrics: servermetrics.MetricsDir, url: str, path: Path, base: dict[str, Any]
) -> str | None:
    """A failed scrape is recorded in the sidecar; it does not fail the wrk measurement."""
    if metrics.path is None:
        return None
    try:
        return servermetrics.scrape_to(url, path)
    except Exception as e:  # noqa: BLE001 - any scrape failure is data, not a crash
        base.setdefault("metrics_errors", []).append(f"{path.name}: {e}")
        return None


def _wrk_failure(run: runner.WrkRun, server_exit: int | None) -> str | None:
    if server_exit is not None:
        return f"server exited with code {server_exit} during the measurement"
    if run.timed_out:
        return "wrk did not finish in time and was killed"
    if run.exit_code != 0:
        said = run.stderr.strip() or run.stdout.decode("utf-8", "replace").strip()
        detail = said.splitlines()[:1] or ["no message"]
        return f"wrk exited with code {run.exit_code}: {detail[0]}"
    if b" requests in " not in run.stdout:
        return "wrk printed no summary"
    return None


def _finish(
    store: RunStore,
    cell: Cell,
    base: dict[str, Any],
    status: str,
    reason: str | None,
    stdout: bytes = b"",
) -> CellOutcome:
    store.write_cell(cell, {**base, "status": status, "reason": reason, "ended_at": utc_now()})
    rps = None
    for line in stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("Requests/sec:"):
            rps = line.split(":", 1)[1].strip()
    return CellOutcome(cell, status, reason, rps)


ACTIVE_MARKER = ".active-server.json"


def mark_active(store: RunStore, server: runner.ServerProcess | None) -> None:
    """Record the running server's group so a run killed with SIGKILL can be cleaned up."""
    path = store.root / ACTIVE_MARKER
    if server is None:
        path.unlink(missing_ok=True)
        return
    write_atomic(path, json.dumps({"pgid": server.pgid, "started": time.time()}).encode())
