"""Records stage: the typed, frozen result of parsing one wrk run, and the error type.

Shared by the parser (which builds `WrkResult`) and the table stage (which reads it);
imports nothing but the standard library. Units are in the field names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from os import PathLike
from typing import Any

from harness.errors import UserError


class RawFormatError(UserError, ValueError):
    """A raw file that cannot be read; `str()` is one line: `path:line: message`."""

    def __init__(self, message: str, line: int | None = None, path: str | None = None):
        super().__init__(message, line, path)
        self.message, self.line, self.path = message, line, path

    def __str__(self) -> str:
        where = ":".join(str(x) for x in (self.path, self.line) if x is not None)
        return f"{where}: {self.message}" if where else self.message

    def at(self, path: str | PathLike[str]) -> RawFormatError:
        """The same error, naming the file it came from."""
        return RawFormatError(self.message, self.line, str(path))


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk summary as printed (rounded by wrk); docs/schema.md describes each field.

    None means wrk did not print it (the text began at "Thread Stats", or a wrk2 build
    printed a 99% column instead of Max); the error counts are 0 when their line is
    absent, because wrk prints it only when non-zero. Every percentile map is sorted by
    its quantile and never decreases in it (checked here, refused by the parser).
    """

    tool: str  # "wrk", or "wrk2" when a line only wrk2 prints appears
    url: str | None
    threads: int | None
    connections: int | None  # as requested; wrk opens threads * (connections // threads)
    test_duration_s: float | None  # "Running 10s test": the -d asked for, rounded to s or m
    duration_s: float  # "N requests in 10.01s": the run time measured
    requests: int
    bytes_read: float
    requests_per_sec: float
    transfer_per_sec_bytes: float
    latency_avg_ms: float
    latency_stdev_ms: float
    latency_max_ms: float | None  # None: the wrk2 build printed its 99% column instead
    latency_within_stdev_pct: float
    thread_requests_per_sec_avg: float
    thread_requests_per_sec_stdev: float
    thread_requests_per_sec_max: float | None
    thread_requests_per_sec_within_stdev_pct: float
    latency_percentiles_ms: dict[float, float]  # 50.0 -> ms as printed; empty without --latency
    latency_uncorrected_percentiles_ms: dict[float, float]  # wrk2 -U only
    latency_spectrum_ms: dict[float, float]  # wrk2's detailed HdrHistogram spectrum: 99.0625 -> ms
    latency_uncorrected_spectrum_ms: dict[float, float]  # the same for wrk2 -U
    errors_connect: int = 0
    errors_read: int = 0
    errors_write: int = 0
    errors_timeout: int = 0
    non_2xx_3xx: int = 0

    def __post_init__(self) -> None:
        if self.tool not in ("wrk", "wrk2"):
            raise ValueError(f"tool must be 'wrk' or 'wrk2', got {self.tool!r}")
        for name in _PERCENTILE_MAPS:
            pcts = getattr(self, name)
            if pcts and not _ordered(pcts):  # most are empty: a parse-time cost otherwise
                raise ValueError(f"{name} must be sorted and non-decreasing in its quantile")

    def to_json_dict(self) -> dict[str, Any]:
        """Fields as JSON-safe values: NaN -> None, percentile keys as '50', '99.9'."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, dict):
                v = {f"{k:g}": _json_float(x) for k, x in v.items()}
            out[f.name] = _json_float(v) if isinstance(v, float) else v
        return out


_PERCENTILE_MAPS = (
    "latency_percentiles_ms",
    "latency_uncorrected_percentiles_ms",
    "latency_spectrum_ms",
    "latency_uncorrected_spectrum_ms",
)


def _ordered(pcts: dict[float, float]) -> bool:
    """Quantiles ascending and latencies non-decreasing with them (NaN is neither)."""
    prev_q, prev_v = -math.inf, -math.inf
    for q, v in pcts.items():
        if not (q > prev_q and v >= prev_v):  # False for NaN too
            return False
        prev_q, prev_v = q, v
    return True


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else x
