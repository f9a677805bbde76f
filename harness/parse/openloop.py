"""Parse stage: the open-loop client's report (harness/bench/lua/openloop.lua) -> one
`OpenLoopResult`.

The report is one JSON object that wrk's `done()` hook writes beside wrk's untouched
stdout (`.open.json`): the offered rate, what was sent and answered over which window,
wrk's error counters, and three histograms of microseconds in ~1 % wide log buckets
(`[[lower bound, count], ...]`): the corrected latency (from when each request was
due), the uncorrected one (from when it was sent) and the send lag (how late it was
sent). Percentiles are read from the histograms here: the rank ⌈q·n⌉ (at least 1) falls
in a bucket, and its upper edge (lower × 1.01, never above the recorded maximum) is the
value, as HdrHistogram reports "the highest value equivalent" to a bucket. No I/O but
`parse_openloop_file` reading the one file; no pandas.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness.parse.records import RawFormatError

KIND = "open-loop"
PERCENTILES = (50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 99.999)
BUCKET_STEP = math.log(1.01)  # openloop.lua's bucket width


@dataclass(frozen=True, slots=True)
class OpenLoopResult:
    """One open-loop run as its report has it; latency in ms, rates in requests/s."""

    offered_rate_rps: float
    connections: int
    duration_s: float  # wrk's run time (its summary.duration)
    window_s: float  # from the first request due to the last answer
    requests: int  # completed, as wrk counts them
    sent: int
    answered: int
    achieved_rate_rps: float  # answered / window
    sent_early: int  # sent before they were due (wrk's millisecond timer), at most 1 ms
    bytes_read: int
    errors_connect: int
    errors_read: int
    errors_write: int
    errors_timeout: int
    non_2xx_3xx: int  # wrk's status errors: every status above 399
    latency_mean_ms: float | None  # corrected
    latency_max_ms: float | None
    latency_percentiles_ms: Mapping[float, float]  # corrected: 50.0 -> ms
    latency_uncorrected_mean_ms: float | None
    latency_uncorrected_max_ms: float | None
    latency_uncorrected_percentiles_ms: Mapping[float, float]
    send_lag_max_ms: float | None
    send_lag_percentiles_ms: Mapping[float, float]
    tool: str = "wrk+openloop.lua"

    @property
    def achieved_share(self) -> float | None:
        """Achieved over offered rate (1.0: all of it)."""
        return self.achieved_rate_rps / self.offered_rate_rps if self.offered_rate_rps else None

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = {f"{k:g}": x for k, x in v.items()} if isinstance(v, Mapping) else v
        return out


def percentile(histogram: Sequence[Sequence[float]], q: float, maximum: float | None) -> float:
    """The q-th percentile (µs) of `[[lower, count], ...]` sorted by lower bound."""
    total = sum(c for _, c in histogram)
    if total <= 0:
        return math.nan
    rank = max(1, math.ceil(q / 100 * total - 1e-9))
    seen = 0.0
    for lower, count in histogram:
        seen += count
        if seen >= rank:
            upper = max(lower + 1.0, lower * math.exp(BUCKET_STEP))
            return min(upper, maximum) if maximum is not None else upper
    return math.nan  # not reached: seen ends at total


def _number(doc: Mapping[str, Any], key: str, path: str, whole: bool = False) -> Any:
    v = doc.get(key)
    ok = isinstance(v, int) if whole else isinstance(v, int | float)
    if v is None or isinstance(v, bool) or not ok:
        want = "a whole number" if whole else "a number"
        raise RawFormatError(f"{key}: expected {want}, found {v!r}", path=path)
    return v


def _count(errors: Mapping[str, Any], key: str, path: str) -> int:
    v = errors.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise RawFormatError(f"errors.{key}: expected a whole number, found {v!r}", path=path)
    return v


def _histogram(doc: Mapping[str, Any], key: str, path: str) -> tuple[list[list[float]], Any]:
    part = doc.get(key)
    if not isinstance(part, dict):
        raise RawFormatError(f"{key}: expected an object", path=path)
    hist = part.get("histogram")
    if not isinstance(hist, list) or not all(
        isinstance(b, list) and len(b) == 2 and all(isinstance(x, int | float) for x in b)
        for b in hist
    ):
        raise RawFormatError(f"{key}.histogram: expected [[lower, count], ...]", path=path)
    lowers = [b[0] for b in hist]
    if lowers != sorted(lowers) or any(b[1] < 0 for b in hist):
        raise RawFormatError(f"{key}.histogram: expected increasing lower bounds", path=path)
    return hist, part


def _ms(us: Any) -> float | None:
    return None if not isinstance(us, int | float) or isinstance(us, bool) else us / 1000


def _pcts(hist: list[list[float]], maximum: Any) -> dict[float, float]:
    top = maximum if isinstance(maximum, int | float) else None
    out = {}
    for q in PERCENTILES:
        v = percentile(hist, q, top)
        if not math.isnan(v):
            out[q] = v / 1000
    return out


def parse_openloop(text: str | bytes, path: str = "") -> OpenLoopResult:
    """The report's JSON text -> OpenLoopResult; RawFormatError naming what is wrong."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RawFormatError(f"expected the open-loop report's JSON: {e}", path=path) from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise RawFormatError(f"expected a JSON object of kind {KIND!r}", path=path)
    errors = doc.get("errors")
    if not isinstance(errors, dict):
        raise RawFormatError("errors: expected an object", path=path)
    corrected, c = _histogram(doc, "corrected_us", path)
    uncorrected, u = _histogram(doc, "uncorrected_us", path)
    lag, lg = _histogram(doc, "send_lag_us", path)
    window_us = _number(doc, "window_us", path)
    answered = _number(doc, "answered", path, whole=True)
    window_s = window_us / 1e6
    return OpenLoopResult(
        offered_rate_rps=float(_number(doc, "offered_rate", path)),
        connections=_number(doc, "connections", path, whole=True),
        duration_s=_number(doc, "duration_us", path) / 1e6,
        window_s=window_s,
        requests=_number(doc, "requests", path, whole=True),
        sent=_number(doc, "sent", path, whole=True),
        answered=answered,
        achieved_rate_rps=answered / window_s if window_s > 0 else 0.0,
        sent_early=_number(doc, "sent_early", path, whole=True),
        bytes_read=_number(doc, "bytes", path, whole=True),
        errors_connect=_count(errors, "connect", path),
        errors_read=_count(errors, "read", path),
        errors_write=_count(errors, "write", path),
        errors_timeout=_count(errors, "timeout", path),
        non_2xx_3xx=_count(errors, "status", path),
        latency_mean_ms=_ms(c.get("mean")),
        latency_max_ms=_ms(c.get("max")),
        latency_percentiles_ms=_pcts(corrected, c.get("max")),
        latency_uncorrected_mean_ms=_ms(u.get("mean")),
        latency_uncorrected_max_ms=_ms(u.get("max")),
        latency_uncorrected_percentiles_ms=_pcts(uncorrected, u.get("max")),
        send_lag_max_ms=_ms(lg.get("max")),
        send_lag_percentiles_ms=_pcts(lag, lg.get("max")),
    )


def parse_openloop_file(path: str | Path) -> OpenLoopResult:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise RawFormatError(f"cannot read: {e.strerror}", path=str(p)) from None
    return parse_openloop(data, str(p))


def is_openloop_report(data: bytes) -> bool:
    """Whether `data` looks like an open-loop report (import-logs sorts files by it)."""
    head = data.lstrip()[:200]
    return head.startswith(b"{") and b'"kind": "open-loop"' in head
