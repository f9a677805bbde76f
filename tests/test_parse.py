"""Parse stage: real wrk 4.1 captures, crafted wrk2 and pasted texts, broken files.

Fixtures live in tests/fixtures/wrk/: `wrk410-*` are real stdout captured with
capture.py, `crafted-*` are derived by hand (named for what they exercise) and
`broken-*.expect-error.txt` must fail with exactly the message listed here. Of the
crafted ones, `crafted-pasted-cut-running-line` is a real capture without its first
line; the wrk2 ones follow wrk2's and DeathStarBench's wrk2 printf formats (neither is
packaged here) and `crafted-wrk-fork-ttfb-row` adds a fork's row to a real capture.
"""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import fields, replace
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import RawFormatError, WrkResult, parse_wrk
from harness.parse.wrk import line_grammar, parse_wrk_file, read_text
from harness.parse.wrkfast import fast_path

ROOT = Path(__file__).resolve().parents[1]
WRK = Path(__file__).resolve().parent / "fixtures" / "wrk"
TEXTS = {p.name: p.read_text() for p in sorted(WRK.glob("*.txt")) if "broken" not in p.name}

PERCENTILE_MAPS = (
    "latency_percentiles_ms",
    "latency_uncorrected_percentiles_ms",
    "latency_spectrum_ms",
    "latency_uncorrected_spectrum_ms",
)
NO_ERRORS = dict(errors_connect=0, errors_read=0, errors_write=0, errors_timeout=0, non_2xx_3xx=0)

# Every field of one capture, so a change to any field shows here.
OK_T1_C10 = {
    "tool": "wrk",
    "url": "http://127.0.0.1:58953/",
    "threads": 1,
    "connections": 10,
    "test_duration_s": 2.0,
    "duration_s": 2.1,
    "requests": 4203,
    "bytes_read": 632.23 * 1024,
    "requests_per_sec": 2001.61,
    "transfer_per_sec_bytes": 301.09 * 1024,
    "latency_avg_ms": 4.94,
    "latency_stdev_ms": 0.84539,
    "latency_max_ms": 8.94,
    "latency_within_stdev_pct": 69.9,
    "thread_requests_per_sec_avg": 2010.0,
    "thread_requests_per_sec_stdev": 242.77,
    "thread_requests_per_sec_max": 2320.0,
    "thread_requests_per_sec_within_stdev_pct": 66.67,
    "latency_percentiles_ms": {},
    "latency_uncorrected_percentiles_ms": {},
    "latency_spectrum_ms": {},
    "latency_uncorrected_spectrum_ms": {},
    **NO_ERRORS,
}

WRK2_T2_C100_SUMMARY = {
    50.0: 1.39,
    75.0: 1.83,
    90.0: 2.25,
    99.0: 3.54,
    99.9: 6.11,
    99.99: 9.3,
    99.999: 9.82,
    100.0: 9.82,
}

