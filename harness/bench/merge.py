"""Bench side: merge the Lua reports of several wrk clients that loaded one cell together.

`merge_reports([report, …]) -> report` takes the `.lua.json` objects of clients that
started at the same moment against the same server (docs/raw-format.md) and returns
one object of the same shape, so that whatever reads a single client's report reads
the merged one unchanged. Pure: no I/O.

- requests, bytes and every error counter: summed;
- `duration_us`: the common interval, the longest client's (the clients start together
  and each counts only inside its own run), so requests / duration_us is the summed
  throughput over the interval in which every counted request happened;
- latency percentiles: recomputed from the merged `latency_histogram_us` with wrk's own
  rank rule (never an average of percentiles), so they are exact to one bucket (about
  1 %: the bucket's lower bound, never below the minimum); min and max are exact; mean
  and stdev are pooled from each client's mean, stdev and sample count;
- `requests_per_thread_sec`: min and max exact, mean the mean of the clients' means
  (equal threads per client), stdev `null` (the sample counts are not reported).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

ERROR_KEYS = ("connect", "read", "write", "status", "timeout")
PCTS = ("50", "75", "90", "99", "99.9", "99.99")  # report.lua's keys


class MergeError(ValueError):
    """A report lacks what merging needs (most likely written by an older reporter)."""


def histogram_percentile(hist: Sequence[Sequence[int]], p: float) -> int | None:
    """wrk's stats_percentile over buckets: the first whose cumulative count >= rank."""
    total = sum(n for _, n in hist)
    if total == 0:
        return None
    # wrk: rank = round(p / 100 * count + 0.5) with C's round (halves away from zero).
    rank = max(1, math.floor(p / 100.0 * total + 0.5 + 0.5))
    seen = 0
    for lower, n in hist:
        seen += n
        if seen >= rank:
            return int(lower)
    return int(hist[-1][0])


def _clamp(value: int | None, lowest: Any) -> int | None:
    # A bucket's lower bound can lie below the smallest latency seen; never report that.
    return None if value is None else max(value, int(lowest or 0))


def merge_histograms(hists: Sequence[Sequence[Sequence[int]]]) -> list[list[int]]:
    counts: dict[int, int] = {}
    for hist in hists:
        for lower, n in hist:
            counts[int(lower)] = counts.get(int(lower), 0) + int(n)
    return [[lower, counts[lower]] for lower in sorted(counts)]


def _pooled(parts: list[tuple[int, float, float]]) -> tuple[float | None, float | None]:
    """Mean and sample stdev of the union of groups given as (count, mean, stdev)."""
    total = sum(n for n, _, _ in parts)
    if total == 0:
        return None, None
    mean = sum(n * m for n, m, _ in parts) / total
    if total < 2:
        return mean, 0.0
    # wrk's stdev is the sample one (n - 1): undo it per group, add the between-group part.
    ss = sum((n - 1) * s * s + n * (m - mean) ** 2 for n, m, s in parts if n > 0)
    return mean, math.sqrt(ss / (total - 1))


def _pick(values: list[Any], how: Callable[[list[Any]], Any]) -> Any:
    present = [v for v in values if v is not None]
    return how(present) if present else None


def _mean(values: list[Any]) -> float:
    return float(sum(values)) / len(values)


def merge_reports(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One report for all clients (see the module docstring for each field's rule)."""
    if not reports:
        raise MergeError("no reports to merge")
    for i, r in enumerate(reports, 1):
        if "latency_histogram_us" not in r:
            raise MergeError(f"client {i}: report has no latency_histogram_us")
    hist = merge_histograms([r["latency_histogram_us"] for r in reports])
    counts = [sum(n for _, n in r["latency_histogram_us"]) for r in reports]
    # A client without latency samples reports wrk's empty-stats min/max: leave it out.
    lat = [r.get("latency_us") or {} for r, n in zip(reports, counts, strict=True) if n]
    mean, stdev = _pooled(
        [
            (n, float(x.get("mean") or 0), float(x.get("stdev") or 0))
            for n, x in zip([n for n in counts if n], lat, strict=True)
        ]
    )
    lowest = _pick([x.get("min") for x in lat], min)
    keys = list((reports[0].get("latency_us") or {}).get("percentiles") or {}) or list(PCTS)
    threads = [r.get("requests_per_thread_sec") or {} for r in reports]
    errors = {k: sum(int((r.get("errors") or {}).get(k) or 0) for r in reports) for k in ERROR_KEYS}
    return {
        "duration_us": _pick([r.get("duration_us") for r in reports], max),
        "requests": sum(int(r["requests"]) for r in reports),
        "bytes": sum(int(r["bytes"]) for r in reports),
        "errors": errors,
        "latency_us": {
            "min": lowest,
            "max": _pick([x.get("max") for x in lat], max),
            "mean": mean,
            "stdev": stdev,
            "percentiles": {k: _clamp(histogram_percentile(hist, float(k)), lowest) for k in keys},
        },
        "requests_per_thread_sec": {
            "min": _pick([t.get("min") for t in threads], min),
            "max": _pick([t.get("max") for t in threads], max),
            "mean": _pick([t.get("mean") for t in threads], _mean),
            "stdev": None,
        },
        "latency_histogram_us": hist,
        "merged": {
            "clients": len(reports),
            "duration_us": [r.get("duration_us") for r in reports],
            "requests": [r.get("requests") for r in reports],
            "latency_samples": counts,
        },
    }
