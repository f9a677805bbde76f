"""Server-side latency, parse stage: Prometheus histogram text -> series and quantiles.

Takes the text exposition format (a `/metrics` scrape or a stored `.metrics.prom`
file) and returns `HistogramSeries` records; `histogram_quantile` computes quantiles
exactly as PromQL's `histogram_quantile` does (prometheus/prometheus promql/quantile.go,
`bucketQuantile`). Parsing uses prometheus-client's own parser. `scrape` is the only
function that does I/O (one HTTP GET, for the bench stage); `quantiles_main` is the
`python -m harness quantiles FILE...` command.
"""

from __future__ import annotations

import json
import math
import sys
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

Labels = tuple[tuple[str, str], ...]
QUANTILES = (0.5, 0.9, 0.99)
# promql/quantile.go: relative differences this small between neighbouring cumulative
# counts are float noise (e.g. from rate()), not decreases; Prometheus flattens them.
PRECISION_TOLERANCE = 1e-12


class PromHistError(ValueError):
    """Text that is not a usable Prometheus histogram; the message says where and why."""


@dataclass(frozen=True)
class HistogramSeries:
    """One histogram series: cumulative bucket counts as exposed (le, count), sorted by le."""

    name: str
    labels: Labels
    buckets: tuple[tuple[float, float], ...]
    count: float | None = None
    sum: float | None = None
    documentation: str = field(default="", compare=False)

    @property
    def total(self) -> float:
        """Observations: `_count` if exposed, else the +Inf bucket (they are equal by spec)."""
        if self.count is not None:
            return self.count
        return self.buckets[-1][1] if self.buckets else 0.0


def parse_histograms(text: str, source: str = "<text>") -> list[HistogramSeries]:
    """All histogram series in `text`, sorted by (name, labels).

    Samples are grouped by sample name (`X_bucket` with an `le` label, `X_sum`,
    `X_count`) rather than by declared type, because scrapes pasted into tickets (like
    the study's) often lack the `# TYPE` line and then parse as untyped families.
    """
    parts: dict[tuple[str, Labels], dict[str, object]] = {}
    docs: dict[str, str] = {}
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = {k: v for k, v in s.labels.items() if v != ""}  # "" means absent
                base, _, suffix = s.name.rpartition("_")
                if suffix == "bucket" and "le" in labels:
                    le = float(labels.pop("le"))
                    key = (base, tuple(sorted(labels.items())))
                    entry = parts.setdefault(key, {"buckets": {}})
                    buckets = entry["buckets"]
                    assert isinstance(buckets, dict)
                    buckets[le] = buckets.get(le, 0.0) + s.value
                    if family.documentation:
                        docs.setdefault(base, family.documentation)
                elif suffix in ("sum", "count"):
                    key = (base, tuple(sorted(labels.items())))
                    parts.setdefault(key, {"buckets": {}})[suffix] = s.value
    except ValueError as e:
        raise PromHistError(f"{source}: not Prometheus text format: {e}") from None
    out = []
    for (name, labels), entry in sorted(parts.items()):
        buckets = entry["buckets"]
        assert isinstance(buckets, dict)
        if not buckets:
            continue  # a summary's or counter's _sum/_count, not a histogram
        count, total = entry.get("count"), entry.get("sum")
        out.append(
            HistogramSeries(
                name,
                labels,
                tuple(sorted(buckets.items())),
                float(count) if isinstance(count, float) else None,
                float(total) if isinstance(total, float) else None,
                docs.get(name, ""),
            )
        )
    return out


def bucket_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> tuple[float, bool, bool]:
    """PromQL's bucketQuantile: (value, forced_monotonic, fixed_precision).

    Sort by upper bound, merge equal bounds, flatten float noise, force the cumulative
    counts monotonic, find the first bucket whose cumulative count reaches
    rank = q * total and interpolate linearly inside it (from 0 for the first bucket).
    A rank in the +Inf bucket returns the highest finite bound.
    """
    if math.isnan(q):
        return math.nan, False, False
    if q < 0:
        return -math.inf, False, False
    if q > 1:
        return math.inf, False, False
    bs = [[le, count] for le, count in sorted(buckets, key=lambda b: b[0])]
    if not bs or not math.isinf(bs[-1][0]) or bs[-1][0] < 0:
        return math.nan, False, False
    merged: list[list[float]] = []
    for le, count in bs:
        if merged and merged[-1][0] == le:
            merged[-1][1] += count
        else:
            merged.append([le, count])
    fixed = forced = False
    prev = merged[0][1]
    for b in merged[1:]:
        delta = abs(b[1] - prev)
        if delta == 0:
            continue
        # Go's float division: delta/0 is +Inf, delta/negative is negative (<= tol).
        eps = delta / b[1] if b[1] else math.inf
        if eps <= PRECISION_TOLERANCE:
            b[1], fixed = prev, True
        else:
            prev = b[1]
    top = merged[0][1]
    for b in merged[1:]:
        if b[1] > top:
            top = b[1]
        elif b[1] < top:
            b[1], forced = top, True
    if len(merged) < 2 or merged[-1][1] == 0:
        return math.nan, False, False
    rank = q * merged[-1][1]
    i = next((i for i, b in enumerate(merged[:-1]) if b[1] >= rank), len(merged) - 1)
    if i == len(merged) - 1:
        return merged[-2][0], forced, fixed
    if i == 0 and merged[0][0] <= 0:
        return merged[0][0], forced, fixed
    start, end, count = 0.0, merged[i][0], merged[i][1]
    if i > 0:
        start = merged[i - 1][0]
        count -= merged[i - 1][1]
        rank -= merged[i - 1][1]
    # Go divides 0/0 to NaN (q=0 with an empty first bucket); Python would raise.
    fraction = rank / count if count else math.nan
    return start + (end - start) * fraction, forced, fixed


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float:
    """The value PromQL's `histogram_quantile(q, …)` returns for these buckets."""
    return bucket_quantile(q, buckets)[0]


