"""Server-side latency, quantile stage: PromQL's `histogram_quantile`, exactly.

Takes cumulative buckets `(upper bound, count)` and returns what Prometheus returns,
following `bucketQuantile` in prometheus/prometheus promql/quantile.go step by step,
including its special cases (NaN, ±Inf, the lowest bucket, the +Inf bucket) and its
repairs of inconsistent input (sorting, merging equal bounds, forcing monotonicity).
Pure; docs/server-latency.md explains the method and its limits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

QUANTILES = (0.5, 0.9, 0.99)
# promql/quantile.go: relative differences this small between neighbouring cumulative
# counts are float noise (e.g. from rate()), not decreases; Prometheus flattens them.
PRECISION_TOLERANCE = 1e-12


def bucket_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> tuple[float, bool, bool]:
    """PromQL's bucketQuantile: (value, forced_monotonic, fixed_precision).

    Sort by upper bound, merge equal bounds, flatten float noise, force the cumulative
    counts monotonic, find the first bucket whose cumulative count reaches
    rank = q * total and interpolate linearly inside it (from 0 for the first bucket).
    A rank in the +Inf bucket returns the highest finite bound.
    """
    if math.isnan(q):
        return math.nan, False, False
    if q < 0:
        return -math.inf, False, False
    if q > 1:
        return math.inf, False, False
    bs = [[le, count] for le, count in sorted(buckets, key=lambda b: b[0])]
    if not bs or not math.isinf(bs[-1][0]) or bs[-1][0] < 0:
        return math.nan, False, False
    merged: list[list[float]] = []
    for le, count in bs:
        if merged and merged[-1][0] == le:
            merged[-1][1] += count
        else:
            merged.append([le, count])
    fixed = forced = False
    prev = merged[0][1]
    for b in merged[1:]:
        delta = abs(b[1] - prev)
        if delta == 0:
            continue
        # Go's float division: delta/0 is +Inf, delta/negative is negative (<= tol).
        eps = delta / b[1] if b[1] else math.inf
        if eps <= PRECISION_TOLERANCE:
            b[1], fixed = prev, True
        else:
            prev = b[1]
    top = merged[0][1]
    for b in merged[1:]:
        if b[1] > top:
            top = b[1]
        elif b[1] < top:
            b[1], forced = top, True
    if len(merged) < 2 or merged[-1][1] == 0:
        return math.nan, False, False
    rank = q * merged[-1][1]
    i = next((i for i, b in enumerate(merged[:-1]) if b[1] >= rank), len(merged) - 1)
    if i == len(merged) - 1:
        return merged[-2][0], forced, fixed
    if i == 0 and merged[0][0] <= 0:
        return merged[0][0], forced, fixed
    start, end, count = 0.0, merged[i][0], merged[i][1]
    if i > 0:
        start = merged[i - 1][0]
        count -= merged[i - 1][1]
        rank -= merged[i - 1][1]
    # Go divides 0/0 to NaN (q=0 with an empty first bucket); Python would raise.
    fraction = rank / count if count else math.nan
    return start + (end - start) * fraction, forced, fixed


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float:
    """The value PromQL's `histogram_quantile(q, …)` returns for these buckets."""
    return bucket_quantile(q, buckets)[0]
