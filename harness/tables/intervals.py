"""Table stage: each cell's figures with their uncertainty, over its ok repeats.

`add_intervals(df)` gives every row of the tidy table the statistics of its cell (run,
server, app, workload, connections) over the cell's ok repeats: how many there are
(`repeats_ok`), the 95 % confidence interval of the mean req/s and of the mean p50 and
p99 latency (Student's t, harness/matrix/precision.py says why), the coefficient of
variation of req/s, and the interval's half-width as a share of the mean (the
precision reached, `requests_per_sec_ci_rel`). With one ok repeat the interval is
empty (NaN): the noise is unknown. `interval_of` is the same computation for one list
of values, so pages, rankings and comparisons use one definition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from harness.matrix.precision import Interval, interval, t_critical

# An open-loop cell is its closed-loop cell's keys and its offered rate (None: closed).
CELL_KEYS = ["run_id", "server", "app", "workload", "connections", "rate"]
# Metric -> the prefix of its interval columns.
INTERVAL_METRICS = ("requests_per_sec", "latency_p50_ms", "latency_p99_ms")
COLUMNS = [
    "repeats_ok",
    *[f"{m}_ci_{end}" for m in INTERVAL_METRICS for end in ("low", "high")],
    "requests_per_sec_cv",
    "requests_per_sec_ci_rel",
]


def interval_of(values: pd.Series | list[float]) -> Interval:
    return interval(list(pd.to_numeric(pd.Series(values), errors="coerce").dropna()))


def half_width(sd: ArrayLike, n: ArrayLike) -> np.ndarray:
    """t(0.975, n−1)·s/√n for each (s, n), vectorised; NaN where n < 2."""
    n_arr = np.asarray(n, dtype="float64")
    dof = np.where(n_arr >= 2, n_arr - 1, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(t_critical(dof) * np.asarray(sd, "float64") / np.sqrt(n_arr))


def ci_bounds(mean: ArrayLike, sd: ArrayLike, n: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The 95 % interval of means of non-negative figures (req/s, latency): mean ∓ the
    half-width, the lower end no lower than 0 (a mean of such figures cannot be); NaN
    where n < 2."""
    m = np.asarray(mean, dtype="float64")
    half = half_width(sd, n)
    return np.maximum(m - half, 0.0), m + half


def add_intervals(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with the columns of COLUMNS filled on every row from its cell's ok repeats."""
    out = df.copy()
    ok = out["status"] == "ok"
    keys = [out[k] for k in CELL_KEYS]
    out["repeats_ok"] = ok.groupby(keys, dropna=False).transform("sum").astype("Int64")
    for metric in INTERVAL_METRICS:
        # Latency of a cell where no request completed is "not measured", not 0 ms.
        values = pd.to_numeric(out[metric], errors="coerce").astype("float64").where(ok)
        if metric != "requests_per_sec":
            values = values.where(pd.to_numeric(out["requests"], errors="coerce") > 0)
        by = values.groupby(keys, dropna=False)
        n, mean, sd = (by.transform(f) for f in ("count", "mean", "std"))
        low, high = ci_bounds(mean, sd, n)
        half = pd.Series(high, index=out.index) - mean
        out[f"{metric}_ci_low"] = pd.Series(low, index=out.index).where(n >= 2)
        out[f"{metric}_ci_high"] = pd.Series(high, index=out.index).where(n >= 2)
        if metric == "requests_per_sec":
            out["requests_per_sec_cv"] = (sd / mean).where((n >= 2) & (mean > 0))
            out["requests_per_sec_ci_rel"] = (half / mean).where((n >= 2) & (mean > 0))
    return out
