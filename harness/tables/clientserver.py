"""Server-side latency, analysis stage: one cell's server histogram beside wrk's view.

Takes a `HistogramSeries` (the cell's merged `.metrics.prom` delta) and wrk's side of
the cell (`ClientSide`, from the `.lua.json` report or the parsed stdout), and returns
plain dataclasses for a page and a figure: per-bucket densities, quantiles with their
buckets, the difference of means read as time outside the handler, Little's law as the
check, a bimodality flag and the bucket-resolution caveat. Pure; docs/server-latency.md.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.parse.prometheus import HistogramSeries
from harness.parse.promquantile import QUANTILES, histogram_quantile
from harness.parse.records import WrkResult
from harness.tables.flaginfo import LITTLE_HIGH, LITTLE_LOW, little_holds

VALLEY_RATIO = 0.25  # a valley is below a quarter of the smaller peak's density
MIN_MODE_SHARE = 0.10  # each mode holds at least this share of all observations
BIMODAL_RULE = (
    "Bimodal when some bucket's density (count ÷ width) is below a quarter of the highest "
    "density on each side of it, and the buckets on each side hold at least 10 % of all "
    "observations (the +Inf bucket, which has no width, counts for neither side)."
)
CAVEAT = (
    "Server-side quantiles are interpolated linearly inside histogram buckets, as "
    "Prometheus's histogram_quantile does: each is only known to lie somewhere in its "
    "bucket, and inside a wide bucket the interpolated value may be far from every real "
    "observation. Compare shapes bucket by bucket; read the interpolated values as ranges."
)


@dataclass(frozen=True)
class ClientSide:
    """wrk's view of the cell: completed requests, mean and percentiles in seconds."""

    requests: int
    duration_s: float
    mean_s: float | None
    percentiles_s: dict[str, float]
    histogram_us: tuple[tuple[float, float], ...] = ()  # (lower bound µs, count)

    @classmethod
    def from_lua_report(cls, report: Mapping[str, Any]) -> ClientSide:
        lat = report.get("latency_us") or {}
        pcts = lat.get("percentiles") or {}
        return cls(
            int(report["requests"]),
            float(report["duration_us"]) / 1e6,
            None if lat.get("mean") is None else float(lat["mean"]) / 1e6,
            {k: float(v) / 1e6 for k, v in pcts.items() if v is not None},
            tuple((float(lo), float(n)) for lo, n in report.get("latency_histogram_us") or ()),
        )

    @classmethod
    def from_wrk_result(cls, result: WrkResult) -> ClientSide:
        """From the printed summary (rounded by wrk) when no Lua report exists."""
        return cls(
            result.requests,
            result.duration_s,
            result.latency_avg_ms / 1e3,
            {f"{q:g}": ms / 1e3 for q, ms in result.latency_percentiles_ms.items()},
        )


@dataclass(frozen=True)
class BucketDensity:
    lower_s: float
    upper_s: float  # math.inf for the +Inf bucket
    count: float
    share: float
    density_per_s: float | None  # count ÷ width; None for +Inf (no width)
    pdf_per_s: float | None  # share ÷ width: comparable across cells
    client_count: float | None  # wrk's latencies in the same bounds (None: no histogram)
    client_pdf_per_s: float | None


@dataclass(frozen=True)
class QuantileInBucket:
    q: float
    value_s: float
    lower_s: float  # the bucket the interpolated value lies in
    upper_s: float


@dataclass(frozen=True)
class Bimodality:
    bimodal: bool
    valley: tuple[float, float] | None = None
    left_peak: tuple[float, float] | None = None
    right_peak: tuple[float, float] | None = None
    left_share: float | None = None
    right_share: float | None = None
    rule: str = BIMODAL_RULE


@dataclass(frozen=True)
class LittleCheck:
    """L = λ·W on both sides; the closed loop makes wrk's L the connection count."""

    connections: int
    throughput_rps: float
    in_flight: float  # λ × wrk's mean latency
    in_handler: float | None  # λ × the server's mean
    outside_handler: float | None  # λ × (difference of means)
    holds: bool


@dataclass(frozen=True)
class ClientServer:
    name: str
    labels: dict[str, str]
    server_count: float
    server_mean_s: float | None
    server_quantiles: tuple[QuantileInBucket, ...]
    buckets: tuple[BucketDensity, ...]
    bimodality: Bimodality
    client: ClientSide | None
    queueing_s: float | None  # wrk's mean − the server's mean
    little: LittleCheck | None
    warnings: tuple[str, ...]
    caveat: str = CAVEAT


