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

from harness.matrix.precision import LEVEL, Interval, interval

CELL_KEYS = ["run_id", "server", "app", "workload", "connections"]
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


def _t(n: pd.Series) -> pd.Series:
    """t(0.975, n - 1) for each count (NaN below 2), vectorised: one call per table."""
    from scipy import stats

    dof = n.astype("float64") - 1
    return pd.Series(
        np.where(dof >= 1, stats.t.ppf(0.5 + LEVEL / 2, dof.clip(lower=1)), np.nan),
        index=n.index,
    )


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
        half = _t(n) * sd / np.sqrt(n)
        out[f"{metric}_ci_low"] = (mean - half).where(n >= 2)
        out[f"{metric}_ci_high"] = (mean + half).where(n >= 2)
        if metric == "requests_per_sec":
            out["requests_per_sec_cv"] = (sd / mean).where((n >= 2) & (mean > 0))
            out["requests_per_sec_ci_rel"] = (half / mean).where((n >= 2) & (mean > 0))
    return out