EXPECTED: dict[str, dict[str, object]] = {
    "wrk410-ok-t1-c10.txt": OK_T1_C10,
    "wrk410-ok-latency-t2-c20.txt": {
        "threads": 2,
        "connections": 20,
        "requests": 2709,
        "thread_requests_per_sec_avg": 680.08,
        "thread_requests_per_sec_max": 1000.0,
        "latency_percentiles_ms": {50.0: 13.71, 75.0: 15.64, 90.0: 21.13, 99.0: 34.32},
        **NO_ERRORS,
    },
    "wrk410-read-errors-no-content-length.txt": {
        "url": "http://127.0.0.1:58953/nolength",
        "requests": 2230,
        "errors_read": 2230,
        "errors_connect": 0,
        "non_2xx_3xx": 0,
    },
    "wrk410-connect-errors-ulimit.txt": {
        "connections": 50,
        "requests": 1932,
        "errors_connect": 22,
        "errors_read": 0,
        "latency_avg_ms": 15.8,
        "thread_requests_per_sec_avg": 1760.0,
    },
    "wrk410-timeouts-slow-handler.txt": {
        "requests": 16,
        "errors_timeout": 16,
        "latency_avg_ms": 0.0,  # printed as 0.00us: every response came after --timeout
        "requests_per_sec": 5.32,
        "transfer_per_sec_bytes": 819.81,
        "thread_requests_per_sec_avg": 19.33,
    },
    "wrk410-non2xx-404.txt": {"requests": 1413, "non_2xx_3xx": 1413, "errors_read": 0},
    "wrk410-latency-seconds.txt": {
        "latency_avg_ms": 1100.0,
        "latency_stdev_ms": 1.33,
        "latency_max_ms": 1100.0,
        "latency_percentiles_ms": {50.0: 1100.0, 75.0: 1100.0, 90.0: 1100.0, 99.0: 1100.0},
        "bytes_read": 1.2 * 1024,
        "transfer_per_sec_bytes": 410.14,
        "test_duration_s": 3.0,
    },
    "wrk410-zero-requests-nan.txt": {
        "requests": 0,
        "requests_per_sec": 0.0,
        "bytes_read": 0.0,
        "thread_requests_per_sec_avg": 0.0,
        **NO_ERRORS,
    },
    "wrk410-lua-prints-before-after.txt": {"requests": 1180, "requests_per_sec": 1072.7},
    "wrk410-with-report-lua.txt": {
        "requests": 1455,
        "latency_percentiles_ms": {50.0: 6.41, 75.0: 8.16, 90.0: 10.33, 99.0: 14.5},
    },
    "wrk410-sigint-after-1s.txt": {
        "test_duration_s": 10.0,
        "duration_s": 0.99978,
        "requests": 1368,
    },
    "crafted-wrk-million-rps.txt": {
        "requests": 2548257,
        "requests_per_sec": 1213456.78,
        "bytes_read": 373.12 * 1024**2,
        "transfer_per_sec_bytes": 177.68 * 1024**2,
        "thread_requests_per_sec_avg": 1_210_000.0,
        "thread_requests_per_sec_stdev": 42_770.0,
        "thread_requests_per_sec_max": 1_320_000.0,
        "latency_avg_ms": 0.798,
        "latency_stdev_ms": 0.24539,
    },
    "crafted-pasted-crlf-tabs-indent-ctrl-c.txt": {
        **{k: v for k, v in OK_T1_C10.items() if k in ("tool", "url")},
        "threads": 2,
        "connections": 20,
        "requests": 2709,
        "requests_per_sec": 1352.79,
        "latency_avg_ms": 14.77,
        "thread_requests_per_sec_stdev": 176.87,
        "latency_percentiles_ms": {50.0: 13.71, 75.0: 15.64, 90.0: 21.13, 99.0: 34.32},
    },
    "crafted-wrk2-no-latency-flag.txt": {
        "tool": "wrk2",
        "latency_avg_ms": 0.87055,
        "thread_requests_per_sec_avg": 525.13,
        "latency_percentiles_ms": {},
    },
    "crafted-wrk2-latency-t2-c100.txt": {
        "tool": "wrk2",
        "threads": 2,
        "connections": 100,
        "test_duration_s": 30.0,
        "requests": 60012,
        "thread_requests_per_sec_avg": 1050.0,
        "latency_percentiles_ms": WRK2_T2_C100_SUMMARY,
        "latency_uncorrected_percentiles_ms": {},
        "latency_uncorrected_spectrum_ms": {},
    },
    "crafted-wrk2-u-latency-two-blocks.txt": {
        "tool": "wrk2",
        "latency_avg_ms": 2100.0,
        "latency_max_ms": 3210.0,
        # As printed ("2.08s"); merged with the spectrum, 100% (3209.215) fell below 99.9%.
        "latency_percentiles_ms": {
            50.0: 2080.0,
            75.0: 2610.0,
            90.0: 2940.0,
            99.0: 3190.0,
            99.9: 3210.0,
            99.99: 3210.0,
            99.999: 3210.0,
            100.0: 3210.0,
        },
        "latency_spectrum_ms": {0.0: 911.359, 50.0: 2080.767, 90.0: 2938.879, 100.0: 3209.215},
        "latency_uncorrected_percentiles_ms": {
            50.0: 0.812,
            75.0: 1.02,
            90.0: 1.31,
            99.0: 2.03,
            99.9: 3.87,
            99.99: 4.01,
            99.999: 4.01,
            100.0: 4.01,
        },
        "latency_uncorrected_spectrum_ms": {0.0: 0.301, 50.0: 0.812, 90.0: 1.311, 100.0: 4.011},
    },
    # The "Running" line cut off a real capture: threads and connections stay.
    "crafted-pasted-cut-running-line.txt": {
        "url": None,
        "test_duration_s": None,
        "threads": 2,
        "connections": 20,
        "requests": 2709,
        "latency_percentiles_ms": {50.0: 13.71, 75.0: 15.64, 90.0: 21.13, 99.0: 34.32},
    },
    # A fork's TTFB row in the Thread Stats table is read past, the rest as wrk printed it.
    "crafted-wrk-fork-ttfb-row.txt": {k: v for k, v in OK_T1_C10.items() if k not in ("tool",)},
    # DeathStarBench's wrk2: "Test Results @ <url>" and a 99% column where wrk has Max.
    "crafted-wrk2-test-results-99pct-column.txt": {
        "url": "http://127.0.0.1:8080",
        "threads": 2,
        "connections": 100,
        "test_duration_s": 30.0,
        "latency_avg_ms": 3.91,
        "latency_stdev_ms": 0.78375,
        "latency_max_ms": None,  # not printed: the column is the 99th percentile
        "thread_requests_per_sec_avg": 1050.0,
        "thread_requests_per_sec_max": None,
        "latency_percentiles_ms": {
            50.0: 3.87,
            75.0: 4.39,
            90.0: 4.93,
            99.0: 6.4,
            99.9: 9.12,
            99.99: 11.9,
            99.999: 12.82,
            100.0: 12.82,
        },
        "requests": 59889,
        "requests_per_sec": 1996.43,
    },
    # The same build pasted from a README: no Running line, no --latency.
    "crafted-wrk2-pasted-test-results-no-latency-flag.txt": {
        "url": "http://10.10.1.2:5000",
        "threads": None,
        "connections": None,
        "latency_avg_ms": 7.08,
        "latency_max_ms": None,
        "thread_requests_per_sec_max": None,
        "latency_percentiles_ms": {99.0: 21.73},  # from the Latency row's 99% column
        "latency_spectrum_ms": {},
        "duration_s": 60.0,
        "requests": 59896,
    },
}