def merge_series(series: Sequence[HistogramSeries], name: str | None = None) -> HistogramSeries:
    """Sum series with identical bucket bounds (e.g. every method and code of one metric)."""
    if not series:
        raise PromHistError("no histogram series to merge")
    bounds = [le for le, _ in series[0].buckets]
    if any([le for le, _ in s.buckets] != bounds for s in series):
        raise PromHistError("cannot merge histogram series with different bucket bounds")
    counts = [sum(s.buckets[i][1] for s in series) for i in range(len(bounds))]
    sums = [s.sum for s in series]
    return HistogramSeries(
        name or series[0].name,
        (),
        tuple(zip(bounds, counts, strict=True)),
        sum(s.total for s in series),
        None if None in sums else math.fsum(x for x in sums if x is not None),
    )


def histogram_delta(before_text: str, after_text: str) -> str:
    """Prometheus text of after − before for every histogram series in `after_text`.

    A series absent before counts from zero (its first observation came during the
    cell). A decrease means the counters were reset (the server restarted between
    the scrapes): that is an error, not a negative latency count.
    """
    before = {(s.name, s.labels): s for s in parse_histograms(before_text, "before")}
    families: dict[str, list[HistogramSeries]] = {}
    for s in parse_histograms(after_text, "after"):
        old = before.get((s.name, s.labels))
        prev = dict(old.buckets) if old else {}
        buckets = tuple((le, n - prev.get(le, 0.0)) for le, n in s.buckets)
        count = s.total - (old.total if old else 0.0)
        total = (s.sum or 0.0) - ((old.sum or 0.0) if old else 0.0)
        if count < 0 or any(n < 0 for _, n in buckets):
            raise PromHistError(f"{s.name}{dict(s.labels)}: counts went down between scrapes")
        delta = HistogramSeries(s.name, s.labels, buckets, count, total, s.documentation)
        families.setdefault(s.name, []).append(delta)
    return format_histograms(families)


def format_histograms(families: dict[str, list[HistogramSeries]]) -> str:
    """Text exposition of the series, written by prometheus-client's own formatter."""
    registry = CollectorRegistry(auto_describe=False)
    out: list[HistogramMetricFamily] = []
    for name, series in sorted(families.items()):
        # One family needs one label-name list; a series without a label gets "",
        # which Prometheus (and parse_histograms) reads as the label being absent.
        names = sorted({k for s in series for k, _ in s.labels})
        family = HistogramMetricFamily(name, series[0].documentation or name, labels=names)
        for s in series:
            values = dict(s.labels)
            buckets = [(floatToGoString(le), n) for le, n in s.buckets]
            family.add_metric([values.get(k, "") for k in names], buckets, s.sum)
        out.append(family)

    class _Fixed:
        def collect(self) -> list[HistogramMetricFamily]:
            return out

    registry.register(_Fixed())  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def scrape(url: str, timeout_s: float = 5.0) -> str:
    """GET a `/metrics` endpoint and return its text (bench stage only)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return bytes(resp.read()).decode("utf-8")


def series_summary(s: HistogramSeries) -> dict[str, object]:
    """The JSON object `python -m harness quantiles` prints for one series (NaN -> null)."""

    def clean(x: float | None) -> float | None:
        return None if x is None or math.isnan(x) else x

    return {
        "name": s.name,
        "labels": dict(s.labels),
        "count": clean(s.total),
        "sum": clean(s.sum),
        "quantiles": {str(q): clean(histogram_quantile(q, s.buckets)) for q in QUANTILES},
    }


def quantiles_main(files: Sequence[str]) -> int:
    """`python -m harness quantiles FILE...`: one JSON object per histogram series.

    Like `python -m harness parse`: a bad file is one line on stderr and exit code 1
    once every file has been tried.
    """
    failed = 0
    for name in files:
        try:
            series = parse_histograms(Path(name).read_text(encoding="utf-8"), name)
            if not series:
                raise PromHistError(f"{name}: no histogram series found")
        except OSError as e:
            print(f"{name}: cannot read: {e.strerror}", file=sys.stderr)
        except (PromHistError, UnicodeDecodeError) as e:
            print(e, file=sys.stderr)
        else:
            for s in series:
                print(json.dumps({"path": name, **series_summary(s)}, allow_nan=False))
            continue
        failed += 1
    return 1 if failed else 0
