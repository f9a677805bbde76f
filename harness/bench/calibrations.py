"""Bench stage: the client ceiling of every run — wrk against nginx, at its start and end.

A cell near what wrk can drive at all measured the client, not the server. The ceiling
(harness/bench/calibrate.py) is measured at the start of a run and again at its end, on
the run's own hosts — this machine, or the server host and client hosts through the
same network — with the run's load and pinning; measuring at both ends also shows how
much the machine drifted meanwhile. Each measurement is kept in `calibration/<when>/`
with its summary `calibration.<when>.json`, and summarised in run.json's
`calibrations`; `--no-calibrate`, a missing nginx or a failed measurement are recorded
there too, with the reason, so a page can say why a run has no ceiling.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from typing import Any

from rich.console import Console

from harness.bench.calibrate import NGINX, HostFor, measure_ceiling, nginx_version
from harness.matrix.model import Matrix
from harness.raw.store import RunStore, utc_now

CALIBRATION_S = 3  # long enough for a stable req/s, short beside a run
NO_NGINX = (
    "nginx is not installed here (apt-get install nginx-light): no client ceiling, so "
    "client_saturated is judged from wrk's CPU alone"
)


def will_calibrate(matrix: Matrix, remote: bool) -> str | None:
    """None when the run will measure its client ceiling, else why not. (On other hosts
    nginx's presence is known only when it starts: a failure is recorded then.)"""
    if not matrix.calibrate:
        return "--no-calibrate"
    if not remote and shutil.which(NGINX) is None:
        return NO_NGINX
    return None


def measure(
    store: RunStore,
    matrix: Matrix,
    when: str,
    host_for: HostFor,
    console: Console,
    remote: bool = False,
) -> dict[str, Any]:
    """Measure (or record why not) the client ceiling now; the run.json summary of it."""
    meta = store.read_run()
    if when == "start" and any(c.get("when") == "start" for c in meta.calibrations):
        when = "resume"  # a resumed run measures again: the machine may have changed
    summary: dict[str, Any] = {"when": when, "at": utc_now()}
    why_not = will_calibrate(matrix, remote)
    if why_not is not None:
        status = "unavailable" if why_not == NO_NGINX else "skipped"
        summary.update(status=status, reason=why_not)
    else:
        seconds = int(min(CALIBRATION_S, max(1.0, matrix.duration_s)))
        ceiling = replace(matrix, duration_s=float(seconds))
        version = None if remote else nginx_version()
        record = measure_ceiling(store.root, ceiling, when, host_for, version)
        summary.update(
            status=record.get("status"),
            reason=record.get("reason"),
            requests_per_sec=record.get("requests_per_sec"),
            wrk_cpu_pct_mean=record.get("wrk_cpu_pct_mean"),
            file=f"calibration.{when}.json",
        )
    kept = [c for c in store.read_run().calibrations if c.get("when") != when]
    store.write_run(replace(store.read_run(), calibrations=(*kept, summary)))
    console.print(_line(summary))
    return summary


def _line(summary: dict[str, Any]) -> str:
    when = summary["when"]
    if summary.get("status") == "ok" and summary.get("requests_per_sec"):
        cpu = summary.get("wrk_cpu_pct_mean")
        cpu_text = f", wrk at {cpu:.0f} % CPU" if isinstance(cpu, int | float) else ""
        rps = summary["requests_per_sec"]
        return f"client ceiling ({when}): wrk drives {rps:,.0f} req/s against nginx{cpu_text}"
    return f"[yellow]client ceiling ({when}): {summary['status']}: {summary.get('reason')}"