EXP_RUNNING = "expected 'Running <duration> test @ <url>'"
BROKEN = {
    "broken-missing-requests-line.expect-error.txt": (
        6,
        "expected '<N> requests in <time>, <size> read', found 'Requests/sec:   2001.61'",
    ),
    "broken-truncated-after-requests-line.expect-error.txt": (
        7,
        "expected 'Requests/sec: <number>', found end of text",
    ),
    "broken-bad-latency-unit.expect-error.txt": (
        4,
        "expected 'Latency <time> <time> <time> <percent>%',"
        " found 'Latency     4.94xs  845.39us   8.94ms   69.90%'",
    ),
    "broken-empty-file.expect-error.txt": (1, f"{EXP_RUNNING}, found end of text"),
    "broken-not-wrk-output.expect-error.txt": (
        1,
        f"{EXP_RUNNING}, found 'unable to connect to 127.0.0.1:58953 Connection refused'",
    ),
    "broken-missing-threads-line.expect-error.txt": (
        2,
        "expected '<N> threads and <N> connections',"
        " found 'Thread Stats   Avg      Stdev     Max   +/- Stdev'",
    ),
    "broken-missing-thread-stats-header.expect-error.txt": (
        3,
        "expected 'Thread Stats   Avg      Stdev     Max   +/- Stdev',"
        " found 'Latency     4.94ms  845.39us   8.94ms   69.90%'",
    ),
    "broken-garbled-percentile.expect-error.txt": (
        9,
        "expected '<percent>% <time>' or '<N> requests in <time>, <size> read',"
        " found '90%   21.13zz'",
    ),
    "broken-garbled-socket-errors.expect-error.txt": (
        7,
        "expected 'Socket errors: connect <N>, read <N>, write <N>, timeout <N>',"
        " found 'Socket errors: connect 0, read lots, write 0, timeout 0'",
    ),
    "broken-transfer-unit-split.expect-error.txt": (
        8,
        "expected 'Transfer/sec: <size>', found 'Transfer/sec:    301.09 KB'",
    ),
}


def test_every_fixture_has_expectations() -> None:
    assert set(TEXTS) == set(EXPECTED)
    assert {p.name for p in WRK.glob("broken-*")} == set(BROKEN)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_values(name: str) -> None:
    result = parse_wrk(TEXTS[name])
    # Exact equality: values are parsed from their decimal text, as the expectations are.
    assert {k: getattr(result, k) for k in EXPECTED[name]} == EXPECTED[name]
    assert result.tool == ("wrk2" if "wrk2" in name else "wrk")


def test_all_fields_of_one_capture() -> None:
    assert parse_wrk(TEXTS["wrk410-ok-t1-c10.txt"]) == WrkResult(**OK_T1_C10)  # type: ignore[arg-type]


def test_printed_rounding_is_not_amplified() -> None:
    r = parse_wrk(TEXTS["wrk410-ok-t1-c10.txt"])
    assert r.thread_requests_per_sec_avg == 2010.0  # "2.01k", not 2009.9999999999998
    assert r.latency_stdev_ms == 0.84539  # "845.39us"


def test_nan_is_nan_not_zero() -> None:
    r = parse_wrk(TEXTS["wrk410-zero-requests-nan.txt"])
    assert math.isnan(r.latency_within_stdev_pct)  # printed "-nan%"
    assert math.isnan(r.thread_requests_per_sec_within_stdev_pct)
    assert r.to_json_dict()["latency_within_stdev_pct"] is None


def test_wrk2_summary_as_printed_and_spectrum_apart() -> None:
    r = parse_wrk(TEXTS["crafted-wrk2-latency-t2-c100.txt"])
    assert r.latency_percentiles_ms == WRK2_T2_C100_SUMMARY  # the 8 summary lines only
    s = r.latency_spectrum_ms
    assert list(s) == sorted(s) and len(s) == 19  # every row of the detailed spectrum
    assert s[0.0] == 0.288 and s[10.0] == 0.723 and s[82.5] == 2.003
    assert s[99.0625] == 3.543 and s[99.9976] == 9.823 and s[100.0] == 9.823
    assert 99.9 not in s and 50.0 in s and s[50.0] == 1.391 != r.latency_percentiles_ms[50.0]


def test_wrk2_maps_are_monotonic_where_merging_was_not() -> None:
    # The case: the spectrum's exact 100% (3209.215) below the summary's
    # rounded 99.9% ("3.21s"). Apart, each map is non-decreasing.
    r = parse_wrk(TEXTS["crafted-wrk2-u-latency-two-blocks.txt"])
    assert r.latency_spectrum_ms[100.0] < r.latency_percentiles_ms[99.9]
    for name in PERCENTILE_MAPS:
        values = list(getattr(r, name).values())
        assert values == sorted(values) and values, name


def test_cut_running_line_keeps_threads_and_connections() -> None:
    full = parse_wrk(TEXTS["wrk410-ok-latency-t2-c20.txt"])
    cut = parse_wrk(TEXTS["crafted-pasted-cut-running-line.txt"])
    assert (cut.threads, cut.connections) == (full.threads, full.connections) == (2, 20)
    assert (cut.url, cut.test_duration_s) == (None, None)
    assert replace(cut, url=full.url, test_duration_s=full.test_duration_s) == full
    # Lua lines before it change nothing; a threads line after "Running" is Lua's.
    lines = TEXTS["wrk410-ok-t1-c10.txt"].split("\n")
    assert parse_wrk("\n".join(["lua init", *lines[1:]])).threads == 1
    lua = parse_wrk("\n".join([*lines[:2], "4 threads and 400 connections", *lines[2:]]))
    assert (lua.threads, lua.connections) == (1, 10)


