"""Parse stage: the text wrk or wrk2 printed -> one `WrkResult`.

`parse_wrk(text)` is pure (no I/O, nothing heavier than `re` imported), so a parse test
needs neither pandas nor wrk. `parse_wrk_file(path)` reads a file and attaches its path
to any `RawFormatError`. The grammar mirrors wrk 4.1's src/wrk.c and src/units.c and
wrk2's print_hdr_latency(); docs/schema.md documents every field.

The wrk family as people paste it is read too:
- a text whose "Running …" line was cut off keeps threads and connections from the
  "N threads and M connections" line, when that line comes before Thread Stats;
- a fork's extra row in the Thread Stats table (`TTFB  1.2ms  0.4ms  5.6ms  80.00%`: a
  name, three values, a percentage) is accepted and ignored: the record has no field
  for it, and its meaning is the fork's;
- wrk2 builds that print `Test Results @ <url>` before the table and a `99%` column
  where wrk prints `Max` (DeathStarBench's wrk2): the URL is the one under test, the
  maxima are None (not printed), and the Latency row's 99% value is the 99th
  percentile when no Latency Distribution line gives it (they print the same number);
- wrk2's summary percentiles stay as printed in `latency_percentiles_ms`; its detailed
  HdrHistogram spectrum goes to `latency_spectrum_ms` (and the `-U` block's to the
  `uncorrected` twins): two views of one histogram, rounded differently, never merged.
A percentile map that decreases in its quantile is not what any of them prints: it
is refused with the line that breaks the order, never published.

Two paths, one result. `line_grammar` is the grammar: line by line, it reads every
layout wrk, wrk2, a Lua script or a terminal paste produce, and names the line that is
wrong. A site build parses every raw file, thousands, and the grammar's Python per line
is most of that cost; so `parse_wrk` first tries `fast_path` (harness/parse/wrkfast.py),
one compiled regex that matches the whole text as wrk 4.x prints it (Lua lines around
it, the --latency block and the error lines included) and is about twice as fast. It
accepts only what the grammar reads the same way (spaces as the only whitespace, no wrk2
line, numbers and units as wrk prints them) and converts with the same tables; for
anything else (wrk2's output, tabs or CRs, a latency in minutes, every error) it returns
None and the grammar decides. tests/test_parse.py checks that both paths give the same
record, float bits included, on real captures and generated texts.
"""

from __future__ import annotations

import math
import re
from os import PathLike
from typing import Any

from harness.parse.records import RawFormatError, WrkResult
from harness.parse.wrkfast import fast_path
from harness.parse.wrkunits import (
    COUNT,
    COUNTS,
    NUM,
    PCT,
    SIZE,
    SIZE_SCALE,
    TIME,
    TIME_S,
    ascii_re,
    ms,
    scaled,
)

__all__ = ["RawFormatError", "WrkResult", "parse_wrk", "parse_wrk_file"]

_RUNNING = ascii_re(r"Running\s+(\d+)(s|m|h)\s+test\s+@\s+(\S.*)")
_THREADS = ascii_re(r"(\d+)\s+threads\s+and\s+(\d+)\s+connections")
_TEST_RESULTS = ascii_re(r"Test\s+Results\s+@\s+(\S.*)")  # DeathStarBench's wrk2
# The third column is "Max" in wrk and wrk2, "99%" in DeathStarBench's wrk2.
_THREAD_STATS = ascii_re(r"Thread\s+Stats\s+Avg\s+Stdev\s+(Max|99%)\s+\+/-\s+Stdev")
_LATENCY = ascii_re(rf"Latency\s+{TIME}\s+{TIME}\s+{TIME}\s+{PCT}")
_REQ_SEC = ascii_re(rf"Req/Sec\s+{COUNTS}\s+{COUNTS}\s+{COUNTS}\s+{PCT}")
# A fork's own row in the table: a name, three numbers with any unit, a percentage.
_VALUE = rf"{NUM}[A-Za-z]*"
_EXTRA_ROW = ascii_re(
    rf"(?!Latency\s|Req/Sec\s)[A-Za-z][\w/-]*\s+{_VALUE}\s+{_VALUE}\s+{_VALUE}\s+{PCT}"
)
_PERCENTILE = ascii_re(rf"(\d+(?:\.\d+)?)%\s+{TIME}")
_HDR_HEADING = ascii_re(r"Latency Distribution \(HdrHistogram - (.*)\)")
_SPECTRUM_ROW = ascii_re(rf"({NUM})\s+([01]\.\d+)\s+\d+\s+{NUM}")
_SPECTRUM_NOISE = ascii_re(
    r"Detailed Percentile spectrum:|Value\s+Percentile\s+TotalCount.*|#\[.*\]|-+"
)
_REQUESTS = ascii_re(rf"(\d+)\s+requests\s+in\s+{TIME},\s+{SIZE}\s+read")
_SOCKET = ascii_re(
    r"Socket errors:\s+connect (-?\d+), read (-?\d+), write (-?\d+), timeout (-?\d+)"
)
_NON2XX = ascii_re(r"Non-2xx or 3xx responses:\s+(\d+)")
_RPS = ascii_re(rf"Requests/sec:\s+({NUM})")
_TRANSFER = ascii_re(rf"Transfer/sec:\s+{SIZE}")

