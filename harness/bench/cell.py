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

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from harness.bench import openloop, servermetrics
from harness.bench.host import (
    CellHost,
    HostError,
    HostLost,
    Measurement,
    ScrapeFailed,
    ServerStop,
    WrkOutput,
)
from harness.bench.merge import MergeError, merge_reports
from harness.bench.runner import tail_lines
from harness.matrix import workloads
from harness.matrix.model import WORKLOADS, Cell, Matrix, wrk_threads
from harness.raw.preflight import PreflightRecord, PreflightResult, blocking
from harness.raw.records import CellSidecar
from harness.raw.store import RunStore, utc_now, write_atomic, write_json

STDERR_KEEP = 4000  # characters of wrk's stderr kept in the sidecar


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


def wrk_failure(out: WrkOutput, stop: ServerStop) -> str | None:
    """Why one wrk run's figures cannot stand, or None."""
    if stop.crashed:
        return f"server exited with code {stop.exit_code} during the measurement"
    if out.timed_out:
        return "wrk did not finish in time and was killed"
    if out.exit_code != 0:
        said = out.stderr.strip() or out.stdout.decode("utf-8", "replace").strip()
        detail = said.splitlines()[:1] or ["no message"]
        return f"wrk exited with code {out.exit_code}: {detail[0]}"
    if b" requests in " not in out.stdout:
        return "wrk printed no summary"
    return None


def record_outputs(
    files: dict[str, Path],
    rec: CellSidecar,
    warm: Measurement | None,
    run: Measurement,
    stop: ServerStop,
) -> tuple[CellSidecar, str | None, str | None]:
    """Write the wrk outputs of a cell; (sidecar, failure reason, req/s to print).

    One client: wrk's stdout, its Lua report and the warm-up under the cell's own names.
    Several (docs/raw-format.md, "Several client hosts"): each client's files as
    `.client<i>.*`, verbatim, and their merged report as the cell's `.lua.json`.
    """
    outs = run.clients
    reasons = [wrk_failure(o, stop) for o in outs]
    reason = next(
        (f"client {i}: {r}" if len(outs) > 1 else r for i, r in enumerate(reasons, 1) if r), None
    )
    if len(outs) == 1:
        out = outs[0]
        if warm is not None:
            write_atomic(files["warmup"], warm.clients[0].stdout)
        if out.stdout:
            write_atomic(files["stdout"], out.stdout)
        if out.report is not None:
            # An open-loop cell's report is openloop.lua's, not report.lua's.
            kind = "lua_json" if rec.rate is None else "open_json"
            write_atomic(files[kind], out.report)
        if rec.rate is not None and reason is None and out.report is None:
            reason = "the open-loop client wrote no report"
        rec = replace(
            rec,
            wrk_argv=out.argv,
            wrk_exit_code=out.exit_code,
            wrk_stderr=out.stderr[-STDERR_KEEP:],
            wrk_cpu_pct_mean=out.cpu_pct,
        )
        if rec.rate is not None:
            return rec, reason, _open_loop_rps(out.report, rec.offered_rate_rps)
        return rec, reason, _printed_rps(out.stdout)
    sidecar = files["sidecar"]
    clients = []
    for i, out in enumerate(outs, 1):
        data = {"stdout": out.stdout, "lua_json": out.report}
        if warm is not None:
            data["warmup"] = warm.clients[i - 1].stdout
        written = {}
        for kind, blob in data.items():
            if blob:
                name = sidecar.with_suffix(f".client{i}.{_SUFFIX[kind]}")
                write_atomic(name, blob)
                written[kind] = name.name
        clients.append(
            {
                "host": out.host,
                "connections": out.connections,
                "wrk_argv": list(out.argv),
                "wrk_exit_code": out.exit_code,
                "wrk_stderr": out.stderr[-STDERR_KEEP:],
                "wrk_cpu_pct_mean": out.cpu_pct,
                "files": written,
            }
        )
    cpus = [o.cpu_pct for o in outs if o.cpu_pct is not None]
    rec = replace(
        rec,
        wrk_argv=None,
        wrk_exit_code=next((o.exit_code for o in outs if o.exit_code != 0), 0),
        # The busiest client: the one that would saturate first.
        wrk_cpu_pct_mean=max(cpus) if cpus else None,
        clients=tuple(clients),
        wrk_stderr="\n".join(o.stderr[-1000:] for o in outs)[-STDERR_KEEP:],
    )
    if reason is not None:
        return rec, reason, None
    try:
        merged = merge_reports([json.loads(o.report or b"") for o in outs])
    except (ValueError, MergeError) as e:
        return rec, f"cannot merge the clients' reports: {e}", None
    write_json(files["lua_json"], merged)
    rps = None
    if merged["duration_us"]:
        rps = f"{merged['requests'] / (merged['duration_us'] / 1e6):.2f} (merged)"
    return rec, None, rps


_SUFFIX = {"stdout": "txt", "lua_json": "lua.json", "warmup": "warmup.txt"}


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


def _open_loop_rps(report: bytes | None, offered: float | None) -> str | None:
    """`9,870 of 10,000 offered` for the progress line (the table reads the report)."""
    from harness.parse.openloop import parse_openloop

    try:
        achieved = parse_openloop(report or b"").achieved_rate_rps
    except ValueError:
        return None
    return f"{achieved:,.0f} of {offered or 0:,.0f} offered"


def _printed_rps(stdout: bytes) -> str | None:
    for line in stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("Requests/sec:"):
            return line.split(":", 1)[1].strip()
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