@pytest.mark.parametrize("at", [3, 4, 5])  # before Latency, before Req/Sec, after it
def test_fork_rows_in_thread_stats_are_ignored_anywhere_in_the_table(at: int) -> None:
    lines = TEXTS["wrk410-ok-t1-c10.txt"].split("\n")
    lines[at:at] = ["    TTFB        4.12ms  801.10us   8.01ms   70.12%"]
    lines[at:at] = ["    Connect     1.01ms    0.20ms   2.00ms   90.00%", ""] * (at == 4)
    assert parse_wrk("\n".join(lines)) == parse_wrk(TEXTS["wrk410-ok-t1-c10.txt"])


def test_99pct_column_fills_only_a_missing_99th_percentile() -> None:
    text = TEXTS["crafted-wrk2-test-results-99pct-column.txt"]
    assert parse_wrk(text).latency_percentiles_ms[99.0] == 6.4  # printed twice, the same
    # Were they to differ, the Latency Distribution line is the one kept.
    other = parse_wrk(text.replace(" 99.000%    6.40ms", " 99.000%    6.39ms"))
    assert other.latency_percentiles_ms[99.0] == 6.39
    # A "Max" header: the same numbers are maxima and no percentile is added.
    wrk2 = parse_wrk(TEXTS["crafted-wrk2-pasted-test-results-no-latency-flag.txt"].replace(
        "99%   +/-", "Max   +/-"
    ))  # fmt: skip
    assert (wrk2.latency_max_ms, wrk2.thread_requests_per_sec_max) == (21.73, 500.0)
    assert wrk2.latency_percentiles_ms == {} and wrk2.tool == "wrk2"


def test_test_results_url_wins_over_the_running_line() -> None:
    text = TEXTS["crafted-wrk2-test-results-99pct-column.txt"].replace(
        "Test Results @ http://127.0.0.1:8080 ", "Test Results @ http://127.0.0.1:8080/b "
    )
    assert parse_wrk(text).url == "http://127.0.0.1:8080/b"


DECREASING = {
    # wrk's --latency block
    "wrk410-ok-latency-t2-c20.txt": (
        ("     75%   15.64ms", "     75%   12.64ms"),
        8,
        "expected a latency no lower than line 7's ('50%   13.71ms'), found '75%   12.64ms'",
    ),
    # wrk2's summary lines
    "crafted-wrk2-latency-t2-c100.txt": (
        ("100.000%    9.82ms", "100.000%    9.81ms"),
        16,
        "expected a latency no lower than line 15's ('99.999%    9.82ms'),"
        " found '100.000%    9.81ms'",
    ),
    # the spectrum
    "crafted-wrk2-u-latency-two-blocks.txt": (
        ("    2080.767     0.500000", "    2080.767     0.950000"),
        21,  # sorted by quantile, 95% comes after the 90% row printed below it
        "expected a latency no lower than line 22's"
        " ('2938.879     0.900000         4501        10.00'),"
        " found '2080.767     0.950000         2501         2.00'",
    ),
    # the 99% column against the 90% line
    "crafted-wrk2-pasted-test-results-no-latency-flag.txt": (
        ("  59896 requests", "  Latency Distribution\n 90%   30.00ms\n  59896 requests"),
        3,
        "expected a latency no lower than line 6's ('90%   30.00ms'),"
        " found 'Latency     7.08ms    5.47ms  21.73ms   79.14%'",
    ),
}


@pytest.mark.parametrize("name", sorted(DECREASING))
def test_decreasing_percentiles_are_refused_naming_the_line(name: str) -> None:
    (old, new), line, message = DECREASING[name]
    text = TEXTS[name].replace(old, new)
    assert text != TEXTS[name]
    with pytest.raises(RawFormatError) as info:
        parse_wrk(text)
    assert (info.value.line, info.value.message) == (line, message)
    if name.startswith("wrk410-"):
        assert fast_path(TEXTS[name]) is not None and fast_path(text) is None


def test_nan_percentile_is_refused() -> None:
    text = TEXTS["wrk410-ok-latency-t2-c20.txt"].replace("90%   21.13ms", "90%   nanms")
    with pytest.raises(RawFormatError) as info:
        parse_wrk(text)
    assert str(info.value) == "9: expected a latency that is a number, found '90%   nanms'"


def test_wrk_result_refuses_a_decreasing_map() -> None:
    good = parse_wrk(TEXTS["wrk410-ok-t1-c10.txt"])
    with pytest.raises(ValueError, match="latency_spectrum_ms must be sorted and non-decreasing"):
        replace(good, latency_spectrum_ms={99.0: 2.0, 100.0: 1.0})
    with pytest.raises(ValueError, match="latency_percentiles_ms must be sorted"):
        replace(good, latency_percentiles_ms={99.0: 1.0, 50.0: 2.0})


def test_every_parse_field_is_documented() -> None:
    documented = set(re.findall(r"`([a-z0-9_]+)`", (ROOT / "docs" / "schema.md").read_text()))
    assert {f.name for f in fields(WrkResult)} <= documented


def test_lua_lines_before_and_after_are_ignored() -> None:
    text = TEXTS["wrk410-lua-prints-before-after.txt"]
    assert text.startswith("lua init: thread started\n") and "99.999%,24392" in text
    assert parse_wrk(text).requests == 1180


