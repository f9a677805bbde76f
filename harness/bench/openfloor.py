"""Bench stage: the open-loop client against nginx — its latency floor in a run, and
its highest accurate rate on this machine (`invoke perf --open-loop`).

nginx answers a static body in microseconds, so what the open-loop client reports
against it at a rate is the client's own share of every latency it reports at that
rate (its timer, its scheduling, the loopback): the floor under any server's curve.
`against_nginx(rate, connections, …)` runs the client once against nginx (pinned like
a cell: harness/bench/calibrate.py's `nginx_server`) and returns its record; `measure`
does it at the end of a run with `--rates`, at the highest rate the run offered, and
keeps it as `openloop-floor.json` (+ wrk's stdout `.txt`, the report `.open.json`)
with a summary in run.json's `open_loop`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.bench import runner
from harness.bench.calibrate import CalibrationError, nginx_server, nginx_version
from harness.bench.hostinfo import wrk_path
from harness.bench.openloop import CLIENT, openloop_argv, openloop_env, script_sha256
from harness.bench.sampler import Sampler, child_named
from harness.matrix.model import Matrix, nofile_needed, wrk_limit_s
from harness.parse.openloop import parse_openloop
from harness.raw.documents import CALIBRATION_FORMAT_VERSION
from harness.raw.records import read_cell
from harness.raw.samples import summarize
from harness.raw.store import RunStore, utc_now, write_atomic, write_json

FLOOR_S = 5  # long enough for a p99.9 of thousands of requests, short beside a run
FLOOR_FILE = "openloop-floor.json"
TIMEOUT_S = 2.0


def against_nginx(
    rate: float,
    connections: int,
    duration_s: int,
    client_cpus: Sequence[int] | None,
    server_cpus: Sequence[int] | None,
    out_path: Path | None = None,
    wrk: str | None = None,
) -> dict[str, Any]:
    """One open-loop run against nginx; the record (written to `out_path` if given, with
    wrk's stdout and the report beside it). CalibrationError if nginx cannot be run."""
    wrk = wrk or wrk_path() or "wrk"
    nofile = nofile_needed(connections)
    record: dict[str, Any] = {
        "format_version": CALIBRATION_FORMAT_VERSION,
        "kind": "open-loop-floor",
        "client": CLIENT,
        "script_sha256": script_sha256(),
        "started_at": utc_now(),
        "nginx_version": nginx_version(),
        "offered_rate_rps": round(rate, 3),
        "connections": connections,
        "duration_s": duration_s,
        "client_cpus": list(client_cpus) if client_cpus else None,
        "server_cpus": list(server_cpus) if server_cpus else None,
    }
    with nginx_server(connections, server_cpus) as ng:
        argv = openloop_argv(wrk, connections, ng.url, duration_s, TIMEOUT_S, measured=True)
        report_path = ng.prefix / "report.open.json"
        env = openloop_env(rate, connections, str(report_path))
        with Sampler(ng.server.pgid, child_named(Path(wrk).name), ng.port) as sampler:
            run = runner.run_wrk(
                argv, env, client_cpus, nofile, limit_s=wrk_limit_s(duration_s, TIMEOUT_S)
            )
        report = report_path.read_bytes() if report_path.is_file() else None
    samples = summarize(sampler.samples)
    record.update(
        wrk_argv=argv, wrk_env=openloop_env(rate, connections), wrk_exit_code=run.exit_code,
        wrk_stderr=run.stderr[-2000:], wrk_cpu_pct_mean=samples["wrk_cpu_pct_mean"],
        wrk_cpu_pct_max=samples["wrk_cpu_pct_max"],
        nginx_cpu_pct_mean=samples["server_cpu_pct_mean"], ended_at=utc_now(),
    )  # fmt: skip
    record.update(figures(run.exit_code, report))
    if out_path is not None:
        files = {"stdout": out_path.with_suffix(".txt").name}
        write_atomic(out_path.with_suffix(".txt"), run.stdout)
        if report is not None:
            write_atomic(out_path.with_suffix(".open.json"), report)
            files["open_json"] = out_path.with_suffix(".open.json").name
        record["files"] = files
        write_json(out_path, record)
    return record


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


def measure(store: RunStore, matrix: Matrix, console: Console) -> dict[str, Any]:
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
                out_path=store.root / FLOOR_FILE,
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
