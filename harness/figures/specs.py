"""Figure stage: what a chart shows, as plain data — `ChartSpec`, `BarSpec`, `DensitySpec`.

Built by `harness.figures.charts` (colours chosen) and by the page planners, drawn by
`harness.figures.draw` in the site's worker processes. Frozen dataclasses of tuples,
floats and strings: picklable, comparable, and their repr is stable, so a chart's cache
key is its spec (harness/site/chartcache.py). Imports nothing heavier than dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Series:
    """One line: mean per x, a band (the 95 % interval of the mean, or a range), every
    repeat as a dot, failed repeats as x."""

    label: str
    colour: str
    x: tuple[float, ...]
    mean: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    dots_x: tuple[float, ...] = ()
    dots_y: tuple[float, ...] = ()
    failed_x: tuple[float, ...] = ()
    marker: str = "o"  # matplotlib marker: each id has its own, beside its colour


@dataclass(frozen=True)
class Mark:
    """A point ringed and labelled on a panel: a curve's knee."""

    x: float
    y: float
    colour: str
    label: str


@dataclass(frozen=True)
class Panel:
    title: str
    ylabel: str
    series: tuple[Series, ...]
    reference: float | None = None  # a dashed horizontal line, e.g. 100 % of raw
    from_zero: bool = True  # start the y axis at 0 (not for differences, which can be < 0)
    # The client ceiling (what wrk drives against nginx in the run), drawn as a line on
    # throughput panels; its label says what it is.
    ceiling: float | None = None
    ceiling_label: str = ""
    # A log y axis when the panel's means span more than this factor (None: never).
    log_above: float | None = 10.0
    log_y: bool = False  # latency across decades (open-loop curves)
    xlabel: str | None = None  # this panel's own x axis (else the chart's)
    xticks: tuple[float, ...] | None = None  # this panel's own ticks (else the chart's)
    marks: tuple[Mark, ...] = ()


@dataclass(frozen=True)
class ChartSpec:
    name: str  # file name under the figures directory
    alt: str
    xticks: tuple[int, ...]
    panels: tuple[Panel, ...]  # drawn one below the other: legible on a phone too
    xlabel: str = "Connections (wrk -c)"
    title: str = ""  # drawn above the chart: what it shows, for which app and workload


@dataclass(frozen=True)
class Bar:
    """One server on a ranked bar chart: its mean, the 95 % interval as a whisker (None
    with one repeat), the text printed after it, and its tie group (bars of one group
    with more than one member are drawn as tied)."""

    label: str
    colour: str
    value: float | None  # None: failed, no bar
    low: float | None
    high: float | None
    text: str
    group: int | None = None


@dataclass(frozen=True)
class BarSpec:
    """Ranked horizontal bars, best at the top (harness/figures/bars.py draws them)."""

    name: str
    alt: str
    title: str
    xlabel: str
    bars: tuple[Bar, ...]
    ceiling: float | None = None
    ceiling_label: str = ""


@dataclass(frozen=True)
class DensitySpec:
    """One cell's server-side bucket densities with wrk's view (harness/figures/latency.py)."""

    name: str
    alt: str
    data: Any  # a harness.tables.clientserver.ClientServer: plain frozen dataclasses, picklable


AnySpec = ChartSpec | BarSpec | DensitySpec
