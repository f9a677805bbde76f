"""Table stage: the tidy tables of two runs -> a run-to-run comparison (pandas only).

`compare_cells` pairs every cell measured in both runs (same server, app, workload and
connections) and gives, for throughput and p99 latency, the ratio of the means (B over
A), how many ok repeats each side had, and whether the difference is within the noise:
the 95 % confidence intervals of the two means overlap — the same intervals every page
shows (harness/matrix/precision.py). With fewer than two ok repeats on either side there
is no interval: the noise is unknown and no difference is called either way.
`metadata_diff` lists what differs between the two run sidecars. Nothing here renders,
draws or touches the disk.

Why no p-value: with n repeats per side, an exact two-sided Mann-Whitney test cannot
go below 2 / C(2n, n): 0.10 for n = 3. `min_rank_p` computes that floor so the page can
say in words why three repeats cannot call a difference significant.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from harness.matrix.precision import interval
from harness.tables.loadcurve import closed_rows
from harness.tables.summary import GROUP, ok_rows

# Throughput: higher is better; p99 latency: lower is better.
METRICS = {"requests_per_sec": 1, "latency_p99_ms": -1}
# Sidecar fields that differ between any two runs by design (identity and timing).
ALWAYS_DIFFERENT = {"run_id", "started_at", "ended_at", "cells_planned", "format_version"}


def min_rank_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p-value an exact Mann-Whitney test can reach: 2 / C(n_a+n_b, n_a)."""
    if n_a < 1 or n_b < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))


def _verdict(values_a: np.ndarray, values_b: np.ndarray, better: int) -> dict[str, Any]:
    """Ratio, ranges, intervals and the noise verdict of one metric of one cell."""
    out: dict[str, Any] = {"n_a": len(values_a), "n_b": len(values_b)}
    if not len(values_a) or not len(values_b):
        return {**out, "ratio": None, "verdict": "not comparable", "method": "none"}
    mean_a, mean_b = float(values_a.mean()), float(values_b.mean())
    out.update(mean_a=mean_a, mean_b=mean_b, min_a=float(values_a.min()))
    out.update(max_a=float(values_a.max()), min_b=float(values_b.min()))
    out["max_b"] = float(values_b.max())
    out["ratio"] = mean_b / mean_a if mean_a else None
    ia, ib = interval(list(values_a)), interval(list(values_b))
    out.update(ci_low_a=ia.low, ci_high_a=ia.high, ci_low_b=ib.low, ci_high_b=ib.high)
    if ia.low is None or ib.low is None:
        # Fewer than two repeats on a side: no interval to hold a difference against, so
        # none is called a regression or an improvement; the ratio is still shown.
        return {**out, "method": "too few repeats", "verdict": "noise unknown"}
    out["method"] = "95 % intervals"
    if ia.overlaps(ib) or out["ratio"] is None:
        out["verdict"] = "within noise"
    else:
        improved = (out["ratio"] > 1) == (better > 0)
        out["verdict"] = "improvement" if improved else "regression"
    return out


def compare_cells(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """One row per cell present in both tables: for each metric m, `m_ratio`,
    `m_verdict` (within noise, improvement, regression, noise unknown, not comparable),
    `m_method`, the means, ranges, intervals and numbers of ok repeats on each side.
    """
    a, b = closed_rows(a), closed_rows(b)  # open-loop cells offer rates: not compared here
    ok_a, ok_b = ok_rows(a), ok_rows(b)
    keys_a = set(map(tuple, a[GROUP].drop_duplicates().itertuples(index=False)))
    keys_b = set(map(tuple, b[GROUP].drop_duplicates().itertuples(index=False)))
    groups_a = {k: g for k, g in ok_a.groupby(GROUP, sort=False)}
    groups_b = {k: g for k, g in ok_b.groupby(GROUP, sort=False)}
    empty = ok_a.iloc[0:0]
    rows = []
    for key in sorted(keys_a & keys_b):
        ga, gb = groups_a.get(key, empty), groups_b.get(key, empty)
        row: dict[str, Any] = dict(zip(GROUP, key, strict=True))
        for metric, better in METRICS.items():
            va = ga[metric].dropna().to_numpy(dtype=float)
            vb = gb[metric].dropna().to_numpy(dtype=float)
            row.update({f"{metric}_{k}": v for k, v in _verdict(va, vb, better).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def only_in(a: pd.DataFrame, b: pd.DataFrame) -> list[dict[str, Any]]:
    """Cells of `a` that `b` did not measure at all (as GROUP dicts, sorted)."""
    a, b = closed_rows(a), closed_rows(b)
    keys_b = set(map(tuple, b[GROUP].drop_duplicates().itertuples(index=False)))
    keys_a = sorted(set(map(tuple, a[GROUP].drop_duplicates().itertuples(index=False))))
    return [dict(zip(GROUP, k, strict=True)) for k in keys_a if k not in keys_b]


def tally(cells: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per metric: how many cells are regressions, improvements, within noise."""
    kinds = ("regression", "improvement", "within noise", "noise unknown", "not comparable")
    return {
        m: {k: int((cells[f"{m}_verdict"] == k).sum()) if len(cells) else 0 for k in kinds}
        for m in METRICS
    }


def _flatten(doc: Any, prefix: str = "") -> dict[str, str]:
    """Nested sidecar fields as `a.b.c` -> JSON text (lists stay whole: a matrix axis)."""
    if isinstance(doc, Mapping):
        out: dict[str, str] = {}
        for k, v in doc.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): doc if isinstance(doc, str) else json.dumps(doc)}


def metadata_diff(run_a: Mapping[str, Any], run_b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every sidecar field whose value differs: versions, host, settings, git, argv, …

    Fields that differ by design (ids, times, the list of planned cells) are left out,
    and so are the servers' long setting explanations when they are equal.
    """
    fa = {k: v for k, v in _flatten(run_a).items() if k.split(".")[0] not in ALWAYS_DIFFERENT}
    fb = {k: v for k, v in _flatten(run_b).items() if k.split(".")[0] not in ALWAYS_DIFFERENT}
    return [
        {"field": k, "a": fa.get(k), "b": fb.get(k)}
        for k in sorted(fa.keys() | fb.keys())
        if fa.get(k) != fb.get(k)
    ]


def matrix_shape(run: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two runs comparable cell for cell: profile and the matrix's axes."""
    s = run.get("settings") or {}
    axes = ("servers", "apps", "workloads", "connections")
    return (run.get("profile"), *(tuple(s.get(k) or ()) for k in axes))


def latest_pair(runs: list[Mapping[str, Any]]) -> tuple[str, str] | None:
    """The newest complete run and the newest older complete run of the same shape."""
    complete = sorted(
        (r for r in runs if r.get("status") == "complete"),
        key=lambda r: str(r["run_id"]),
        reverse=True,
    )
    if not complete:
        return None
    newest = complete[0]
    for older in complete[1:]:
        if matrix_shape(older) == matrix_shape(newest):
            return str(older["run_id"]), str(newest["run_id"])
    return None
