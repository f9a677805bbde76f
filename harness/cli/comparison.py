"""Command-line stage: two runs -> a comparison for programs and pull requests.

In: the tidy tables and run.json records of run A (before) and run B (after). Out: a
JSON document (`to_json`) and plain GitHub-flavoured markdown (`to_markdown`) of the
cell-by-cell comparison of harness.tables.compare — the same ratios and noise rule as
the site's comparison page — and the changes that count: asv's `continuous` rule, a
change larger than `factor` (B/A beyond 1/factor..factor) that is also outside the
noise (the 95 % intervals of A and B do not overlap). `invoke compare` exits 1 when
any such change is a regression.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import pandas as pd

from harness.cli import gfm
from harness.raw.records import RunMeta, read_run
from harness.tables import compare
from harness.tables.summary import GROUP

FORMAT_VERSION = 1  # of to_json(); 1 — first version
DEFAULT_FACTOR = 1.1  # asv continuous's default: a change of more than 10 %
METRIC_NAMES = {"requests_per_sec": "throughput (req/s)", "latency_p99_ms": "p99 latency (ms)"}
LONG_VALUE = 120  # differing run.json values longer than this are cut in markdown


@dataclass(frozen=True)
class Comparison:
    a: RunMeta
    b: RunMeta
    factor: float
    cells: pd.DataFrame  # harness.tables.compare.compare_cells
    only_a: list[dict[str, Any]]
    only_b: list[dict[str, Any]]
    diff: list[dict[str, Any]]

    def changes(self, kind: str) -> list[dict[str, Any]]:
        """Every (cell, metric) whose change counts: `kind` regression or improvement."""
        out = []
        for row in _records(self.cells):
            for metric in compare.METRICS:
                if beyond(row, metric, self.factor) == kind:
                    out.append({**{k: row[k] for k in GROUP}, "metric": metric,
                                "ratio": row[f"{metric}_ratio"]})  # fmt: skip
        return out


def beyond(row: Mapping[str, Any], metric: str, factor: float) -> str | None:
    """`regression` or `improvement` when the cell's change is outside the noise and
    beyond `factor` either way; None otherwise."""
    verdict, ratio = row.get(f"{metric}_verdict"), row.get(f"{metric}_ratio")
    if verdict not in ("regression", "improvement") or not _finite(ratio):
        return None
    return str(verdict) if max(ratio, 1 / ratio) > factor else None


def _finite(x: Any) -> TypeGuard[float]:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def compare_runs(run_a: Path, run_b: Path, factor: float = DEFAULT_FACTOR) -> Comparison:
    """Compare the runs in the folders `run_a` (before) and `run_b` (after)."""
    from harness.tables.dataset import load_runs

    a, b = load_runs(run_a), load_runs(run_b)
    meta_a, meta_b = read_run(run_a / "run.json"), read_run(run_b / "run.json")
    return Comparison(
        meta_a, meta_b, factor, compare.compare_cells(a, b), compare.only_in(a, b),
        compare.only_in(b, a), compare.metadata_diff(meta_a.to_json(), meta_b.to_json()),
    )  # fmt: skip


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and missing become null, numpy scalars plain numbers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        return _plain(value.item())
    return value


def _side(meta: RunMeta) -> dict[str, Any]:
    return {
        "run_id": meta.run_id, "profile": meta.profile, "status": meta.status,
        "started_at": meta.started_at, "host": meta.host.get("hostname"),
    }  # fmt: skip


def to_json(c: Comparison) -> dict[str, Any]:
    cells = []
    for row in _records(c.cells):
        cell: dict[str, Any] = {k: _plain(row[k]) for k in GROUP}
        for metric in compare.METRICS:
            prefix = f"{metric}_"
            cell[metric] = {
                k.removeprefix(prefix): _plain(v) for k, v in row.items() if k.startswith(prefix)
            } | {"beyond_factor": beyond(row, metric, c.factor)}
        cells.append(cell)
    return {
        "format_version": FORMAT_VERSION,
        "kind": "comparison",
        "a": _side(c.a),
        "b": _side(c.b),
        "factor": c.factor,
        "rule": "ratio = B's mean over A's; a change counts when the 95 % intervals of A "
        "and B do not overlap and the ratio is beyond the factor either way (asv continuous)",
        "regressions": [{k: _plain(v) for k, v in r.items()} for r in c.changes("regression")],
        "improvements": [{k: _plain(v) for k, v in r.items()} for r in c.changes("improvement")],
        "tally": compare.tally(c.cells),
        "cells": cells,
        "only_a": c.only_a,
        "only_b": c.only_b,
        "metadata_diff": c.diff,
    }


def _ratio(value: Any) -> str:
    return f"{value:.3f} ({(value - 1) * 100:+.1f} %)" if _finite(value) else "—"


def _num(value: Any, digits: int = 0) -> str:
    return (
        f"{value:,.{digits}f}" if isinstance(value, int | float) and math.isfinite(value) else "—"
    )


def _cell_name(r: Mapping[str, Any]) -> str:
    return f"{gfm.code(r['server'])} / {gfm.code(r['app'])} / {r['workload']}, c={r['connections']}"


def _cut(value: Any) -> str:
    text = "(absent)" if value is None else str(value)
    return text if len(text) <= LONG_VALUE else text[: LONG_VALUE - 1] + "…"


def to_markdown(c: Comparison) -> str:
    """The comparison as GitHub-flavoured markdown: no HTML, no entities."""
    regressions, improvements = c.changes("regression"), c.changes("improvement")
    out = [
        f"## {gfm.code(c.b.run_id)} compared with {gfm.code(c.a.run_id)}",
        "",
        f"{len(c.cells)} cells measured in both runs; {len(c.only_a)} only in A, "
        f"{len(c.only_b)} only in B. Ratios are B over A. A change counts when it is "
        f"beyond ×{c.factor:g} either way and the 95 % intervals of A and B do not overlap.",
        "",
    ]
    out += gfm.table(
        ["", "Regressions", "Improvements", "Within noise", "Noise unknown"],
        [
            [METRIC_NAMES[m], str(len([r for r in regressions if r["metric"] == m])),
             str(len([r for r in improvements if r["metric"] == m])),
             str(t["within noise"]), str(t["noise unknown"])]
            for m, t in compare.tally(c.cells).items()
        ],
        align="lrrrr",
    )  # fmt: skip
    for title, found in (("Regressions", regressions), ("Improvements", improvements)):
        out += ["", f"### {title} beyond ×{c.factor:g}", ""]
        out += [
            f"- {_cell_name(r)}: {METRIC_NAMES[r['metric']]} {_ratio(r['ratio'])}" for r in found
        ]
        if not found:
            out.append("None.")
    out += ["", "### Every cell", ""]
    out += gfm.table(
        ["Cell", "req/s A", "req/s B", "ratio", "", "p99 ms A", "p99 ms B", "ratio", ""],
        [
            [_cell_name(r), _num(r.get("requests_per_sec_mean_a")),
             _num(r.get("requests_per_sec_mean_b")), _ratio(r.get("requests_per_sec_ratio")),
             str(r.get("requests_per_sec_verdict")), _num(r.get("latency_p99_ms_mean_a"), 2),
             _num(r.get("latency_p99_ms_mean_b"), 2), _ratio(r.get("latency_p99_ms_ratio")),
             str(r.get("latency_p99_ms_verdict"))]
            for r in _records(c.cells)
        ],
        align="lrrrlrrrl",
    )  # fmt: skip
    if c.diff:
        out += ["", "### What differs between the two runs", ""]
        out += gfm.table(
            ["Field", "A", "B"],
            [[gfm.code(d["field"]), _cut(d["a"]), _cut(d["b"])] for d in c.diff],
        )
    return "\n".join(out) + "\n"