def test_lines_printed_during_the_run_are_skipped() -> None:
    lines = TEXTS["wrk410-ok-t1-c10.txt"].split("\n")
    lines[2:2] = ["response: 200 OK", "  some Lua output"]
    assert parse_wrk("\n".join(lines)) == parse_wrk(TEXTS["wrk410-ok-t1-c10.txt"])


def test_pasted_without_running_line() -> None:
    text = "\n".join(TEXTS["wrk410-ok-t1-c10.txt"].split("\n")[2:])
    r = parse_wrk(text)
    assert (r.url, r.threads, r.connections, r.test_duration_s) == (None, None, None, None)
    assert r.requests == 4203


def test_cut_1000ms_average_is_a_second_not_1000_minutes() -> None:
    # format_time_us prints 999.995 ms as "1000.00ms" and the 8-wide Avg column cuts the s.
    text = TEXTS["wrk410-latency-seconds.txt"].replace(
        "Latency     1.10s     1.33ms   1.10s ", "Latency  1000.00m    1.33ms   1.10s "
    )
    assert parse_wrk(text).latency_avg_ms == 1000.0


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_files_fail_with_path_and_line(name: str) -> None:
    path = WRK / name
    line, message = BROKEN[name]
    with pytest.raises(RawFormatError) as info:
        parse_wrk_file(path)
    assert str(info.value) == f"{path}:{line}: {message}"
    assert (info.value.path, info.value.line, info.value.message) == (str(path), line, message)


def test_error_without_a_file_names_the_line_only() -> None:
    with pytest.raises(RawFormatError) as info:
        parse_wrk((WRK / "broken-missing-requests-line.expect-error.txt").read_text())
    assert str(info.value).startswith("6: expected '<N> requests in")
    assert info.value.path is None


def test_long_lines_are_shortened_in_messages() -> None:
    with pytest.raises(RawFormatError) as info:
        parse_wrk("x" * 200)
    assert str(info.value) == f"1: {EXP_RUNNING}, found '{'x' * 77}...'"


def test_to_json_dict_is_json() -> None:
    d = parse_wrk(TEXTS["crafted-wrk2-latency-t2-c100.txt"]).to_json_dict()
    assert d["latency_percentiles_ms"]["99.9"] == 6.11 and d["latency_percentiles_ms"]["50"] == 1.39
    assert d["latency_spectrum_ms"]["99.0625"] == 3.543 and d["latency_spectrum_ms"]["50"] == 1.391
    json.dumps(d, allow_nan=False)
    d = parse_wrk(TEXTS["crafted-wrk2-test-results-99pct-column.txt"]).to_json_dict()
    assert d["latency_max_ms"] is None and d["thread_requests_per_sec_max"] is None
    json.dumps(d, allow_nan=False)


# --- robustness -------------------------------------------------------------------------

_NOISE = "0123456789.%-: \t\r^CkMGBKmsunaf\n"


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(sorted(TEXTS.values()))).split("\n")
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "edit", "insert", "cut"]))
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "edit":
            at = draw(st.integers(0, len(lines[i])))
            junk = draw(st.text(st.sampled_from(_NOISE) | st.characters(), max_size=3))
            lines[i] = lines[i][:at] + junk + lines[i][at + draw(st.integers(0, 3)) :]
        elif op == "insert":
            lines.insert(i, draw(st.text(max_size=40)))
        else:
            lines = lines[:i] or [""]
    return "\n".join(lines)


@settings(max_examples=400, deadline=None)
@given(mutated())
def test_mutated_texts_only_raise_raw_format_error(text: str) -> None:
    try:
        result = parse_wrk(text)
    except RawFormatError as e:
        assert e.line is not None and 1 <= e.line <= text.count("\n") + 2
        assert "\n" not in str(e)
    else:
        assert result.tool in ("wrk", "wrk2") and result.requests >= 0


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_arbitrary_text_only_raises_raw_format_error(text: str) -> None:
    with pytest.raises(RawFormatError):
        parse_wrk(text)


def test_parsing_is_fast() -> None:
    # The site parses every raw file on each build; 10,000 must stay well under a second.
    texts = list(TEXTS.values())
    start = time.perf_counter()
    for i in range(1000):
        parse_wrk(texts[i % len(texts)])
    assert time.perf_counter() - start < 1.0


# --- percentile maps never decrease ----------------------------------------------------

_PCT_LINE = re.compile(r"(\s*\d+(?:\.\d+)?%\s+)\d+\.\d+(?:us|ms|s)(\s*)")
_SPECTRUM_LINE = re.compile(r"(\s*)\d+\.\d{3}(\s+[01]\.\d{6}\s+\d+\s+\S+\s*)")
PRICED = sorted(
    name
    for name, text in TEXTS.items()
    if any(_PCT_LINE.fullmatch(x) or _SPECTRUM_LINE.fullmatch(x) for x in text.split("\n"))
)


