"""Site stage 3c: cells the server timed (`--server-metrics`) -> client-vs-server pages.

`read_timed_cells(raw_dir, table)` is this stage's only I/O: for every ok cell with
`has_server_metrics` it reads the `.metrics.prom` delta and wrk's side of the cell (the
Lua report, else wrk's printed summary). `plan_latency` is pure: it analyses each cell
with harness/tables/clientserver.py (bucket densities, quantiles in their buckets, difference
of means, Little's law, bimodality) and adds one page per run, a section per cell with
its density chart, and an index page. docs/server-latency.md explains the method.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.figures.specs import DensitySpec
from harness.pages.context import (
    HOME,
    LATENCY,
    OVERHEAD,
    Run,
    SiteError,
    latency_page,
    measured,
    rel,
    slug,
)
from harness.pages.flagview import CellFlags, cell_badges, cell_flags
from harness.pages.runplan import SitePlan
from harness.parse.prometheus import PromHistError, merge_series, parse_histograms
from harness.parse.wrk import RawFormatError, parse_wrk_file
from harness.tables.clientserver import BIMODAL_RULE, CAVEAT, ClientServer, ClientSide, analyse
from harness.tables.flaginfo import LITTLE_HIGH, LITTLE_LOW

# harness/serving/metrics.py; else the file's first histogram
METRIC = "http_request_duration_seconds"


@dataclass(frozen=True)
class TimedCell:
    row: dict[str, Any]  # the cell's row of the tidy table
    metrics_text: str
    client: ClientSide | None


def read_timed_cells(
    raw_dir: Path, table: pd.DataFrame, skipped: list[dict[str, str]] | None = None
) -> list[TimedCell]:
    """The server histogram and wrk's view of every ok cell with server metrics. A cell
    whose files cannot be read raises SiteError, or with `skipped`, is listed there
    ({"path", "error"}) and left out."""
    timed = table[(table["status"] == "ok") & table["has_server_metrics"].fillna(False)]
    cells = []
    for record in timed.to_dict("records"):
        row = {str(k): v for k, v in record.items()}
        path = raw_dir / str(row["metrics_file"])
        try:
            text = path.read_text(encoding="utf-8")
            client = None
            if isinstance(row.get("lua_json_file"), str):
                report = json.loads((raw_dir / row["lua_json_file"]).read_bytes())
                client = ClientSide.from_lua_report(report)
            elif isinstance(row.get("stdout_file"), str):
                client = ClientSide.from_wrk_result(parse_wrk_file(raw_dir / row["stdout_file"]))
        except (OSError, ValueError, KeyError, TypeError, RawFormatError) as e:
            if skipped is None:
                raise SiteError(f"{path}: cannot read the cell's server metrics: {e}") from None
            skipped.append({"path": str(path), "error": f"cannot read the server metrics: {e}"})
            continue
        cells.append(TimedCell(row, text, client))
    return cells


def _analyse(cell: TimedCell, run: Run) -> ClientServer:
    r = cell.row
    try:
        series = parse_histograms(cell.metrics_text, str(r["metrics_file"]))
    except PromHistError as e:
        raise SiteError(str(e)) from None
    names = sorted({s.name for s in series})
    if not names:
        raise SiteError(f"{r['metrics_file']}: no histogram series found")
    name = METRIC if METRIC in names else names[0]
    merged = merge_series([s for s in series if s.name == name], name)
    s = run.get("settings") or {}
    workers, threads = s.get("workers"), s.get("server_threads")
    # An upper bound: servers that ignore the thread setting run one request per worker.
    slots = workers * max(threads or 1, 1) if isinstance(workers, int) and workers else None
    opened = r.get("connections_effective")
    conns = int(opened) if isinstance(opened, int) and opened > 0 else int(r["connections"])
    return analyse(merged, cell.client, conns, slots)


def _ms(x: float | None) -> float | None:
    """Seconds to milliseconds; NaN and infinity are "no value"."""
    return None if x is None or not math.isfinite(x) else x * 1000


def _section(cell: TimedCell, data: ClientServer, page: str, flags: CellFlags) -> dict[str, Any]:
    r = cell.row
    key = (str(r["server"]), str(r["app"]), str(r["workload"]), int(r["connections"]))
    client = data.client
    pcts = client.percentiles_s if client else {}
    quantiles = [
        {
            "name": f"p{q.q * 100:g}",
            "wrk_ms": _ms(pcts.get(f"{q.q * 100:g}")),
            "server_ms": _ms(q.value_s),
            "lower_ms": _ms(q.lower_s),
            "upper_ms": _ms(q.upper_s),
            "open": q.upper_s == math.inf,  # the rank fell in +Inf: only a lower bound
        }
        for q in data.server_quantiles
    ]
    bm = data.bimodality
    little = data.little
    title = f"{key[0]} / {key[1]} / {key[2]} / c={key[3]} / repeat {r['repeat']}"
    return {
        "title": title,
        "anchor": slug(f"{key[0]}-{key[1]}-{key[2]}-c{key[3]}-r{r['repeat']}").lower(),
        "key": key,
        "repeat": int(r["repeat"]),
        "imported": bool(r.get("imported")),
        "badges": cell_badges(flags, page, key),
        "metrics_file": r["metrics_file"],
        "wrk_requests": client.requests if client else None,
        "client_histogram": bool(client and client.histogram_us),
        "server_count": data.server_count,
        "wrk_mean_ms": _ms(client.mean_s) if client else None,
        "server_mean_ms": _ms(data.server_mean_s),
        "quantiles": quantiles,
        "outside_ms": _ms(data.queueing_s),
        "little": None
        if little is None
        else {
            "connections": little.connections,
            "rps": little.throughput_rps,
            "in_flight": little.in_flight,
            "in_handler": little.in_handler,
            "outside": little.outside_handler,
            "holds": little.holds,
        },
        "bimodal": bm.bimodal,
        "modes": "two" if bm.bimodal else "one",
        "little_verdict": "—" if little is None else "holds" if little.holds else "does not hold",
        "valley": [_ms(v) for v in bm.valley] if bm.valley else None,
        "left_peak": [_ms(v) for v in bm.left_peak] if bm.left_peak else None,
        "right_peak": [_ms(v) for v in bm.right_peak] if bm.right_peak else None,
        "left_share": bm.left_share,
        "right_share": bm.right_share,
        "warnings": list(data.warnings),
    }


def plan_latency(
    plan: SitePlan,
    runs: Sequence[Run],
    subject: Run,
    table: pd.DataFrame,
    cells: Sequence[TimedCell],
) -> list[str]:
    """One page per run with timed cells, and the index; returns the run pages."""
    pages, listing = [], []
    for run in runs:
        mine = [c for c in cells if c.row["run_id"] == run["run_id"]]
        if not mine:
            continue
        page = latency_page(run["run_id"])
        flags = cell_flags(table[table["run_id"] == run["run_id"]])
        sections = []
        for cell in mine:
            data = _analyse(cell, run)
            section = _section(cell, data, page, flags)
            name = f"latency-{slug(run['run_id'])}-{section['anchor']}.svg"
            alt = f"Server-side bucket densities with wrk's latencies, {section['title']}"
            section["figure"] = plan.chart(page, DensitySpec(name, alt, data))
            sections.append(section)
            listing.append({**section, "link": f"{rel(LATENCY, page)}#{section['anchor']}"})
        plan.pages[page] = (
            "latency.md.j2",
            {
                "title": f"Client vs server: run {run['run_id']}",
                "m": measured(run, page),
                "home": rel(page, HOME),
                "method": rel(page, "server-latency.md"),
                "overhead": rel(page, OVERHEAD),
                "caveat": CAVEAT,
                "rule": BIMODAL_RULE,
                "little_band": f"{LITTLE_LOW:g}–{LITTLE_HIGH:g}",
                "sections": sections,
            },
        )
        pages.append(page)
    plan.pages[LATENCY] = (
        "latency_index.md.j2",
        {
            "title": "Client vs server",
            "m": measured(subject, LATENCY),
            "home": rel(LATENCY, HOME),
            "method": rel(LATENCY, "server-latency.md"),
            "cells": listing,
        },
    )
    return pages
