"""Bench stage: a cell's wrk outputs -> its files in raw/ and its sidecar's wrk fields.

`record_outputs` writes what the measured run (and the warm-up) printed, byte for byte:
one client under the cell's own names, several as `.client<i>.*` with their merged Lua
report (docs/raw-format.md, "Several client hosts"), an open-loop cell's report as its
`.open.json`; and says why the figures cannot stand (`wrk_failure`), if they cannot.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from harness.bench.host import Measurement, ServerStop, WrkOutput
from harness.bench.merge import MergeError, merge_reports
from harness.raw.records import CellSidecar
from harness.raw.store import write_atomic, write_json

STDERR_KEEP = 4000  # characters of wrk's stderr kept in the sidecar


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
