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
from typing import Any, Protocol

from harness.bench import servermetrics
from harness.bench.merge import MergeError, merge_reports
from harness.errors import UserError
from harness.matrix import workloads
from harness.matrix.model import WORKLOADS, Cell, Matrix, wrk_threads
from harness.raw.records import CellSidecar, PreflightRecord, PreflightResult, blocking
from harness.raw.store import RunStore, utc_now, write_atomic, write_json

STDERR_KEEP = 4000  # characters of wrk's stderr kept in the sidecar
# A server start is tried again on another free port when its port was taken meanwhile.
PORT_ATTEMPTS = 3


class HostError(UserError):
    """A host cannot be reached or prepared; the message says which and why."""


class HostLost(HostError):
    """The connection to a host dropped while we depended on it."""


@dataclass(frozen=True)
class ServerStart:
    """How starting the server went: its exact command line and, if it answers, where."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    backlog: int
    origin: str | None = None  # http://host:port once it answers 200
    ready_s: float | None = None
    failure: str | None = None  # why it did not start (then `origin` is None)
    exit_code: int | None = None
    stderr_tail: str | None = None
    pid: int | None = None  # recorded for servers on another host (its process group)
    pgid: int | None = None

    def record(self) -> dict[str, Any]:
        """The sidecar fields this step fills."""
        fields: dict[str, Any] = {
            "server_argv": self.argv,
            "server_env": self.env,
            "backlog": self.backlog,
            "server_ready_s": None if self.ready_s is None else round(self.ready_s, 3),
        }
        if self.failure is not None:
            fields.update(server_exit_code=self.exit_code, server_stderr_tail=self.stderr_tail)
        if self.pid is not None:
            fields.update(server_pid=self.pid, server_pgid=self.pgid)
        return fields


@dataclass(frozen=True)
class WrkOutput:
    """One wrk process of a cell (one per client host), kept as it ran."""

    host: str | None  # the client host (None: this machine)
    connections: int  # its share of the cell's connections
    argv: tuple[str, ...]
    stdout: bytes
    report: bytes | None  # the Lua reporter's JSON (measured runs only)
    exit_code: int | None
    timed_out: bool
    stderr: str
    cpu_pct: float | None = None  # its CPU over its run, read at exit on a client host


@dataclass(frozen=True)
class Measurement:
    """A wrk run of the cell: every client's output, and the server's samples (as the
    `.samples.json` file's bytes) when it was measured."""

    clients: tuple[WrkOutput, ...]
    samples: bytes | None = None


@dataclass(frozen=True)
class ServerStop:
    exit_code: int | None
    crashed: bool  # it had exited before we stopped it
    killed: bool  # still running after the measurement, so its group was killed at once
    stderr_tail: str


class ScrapeFailed(Exception):
    """A /metrics scrape that failed: data for the sidecar, not the end of the cell."""


class CellHost(Protocol):
    """Where one cell's processes run. One cell at a time: `start_server` begins it,
    `end_cell` ends it whatever happened. Steps raise HostError when a host or its
    link is lost; everything else they report in their results."""

    @property
    def where(self) -> dict[str, Any]:
        """Sidecar fields naming the hosts (empty for this machine)."""
        ...

    def start_server(self, cell: Cell, log: Path) -> ServerStart:
        """Start the cell's server and wait until it answers; its output goes to `log`."""
        ...

    def preflight(self, workload: str) -> PreflightResult:
        """Check the running server's answer as wrk will get it."""
        ...

    def run_wrk(self, cell: Cell, url: str, seconds: float, measured: bool) -> Measurement:
        """Run wrk (every client together); a measured run is sampled and reports."""
        ...

    def scrape(self, path: Path) -> str:
        """The server's /metrics text, kept verbatim at `path`; ScrapeFailed if not."""
        ...

    def stop_server(self) -> ServerStop:
        """Stop the server after its measurement; its log is complete at `log` then."""
        ...

    def end_cell(self) -> None:
        """Stop whatever still runs (quickly: nothing is measured) and clean up."""
        ...


@dataclass(frozen=True)
class CellOutcome:
    cell: Cell
    status: str
    reason: str | None
    requests_per_sec: str | None = None


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
        rec = replace(rec, url=url, wrk_env=workloads.wrk_env(matrix, cell.workload))
        rec, refused = record_preflight(rec, matrix, host.preflight(cell.workload))
        if refused:
            return _finish(store, rec, refused)
        warm = host.run_wrk(cell, url, matrix.warmup_s, False) if matrix.warmup_s > 0 else None
        instrumented = workloads.is_instrumented(cell.app)
        errors: list[str] = []
        before = _scrape(host, files["metrics_before"], errors) if instrumented else None
        files["lua_json"].unlink(missing_ok=True)
        run = host.run_wrk(cell, url, matrix.duration_s, True)
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
            metrics_errors=tuple(errors),
        )
        rec, reason, rps = record_outputs(files, rec, warm, run, stop)
        return _finish(store, rec, reason, rps, ok=reason is None)
    except HostError as e:  # HostLost included: whatever ran there is stopped by now
        what = "lost the connection" if isinstance(e, HostLost) else "host failure"
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
            write_atomic(files["lua_json"], out.report)
        rec = replace(
            rec,
            wrk_argv=out.argv,
            wrk_exit_code=out.exit_code,
            wrk_stderr=out.stderr[-STDERR_KEEP:],
            wrk_cpu_pct_mean=out.cpu_pct,
        )
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
    cell = Cell(rec.server, rec.app, rec.workload, rec.connections, rec.repeat)
    return CellOutcome(cell, status, reason, rps)
