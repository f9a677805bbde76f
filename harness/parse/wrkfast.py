"""Parse stage: the fast path of the wrk parser — wrk 4.x's usual layout in one regex.

`fast_path(text)` returns the same `WrkResult` the line grammar (harness/parse/wrk.py)
would, about twice as fast, or None for anything it does not read exactly as the
grammar does; `parse_wrk` then lets the grammar decide. tests/test_parse.py checks
that both give the same record, float bits included.
"""

from __future__ import annotations

from harness.parse.records import WrkResult
from harness.parse.wrkunits import COUNT, SIZE_SCALE, TIME_MS, TIME_S, ascii_re, scaled

# The fast path: wrk 4.x's layout as one regex (see the module docstring). Fields are
# separated by spaces only, so the grammar's strip() and \s+ find the same fields; a tab,
# CR or any other whitespace falls back. `_NL` ends a line: its trailing spaces, blank
# lines (the grammar skips them) and the next line's indentation. Lua may print lines
# before "Running" and between the threads and Thread Stats lines: `_OTHER_LINES` skips
# those the grammar skips there, starting with none of the words it looks for (so no
# wrk2 calibration or "Test Results" line) nor with a digit (a requests line, or a
# threads line without its Running line). Whatever follows Transfer/sec is ignored, as
# by the grammar; a fork's extra table row or percentiles out of order fall back.
# Numbers are those wrk prints, a subset of `NUM` (a percentage may be "-nan"), for
# fewer regex steps; "+1", ".5" or "inf" fall back.
# So are units: those that only shift the decimal point, `float(num + exp)` exactly as
# `scaled` computes them; a latency in minutes or hours ("1000.00m" too) falls back.
_S = "[ ]++"
_NL = "[ ]*+\\n[ \\n]*+"
_OTHER_LINES = (
    "(?:(?!Running|Test Results|Thread|Latency|Req/Sec|Socket|Non-2xx|Requests/sec|Transfer/sec)"
    "[!-/:-~][^\\n]*+\\n[ \\n]*+)*+"
)
_F_NUM = r"\d+\.?\d*"
_F_TIME = rf"({_F_NUM})(us|ms|s)"
_F_MS = {unit: exp for unit, (exp, factor) in TIME_MS.items() if factor == 1}
_F_S = {unit: exp for unit, (exp, factor) in TIME_S.items() if factor == 1}
_F_COUNT = {unit: exp for unit, (exp, factor) in COUNT.items() if factor == 1}
_F_COUNTS = rf"({_F_NUM})([kMGTP]?)"
_F_SIZE = rf"({_F_NUM})([KMGTP]?)B"
_F_PCT = rf"(-?(?:{_F_NUM}|nan))%"
_FAST = ascii_re(
    rf"[ \n]*+{_OTHER_LINES}"
    rf"Running{_S}(\d+)(s|m|h){_S}test{_S}@{_S}([!-~]++(?:{_S}[!-~]++)*+){_NL}"
    rf"(\d+){_S}threads{_S}and{_S}(\d+){_S}connections{_NL}{_OTHER_LINES}"
    rf"Thread{_S}Stats{_S}Avg{_S}Stdev{_S}Max{_S}\+/-{_S}Stdev{_NL}"
    rf"Latency{_S}{_F_TIME}{_S}{_F_TIME}{_S}{_F_TIME}{_S}{_F_PCT}{_NL}"
    rf"Req/Sec{_S}{_F_COUNTS}{_S}{_F_COUNTS}{_S}{_F_COUNTS}{_S}{_F_PCT}{_NL}"
    # --latency: wrk 4.x prints these four percentiles, in this order; others fall back.
    rf"(?:Latency Distribution{_NL}50%{_S}{_F_TIME}{_NL}75%{_S}{_F_TIME}{_NL}"
    rf"90%{_S}{_F_TIME}{_NL}99%{_S}{_F_TIME}{_NL})?"
    rf"(\d+){_S}requests{_S}in{_S}{_F_TIME},{_S}{_F_SIZE}{_S}read{_NL}"
    rf"(?:Socket errors:{_S}"
    rf"connect (-?\d+), read (-?\d+), write (-?\d+), timeout (-?\d+){_NL})?"
    rf"(?:Non-2xx or 3xx responses:{_S}(\d+){_NL})?"
    rf"Requests/sec:{_S}({_F_NUM}){_NL}"
    rf"Transfer/sec:{_S}{_F_SIZE}[ ]*+(?:\n|\Z)"
)


def fast_path(text: str) -> WrkResult | None:
    """The record for wrk 4.x's usual layout, in one match; None for anything else."""
    m = _FAST.match(text.replace("^C", ""))
    if m is None:
        return None
    g = m.groups()
    test_s, test_unit, url, threads, connections = g[:5]
    lat_avg, lat_avg_unit, lat_sd, lat_sd_unit, lat_max, lat_max_unit, lat_pct = g[5:12]
    rps_avg, rps_avg_unit, rps_sd, rps_sd_unit, rps_max, rps_max_unit, rps_pct = g[12:19]
    p50, p50_unit, p75, p75_unit, p90, p90_unit, p99, p99_unit = g[19:27]
    requests, run_s, run_unit, read, read_unit = g[27:32]
    connect_errors, read_errors, write_errors, timeout_errors, non2xx = g[32:37]
    total, transfer, transfer_unit = g[37:]
    # int() in the grammar's order: for a number too long for int(), the same error first.
    n_threads, n_connections = int(threads), int(connections)
    ms, count = _F_MS, _F_COUNT
    percentiles = (
        {}
        if p50 is None
        else {
            50.0: float(p50 + ms[p50_unit]),
            75.0: float(p75 + ms[p75_unit]),
            90.0: float(p90 + ms[p90_unit]),
            99.0: float(p99 + ms[p99_unit]),
        }
    )
    if percentiles and not (
        percentiles[50.0] <= percentiles[75.0] <= percentiles[90.0] <= percentiles[99.0]
    ):
        return None  # the grammar names the line that breaks the order
    errors = (0, 0, 0, 0)
    if connect_errors is not None:
        errors = (int(connect_errors), int(read_errors), int(write_errors), int(timeout_errors))
    n_non2xx = 0 if non2xx is None else int(non2xx)
    # Positional, in the order of WrkResult's fields: a third cheaper than by keyword.
    return WrkResult(
        "wrk",
        url,
        n_threads,
        n_connections,
        scaled(test_s, TIME_S[test_unit]),
        float(run_s + _F_S[run_unit]),
        int(requests),
        float(read) * SIZE_SCALE[read_unit],
        float(total),
        float(transfer) * SIZE_SCALE[transfer_unit],
        float(lat_avg + ms[lat_avg_unit]),
        float(lat_sd + ms[lat_sd_unit]),
        float(lat_max + ms[lat_max_unit]),
        float(lat_pct),
        float(rps_avg + count[rps_avg_unit]),
        float(rps_sd + count[rps_sd_unit]),
        float(rps_max + count[rps_max_unit]),
        float(rps_pct),
        percentiles,
        {},
        {},
        {},
        *errors,
        n_non2xx,
    )
