"""Bench stage: what can wrk drive here at all? The client ceiling, measured as a cell.

nginx answers the apps' plaintext body far faster than any WSGI server, so wrk's req/s
against it — loaded and pinned like the run's cells — is the client's ceiling: a cell
near it measured wrk, not the server. The ceiling is measured by the same cell sequence
as every server (harness/bench/cell.py), with nginx as the server
(harness/serving/launchers/nginx_serve.py), on whatever hosts the run uses: this
machine, or the server host and client hosts of a run over SSH.

`measure_ceiling(run_root, matrix, when, host_for)` runs that cell into
`<run>/calibration/<when>/` and writes its summary, `calibration.<when>.json`, the
record the table and pages read (docs/raw-format.md, "Calibration"); `calibrate(...)`
is the same for `invoke calibrate` on this machine.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.bench.cell import measure_cell
from harness.bench.host import CellHost
from harness.errors import UserError
from harness.matrix.customservers import AnyServer
from harness.matrix.launched import NGINX_REFERENCE
from harness.matrix.model import Cell, Matrix
from harness.parse.wrk import parse_wrk_file
from harness.raw.documents import CALIBRATION_FORMAT_VERSION, read_document
from harness.raw.samples import read_samples, summarize
from harness.raw.store import RunStore, write_json

NGINX = "/usr/sbin/nginx"
# What builds the host a calibration cell runs on (the run's own kind of host).
HostFor = Callable[[RunStore, Matrix, dict[str, AnyServer]], CellHost]


class CalibrationError(UserError):
    """nginx is missing where it must run; the message says how to install it."""


def nginx_version(nginx: str = NGINX) -> str | None:
    try:
        out = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stderr or out.stdout).strip().rpartition(": ")[2] or None


def ceiling_matrix(matrix: Matrix, duration_s: float) -> Matrix:
    """The run's load (its highest connection count, threads, timeout, CPUs) on nginx."""
    cell = Cell(NGINX_REFERENCE.id, "raw", "plaintext", max(matrix.connections), 1)
    return replace(
        matrix, profile="calibration", servers=(cell.server,), apps=("raw",),
        workloads=("plaintext",), connections=(cell.connections,), repeats=1,
        duration_s=float(duration_s), warmup_s=0.0, server_metrics=False,
        ignore_preflight=False, precision=None, max_repeats=None, max_time_s=None,
        calibrate=False, shuffle=False, rates=(), cells=(cell,),
    )  # fmt: skip


def summary_name(when: str) -> str:
    return "calibration.json" if when == "on request" else f"calibration.{when}.json"


def measure_ceiling(
    run_root: Path, matrix: Matrix, when: str, host_for: HostFor, nginx: str | None = None
) -> dict[str, Any]:
    """Measure the client ceiling of the run at `run_root` as one cell; write and return
    its record (`calibration.<when>.json`)."""
    folder = "request" if when == "on request" else when
    store = RunStore(run_root / "calibration", folder)
    cm = ceiling_matrix(matrix, matrix.duration_s)
    cell = cm.cells[0]
    host = host_for(store, cm, {cell.server: NGINX_REFERENCE})
    outcome = measure_cell(host, store, cm, cell)
    rec = store.read_cell(cell)
    files = store.cell_files(cell)
    rel = {k: p.relative_to(run_root).as_posix() for k, p in files.items() if p.is_file()}
    record: dict[str, Any] = {
        "format_version": CALIBRATION_FORMAT_VERSION,
        "kind": "calibration",
        "when": when,  # start, end or resume of a run, or `invoke calibrate` (on request)
        "status": outcome.status,
        "reason": outcome.reason,
        "started_at": rec.started_at,
        "ended_at": rec.ended_at,
        "nginx_version": nginx,
        "connections": cell.connections,
        "threads": cm.threads,
        "duration_s": cm.duration_s,
        "client_cpus": list(cm.client_cpus) if cm.client_cpus else None,
        "server_cpus": list(cm.server_cpus) if cm.server_cpus else None,
        "nofile_limit": cell.nofile_limit,
        "server_host": rec.server_host,
        "client_hosts": list(rec.client_hosts) if rec.client_hosts else None,
        "preflight": {
            "ok": rec.preflight.ok if rec.preflight else None,
            "reason": rec.preflight.blocking if rec.preflight else None,
        },
        "wrk_argv": list(rec.wrk_argv) if rec.wrk_argv else None,
        "wrk_exit_code": rec.wrk_exit_code,
        "wrk_cpu_pct_mean": rec.wrk_cpu_pct_mean,
        "files": rel,
    }
    if outcome.status == "ok":
        record.update(_figures(files))
    write_json(run_root / summary_name(when), record)
    return record


def _figures(files: dict[str, Path]) -> dict[str, Any]:
    """The ceiling's figures: exact from the Lua report, CPU from the samples."""
    out: dict[str, Any] = {}
    if files["samples"].is_file():
        s = summarize(read_samples(files["samples"]))
        out.update(
            wrk_cpu_pct_mean=s["wrk_cpu_pct_mean"], wrk_cpu_pct_max=s["wrk_cpu_pct_max"],
            nginx_cpu_pct_mean=s["server_cpu_pct_mean"],
        )  # fmt: skip
    if files["lua_json"].is_file():
        doc = read_document(files["lua_json"])
        lat = doc.get("latency_us") or {}
        errors = doc.get("errors") or {}
        seconds = (doc.get("duration_us") or 0) / 1e6
        out.update(
            requests=doc.get("requests"),
            requests_per_sec=doc["requests"] / seconds if seconds else None,
            latency_avg_ms=(lat.get("mean") or 0) / 1000,
            latency_max_ms=(lat.get("max") or 0) / 1000,
            latency_p99_ms=((lat.get("percentiles") or {}).get("99") or 0) / 1000,
            errors={k: errors.get(k, 0) for k in ("connect", "read", "write", "timeout")}
            | {"non_2xx_3xx": errors.get("status", 0)},
        )  # fmt: skip
    elif files["stdout"].is_file():
        r = parse_wrk_file(files["stdout"])
        out.update(requests=r.requests, requests_per_sec=r.requests_per_sec)
    return out


def calibrate(
    out_path: Path,
    connections: int,
    duration_s: int,
    threads: int,
    client_cpus: Sequence[int] | None,
    server_cpus: Sequence[int] | None,
    nginx: str = NGINX,
    wrk: str = "wrk",
    when: str = "on request",
) -> dict[str, Any]:
    """`invoke calibrate`: the ceiling on this machine, attached to the run of `out_path`
    (its folder): wrk with these settings against nginx, pinned as given."""
    from harness.bench.localhost import LocalCellHost  # the local host: processes here

    if shutil.which(nginx) is None:
        raise CalibrationError(
            f"nginx: {nginx} not found (install it: apt-get install nginx-light)"
        )
    matrix = Matrix(
        profile="calibration", servers=("nginx",), apps=("raw",), workloads=("plaintext",),
        connections=(connections,), repeats=1, duration_s=float(duration_s), warmup_s=0.0,
        threads=threads, timeout_s=2.0, workers=1, server_threads=1,
        server_cpus=tuple(server_cpus) if server_cpus else None,
        client_cpus=tuple(client_cpus) if client_cpus else None,
    )  # fmt: skip

    def local(store: RunStore, m: Matrix, servers: dict[str, AnyServer]) -> CellHost:
        return LocalCellHost(store, m, servers, wrk)

    record = measure_ceiling(out_path.parent, matrix, when, local, nginx_version(nginx))
    if out_path.name != summary_name(when):
        write_json(out_path, record)
    return record
