"""Table stage: open-loop rows -> latency against offered load, and where it breaks away.

`curves(df)` takes the tidy table (any rows; only `loop == "open"` ones are used) and
returns one row per open-loop cell (run, server, app, workload, connections, rate): the
mean offered and achieved rate over its ok repeats, the offered rate as a share of the
closed-loop cell's req/s, the mean corrected p50 / p99 / p99.9 with the 95 % interval of
each mean (harness/tables/intervals.py), the uncorrected p99 and how many repeats.
`knees(curves)` finds, per curve (the cells of one server, app, workload and
connections, ordered by offered rate), the knee: the first offered load where the mean
p99 exceeds KNEE_FACTOR times its value at the lowest load measured. Pure: no I/O, no
drawing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.tables.intervals import ci_bounds

# The knee: where p99 first exceeds this many times its low-load value. Ten times is
# far outside the noise of a p99 here (run-to-run spread 6–25 %) and is where a user
# notices: a 1 ms page becomes a 10 ms one.
KNEE_FACTOR = 10.0
CURVE_KEYS = ["run_id", "server", "app", "workload", "connections"]
CELL_KEYS = [*CURVE_KEYS, "rate"]
LEVELS = {"p50": "latency_p50_ms", "p99": "latency_p99_ms", "p99_9": "latency_p99_9_ms"}


def open_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The open-loop rows of the table (none for runs without `--rates`)."""
    return df[df["loop"] == "open"] if "loop" in df else df.iloc[0:0]


def closed_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The closed-loop rows: what every page but the latency-against-load one reads."""
    return df[df["loop"] != "open"] if "loop" in df else df


def curves(df: pd.DataFrame) -> pd.DataFrame:
    """One row per open-loop cell with the means (and intervals) of its ok repeats."""
    ok = open_rows(df)
    ok = ok[ok["status"] == "ok"]
    columns = [*CELL_KEYS, "offered_rate_rps", "offered_pct", "achieved_rate_rps", "n"]
    columns += [f"{k}_{end}" for k in LEVELS for end in ("mean", "low", "high")]
    columns += ["uncorrected_p99_mean", "flags"]
    if ok.empty:
        return pd.DataFrame(columns=columns)
    metrics = {
        "offered_rate_rps": "offered_rate_rps",
        "offered_pct": "offered_pct",
        "achieved_rate_rps": "achieved_rate_rps",
        "uncorrected_p99_mean": "latency_uncorrected_p99_ms",
        **{f"{k}_mean": col for k, col in LEVELS.items()},
    }
    values = pd.DataFrame(
        {
            name: pd.to_numeric(ok[col], errors="coerce").astype("float64")
            for name, col in metrics.items()
        }
    )
    keys = [ok[k].astype(object) for k in CELL_KEYS]
    by = values.groupby(keys, dropna=False, sort=True)
    out = by.mean()
    out["n"] = by["p99_mean"].count()
    for k in LEVELS:
        sd = by[f"{k}_mean"].std()
        n = by[f"{k}_mean"].count()
        low, high = ci_bounds(out[f"{k}_mean"], sd, n)
        out[f"{k}_low"] = np.where(n >= 2, low, np.nan)
        out[f"{k}_high"] = np.where(n >= 2, high, np.nan)
    flags = ok["flags"].astype(object).fillna("").groupby(keys, dropna=False, sort=True)
    out["flags"] = flags.agg(
        lambda s: ";".join(sorted({f for x in s for f in str(x).split(";") if f}))
    )
    out = out.reset_index()
    out.columns = [*CELL_KEYS, *out.columns[len(CELL_KEYS) :]]
    return out.sort_values([*CURVE_KEYS, "offered_rate_rps"], kind="stable", ignore_index=True)[
        columns
    ]


def knee_of(points: pd.DataFrame, factor: float = KNEE_FACTOR) -> dict[str, Any]:
    """The knee of one curve (its rows ordered by offered rate): the low-load p99, the
    first point whose p99 exceeds `factor` times it (None: none does), and the largest
    ratio reached. Points without a p99 are skipped."""
    pts = points[points["p99_mean"].notna()].sort_values("offered_rate_rps", kind="stable")
    out: dict[str, Any] = {"points": len(pts), "base": None, "knee": None, "ratio_max": None}
    if len(pts) < 2:
        return out
    first = pts.iloc[0]
    base = float(first["p99_mean"])
    out["base"] = _point(first)
    if base <= 0:
        return out
    ratios = pts["p99_mean"].astype(float) / base
    out["ratio_max"] = float(ratios.max())
    above = pts[ratios > factor]
    if len(above):
        knee = above.iloc[0]
        out["knee"] = {**_point(knee), "ratio": float(knee["p99_mean"]) / base}
    return out


def _point(row: pd.Series) -> dict[str, Any]:
    pct = row["offered_pct"]
    return {
        "rate": row["rate"],
        "offered_rate_rps": float(row["offered_rate_rps"]),
        "offered_pct": None if pd.isna(pct) else float(pct),
        "p99_ms": float(row["p99_mean"]),
    }


def knees(table: pd.DataFrame, factor: float = KNEE_FACTOR) -> list[dict[str, Any]]:
    """`knee_of` for every curve of `curves(...)`, with its keys, in the table's order."""
    out = []
    for key, points in table.groupby(CURVE_KEYS, sort=True):
        out.append({**dict(zip(CURVE_KEYS, key, strict=True)), **knee_of(points, factor)})
    return out


def knee_sentence(k: dict[str, Any], factor: float = KNEE_FACTOR) -> str:
    """The knee in words, e.g. `p99 0.42 ms at 2,500 req/s (25 %); first above 10× at
    9,000 req/s (90 %): 12 ms, 29× the low-load value`."""

    def at(p: dict[str, Any]) -> str:
        pct = (
            f" ({p['offered_pct']:.0f} % of its closed-loop maximum)"
            if p.get("offered_pct")
            else ""
        )
        return f"{p['offered_rate_rps']:,.0f} req/s{pct}"

    base = k.get("base")
    if base is None:
        return "one offered load only: no curve to find a knee on"
    head = f"p99 {base['p99_ms']:.3g} ms at {at(base)}"
    knee = k.get("knee")
    if knee is None:
        return (
            f"{head}; no knee: p99 stays within {factor:g}× of that up to the highest load "
            f"measured (at most {k['ratio_max']:.1f}×)"
        )
    return (
        f"{head}; the knee is at {at(knee)}, where p99 first exceeds {factor:g}× that: "
        f"{knee['p99_ms']:.3g} ms, {knee['ratio']:.0f}× the low-load value"
    )
