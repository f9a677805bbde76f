"""Command-line stage: the runs of a raw directory -> the table `invoke runs` prints.

In: `harness.raw.listing.RunListing`s. Out: one aligned line per run, newest last, with
its id, profile, status, cells finished of planned, host and start time (UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.raw.listing import RunListing

HEADERS = ("run id", "profile", "status", "cells", "host", "started (UTC)")


def _row(r: RunListing) -> tuple[str, ...]:
    started = (r.started_at or "—").replace("T", " ").removesuffix("Z")[:19]
    cells = f"{r.cells_done}/{r.cells_planned}" + (" imported" if r.imported else "")
    return (r.run_id, r.profile or "—", r.status, cells, r.host or "—", started)


def render_runs(runs: Sequence[RunListing], raw: Path) -> str:
    if not runs:
        return f"no runs in {raw}"
    rows = [HEADERS, *map(_row, runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    return "\n".join(lines)
