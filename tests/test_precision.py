"""Intervals, the stopping rule of adaptive repeats, the interleaved order, and ties."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest

from harness.bench.schedule import adaptive_extra, groups, next_round
from harness.matrix.build import expand_cells
from harness.matrix.model import Cell, Matrix
from harness.matrix.precision import interval, needs_more, parse_precision
from harness.tables.ranking import rank_servers
from harness.tables.summary import cell_stats

MATRIX = Matrix(
    profile="t", servers=("a", "b"), apps=("raw",), workloads=("plaintext",),
    connections=(10, 100), repeats=3, duration_s=1.0, warmup_s=0.0, threads=1,
    timeout_s=2.0, workers=1, server_threads=1, precision=0.02, max_repeats=5,
)  # fmt: skip
MATRIX = replace(MATRIX, cells=tuple(expand_cells(MATRIX)))


def test_t_interval_of_known_values() -> None:
    i = interval([10.0, 12.0, 14.0])  # mean 12, s = 2, t(0.975, 2) = 4.3027
    assert i.mean == 12.0 and i.n == 3
    assert i.low == pytest.approx(12 - 4.302653 * 2 / math.sqrt(3), rel=1e-6)
    assert i.half_width_rel == pytest.approx(4.302653 * 2 / math.sqrt(3) / 12, rel=1e-6)
    assert i.cv == pytest.approx(2 / 12)
    one = interval([5.0])
    assert (one.n, one.mean, one.low, one.high, one.half_width_rel) == (1, 5.0, None, None, None)
    assert interval([float("nan"), 3.0]).n == 1  # NaN is "not measured"


def test_stopping_rule_never_before_the_minimum_and_never_past_the_cap() -> None:
    noisy = [100.0, 130.0, 70.0]
    steady = [100.0, 100.5, 99.5, 100.2]
    assert not needs_more(noisy[:2], 0.02, done=2, min_repeats=3, max_repeats=10)  # too soon
    assert needs_more(noisy, 0.02, done=3, min_repeats=3, max_repeats=10)
    assert not needs_more(noisy, 0.02, done=10, min_repeats=3, max_repeats=10)  # capped
    assert not needs_more(steady, 0.02, done=4, min_repeats=3, max_repeats=10)  # within ±2 %
    assert needs_more(steady, 0.001, done=4, min_repeats=3, max_repeats=10)  # ±0.1 % asked
    # Repeats that failed leave no interval: repeating them does not make them precise.
    assert not needs_more([100.0], 0.02, done=3, min_repeats=3, max_repeats=10)


def test_stopping_rule_stops_on_synthetic_samples() -> None:
    """Feeding a stream of values, the rule stops once the interval is within target."""
    stream = [100.0, 104.0, 96.0, 101.0, 99.0, 100.5, 99.5, 100.0, 100.2, 99.8]
    taken = 3
    while needs_more(stream[:taken], 0.02, taken, 3, len(stream)):
        taken += 1
    assert 3 < taken < len(stream)
    assert interval(stream[:taken]).half_width_rel <= 0.02  # type: ignore[operator]
    assert interval(stream[: taken - 1]).half_width_rel > 0.02  # type: ignore[operator]


def test_repeats_are_interleaved_in_a_recorded_order() -> None:
    cells = expand_cells(MATRIX)
    # Every cell once before any cell twice: a machine's slow drift falls on all alike.
    assert [c.repeat for c in cells] == [1] * 4 + [2] * 4 + [3] * 4
    assert [c.key for c in cells[:4]] == [
        "a/raw/plaintext/c10-r1", "a/raw/plaintext/c100-r1",
        "b/raw/plaintext/c10-r1", "b/raw/plaintext/c100-r1",
    ]  # fmt: skip


def test_adaptive_rounds_add_one_repeat_to_the_cells_not_yet_precise() -> None:
    planned = expand_cells(MATRIX)
    values = {g: [100.0, 100.1, 99.9] for g in groups(MATRIX)}
    values[("b", "raw", "plaintext", 10)] = [100.0, 130.0, 70.0]  # still wide
    extra = next_round(MATRIX, planned, values, 1)
    assert extra == [Cell("b", "raw", "plaintext", 10, 4)]
    planned += extra
    values[("b", "raw", "plaintext", 10)].append(101.0)
    assert next_round(MATRIX, planned, values, 2) == [Cell("b", "raw", "plaintext", 10, 5)]
    planned.append(Cell("b", "raw", "plaintext", 10, 5))
    assert next_round(MATRIX, planned, values, 3) == []  # max_repeats reached
    # A resumed run recognises the repeats its rounds added, and refuses foreign cells.
    keys = [c.key for c in planned]
    assert adaptive_extra(MATRIX, keys) == planned[-2:]
    assert adaptive_extra(MATRIX, [*keys, "c/raw/plaintext/c10-r4"]) is None
    assert adaptive_extra(MATRIX, keys[1:]) is None


def test_precision_accepts_percent_or_share() -> None:
    assert parse_precision("2%") == pytest.approx(0.02) == parse_precision("0.02")
    for bad in ("0%", "150%", "two"):
        with pytest.raises(ValueError):
            parse_precision(bad)


def _table(rows: list[tuple[str, list[float]]]) -> pd.DataFrame:
    out = []
    for server, values in rows:
        for k, v in enumerate(values, 1):
            out.append({
                "server": server, "app": "raw", "workload": "plaintext", "connections": 10,
                "repeat": k, "status": "ok" if not math.isnan(v) else "failed",
                "reason": None, "requests": 1000.0, "requests_per_sec": v,
                "latency_avg_ms": 1.0, "latency_p50_ms": 1.0, "latency_p99_ms": 2.0,
                "latency_max_ms": 3.0,
            })  # fmt: skip
    return pd.DataFrame(out)


def test_servers_tied_within_noise_are_grouped_with_the_leader() -> None:
    table = _table([
        ("fast", [1000.0, 1010.0, 990.0]),
        ("close", [985.0, 1005.0, 995.0]),  # overlaps the leader: tied
        ("slow", [500.0, 505.0, 495.0]),  # apart: its own group
        ("slower", [498.0, 502.0, 496.0]),  # tied with "slow", not with the leader
        ("once", [700.0]),  # one repeat: unknown
        ("broken", [float("nan")]),
    ])  # fmt: skip
    ranked = rank_servers(cell_stats(table)).set_index("server")
    assert list(ranked.index) == ["fast", "close", "once", "slow", "slower", "broken"]
    assert ranked.loc["fast", "verdict"] == "fastest"
    assert ranked.loc["close", "verdict"] == "tied with the fastest"
    assert ranked.loc["close", "tie_group"] == 1 and ranked.loc["slow", "tie_group"] == 2
    assert ranked.loc["slower", "tie_group"] == 2 and ranked.loc["slower", "verdict"] == "slower"
    assert ranked.loc["once", "verdict"] == "noise unknown"
    assert pd.isna(ranked.loc["once", "tied_with_leader"])
    assert ranked.loc["broken", "verdict"] == "failed" and pd.isna(ranked.loc["broken", "rank"])
    assert ranked.loc["slow", "share_of_best"] == pytest.approx(500 / 1000)