_W_RUNNING = "'Running <duration> test @ <url>'"
_W_THREADS = "'<N> threads and <N> connections'"
_W_STATS = "'Thread Stats   Avg      Stdev     Max   +/- Stdev'"
_W_LATENCY = "'Latency <time> <time> <time> <percent>%'"
_W_REQ_SEC = "'Req/Sec <count> <count> <count> <percent>%'"
_W_REQUESTS = "'<N> requests in <time>, <size> read'"
_W_PERCENTILE = f"'<percent>% <time>' or {_W_REQUESTS}"
_W_SOCKET = "'Socket errors: connect <N>, read <N>, write <N>, timeout <N>'"
_W_NON2XX = "'Non-2xx or 3xx responses: <N>'"
_W_RPS = "'Requests/sec: <number>'"
_W_TRANSFER = "'Transfer/sec: <size>'"
# A line starting like a summary line but not matching it is unreadable, not misplaced:
# say what that line should look like.
_PREFIXES = (
    ("Running", _RUNNING, _W_RUNNING),
    ("Latency ", _LATENCY, _W_LATENCY),
    ("Req/Sec", _REQ_SEC, _W_REQ_SEC),
    ("Socket errors", _SOCKET, _W_SOCKET),
    ("Non-2xx", _NON2XX, _W_NON2XX),
    ("Requests/sec", _RPS, _W_RPS),
    ("Transfer/sec", _TRANSFER, _W_TRANSFER),
)
_SUMMARY_STARTS = tuple(p for p, _, _ in _PREFIXES[1:])


def _unexpected(lines: list[str], i: int, what: str) -> RawFormatError:
    if i >= len(lines):
        last = len(lines)
        while last and not lines[last - 1]:
            last -= 1
        return RawFormatError(f"expected {what}, found end of text", last + 1)
    s = lines[i]
    for prefix, regex, fmt in _PREFIXES:
        if s.startswith(prefix) and not regex.fullmatch(s):
            what = fmt
            break
    shown = s if len(s) <= 80 else s[:77] + "..."
    return RawFormatError(f"expected {what}, found {shown!r}", i + 1)


def _skip_blank(lines: list[str], i: int) -> int:
    while i < len(lines) and not lines[i]:
        i += 1
    return i


def _expect(
    lines: list[str], i: int, regex: re.Pattern[str], what: str
) -> tuple[re.Match[str], int]:
    i = _skip_blank(lines, i)
    m = regex.fullmatch(lines[i]) if i < len(lines) else None
    if m is None:
        raise _unexpected(lines, i, what)
    return m, i + 1


def parse_wrk(text: str) -> WrkResult:
    """Parse one wrk/wrk2 stdout. Raises RawFormatError naming the line that is wrong."""
    result = fast_path(text)
    return result if result is not None else line_grammar(text)


