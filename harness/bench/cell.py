"""Bench stage: one cell, measured by the same sequence on every host.

`measure_cell(host, store, matrix, cell)` starts the server, checks its answer
(preflight), warms it up, scrapes its metrics (--server-metrics), measures with wrk while
the server is sampled, stops the server, writes the cell's files and, last, its sidecar.
A `CellHost` does each step where the processes run: `LocalCellHost` on this machine
(harness/bench/localhost.py), `RemoteCellHost` on the plan's hosts over SSH
(harness/bench/remote/cell.py); a test's fake host runs none. Every cell ends as a
sidecar, `ok` or `failed` with its reason: a failure at any step is recorded, never
hidden, and whatever was started is stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from harness.bench import openloop, servermetrics
from harness.bench.cellfiles import record_outputs
from harness.bench.host import (
    CellHost,
    HostError,
    HostLost,
    Measurement,
    ScrapeFailed,
)
from harness.bench.runner import tail_lines
from harness.matrix import workloads
from harness.matrix.model import WORKLOADS, Cell, Matrix, wrk_threads
from harness.raw.preflight import PreflightRecord, PreflightResult, blocking
from harness.raw.records import CellSidecar
from harness.raw.store import RunStore, utc_now, write_atomic


@dataclass(frozen=True)
class CellOutcome:
    cell: Cell
    status: str
    reason: str | None
    requests_per_sec: str | None = None
    infrastructure: bool = False  # a host or link was lost: not a result


def wrk_argv(
    wrk: str,
    matrix: Matrix,
    workload: str,
    connections: int,
    url: str,
    seconds: float,
    measured: bool,
) -> list[str]:
    """wrk's command line for `connections` (a cell's, or one client's share of it)."""
    threads = wrk_threads(matrix.threads, connections)
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s"]
    argv += [f"--timeout={int(matrix.timeout_s)}s"]
    # The workload's script runs in the warm-up too (the session mix warms the store);
    # only the measured run is given a report path, so only it writes figures.
    argv += ["-s", str(workloads.lua_script(workload))]
    if measured:
        argv += ["--latency"]
    return argv + [url]


def planned_record(store: RunStore, matrix: Matrix, cell: Cell) -> CellSidecar:
    """The sidecar of a cell about to be measured: what it is and how it is loaded."""
    return CellSidecar(
        run_id=store.run_id,
        server=cell.server,
        app=cell.app,
        workload=cell.workload,
        connections=cell.connections,
        repeat=cell.repeat,
        status="failed",
        threads=matrix.threads,
        duration_configured_s=matrix.duration_s,
        warmup_configured_s=matrix.warmup_s,
        timeout_configured_s=matrix.timeout_s,
        server_cpus=matrix.server_cpus,
        client_cpus=matrix.client_cpus,
        nofile_limit=cell.nofile_limit,
        started_at=utc_now(),
    )


def measure_cell(
    host: CellHost,
    store: RunStore,
    matrix: Matrix,
    cell: Cell,
    unavailable: Mapping[str, str] | None = None,
) -> CellOutcome:
    """Measure one cell on `host` and write its files; the sidecar is written last."""
    rec = replace(planned_record(store, matrix, cell), **host.where)
    files = store.cell_files(cell)
    for what in (cell.server, cell.app):
        if what in (unavailable or {}):
            return _finish(store, rec, f"{what} unavailable: {(unavailable or {})[what]}")
    if cell.rate is not None:
        # One wrk thread per connection (openloop.lua's schedule is per thread).
        offered = openloop.offered_rate(store, matrix, cell)
        rec = replace(
            rec,
            threads=cell.connections,
            rate=cell.rate.label,
            offered_rate_rps=None if offered.rps is None else round(offered.rps, 3),
            closed_loop_rps=offered.closed_loop_rps,
            closed_loop_repeats=offered.closed_loop_repeats,
        )
        if offered.rps is None:
            return _finish(store, rec, offered.reason)
    try:
        return _sequence(host, store, matrix, cell, rec, files)
    except KeyboardInterrupt:
        # What ran is stopped by now (end_cell); record the cell as failed so an
        # interrupted run that is never resumed still shows it. --resume measures it
        # again (RunStore.is_finished does not count interrupted cells).
        reason = "interrupted (Ctrl-C or SIGTERM) during the cell; --resume measures it again"
        _finish(store, replace(rec, interrupted=True), reason)
        raise