def densities(series: HistogramSeries, client: ClientSide | None = None) -> list[BucketDensity]:
    """Per-bucket counts, shares and densities; wrk's histogram re-binned into the same bounds."""
    bounds = [le for le, _ in series.buckets]
    counts = [
        n - (series.buckets[i - 1][1] if i else 0.0) for i, (_, n) in enumerate(series.buckets)
    ]
    total = series.buckets[-1][1] if series.buckets else 0.0
    cc: list[float] | None = None
    if client and client.histogram_us:
        cc = [0.0] * len(bounds)
        for lower_us, n in client.histogram_us:
            # (prev, le] buckets: the first bound >= the value; wrk's own 1 %-wide bins
            # make this exact to about 1 % at each bound.
            cc[min(bisect.bisect_left(bounds, lower_us / 1e6), len(bounds) - 1)] += n
    ctotal = sum(cc) if cc else 0.0
    rows = []
    for i, (upper, n) in enumerate(zip(bounds, counts, strict=True)):
        lower = bounds[i - 1] if i else 0.0
        width = upper - lower if math.isfinite(upper) else 0.0  # +Inf has no width
        share = n / total if total else 0.0
        c = cc[i] if cc else None
        cpdf = c / ctotal / width if c is not None and ctotal and width else None
        density, pdf = (n / width, share / width) if width else (None, None)
        rows.append(BucketDensity(lower, upper, n, share, density, pdf, c, cpdf))
    return rows


def bimodality(rows: list[BucketDensity]) -> Bimodality:
    """Apply BIMODAL_RULE; of several valleys, report the deepest."""
    finite = [r for r in rows if r.density_per_s is not None]
    total = sum(r.count for r in rows)
    best: tuple[float, int, int, int] | None = None
    for v in range(1, len(finite) - 1):
        left = max(range(v), key=lambda i: finite[i].density_per_s or 0.0)
        right = max(range(v + 1, len(finite)), key=lambda i: finite[i].density_per_s or 0.0)
        low = min(finite[left].density_per_s or 0.0, finite[right].density_per_s or 0.0)
        dv = finite[v].density_per_s or 0.0
        lmass = sum(r.count for r in finite[:v])
        rmass = sum(r.count for r in finite[v + 1 :])
        if low > 0 and dv < VALLEY_RATIO * low and min(lmass, rmass) >= MIN_MODE_SHARE * total:
            if best is None or dv / low < best[0]:
                best = (dv / low, v, left, right)
    if best is None:
        return Bimodality(False)
    _, v, left, right = best
    return Bimodality(
        True,
        (finite[v].lower_s, finite[v].upper_s),
        (finite[left].lower_s, finite[left].upper_s),
        (finite[right].lower_s, finite[right].upper_s),
        sum(r.count for r in finite[:v]) / total,
        sum(r.count for r in finite[v + 1 :]) / total,
    )


def quantile_in_bucket(q: float, series: HistogramSeries) -> QuantileInBucket:
    """The interpolated quantile and the bucket it lies in."""
    value = histogram_quantile(q, series.buckets)
    bounds = [le for le, _ in series.buckets]
    if math.isnan(value) or len(bounds) < 2:
        return QuantileInBucket(q, value, math.nan, math.nan)
    if q * series.buckets[-1][1] > series.buckets[-2][1]:
        # The rank is in +Inf: Prometheus returns the highest finite bound, but the
        # value is only known to be above it.
        return QuantileInBucket(q, value, bounds[-2], math.inf)
    i = bisect.bisect_left(bounds, value)
    return QuantileInBucket(q, value, bounds[i - 1] if i else 0.0, bounds[i])


def analyse(
    series: HistogramSeries,
    client: ClientSide | None = None,
    connections: int | None = None,
    worker_slots: int | None = None,
) -> ClientServer:
    """Everything the client-vs-server page shows for one cell."""
    rows = densities(series, client)
    count = series.total
    mean = series.sum / count if series.sum is not None and count else None
    warnings: list[str] = []
    queueing = None
    if client and client.mean_s is not None and mean is not None:
        queueing = client.mean_s - mean
    if client and connections and abs(count - client.requests) > connections:
        warnings.append(
            f"the server timed {count:.0f} requests but wrk completed {client.requests}: "
            f"more apart than the {connections} connections in flight at the edges"
        )
    little = None
    if client and connections and client.mean_s and client.duration_s > 0:
        rate = client.requests / client.duration_s
        in_flight = rate * client.mean_s
        holds = little_holds(in_flight, connections)
        in_handler = rate * mean if mean is not None else None
        outside = rate * queueing if queueing is not None else None
        little = LittleCheck(connections, rate, in_flight, in_handler, outside, holds)
        if not holds:
            warnings.append(
                f"Little's law: λ·W = {in_flight:.1f} requests in flight for the "
                f"{connections} connections wrk kept open (ratio {in_flight / connections:.2f}, "
                f"outside {LITTLE_LOW:g}–{LITTLE_HIGH:g}): below, connections were idle or "
                "starved; above, wrk's latency correction dominates the mean"
            )
        if in_handler is not None and worker_slots and in_handler > worker_slots * 1.05:
            warnings.append(
                f"the server timer implies {in_handler:.1f} requests in handlers at once, "
                f"more than the {worker_slots} worker slots"
            )
    return ClientServer(
        series.name,
        dict(series.labels),
        count,
        mean,
        tuple(quantile_in_bucket(q, series) for q in QUANTILES),
        tuple(rows),
        bimodality(rows),
        client,
        queueing,
        little,
        tuple(warnings),
    )