def line_grammar(text: str) -> WrkResult:
    """The grammar: any layout it reads, or the RawFormatError naming the wrong line."""
    # A terminal echoes Ctrl-C as "^C" wherever the cursor was; wrk never prints it.
    # split("\n") + strip(): CRLF, tabs and indentation go; line numbers match an editor's.
    lines = [s.strip() for s in text.replace("^C", "").split("\n")]
    i, head, wrk2, p99_column = _header(lines)
    i = _skip_extra_rows(lines, i + 1)
    lat, i = _expect(lines, i, _LATENCY, _W_LATENCY)
    lat_line = i - 1
    i = _skip_extra_rows(lines, i)
    rps, i = _expect(lines, i, _REQ_SEC, _W_REQ_SEC)
    i = _skip_extra_rows(lines, i)
    avg_ms = ms(lat[1], lat[2])
    if lat[2] == "m" and lat[1] == "1000.00":
        # 999.995..999.999 ms prints as "1000.00ms" and the 8-wide Avg column cuts it.
        avg_ms = 1000.0
    i, req, blocks, hdr = _latency_blocks(lines, i)
    percentiles = blocks[0]
    if p99_column and 99.0 not in percentiles:
        # The "99%" column is hdr_value_at_percentile(99), as the 99.000% line prints it.
        percentiles[99.0] = (ms(lat[5], lat[6]), lat_line)
    for block in blocks:
        _check_order(lines, block)
    errors = [0, 0, 0, 0]  # wrk prints these two lines only when non-zero
    non2xx = 0
    i += 1
    while (i := _skip_blank(lines, i)) < len(lines):
        if m := _SOCKET.fullmatch(lines[i]):
            errors = [int(x) for x in m.groups()]
        elif m := _NON2XX.fullmatch(lines[i]):
            non2xx = int(m[1])
        else:
            break
        i += 1
    total, i = _expect(lines, i, _RPS, _W_RPS)
    transfer, i = _expect(lines, i, _TRANSFER, _W_TRANSFER)
    # Whatever follows Transfer/sec was printed by a Lua done(): not ours to read.
    values = [{q: v for q, (v, _line) in sorted(block.items())} for block in blocks]
    return WrkResult(
        tool="wrk2" if wrk2 or hdr else "wrk",
        **head,
        duration_s=scaled(req[2], TIME_S[req[3]]),
        requests=int(req[1]),
        bytes_read=float(req[4]) * SIZE_SCALE[req[5]],
        requests_per_sec=float(total[1]),
        transfer_per_sec_bytes=float(transfer[1]) * SIZE_SCALE[transfer[2]],
        latency_avg_ms=avg_ms,
        latency_stdev_ms=ms(lat[3], lat[4]),
        latency_max_ms=None if p99_column else ms(lat[5], lat[6]),
        latency_within_stdev_pct=float(lat[7]),
        thread_requests_per_sec_avg=scaled(rps[1], COUNT[rps[2]]),
        thread_requests_per_sec_stdev=scaled(rps[3], COUNT[rps[4]]),
        thread_requests_per_sec_max=None if p99_column else scaled(rps[5], COUNT[rps[6]]),
        thread_requests_per_sec_within_stdev_pct=float(rps[7]),
        latency_percentiles_ms=values[0],
        latency_uncorrected_percentiles_ms=values[1],
        latency_spectrum_ms=values[2],
        latency_uncorrected_spectrum_ms=values[3],
        errors_connect=errors[0],
        errors_read=errors[1],
        errors_write=errors[2],
        errors_timeout=errors[3],
        non_2xx_3xx=non2xx,
    )


def _header(lines: list[str]) -> tuple[int, dict[str, Any], bool, bool]:
    """Up to the Thread Stats line: its index, the Running/threads facts, whether a wrk2
    line was seen, and whether the table's third column is "99%" instead of "Max"."""
    head: dict[str, Any] = dict.fromkeys(("url", "threads", "connections", "test_duration_s"))
    wrk2 = running = False
    i, n = 0, len(lines)
    # Lines before "Running" come from a Lua setup()/init(), lines after "connections"
    # from wrk2's calibration or a Lua request()/response(): skip them.
    while i < n and not (stats := _THREAD_STATS.fullmatch(lines[i])):
        s = lines[i]
        if s.startswith("Running") and (m := _RUNNING.fullmatch(s)):
            head.update(test_duration_s=scaled(m[1], TIME_S[m[2]]), url=m[3])
            t, i = _expect(lines, i + 1, _THREADS, _W_THREADS)
            head.update(threads=int(t[1]), connections=int(t[2]))
            running = True
            continue
        if s.startswith("Thread calibration:"):
            wrk2 = True
        elif s.startswith("Test Results") and (m := _TEST_RESULTS.fullmatch(s)):
            head["url"], wrk2 = m[1], True  # the URL these results are for
        elif not running and s[:1].isdigit() and (m := _THREADS.fullmatch(s)):
            # The Running line was cut off (a paste): its second line still says these.
            head.update(threads=int(m[1]), connections=int(m[2]))
        elif s.startswith("Running"):
            raise _unexpected(lines, i, _W_RUNNING)
        elif s.startswith(_SUMMARY_STARTS) or _REQUESTS.fullmatch(s):
            raise _unexpected(lines, i, _W_STATS)
        i += 1
    if i == n:  # no Thread Stats line: a wrong file, or one cut short
        if head["url"] is None and head["threads"] is None:
            raise _unexpected(lines, _skip_blank(lines, 0), _W_RUNNING)
        raise _unexpected(lines, n, _W_STATS)
    p99_column = stats is not None and stats[1] == "99%"
    return i, head, wrk2 or p99_column, p99_column


