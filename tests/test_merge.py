"""Merging several wrk clients' Lua reports: sums, common interval, percentiles from the
merged histogram (never averaged), pooled mean and stdev."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from harness.bench.merge import ERROR_KEYS, MergeError, histogram_percentile, merge_reports

FIXTURE = Path(__file__).parent / "fixtures" / "wrk" / "wrk410-with-report-lua.lua.json"


def report(samples: list[int], duration_us: int, errors: dict[str, int] | None = None) -> dict:
    """A report as report.lua writes it, from exact latency samples (buckets = values)."""
    hist: dict[int, int] = {}
    for v in samples:
        hist[v] = hist.get(v, 0) + 1
    return {
        "duration_us": duration_us,
        "requests": len(samples),
        "bytes": 100 * len(samples),
        "errors": {**dict.fromkeys(ERROR_KEYS, 0), **(errors or {})},
        "latency_us": {
            "min": min(samples),
            "max": max(samples),
            "mean": statistics.fmean(samples),
            "stdev": statistics.stdev(samples),
            "percentiles": {"50": 0, "99": 0},
        },
        "requests_per_thread_sec": {"min": 10, "max": 30, "mean": 20, "stdev": 5},
        "latency_histogram_us": [[k, hist[k]] for k in sorted(hist)],
    }


def test_counts_and_errors_are_summed_over_the_common_interval() -> None:
    a = report([100, 200, 300], 1_000_000, {"read": 2, "timeout": 1})
    b = report([400, 500], 1_010_000, {"read": 3, "status": 7})
    m = merge_reports([a, b])
    assert (m["requests"], m["bytes"]) == (5, 500)
    assert m["errors"] == {"connect": 0, "read": 5, "write": 0, "status": 7, "timeout": 1}
    assert m["duration_us"] == 1_010_000  # the longest client's: every request lies inside
    assert m["merged"] == {
        "clients": 2,
        "duration_us": [1_000_000, 1_010_000],
        "requests": [3, 2],
        "latency_samples": [3, 2],
    }


def test_percentiles_come_from_the_merged_histogram_not_an_average() -> None:
    fast = report([100] * 99 + [110], 1_000_000)
    slow = report([10_000] * 10, 1_000_000)
    m = merge_reports([fast, slow])
    # 110 samples: p50 is a fast one, p99 a slow one. Averaging the two clients'
    # p99 (110 and 10000) would give 5055, a latency nobody saw.
    assert m["latency_us"]["percentiles"] == {"50": 100, "99": 10_000}
    assert (m["latency_us"]["min"], m["latency_us"]["max"]) == (100, 10_000)


def test_mean_and_stdev_are_pooled_exactly() -> None:
    xs, ys = [100, 250, 400, 410], [900, 1000, 1300]
    m = merge_reports([report(xs, 1), report(ys, 1)])
    assert m["latency_us"]["mean"] == pytest.approx(statistics.fmean(xs + ys))
    assert m["latency_us"]["stdev"] == pytest.approx(statistics.stdev(xs + ys))


def test_one_real_report_keeps_its_figures_and_percentiles_within_one_bucket() -> None:
    real = json.loads(FIXTURE.read_text())
    m = merge_reports([real])
    assert m["requests"] == real["requests"] and m["bytes"] == real["bytes"]
    for key, exact in real["latency_us"]["percentiles"].items():
        got = m["latency_us"]["percentiles"][key]
        assert exact * 0.99 <= got <= exact, key  # a bucket's lower bound, ~1 % wide
    assert m["latency_us"]["mean"] == pytest.approx(real["latency_us"]["mean"])
    assert m["latency_us"]["stdev"] == pytest.approx(real["latency_us"]["stdev"])


def test_a_client_without_samples_does_not_spoil_min_and_max() -> None:
    empty = report([1, 2], 1_000_000)
    empty.update(requests=0, bytes=0, latency_histogram_us=[])
    empty["latency_us"].update(min=2**64, max=0)  # wrk's empty statistics
    m = merge_reports([report([300, 500], 1_000_000), empty])
    assert (m["latency_us"]["min"], m["latency_us"]["max"]) == (300, 500)
    assert m["requests_per_thread_sec"]["stdev"] is None  # counts unknown: not measured


def test_wrk_rank_rule() -> None:
    hist = [[10, 1], [20, 1], [30, 1], [40, 1]]
    # rank = C round(p / 100 * 4 + 0.5): 2, 3, 4 — halves round up, unlike Python's round.
    assert [histogram_percentile(hist, p) for p in (25, 50, 75)] == [20, 30, 40]
    assert histogram_percentile(hist, 100) == 40  # wrk would say 0 (rank 5 > count)
    assert histogram_percentile([], 50) is None
    assert math.isclose(histogram_percentile([[5, 3]], 99.99) or 0, 5)


def test_a_report_without_histogram_is_refused() -> None:
    with pytest.raises(MergeError, match="client 2: report has no latency_histogram_us"):
        merge_reports([report([1, 2], 1), {"requests": 1, "bytes": 1}])
