"""Bench stage: the open-loop client against nginx — its latency floor in a run, and
its highest accurate rate on this machine (`invoke perf --open-loop`).

nginx answers a static body in microseconds, so what the open-loop client reports
against it at a rate is the client's own share of every latency it reports at that
rate (its timer, its scheduling, the loopback): the floor under any server's curve.
`against_nginx(rate, connections, …)` measures it as one open-loop cell of the same
sequence as every server's (harness/bench/cell.py), with nginx as the server
(harness/serving/launchers/nginx_serve.py), and returns its record; `measure` does it at
the end of a run with `--rates`, at the highest rate the run offered, on the run's own
hosts, keeping the cell's files under `openloop-floor/end/` and the record as
`openloop-floor.json`, with a summary in run.json's `open_loop`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.bench.calibrate import NGINX, CalibrationError, HostFor, nginx_version
from harness.bench.cell import measure_cell
from harness.bench.openloop import CLIENT, script_sha256
from harness.matrix.launched import NGINX_REFERENCE
from harness.matrix.model import Cell, Matrix, OfferedRate
from harness.parse.openloop import parse_openloop
from harness.raw.documents import CALIBRATION_FORMAT_VERSION
from harness.raw.records import read_cell
from harness.raw.samples import read_samples, summarize
from harness.raw.store import RunStore, utc_now, write_json

FLOOR_S = 5  # long enough for a p99.9 of thousands of requests, short beside a run
FLOOR_FILE = "openloop-floor.json"
FLOOR_FOLDER = "openloop-floor"  # the cell's files: openloop-floor/<when>/nginx/raw/…
TIMEOUT_S = 2.0


def floor_matrix(
    rate: float,
    connections: int,
    duration_s: int,
    client_cpus: Sequence[int] | None,
    server_cpus: Sequence[int] | None,
) -> Matrix:
    """One open-loop cell of nginx at `rate` req/s over `connections`, pinned as given."""
    offered = OfferedRate(float(rate), False)
    cell = Cell(NGINX_REFERENCE.id, "raw", "plaintext", connections, 1, offered)
    return Matrix(
        profile="open-loop-floor", servers=(cell.server,), apps=("raw",),
        workloads=("plaintext",), connections=(connections,), repeats=1,
        duration_s=float(duration_s), warmup_s=0.0, threads=1, timeout_s=TIMEOUT_S,
        workers=1, server_threads=1, calibrate=False, rates=(offered,), cells=(cell,),
        server_cpus=tuple(server_cpus) if server_cpus else None,
        client_cpus=tuple(client_cpus) if client_cpus else None,
    )  # fmt: skip


def against_nginx(
    rate: float,
    connections: int,
    duration_s: int,
    client_cpus: Sequence[int] | None,
    server_cpus: Sequence[int] | None,
    run_root: Path | None = None,
    host_for: HostFor | None = None,
) -> dict[str, Any]:
    """One open-loop cell against nginx; its record (with `run_root`: the cell kept
    under `openloop-floor/end/` and the record written as `openloop-floor.json`; else in
    a temporary folder, removed). `host_for`: the run's hosts (default: this machine).
    CalibrationError if nginx cannot be run here."""
    if host_for is None:
        if shutil.which(NGINX) is None:
            raise CalibrationError(
                f"nginx: {NGINX} not found (install it: apt-get install nginx-light)"
            )
        from harness.bench.localhost import LocalCellHost  # processes on this machine

        def local_host(store: RunStore, m: Matrix, servers: dict[str, Any]) -> Any:
            return LocalCellHost(store, m, servers, "wrk")

        host_for = local_host
    matrix = floor_matrix(rate, connections, duration_s, client_cpus, server_cpus)
    with tempfile.TemporaryDirectory(prefix="wsgi-baseline-floor-") as tmp:
        root = run_root if run_root is not None else Path(tmp)
        return _measure(root, matrix, host_for, keep=run_root is not None)


def _measure(root: Path, matrix: Matrix, host_for: HostFor, keep: bool) -> dict[str, Any]:
    store = RunStore(root / FLOOR_FOLDER, "end")
    cell = matrix.cells[0]
    host = host_for(store, matrix, {cell.server: NGINX_REFERENCE})
    outcome = measure_cell(host, store, matrix, cell)
    rec = read_cell(store.cell_files(cell)["sidecar"])
    files = store.cell_files(cell)
    report = files["open_json"].read_bytes() if files["open_json"].is_file() else None
    assert cell.rate is not None
    record: dict[str, Any] = {
        "format_version": CALIBRATION_FORMAT_VERSION,
        "kind": "open-loop-floor",
        "client": CLIENT,
        "script_sha256": script_sha256(),
        "started_at": rec.started_at,
        "ended_at": rec.ended_at,
        "nginx_version": nginx_version(),
        "offered_rate_rps": round(cell.rate.value, 3),
        "connections": cell.connections,
        "duration_s": matrix.duration_s,
        "client_cpus": list(matrix.client_cpus) if matrix.client_cpus else None,
        "server_cpus": list(matrix.server_cpus) if matrix.server_cpus else None,
        "server_host": rec.server_host,
        "client_hosts": list(rec.client_hosts) if rec.client_hosts else None,
        "wrk_argv": list(rec.wrk_argv) if rec.wrk_argv else None,
        "wrk_env": dict(rec.wrk_env) if rec.wrk_env else None,
        "wrk_exit_code": rec.wrk_exit_code,
        **_cpu(files["samples"], rec.wrk_cpu_pct_mean),
    }
    if outcome.status == "ok":
        record.update(figures(rec.wrk_exit_code, report))
    else:
        record.update(status=outcome.status, reason=outcome.reason)
    if keep:
        record["files"] = {
            k: p.relative_to(root).as_posix() for k, p in files.items() if p.is_file()
        }
        write_json(root / FLOOR_FILE, record)
    return record


def _cpu(samples: Path, wrk_remote: float | None) -> dict[str, float | None]:
    """wrk's and nginx's CPU from the cell's samples (wrk on another host: its own)."""
    s = summarize(read_samples(samples)) if samples.is_file() else {}
    return {
        "wrk_cpu_pct_mean": s.get("wrk_cpu_pct_mean", wrk_remote) or wrk_remote,
        "wrk_cpu_pct_max": s.get("wrk_cpu_pct_max"),
        "nginx_cpu_pct_mean": s.get("server_cpu_pct_mean"),
    }