def _skip_extra_rows(lines: list[str], i: int) -> int:
    """Past a fork's own rows of the Thread Stats table (and blank lines): ignored."""
    while (i := _skip_blank(lines, i)) < len(lines) and _EXTRA_ROW.fullmatch(lines[i]):
        i += 1
    return i


# Each percentile -> (ms, index of the line that printed it), to name a line out of order.
_Pcts = dict[float, tuple[float, int]]


def _latency_blocks(lines: list[str], i: int) -> tuple[int, re.Match[str], list[_Pcts], bool]:
    """Optional --latency blocks (wrk's, or wrk2's HdrHistogram ones) up to the requests
    line: its index and match, the four maps (recorded and uncorrected summary
    percentiles, recorded and uncorrected spectra), and whether wrk2's blocks appeared."""
    blocks: list[_Pcts] = [{}, {}, {}, {}]
    summary: _Pcts | None = None  # the block's percentile lines go here
    spectrum: _Pcts | None = None  # and its "Detailed Percentile spectrum" rows here
    in_spectrum = hdr = False
    while True:
        i = _skip_blank(lines, i)
        s = lines[i] if i < len(lines) else ""
        if in_spectrum and spectrum is not None and (m := _SPECTRUM_ROW.fullmatch(s)):
            # HdrHistogram prints the fraction with 6 decimals and the value in ms; a
            # fraction printed twice keeps its last (larger) value, as its percentile.
            spectrum[round(float(m[2]) * 100, 4)] = (float(m[1]), i)
        elif s.endswith("read") and (req := _REQUESTS.fullmatch(s)):
            return i, req, blocks, hdr
        elif summary is not None and (m := _PERCENTILE.fullmatch(s)):
            summary[float(m[1])] = (ms(m[2], m[3]), i)
        elif s == "Latency Distribution":
            summary, spectrum, in_spectrum = blocks[0], None, False
        elif m := _HDR_HEADING.fullmatch(s):
            hdr, in_spectrum = True, False
            recorded = m[1].startswith("Recorded")
            summary, spectrum = (blocks[0], blocks[2]) if recorded else (blocks[1], blocks[3])
        elif summary is not None and _SPECTRUM_NOISE.fullmatch(s):
            in_spectrum = in_spectrum or s.startswith("Detailed")
        else:
            raise _unexpected(lines, i, _W_REQUESTS if summary is None else _W_PERCENTILE)
        i += 1


def _check_order(lines: list[str], pcts: _Pcts) -> None:
    """Refuse a map whose latency decreases as the percentile grows, naming the line."""
    prev_ms, prev_line = -math.inf, -1
    for _q, (value, line) in sorted(pcts.items()):
        if math.isnan(value):
            raise _unexpected(lines, line, "a latency that is a number")
        if value < prev_ms:
            earlier = f"line {prev_line + 1}'s ({lines[prev_line]!r})"
            raise _unexpected(lines, line, f"a latency no lower than {earlier}")
        prev_ms, prev_line = value, line


def parse_wrk_file(path: str | PathLike[str]) -> WrkResult:
    """Read and parse one file; a RawFormatError then names the file. OSError passes."""
    text = read_text(path)
    try:
        return parse_wrk(text)
    except RawFormatError as e:
        raise e.at(path) from None


def read_text(path: str | PathLike[str]) -> str:
    """What `Path(path).read_text(encoding="utf-8", errors="replace")` returns, without a
    text-mode file: the bytes decoded at once, newlines translated as text mode does."""
    with open(path, "rb") as f:
        return decode_text(f.read())


def decode_text(data: bytes) -> str:
    """A file's bytes as text mode reads them (also for harness/tables/parsecache.py)."""
    # wrk prints ASCII; undecodable bytes become U+FFFD and fail the grammar, not the codec.
    text = data.decode("utf-8", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
