"""Prometheus histograms: parsing, PromQL's histogram_quantile, deltas, the CLI, and the
client-vs-server analysis on the study's bimodal Kask histogram."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.__main__ import main
from harness.parse.prometheus import (
    HistogramSeries,
    PromHistError,
    histogram_delta,
    merge_series,
    parse_histograms,
)
from harness.parse.promquantile import bucket_quantile, histogram_quantile
from harness.tables.clientserver import ClientSide, analyse

FIXTURES = Path(__file__).parent / "fixtures" / "prometheus"
STUDY = FIXTURES / "study-kask.prom"
INF = math.inf


def test_worked_example_from_the_issue() -> None:
    # rank = 0.5 × 19 = 9.5 lies in (0, 0.5]: 6 observations at or below 0, 5 in the
    # bucket, so 3.5 of its 5 → 0 + 0.5 × 3.5/5 = 0.35.
    assert histogram_quantile(0.5, [(0, 6), (0.5, 11), (1, 14), (INF, 19)]) == pytest.approx(0.35)


# Cases from Prometheus's own promql/testdata/histograms.test (values at 50m).
POSITIVE = [(0.1, 50), (0.2, 70), (1.0, 110), (INF, 120)]
NEGATIVE = [(-0.2, 10), (-0.1, 20), (0.3, 20), (INF, 30)]
AGGREGATED = [(0.1, 100), (0.2, 190), (INF, 250)]


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (-0.1, POSITIVE, -INF),
        (1.01, NEGATIVE, INF),
        (0, POSITIVE, 0.0),  # lowest bucket positive: interpolate from 0
        (0, NEGATIVE, -0.2),  # lowest bucket <= 0: its upper bound
        (1, POSITIVE, 1.0),  # rank in +Inf: the highest finite bound
        (1, NEGATIVE, 0.3),
        (0.2, POSITIVE, 0.048),
        (0.2, NEGATIVE, -0.2),
        (0.5, POSITIVE, 0.15),
        (0.5, NEGATIVE, -0.15),
        (0.8, POSITIVE, 0.72),
        (0.8, NEGATIVE, 0.3),
        (0.3, AGGREGATED, 0.075),
        (0.5, AGGREGATED, 0.1277777777777778),
    ],
)
def test_prometheus_testdata(q: float, buckets: list[tuple[float, float]], expected: float) -> None:
    assert histogram_quantile(q, buckets) == pytest.approx(expected)


@pytest.mark.parametrize(
    "buckets",
    [[], [(INF, 5)], [(0.1, 1), (1, 2)], [(0.1, 0), (INF, 0)]],
    ids=["empty", "only-inf", "no-inf", "no-observations"],
)
def test_undefined_cases_are_nan(buckets: list[tuple[float, float]]) -> None:
    assert math.isnan(histogram_quantile(0.5, buckets))


def test_nan_q_and_empty_first_bucket_at_q0_are_nan() -> None:
    assert math.isnan(histogram_quantile(math.nan, POSITIVE))
    assert math.isnan(histogram_quantile(0, [(0.1, 0), (1, 5), (INF, 5)]))  # Go's 0/0


def test_unsorted_duplicate_and_non_monotonic_buckets() -> None:
    # Sorted by le; equal bounds merged by adding; a dip is lifted to the envelope.
    shuffled = [(INF, 120), (0.2, 30), (0.1, 50), (1.0, 110), (0.2, 40)]
    assert histogram_quantile(0.5, shuffled) == pytest.approx(0.15)
    value, forced, fixed = bucket_quantile(0.5, [(0.1, 50), (0.2, 40), (1, 110), (INF, 120)])
    assert (forced, fixed) == (True, False)
    # rank 60: (0.2, 1] holds 110 − 50 (the lifted dip), 10 of them below the rank.
    assert value == pytest.approx(0.2 + 0.8 * 10 / 60)
    _, forced, fixed = bucket_quantile(0.5, [(0.1, 50), (0.2, 50 * (1 - 1e-13)), (INF, 60)])
    assert (forced, fixed) == (False, True)


@given(
    st.lists(st.integers(0, 1000), min_size=2, max_size=12),
    st.floats(0, 1),
    st.floats(0, 1),
)
def test_quantiles_are_monotonic_and_inside_the_bounds(
    counts: list[int], q1: float, q2: float
) -> None:
    bounds = [0.001 * 2**i for i in range(len(counts) - 1)] + [INF]
    cumulative = [sum(counts[: i + 1]) for i in range(len(counts))]
    buckets = list(zip(bounds, cumulative, strict=True))
    lo, hi = sorted((q1, q2))
    a, b = histogram_quantile(lo, buckets), histogram_quantile(hi, buckets)
    if cumulative[-1] == 0 or math.isnan(a):
        return
    assert a <= b + 1e-12
    assert 0 <= a <= bounds[-2] and 0 <= b <= bounds[-2]


def test_parses_the_study_text_without_type_lines() -> None:
    [s] = parse_histograms(STUDY.read_text())
    assert s.name == "http_request_duration_seconds"
    assert s.labels == (("code", "200"), ("method", "GET"))
    assert s.buckets[0] == (0.001, 2756884.0) and s.buckets[-1] == (INF, 17108744.0)
    assert (s.count, s.sum) == (17108744.0, 328809.99557739915)


def test_typed_text_summaries_and_counters() -> None:
    text = (
        "# HELP lat Latency.\n# TYPE lat histogram\n"
        'lat_bucket{le="0.5"} 3\nlat_bucket{le="+Inf"} 4\nlat_sum 1.5\nlat_count 4\n'
        "# TYPE req counter\nreq_total 9\n"
        '# TYPE s summary\ns{quantile="0.5"} 1\ns_sum 2\ns_count 3\n'
    )
    [lat] = parse_histograms(text)
    assert lat == HistogramSeries("lat", (), ((0.5, 3.0), (INF, 4.0)), 4.0, 1.5)
    assert lat.documentation == "Latency."
    with pytest.raises(PromHistError, match="^after: not Prometheus text format"):
        histogram_delta("", "lat_bucket{le=0.5} 3\n")


def test_delta_subtracts_and_keeps_new_series() -> None:
    before = 'h_bucket{m="GET",le="1"} 2\nh_bucket{m="GET",le="+Inf"} 3\nh_sum{m="GET"} 2.5\n'
    after = before.replace(" 2\n", " 5\n", 1).replace(" 3\n", " 7\n").replace("2.5", "6.5")
    after += 'h_bucket{m="POST",le="1"} 1\nh_bucket{m="POST",le="+Inf"} 1\nh_sum{m="POST"} 0.5\n'
    by = {s.labels: s for s in parse_histograms(histogram_delta(before, after))}
    assert by[(("m", "GET"),)].buckets == ((1.0, 3.0), (INF, 4.0))
    assert (by[(("m", "GET"),)].total, by[(("m", "GET"),)].sum) == (4.0, 4.0)
    assert by[(("m", "POST"),)].buckets == ((1.0, 1.0), (INF, 1.0))
    with pytest.raises(PromHistError, match="counts went down"):
        histogram_delta(after, before)


def test_delta_from_nothing_round_trips_the_study() -> None:
    text = STUDY.read_text()
    assert parse_histograms(histogram_delta("", text)) == parse_histograms(text)


def test_merge_needs_equal_bounds() -> None:
    a = HistogramSeries("h", (("m", "GET"),), ((1.0, 2.0), (INF, 3.0)), 3.0, 1.0)
    b = HistogramSeries("h", (("m", "POST"),), ((1.0, 1.0), (INF, 1.0)), 1.0, 0.5)
    assert merge_series([a, b]) == HistogramSeries("h", (), ((1.0, 3.0), (INF, 4.0)), 4.0, 1.5)
    with pytest.raises(PromHistError, match="different bucket bounds"):
        merge_series([a, HistogramSeries("h", (), ((2.0, 1.0), (INF, 1.0)))])


def test_quantiles_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["quantiles", str(STUDY)]) == 0
    [line] = capsys.readouterr().out.splitlines()
    obj = json.loads(line)
    assert obj["name"] == "http_request_duration_seconds" and obj["count"] == 17108744
    assert obj["labels"] == {"code": "200", "method": "GET"}
    assert obj["quantiles"]["0.5"] == pytest.approx(0.025004969943397057)
    assert set(obj["quantiles"]) == {"0.5", "0.9", "0.99"}
    empty = tmp_path / "empty.prom"
    empty.write_text("# nothing\n")
    assert main(["quantiles", str(empty), str(tmp_path / "missing.prom")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{empty}: no histogram series found",
        f"{tmp_path / 'missing.prom'}: cannot read: No such file or directory",
    ]


def test_the_study_histogram_is_bimodal_and_little_flags_it() -> None:
    [s] = parse_histograms(STUDY.read_text())
    # wrk's printed summary from the same ticket: 52k req/s, 19.54 ms mean, 5 minutes.
    client = ClientSide(52000 * 300, 300.0, 0.01954, {"50": 0.03667, "90": 0.03737, "99": 0.03936})
    data = analyse(s, client, connections=4096)
    bm = data.bimodality
    assert bm.bimodal and bm.valley == (0.01, 0.025)
    assert bm.left_peak == (0.001, 0.0025) and bm.right_peak == (0.025, 0.05)
    assert bm.left_share == pytest.approx(0.4996, abs=1e-4)
    assert bm.right_share == pytest.approx(0.5001, abs=1e-4)
    # The interpolated median sits at the edge of the 25–50 ms bucket: a range, not a value.
    p50 = data.server_quantiles[0]
    assert (p50.lower_s, p50.upper_s) == (0.025, 0.05)
    assert data.server_mean_s == pytest.approx(0.019219, abs=1e-6)
    # λ·W ≈ 1016 in flight, not 4096: the ~1017 connections the client's open-files
    # limit allowed (FIELD-NOTES), so Little's law does not hold for the stated c.
    assert data.little is not None and not data.little.holds
    assert data.little.in_flight == pytest.approx(1016.08)
    assert any("Little's law" in w for w in data.warnings)


def test_a_unimodal_histogram_is_not_flagged() -> None:
    bounds = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, INF]
    counts = [5, 40, 120, 60, 10, 2, 0]
    cumulative = [sum(counts[: i + 1]) for i in range(len(counts))]
    s = HistogramSeries("h", (), tuple(zip(bounds, map(float, cumulative), strict=True)))
    assert not analyse(s).bimodality.bimodal


def test_client_histogram_is_rebinned_into_server_buckets() -> None:
    s = HistogramSeries("h", (), ((0.001, 3.0), (0.01, 4.0), (INF, 4.0)), 4.0, 0.004)
    report = {
        "requests": 4, "duration_us": 1e6,
        "latency_us": {"mean": 3000, "percentiles": {"50": 900, "99": 5000}},
        "latency_histogram_us": [[500, 1], [1000, 1], [1500, 1], [20000, 1]],
    }  # fmt: skip
    data = analyse(s, ClientSide.from_lua_report(report), connections=1)
    assert [r.client_count for r in data.buckets] == [2.0, 1.0, 1.0]
    assert data.queueing_s == pytest.approx(0.002)
    assert data.buckets[0].pdf_per_s == pytest.approx(0.75 / 0.001)
    assert data.buckets[-1].density_per_s is None


def test_density_figure_is_byte_stable(tmp_path: Path) -> None:
    from harness.figures.latency import draw_bucket_density

    [s] = parse_histograms(STUDY.read_text())
    client = ClientSide(52000 * 300, 300.0, 0.01954, {"50": 0.03667, "99": 0.03936})
    data = analyse(s, client, connections=4096)
    first = draw_bucket_density(data, tmp_path / "a.svg").read_bytes()
    second = draw_bucket_density(data, tmp_path / "b.svg").read_bytes()
    assert first == second
    assert first.startswith(b"<?xml") and b"<dc:date>" not in first


def test_import_metrics_adds_a_cell_with_the_raw_files(tmp_path: Path) -> None:
    from harness.raw.metricsimport import MetricsImportError, import_metrics

    wrk_file = Path(__file__).parent / "fixtures" / "wrk" / "wrk410-ok-latency-t2-c20.txt"
    run = tmp_path / "20181108T200500Z-kask"
    before = tmp_path / "before.prom"
    before.write_text(
        STUDY.read_text()
        .replace("1.7108744e+07", "1.7e+07")
        .replace(" 328809.99557739915", " 328000")
    )
    # 108,744 requests between the scrapes, 2,709 in wrk's output: not this load's scrapes.
    counts = "the histogram counts 108,744 requests, wrk made 2,709 .*--ignore-counts"
    with pytest.raises(MetricsImportError, match=f"^{before},{STUDY}: {counts}"):
        import_metrics([before, STUDY], wrk_file, run, server="kask", app="sessionstore")
    assert not run.exists()
    kask = {"server": "kask", "app": "sessionstore", "check_counts": False}
    sidecar = import_metrics([before, STUDY], wrk_file, run, **kask)  # type: ignore[arg-type]
    meta = json.loads(sidecar.read_text())
    assert sidecar == run / "kask" / "sessionstore" / "imported" / "c20-r1.json"
    assert (meta["imported"], meta["status"], meta["connections"], meta["threads"]) == (
        True,
        "ok",
        20,
        2,
    )
    assert meta["server_argv"] is None and len(meta["import"]["sources"]) == 3
    assert meta["import"]["request_counts"] == {"wrk": 2709, "server": 108744, "checked": False}
    assert (sidecar.parent / meta["files"]["stdout"]).read_bytes() == wrk_file.read_bytes()
    assert (sidecar.parent / meta["files"]["metrics_after"]).read_bytes() == STUDY.read_bytes()
    [delta] = parse_histograms((sidecar.parent / meta["files"]["metrics"]).read_text())
    assert delta.total == 108744 and delta.sum == pytest.approx(809.99557739915)
    # Run twice, the same import is refused: a second repeat is asked for, not assumed.
    again = r"kask/sessionstore/imported/c20 was imported before \(repeat 1\); .* --repeat 2$"
    with pytest.raises(MetricsImportError, match=again):
        import_metrics([STUDY], wrk_file, run, **kask)  # type: ignore[arg-type]
    second = import_metrics([STUDY], wrk_file, run, repeat=2, **kask)  # type: ignore[arg-type]
    assert second.name == "c20-r2.json"
    assert json.loads((run / "run.json").read_text())["imported_cells"] == [
        "kask/sessionstore/imported/c20-r1",
        "kask/sessionstore/imported/c20-r2",
    ]
    with pytest.raises(MetricsImportError, match="exists already"):
        import_metrics([STUDY], wrk_file, run, repeat=1, **kask)  # type: ignore[arg-type]
    with pytest.raises(MetricsImportError, match=f"^{STUDY}"):
        import_metrics([STUDY], STUDY, run, server="kask", app="sessionstore")


@pytest.mark.parametrize(
    ("between", "accepted"),
    [(2709, True), (2709 + 20 + 270, True), (2709 + 20 + 280, False), (2400, False)],
)
def test_import_metrics_checks_the_request_counts(
    tmp_path: Path, between: int, accepted: bool
) -> None:
    """Scrapes just around the wrk run count its requests, give or take the connections
    in flight and 10 %: 2,709 requests by 20 connections."""
    from harness.raw.metricsimport import MetricsImportError, import_metrics

    wrk_file = Path(__file__).parent / "fixtures" / "wrk" / "wrk410-ok-latency-t2-c20.txt"
    before = tmp_path / "before.prom"
    before.write_text(STUDY.read_text().replace("1.7108744e+07", f"{17108744 - between}"))
    run = tmp_path / "kask"
    if accepted:
        sidecar = import_metrics([before, STUDY], wrk_file, run, server="kask", app="a")
        counts = json.loads(sidecar.read_text())["import"]["request_counts"]
        assert counts == {"wrk": 2709, "server": between, "checked": True}
    else:
        with pytest.raises(MetricsImportError, match=f"counts {between:,} requests"):
            import_metrics([before, STUDY], wrk_file, run, server="kask", app="a")


@pytest.mark.parametrize("ratio", [0.2, 0.49, 0.51, 0.9, 1.2, 1.9, 2.9, 3.1, 5.0])
def test_the_little_check_and_the_little_flag_agree(ratio: float) -> None:
    """One band for the client-vs-server page and the `littles_law` flag: a cell is never
    sound on one and flagged on the other (they used to be ±10 % and 0.5–3)."""
    from harness.tables.flags import littles_law

    [s] = parse_histograms(STUDY.read_text())
    connections, rps = 64, 10_000.0
    mean_s = ratio * connections / rps  # λ·W = ratio × connections
    data = analyse(s, ClientSide(int(rps * 60), 60.0, mean_s, {}), connections=connections)
    row = {"requests_per_sec": rps, "latency_avg_ms": mean_s * 1000}
    row |= {"connections": connections, "threads": 2}
    assert data.little is not None
    assert data.little.holds == (littles_law(row) is None) == (0.5 <= ratio <= 3.0)