@st.composite
def repriced(draw: st.DrawFn) -> tuple[str, bool]:
    """A fixture whose percentile lines and spectrum rows print drawn latencies; True when
    each block's are drawn non-decreasing, as wrk and wrk2 print them."""
    ordered = draw(st.booleans())
    name = draw(st.sampled_from(PRICED))
    lines = TEXTS[name].split("\n")
    ticks = st.integers(0, 10**7)  # hundredths of a ms for summary lines, thousandths in spectra
    i = 0
    while i < len(lines):
        kind = _PCT_LINE if _PCT_LINE.fullmatch(lines[i]) else _SPECTRUM_LINE
        j = i
        while j < len(lines) and kind.fullmatch(lines[j]):
            j += 1
        if j == i:
            i += 1
            continue
        values = draw(st.lists(ticks, min_size=j - i, max_size=j - i))
        if ordered:
            values.sort()
        for k, n in zip(range(i, j), values, strict=True):
            m = kind.fullmatch(lines[k])
            assert m is not None
            if kind is _SPECTRUM_LINE:  # 3 decimals, in ms
                lines[k] = f"{m[1]}{n / 1000:.3f}{m[2]}"
            elif draw(st.booleans()):
                lines[k] = f"{m[1]}{n / 100:.2f}ms{m[2]}"
            else:
                lines[k] = f"{m[1]}{n * 10}.00us{m[2]}"
        i = j
    return "\n".join(lines), ordered


def _assert_ordered(result: WrkResult) -> None:
    for name in PERCENTILE_MAPS:
        pcts = getattr(result, name)
        assert list(pcts) == sorted(pcts), name
        values = list(pcts.values())
        assert values == sorted(values) and not any(math.isnan(v) for v in values), name


@settings(max_examples=300, deadline=None)
@given(repriced())
def test_every_parsed_percentile_map_is_monotonic(drawn: tuple[str, bool]) -> None:
    text, ordered = drawn
    try:
        result = parse_wrk(text)
    except RawFormatError as e:
        assert not ordered, e  # only a map that would decrease is refused
        assert e.message.startswith("expected a latency no lower than line "), e
    else:
        _assert_ordered(result)
    _assert_paths_agree(text)


# --- the fast path and the line grammar agree ------------------------------------------
# parse_wrk tries `fast_path` (one regex for wrk 4.x's layout) before `line_grammar`.
# The fast path must give the grammar's record, float bits included, or None.


def _bits(value: object) -> object:
    """A value with every float as its bits: NaN equals NaN, -0.0 differs from 0.0."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, dict):
        return ("dict", [(_bits(k), _bits(v)) for k, v in value.items()])
    return (type(value).__name__, value)


def _record_bits(result: WrkResult) -> list[tuple[str, object]]:
    return [(f.name, _bits(getattr(result, f.name))) for f in fields(result)]


def _outcome(parse: Callable[[str], WrkResult], text: str) -> object:
    try:
        return _record_bits(parse(text))
    except RawFormatError as e:
        return ("RawFormatError", e.message, e.line, e.path)


def _assert_paths_agree(text: str) -> WrkResult | None:
    """parse_wrk (either path) and the grammar alone: the same record or the same error."""
    fast = fast_path(text)
    grammar = _outcome(line_grammar, text)
    if fast is not None:
        assert _record_bits(fast) == grammar
    assert _outcome(parse_wrk, text) == grammar
    return fast


# Real wrk 4.1 stdout (captured, and the example run's): the fast path reads all of it.
RAW_OUTPUTS = sorted(p for p in (ROOT / "raw").glob("*/*/*/*/c*-r*.txt"))
FAST_PATH_TEXTS = [n for n in TEXTS if n.startswith("wrk410-")] + ["crafted-wrk-million-rps.txt"]


def test_fast_path_is_taken_for_wrk41_captures() -> None:
    assert len(FAST_PATH_TEXTS) >= 11 and RAW_OUTPUTS
    for name in FAST_PATH_TEXTS:
        assert fast_path(TEXTS[name]) is not None, name
    for path in RAW_OUTPUTS:
        assert fast_path(path.read_text()) is not None, path
    # wrk2, a pasted text (tabs, CRLF, ^C) and broken files: the grammar's.
    for name in sorted(set(TEXTS) - set(FAST_PATH_TEXTS)):
        assert fast_path(TEXTS[name]) is None, name
    for name in BROKEN:
        assert fast_path((WRK / name).read_text()) is None, name


@pytest.mark.parametrize("name", sorted(TEXTS) + sorted(BROKEN))
def test_fast_path_equals_line_grammar_on_fixtures(name: str) -> None:
    _assert_paths_agree((WRK / name).read_text())


def test_fast_path_equals_line_grammar_on_raw_outputs() -> None:
    for path in RAW_OUTPUTS:
        assert _assert_paths_agree(path.read_text()) is not None, path


@settings(max_examples=400, deadline=None)
@given(mutated())
def test_fast_path_equals_line_grammar_on_mutated_texts(text: str) -> None:
    _assert_paths_agree(text)


# What wrk 4.x prints, and what else may come instead, kind by kind: numbers, units and
# lines from wrk2, Lua scripts, terminals and broken files, which the grammar reads or
# rejects and the fast path must leave to it.
_PRINTED = st.integers(0, 10**7).map(lambda n: f"{n / 100:.2f}")
_ODD: dict[str, list[str]] = {
    "number": [
        *("0", "12", "5.", "1000.00", "-nan", "nan", "+1.5", "-2", ".5", "inf", "1e3"),
        *("1.2.3", "", "\u0663"),
    ],
    "time": ["m", "h", "xs", "", " ms", "MS"],
    "count": ["T", "P", "K", "m", " k"],
    "size": ["P", "k", "", " K", "b"],
    "url": ["", "http://x/\x85", "http://x/\t", "http://\u00fc/", "http://x/ ", "\u3000"],
    "line": [
        *("Thread calibration: mean lat.: 0.85ms, rate sampling interval: 10ms", "Thread"),
        *("Running late", "Running 2s test @ http://other/", "2 threads and 4 connections"),
        *("Latency 1ms", "Latency Distribution", "Req/Sec", "Socket errors", "Non-2xx"),
        *("Requests/sec: x", "Transfer/sec: 1B", "1 requests in 1.00s, 1.00KB read"),
        *("-----", "50%,8806", "50% 1ms", "\x0c", "\x85", "\u00fc", "^C", "\t"),
        # The wrk family: a fork's table row, DeathStarBench wrk2's header and column.
        *("TTFB 1.00ms 2.00ms 3.00ms 50.00%", "Latency2 1ms 2ms 3ms 4%", "TTFB 1ms 2ms"),
        *("Test Results @ http://other/", "Test Results @", "Test Results @ \t"),
        "Thread Stats Avg Stdev 99% +/- Stdev",
    ],
    "percentiles": ["50", "75", "90", "99", "99.9", "0", "100", "5x", "99.99"],
    "spacing": ["\t", " \t", "\x0b", "\u3000", ""],
    "indent": ["\t", "\r", "\xa0", "\x1c", "\u2028"],
    "trailing": ["\r", "\t", "\x85", "\xa0", "\u3000"],
    "blank": ["\t", "\r", "\x0c", "\xa0"],
    "ending": ["\r\n", "\r", "\n\n", "\x85"],
}
_ODD_KINDS = sorted([*_ODD, "errors", "ctrl-c", "order"])
_MS_PER = {"us": Decimal("0.001"), "ms": Decimal(1), "s": Decimal(1000)}


def _exact_ms(printed: str) -> Decimal | None:
    """A printed time's exact value in ms, to order percentiles as the parser will."""
    m = re.fullmatch(r"(\d+\.?\d*)(us|ms|s)", printed)
    return None if m is None else Decimal(m[1]) * _MS_PER[m[2]]