def _sequence(
    host: CellHost,
    store: RunStore,
    matrix: Matrix,
    cell: Cell,
    rec: CellSidecar,
    files: dict[str, Path],
) -> CellOutcome:
    try:
        start = host.start_server(cell, files["server_log"])
        rec = replace(rec, **start.record())
        if start.failure is not None or start.origin is None:
            return _finish(store, rec, start.failure or "server did not start")
        url = start.origin + WORKLOADS[cell.workload]
        rate = rec.offered_rate_rps

        def load(seconds: float, measured: bool) -> Measurement:
            """wrk closed-loop, or the open-loop client at the cell's rate (the warm-up
            too: the server warms up under the load it is measured at)."""
            if rate is None:
                return host.run_wrk(cell, url, seconds, measured)
            return host.run_open_loop(cell, url, rate, seconds, measured)

        env = workloads.wrk_env(matrix, cell.workload)
        if rate is not None:
            env = openloop.openloop_env(rate, cell.connections)
        rec = replace(rec, url=url, wrk_env=env)
        rec, refused = record_preflight(rec, matrix, host.preflight(cell.workload))
        if refused:
            return _finish(store, rec, refused)
        warm = load(matrix.warmup_s, False) if matrix.warmup_s > 0 else None
        instrumented = workloads.is_instrumented(cell.app)
        errors: list[str] = []
        before = _scrape(host, files["metrics_before"], errors) if instrumented else None
        files["lua_json"].unlink(missing_ok=True)
        files["open_json"].unlink(missing_ok=True)
        run = load(matrix.duration_s, True)
        after = _scrape(host, files["metrics_after"], errors) if instrumented else None
        if before is not None and after is not None:
            servermetrics.store_delta(before, after, files["metrics"])
        if run.samples is not None:
            write_atomic(files["samples"], run.samples)
        stop = host.stop_server()
        rec = replace(
            rec,
            server_exit_code=stop.exit_code,
            server_stop="sigkill-after-measurement" if stop.killed else None,
            server_stderr_tail=stop.stderr_tail,
            server_escaped=stop.escaped,
            metrics_errors=tuple(errors),
        )
        rec, reason, rps = record_outputs(files, rec, warm, run, stop)
        return _finish(store, rec, reason, rps, ok=reason is None)
    except HostError as e:  # HostLost included: the agents' watchdogs stop what ran
        host.end_cell()  # also brings home what the server wrote, where it still can
        if rec.server_stderr_tail is None:
            rec = replace(rec, server_stderr_tail=log_tail(files["server_log"]))
        # Not the server's failure and not a result: recorded as the infrastructure's,
        # and measured again on resume (RunStore.is_finished).
        what = "lost the connection" if isinstance(e, HostLost) else "host failure"
        rec = replace(rec, infrastructure=True)
        return _finish(store, rec, f"{what} during the cell: {e}")
    finally:
        host.end_cell()


def record_preflight(
    rec: CellSidecar, matrix: Matrix, check: PreflightResult
) -> tuple[CellSidecar, str | None]:
    """The preflight result in the sidecar, and the reason to refuse the cell (or None)."""
    why = blocking(check)
    record = PreflightRecord(
        ok=check.ok,
        blocking=why,
        ignored=bool(why and matrix.ignore_preflight),
        checks=tuple(tuple(c) for c in check.checks),  # type: ignore[misc]
    )
    refused = f"preflight: {why}" if why and not matrix.ignore_preflight else None
    return replace(rec, preflight=record), refused


def _scrape(host: CellHost, path: Path, errors: list[str]) -> str | None:
    """A failed scrape is recorded in the sidecar; it does not fail the wrk measurement."""
    try:
        return host.scrape(path)
    except ScrapeFailed as e:
        errors.append(str(e))
        return None


def start_failure(why: str, tail: str | None, lines: int = 3, width: int = 400) -> str:
    """Why a server did not start, with the last lines of its own output: the cause is
    usually there ("Listen queue size is greater than … somaxconn"), not in its exit code."""
    last = [line.strip() for line in (tail or "").splitlines() if line.strip()][-lines:]
    said = " | ".join(last)
    if len(said) > width:
        said = "…" + said[-width:]
    return f"server did not start: {why}" + (f"; it said: {said}" if said else "")


def log_tail(path: Path) -> str | None:
    """The last lines a server wrote to its log (None when there is no log)."""
    try:
        return tail_lines(path.read_bytes())
    except OSError:
        return None


def _finish(
    store: RunStore,
    rec: CellSidecar,
    reason: str | None,
    rps: str | None = None,
    ok: bool = False,
) -> CellOutcome:
    status = "ok" if ok else "failed"
    store.write_cell(replace(rec, status=status, reason=reason, ended_at=utc_now()))
    return CellOutcome(rec.cell, status, reason, rps, rec.infrastructure)
