"""Bench stage: the client ceiling of every run — wrk against nginx, at its start and end.

A cell near what wrk can drive at all measured the client, not the server. nginx
answers far faster than any WSGI server, so wrk's req/s against it, pinned and loaded
like the run's cells (its highest connection count, its threads and CPUs), is that
ceiling (harness/bench/calibrate.py). Measuring it at both ends of the run also shows
how much the machine drifted meanwhile. Each measurement is kept as
`calibration.<when>.json` beside its wrk output and summarised in run.json's
`calibrations`; `--no-calibrate`, a missing nginx or a failed measurement are recorded
there too, with the reason, so a page can say why a run has no ceiling.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from typing import Any

from rich.console import Console

from harness.bench.calibrate import NGINX, CalibrationError, calibrate
from harness.matrix.model import Matrix
from harness.raw.store import RunStore, utc_now

CALIBRATION_S = 3  # long enough for a stable req/s, short beside a run
NO_NGINX = (
    "nginx is not installed here (apt-get install nginx-light): no client ceiling, so "
    "client_saturated is judged from wrk's CPU alone"
)
REMOTE = (
    "server or wrk on other hosts: the ceiling would have to be measured from the client "
    "hosts through the network (invoke calibrate measures this machine only)"
)


def will_calibrate(matrix: Matrix, remote: bool) -> str | None:
    """None when the run will measure its client ceiling, else why not."""
    if not matrix.calibrate:
        return "--no-calibrate"
    if remote:
        return REMOTE
    if shutil.which(NGINX) is None:
        return NO_NGINX
    return None


def measure(
    store: RunStore, matrix: Matrix, when: str, remote: bool, console: Console
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
        path = store.root / f"calibration.{when}.json"
        try:
            record = calibrate(
                path,
                connections=max(matrix.connections),
                duration_s=int(min(CALIBRATION_S, max(1.0, matrix.duration_s))),
                threads=matrix.threads,
                client_cpus=matrix.client_cpus,
                server_cpus=matrix.server_cpus,
                when=when,
            )
        except CalibrationError as e:
            summary.update(status="failed", reason=str(e))
        else:
            summary.update(
                status=record.get("status"),
                reason=record.get("reason"),
                requests_per_sec=record.get("requests_per_sec"),
                wrk_cpu_pct_mean=record.get("wrk_cpu_pct_mean"),
                file=path.name,
            )
    kept = [c for c in store.read_run().calibrations if c.get("when") != when]
    store.write_run(replace(store.read_run(), calibrations=(*kept, summary)))
    console.print(_line(summary))
    return summary


def _line(summary: dict[str, Any]) -> str:
    when = summary["when"]
    if summary.get("status") == "ok":
        cpu = summary.get("wrk_cpu_pct_mean")
        cpu_text = f", wrk at {cpu:.0f} % CPU" if isinstance(cpu, int | float) else ""
        rps = summary["requests_per_sec"]
        return f"client ceiling ({when}): wrk drives {rps:,.0f} req/s against nginx{cpu_text}"
    return f"[yellow]client ceiling ({when}): {summary['status']}: {summary.get('reason')}"