@st.composite
def wrk_outputs(draw: st.DrawFn) -> tuple[str, bool]:
    """A wrk output with drawn figures and layout; True when laid out as wrk 4.x prints it
    (the fast path must read it), else with one or two kinds of oddity drawn in."""
    plain = draw(st.booleans())
    kinds = set() if plain else draw(st.sets(st.sampled_from(_ODD_KINDS), min_size=1, max_size=2))

    def odd(kind: str) -> bool:
        return kind in kinds and draw(st.booleans())

    def pick(kind: str, usual: list[str]) -> str:
        return draw(st.sampled_from(_ODD[kind] if odd(kind) else usual))

    def num() -> str:
        return draw(st.sampled_from(_ODD["number"]) if odd("number") else _PRINTED)

    def pct() -> str:
        return "-nan" if draw(st.integers(0, 3)) == 0 else num()

    def time() -> str:
        return num() + pick("time", ["us", "ms", "s"])

    def count() -> str:
        return num() + pick("count", ["", "k", "M", "G"])

    def size() -> str:
        return num() + pick("size", ["", "K", "M", "G", "T"]) + "B"

    def extra() -> list[str]:
        usual = ["lua init: thread started", "response: 200 OK", "", "{'status': 200}"]
        return [pick("line", usual) for _ in range(draw(st.integers(0, 2)))]

    url = pick("url", ["http://127.0.0.1:58953/", "http://host/a b?q=1"])
    lines = extra()
    lines.append(f"Running {draw(st.integers(0, 99))}{draw(st.sampled_from('smh'))} test @ {url}")
    lines.append(
        f"{draw(st.integers(0, 64))} threads and {draw(st.integers(0, 10**4))} connections"
    )
    lines += extra()
    lines.append("Thread Stats   Avg      Stdev     Max   +/- Stdev")
    lines.append(f"Latency {time()} {time()} {time()} {pct()}%")
    lines.append(f"Req/Sec {count()} {count()} {count()} {pct()}%")
    if draw(st.booleans()):
        lines.append("Latency Distribution")
        pcts = ["50", "75", "90", "99"]
        if odd("percentiles"):
            pcts = draw(st.lists(st.sampled_from(_ODD["percentiles"]), max_size=6))
        times = [time() for _ in pcts]
        exact = [_exact_ms(t) for t in times]
        if not odd("order") and None not in exact:  # as wrk prints them: non-decreasing
            times = [t for _, t in sorted(zip(exact, times, strict=True), key=lambda x: x[0])]
        lines += [f"{p}% {t}" for p, t in zip(pcts, times, strict=True)]
    lines.append(f"{draw(st.integers(0, 10**9))} requests in {time()}, {size()} read")
    n = st.integers(-1, 10**6)  # the grammar reads a negative error count
    errors = [
        f"Socket errors: connect {draw(n)}, read {draw(n)}, write {draw(n)}, timeout {draw(n)}"
    ]
    errors.append(
        f"Non-2xx or 3xx responses: {draw(n if odd('errors') else st.integers(0, 10**6))}"
    )
    if odd("errors"):  # any order, any number of times: the grammar's last one counts
        errors = draw(st.lists(st.sampled_from(errors), max_size=3))
    lines += [e for e in errors if draw(st.booleans())]
    lines += [f"Requests/sec: {num()}", f"Transfer/sec: {size()}", *extra()]

    # Layout: indentation, spacing between fields, trailing blanks, blank lines, endings.
    spaces = ["", " ", "    "]
    out = []
    for line in lines:
        # Single spaces inside these, as wrk prints them and the grammar wants them.
        fixed = line.startswith(("Socket", "Non-2xx", "Latency Distribution"))
        words = [line] if fixed else line.split(" ")
        if draw(st.integers(0, 9)) == 0:
            out.append(pick("blank", spaces))
        sep = pick("spacing", ["  ", " ", "   "]) if len(words) > 1 else ""
        out.append(pick("indent", spaces) + sep.join(words) + pick("trailing", spaces))
    if odd("ctrl-c"):  # where a terminal echoes it: at a line's start or end
        at = draw(st.integers(0, len(out) - 1))
        out[at] = draw(st.sampled_from(["^C" + out[at], out[at] + "^C"]))
    ending = pick("ending", ["\n"])
    return ending.join(out) + draw(st.sampled_from(["", ending])), plain


