"""Server-side latency, parse stage: Prometheus histogram text -> series, deltas, quantiles.

Takes the text exposition format (a `/metrics` scrape or a stored `.metrics.prom`
file) and returns `HistogramSeries` records, read with prometheus-client's own parser;
`histogram_delta` turns two scrapes into the text of what happened between them, and
quantiles come from `harness.parse.promquantile` (PromQL's `histogram_quantile`, exactly).
`quantiles_main` is the `python -m harness quantiles FILE...` command.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from harness.errors import UserError
from harness.parse.promquantile import QUANTILES, histogram_quantile

Labels = tuple[tuple[str, str], ...]


class PromHistError(UserError, ValueError):
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
    buckets: dict[tuple[str, Labels], dict[float, float]] = {}
    scalars: dict[tuple[str, Labels], dict[str, float]] = {}
    docs: dict[str, str] = {}
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = {k: v for k, v in s.labels.items() if v != ""}  # "" means absent
                base, _, suffix = s.name.rpartition("_")
                le = labels.pop("le", None) if suffix == "bucket" else None
                key = (base, tuple(sorted(labels.items())))
                if le is not None:
                    into = buckets.setdefault(key, {})
                    into[float(le)] = into.get(float(le), 0.0) + float(s.value)
                    docs.setdefault(base, family.documentation)
                elif suffix in ("sum", "count"):
                    scalars.setdefault(key, {})[suffix] = float(s.value)
    except ValueError as e:
        raise PromHistError(f"{source}: not Prometheus text format: {e}") from None
    # Only keys with buckets: a summary's or a counter's _sum/_count is no histogram.
    return [
        HistogramSeries(
            name,
            labels,
            tuple(sorted(bs.items())),
            scalars.get((name, labels), {}).get("count"),
            scalars.get((name, labels), {}).get("sum"),
            docs.get(name, ""),
        )
        for (name, labels), bs in sorted(buckets.items())
    ]


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

    registry.register(_Fixed())
    return generate_latest(registry).decode()


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