def figures(exit_code: int | None, report: bytes | None) -> dict[str, Any]:
    """What the run achieved and the latencies it saw (ms), from the client's report."""
    if exit_code != 0:
        return {"status": "failed", "reason": f"wrk exited with code {exit_code}"}
    try:
        r = parse_openloop(report or b"")
    except ValueError as e:
        return {"status": "failed", "reason": f"no readable open-loop report: {e}"}
    pc, pu = r.latency_percentiles_ms, r.latency_uncorrected_percentiles_ms
    levels = (50.0, 99.0, 99.9)
    return {
        "status": "ok",
        "reason": None,
        "achieved_rate_rps": round(r.achieved_rate_rps, 3),
        "achieved_share": r.achieved_share,
        "answered": r.answered,
        "errors": r.errors_connect + r.errors_read + r.errors_write + r.errors_timeout,
        **{f"latency_p{k:g}_ms".replace(".", "_"): pc.get(k) for k in levels},
        **{f"latency_uncorrected_p{k:g}_ms".replace(".", "_"): pu.get(k) for k in levels},
        "send_lag_p99_ms": r.send_lag_percentiles_ms.get(99.0),
        "send_lag_max_ms": r.send_lag_max_ms,
    }  # fmt: skip


def highest_offered(store: RunStore, planned: Sequence[Any]) -> tuple[float, int] | None:
    """The highest rate an ok-or-failed open-loop cell of the run offered, with its
    connections (None: no open-loop cell offered any)."""
    best: tuple[float, int] | None = None
    for cell in planned:
        if cell.rate is None:
            continue
        path = store.cell_files(cell)["sidecar"]
        if not path.is_file():
            continue
        try:
            rec = read_cell(path)
        except ValueError:
            continue
        if rec.offered_rate_rps is not None and (best is None or rec.offered_rate_rps > best[0]):
            best = (rec.offered_rate_rps, rec.connections)
    return best


def measure(
    store: RunStore, matrix: Matrix, console: Console, host_for: HostFor | None = None
) -> dict[str, Any]:
    """The client's floor at the run's highest offered rate, summarised in run.json."""
    top = highest_offered(store, matrix.cells)
    summary: dict[str, Any] = {"client": CLIENT, "script_sha256": script_sha256(), "at": utc_now()}
    if top is None:
        summary.update(status="skipped", reason="no open-loop cell offered a rate")
    else:
        rate, connections = top
        duration = int(min(FLOOR_S, max(1.0, matrix.duration_s)))
        try:
            record = against_nginx(
                rate, connections, duration, matrix.client_cpus, matrix.server_cpus,
                run_root=store.root, host_for=host_for,
            )  # fmt: skip
        except CalibrationError as e:
            summary.update(status="failed", reason=str(e), offered_rate_rps=rate)
        else:
            keep = (
                *"status reason offered_rate_rps connections achieved_rate_rps".split(),
                *"latency_p50_ms latency_p99_ms latency_p99_9_ms wrk_cpu_pct_mean".split(),
            )
            summary.update({k: record.get(k) for k in keep}, file=FLOOR_FILE)
    store.write_run(replace(store.read_run(), open_loop=summary))
    console.print(floor_line(summary))
    return summary


def floor_line(summary: dict[str, Any]) -> str:
    if summary.get("status") != "ok":
        return f"[yellow]open-loop floor: {summary.get('status')}: {summary.get('reason')}"
    p50, p99 = summary.get("latency_p50_ms"), summary.get("latency_p99_ms")
    return (
        f"open-loop floor: against nginx at {summary['offered_rate_rps']:,.0f} req/s the client "
        f"achieved {summary.get('achieved_rate_rps') or 0:,.0f}, p50 {p50 or 0:.3f} ms, "
        f"p99 {p99 or 0:.3f} ms"
    )