_FIGURE = re.compile(r"(-?[\d.]+|-?nan)([A-Za-z%]*)")  # a number and its unit
_SPACES = re.compile(" +")


def _one_edit_variants(text: str) -> list[str]:
    """The text with one thing changed: a line inserted, a number, unit, indentation,
    spacing or line end replaced by an odd one, a "^C" echoed, another line ending."""
    lines = text.split("\n")
    out = [text.replace("\n", ending) for ending in _ODD["ending"]]

    def edit(i: int, start: int, end: int, new: str) -> None:
        out.append(
            "\n".join([*lines[:i], lines[i][:start] + new + lines[i][end:], *lines[i + 1 :]])
        )

    units = sorted({*_ODD["time"], *_ODD["count"], *_ODD["size"]})
    whitespace = sorted({*_ODD["indent"], *_ODD["trailing"], *_ODD["blank"], "^C"})
    for i, line in enumerate(lines):
        out += ["\n".join([*lines[:i], odd, *lines[i:]]) for odd in _ODD["line"]]
        for m in _FIGURE.finditer(line):
            for num in _ODD["number"]:
                edit(i, m.start(1), m.end(1), num)
            for unit in units:
                edit(i, m.start(2), m.end(2), unit)
        for m in _SPACES.finditer(line):
            for sep in _ODD["spacing"]:
                edit(i, m.start(), m.end(), sep)
        for ws in whitespace:
            edit(i, 0, 0, ws)
            edit(i, len(line), len(line), ws)
    return out


@pytest.mark.parametrize(
    "name",
    [
        "wrk410-ok-latency-t2-c20.txt",
        "wrk410-read-errors-no-content-length.txt",
        "wrk410-non2xx-404.txt",
        "wrk410-zero-requests-nan.txt",
        "wrk410-lua-prints-before-after.txt",
    ],
)
def test_fast_path_equals_line_grammar_on_one_edit_variants(name: str) -> None:
    variants = _one_edit_variants(TEXTS[name])
    taken = sum(_assert_paths_agree(text) is not None for text in variants)
    assert 0 < taken < len(variants)


@settings(max_examples=300, deadline=None)
@given(wrk_outputs())
def test_fast_path_equals_line_grammar_on_generated_outputs(drawn: tuple[str, bool]) -> None:
    text, plain = drawn
    fast = _assert_paths_agree(text)
    if plain:
        assert fast is not None  # wrk 4.x's own layout: the fast path reads it


@settings(max_examples=300, deadline=None)
@given(st.one_of(mutated(), wrk_outputs().map(lambda drawn: drawn[0])))
def test_percentile_maps_of_any_text_are_monotonic(text: str) -> None:
    try:
        result = parse_wrk(text)
    except RawFormatError:
        return
    _assert_ordered(result)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"a", b"\xc3", b"\xa9", b"\xff"])))
def test_read_text_matches_text_mode(chunks: list[bytes]) -> None:
    # Around read_text's 8 KiB chunks too: a CR or a UTF-8 sequence split between two.
    data = b"".join(chunks)
    with tempfile.TemporaryDirectory() as tmp:
        for pad in (0, 8192 - len(data) // 2):
            path = Path(tmp) / "out.txt"
            path.write_bytes(b"x" * pad + data)
            assert read_text(path) == path.read_text(encoding="utf-8", errors="replace")


# --- package surface and command line ---------------------------------------------------


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_import_parse_wrk_does_not_import_pandas() -> None:
    code = "import sys; from harness import parse_wrk; print('pandas' in sys.modules)"
    assert _python("-c", code).stdout.strip() == "False"


def test_cli_parse_prints_json_and_errors() -> None:
    good = "tests/fixtures/wrk/wrk410-non2xx-404.txt"
    bad = "tests/fixtures/wrk/broken-missing-requests-line.expect-error.txt"
    wrk2 = "tests/fixtures/wrk/crafted-wrk2-no-latency-flag.txt"
    proc = _python("-m", "harness", "parse", good, bad, wrk2)
    assert proc.returncode == 1
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(o["path"], o["tool"], o["requests"]) for o in out] == [
        (good, "wrk", 1413),
        (wrk2, "wrk2", 5001),
    ]
    assert out[0]["non_2xx_3xx"] == 1413
    assert proc.stderr == f"{bad}:6: {BROKEN[Path(bad).name][1]}\n"


def test_cli_parse_ok_exits_zero_and_missing_file_is_one_line() -> None:
    assert (
        _python("-m", "harness", "parse", "tests/fixtures/wrk/wrk410-ok-t1-c10.txt").returncode == 0
    )
    proc = _python("-m", "harness", "parse", "no/such/file.txt")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == "no/such/file.txt: cannot read: No such file or directory\n"
