"""Figure stage: chart specs (harness/figures/specs.py) -> SVG files; with bars.py and
latency.py, the only modules that use matplotlib.

`draw` runs in the build's worker processes (`harness.site.pool`); matplotlib is
imported there, and only when there is something to draw. Output is byte-stable: the
same spec gives the same SVG bytes.

Panels are drawn one below the other, in the sizes of harness/figures/style.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness.figures.specs import AnySpec, BarSpec, ChartSpec, DensitySpec
from harness.figures.style import (
    FONT_PT,
    INK,
    LOG_TICKS,
    WIDTH_IN,
    short_number,
    style,
    wrap_title,
)


def draw(spec: AnySpec, path: Path) -> Path:
    """Draw one chart as SVG at `path`; runs in a worker process.

    Written under a temporary dotfile name and renamed: a reader never sees half a
    chart (an interrupted build leaves none in the chart cache, and mkdocs, listing
    docs/ meanwhile, skips dotfiles).
    """
    import matplotlib

    tmp = path.with_name(f".{path.name}.part")
    # Each chart starts from the same settings, whichever chart this worker drew before:
    # otherwise the bytes of a chart would depend on the pool's scheduling.
    with matplotlib.rc_context():
        if isinstance(spec, DensitySpec):
            from harness.figures.latency import draw_bucket_density

            draw_bucket_density(spec.data, tmp)
        elif isinstance(spec, BarSpec):
            from harness.figures.bars import draw_bars

            style()
            draw_bars(spec, tmp)
        else:
            style()
            _draw_chart(spec, tmp)
    tmp.replace(path)
    return path


def legend_columns(labels: list[str], width_in: float, font_pt: float = FONT_PT) -> int:
    """As many legend columns (at most 6) as fit across the figure. matplotlib fills the
    legend column by column, each column as wide as its longest label; an entry is its
    handle and padding (~0.6 in at 9 pt) plus ~0.07 in per character at 9 pt, both
    growing with the font. (Measuring the drawn legend would draw twice.)"""
    scale = font_pt / 9
    for ncols in range(min(len(labels), 6), 1, -1):
        # As matplotlib splits them: the first n % ncols columns get one entry more.
        rows, extra = divmod(len(labels), ncols)
        sizes = [rows + 1] * extra + [rows] * (ncols - extra)
        starts = [sum(sizes[:i]) for i in range(ncols)]
        longest = [max(map(len, labels[a : a + n])) for a, n in zip(starts, sizes, strict=True)]
        if sum((0.6 + 0.07 * chars) * scale for chars in longest) <= width_in - 0.2:
            return ncols
    return 1


def log_scale(panel_values: list[float], above: float | None) -> bool:
    """Whether a panel's means span more than `above` times: then a log axis shows the
    small ones, which a linear axis squeezes against zero."""
    positive = [v for v in panel_values if v > 0 and math.isfinite(v)]
    return above is not None and len(positive) > 1 and max(positive) > above * min(positive)


def _plain(value: float, _pos: object = None) -> str:
    return f"{value:g}"


def _tick(x: float) -> str:
    """10, 2500, 12k: whole numbers, thousands shortened past 10,000."""
    if x >= 10_000 and x % 1000 == 0:
        return f"{x / 1000:g}k"
    return f"{x:g}"


def _draw_chart(spec: ChartSpec, path: Path) -> Path:
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
    from matplotlib.transforms import blended_transform_factory

    rows = len(spec.panels)
    panel_in = 3.0 if rows == 1 else 2.3
    handles: dict[str, Any] = {}
    labels = sorted({s.label for p in spec.panels for s in p.series})
    failed = any(s.failed_x for p in spec.panels for s in p.series)
    knees = any(p.marks for p in spec.panels)
    entries = labels + (["failed repeat"] if failed else []) + (["knee"] if knees else [])
    ncols = legend_columns(entries, WIDTH_IN)
    legend_in = 0.25 * math.ceil(len(entries) / ncols) if entries else 0.0
    title = wrap_title(spec.title) if spec.title else ""
    title_in = 0.22 * (1 + title.count("\n")) + 0.08 if title else 0.0
    top_in = 0.15 + title_in + legend_in + 0.3
    height = top_in + panel_in * rows + 0.75 * (rows - 1) + 0.55
    # No layout engine: "constrained" drew every chart twice (once to measure it), which
    # made drawing the slowest step of a cold build. Fixed margins in inches instead,
    # wide enough for 6-digit tick labels.
    fig = Figure(figsize=(WIDTH_IN, height))
    fig.subplots_adjust(
        left=0.8 / WIDTH_IN,
        right=1 - 0.15 / WIDTH_IN,
        top=1 - top_in / height,
        bottom=0.55 / height,
        hspace=0.75 / panel_in,
    )
    fig.patch.set_alpha(0)  # transparent: the page's own background shows through
    axes = fig.subplots(rows, 1, squeeze=False).ravel()
    for ax, panel in zip(axes, spec.panels, strict=True):
        ax.patch.set_alpha(0)
        ax.grid(True, color=INK, alpha=0.25, linewidth=0.6)
        means = [v for s in panel.series for v in s.mean]
        log = panel.log_y or log_scale(means, panel.log_above)
        floor = min((v for v in means if v > 0), default=1.0) / 3
        for s in panel.series:
            # A marker on the mean keeps a series with a single level visible; each id
            # has its own marker, so lines of close colours stay apart.
            (line,) = ax.plot(
                s.x, s.mean, color=s.colour, linewidth=2, marker=s.marker, markersize=6,
                markeredgecolor="white", markeredgewidth=0.6, label=s.label,
            )  # fmt: skip
            low = [max(v, floor) for v in s.low] if log else list(s.low)
            ax.fill_between(s.x, low, s.high, color=s.colour, alpha=0.18, linewidth=0)
            dots = [(x, y) for x, y in zip(s.dots_x, s.dots_y, strict=True) if y > 0 or not log]
            ax.scatter(
                [x for x, _ in dots], [y for _, y in dots], color=s.colour, s=12, alpha=0.8,
                linewidths=0, marker=s.marker,
            )  # fmt: skip
            if s.failed_x:
                # Failed repeats have no value: mark them on the axis, never as zeros.
                trans = blended_transform_factory(ax.transData, ax.transAxes)
                ax.scatter(
                    s.failed_x, [0.0] * len(s.failed_x), transform=trans, marker="x",
                    color=s.colour, s=40, clip_on=False, zorder=5,
                )  # fmt: skip
                handles.setdefault("failed repeat", ax.scatter([], [], marker="x", color=INK))
            handles.setdefault(s.label, line)
        if panel.reference is not None:
            ax.axhline(panel.reference, color=INK, linestyle="--", linewidth=1)
        for mark in panel.marks:
            ring = ax.scatter(
                [mark.x], [mark.y], s=110, facecolors="none", edgecolors=mark.colour,
                linewidths=1.6, zorder=6,
            )  # fmt: skip
            ax.annotate(
                mark.label, (mark.x, mark.y), xytext=(6, 6), textcoords="offset points",
                fontsize=FONT_PT - 1, color=mark.colour,
            )  # fmt: skip
            handles.setdefault("knee", ring)
        if log:
            ax.set_yscale("log")
            if not panel.log_y:
                ax.yaxis.set_major_locator(LogLocator(base=10, subs=LOG_TICKS))
            # No minor ticks: the labelled 1-2-5 grid is what is read, and each tick
            # is five artists (a log panel had 18 unlabelled ones, half a chart's cost).
            ax.yaxis.set_minor_locator(NullLocator())
        elif panel.from_zero:
            ax.set_ylim(bottom=0)
        # Latency across decades reads 0.1, 1, 10 ms, not 10^-1: readers compare milliseconds.
        ax.yaxis.set_major_formatter(FuncFormatter(_plain if panel.log_y else short_number))
        _ceiling(ax, panel.ceiling, panel.ceiling_label, means, log)
        # y given: matplotlib then skips moving the title clear of top-side ticks (there
        # are none), which measured every tick label's box: ~10 % of drawing a chart.
        scale = " (log scale)" if log and not panel.log_y else ""
        ax.set_title(panel.title + scale, fontsize=FONT_PT, y=1.0, loc="left")
        ax.set_ylabel(panel.ylabel)
        ax.set_xlabel(panel.xlabel or spec.xlabel)
        ticks = panel.xticks if panel.xticks is not None else spec.xticks
        if ticks and ticks[0] > 0 and ticks[-1] >= 8 * ticks[0]:
            ax.set_xscale("log")
        ax.set_xticks(ticks, [_tick(x) if panel.xticks else str(x) for x in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
    top = 1 - 0.15 / height
    if title:
        fig.text(0.5, top, title, ha="center", va="top", fontsize=FONT_PT + 1, weight="bold")
    if handles:
        ordered = {k: handles[k] for k in entries if k in handles}
        fig.legend(
            list(ordered.values()), list(ordered), loc="upper center",
            bbox_to_anchor=(0.5, top - title_in / height), ncols=ncols, frameon=False,
        )  # fmt: skip
    fig.savefig(path, format="svg", metadata={"Date": None})
    return path


def _ceiling(ax: Any, ceiling: float | None, label: str, means: list[float], log: bool) -> None:
    """The client ceiling as a dashed line with its label; when it lies far above the
    data (a linear axis would squeeze every line to the bottom), said in the corner."""
    if not ceiling:
        return
    top = max((v for v in means if math.isfinite(v)), default=0.0)
    if log or ceiling <= 2 * top:
        ax.axhline(ceiling, color=INK, linestyle=(0, (5, 3)), linewidth=1.2)
        ax.annotate(
            label, (1.0, ceiling), xycoords=("axes fraction", "data"), ha="right",
            va="bottom", fontsize=FONT_PT - 1, xytext=(0, 2), textcoords="offset points",
        )  # fmt: skip
        if not log:
            ax.set_ylim(top=ceiling * 1.12)
        else:
            ax.set_ylim(top=ceiling * 1.6)
    else:
        ax.text(
            0.99, 0.98, f"{label} (far above)", transform=ax.transAxes, ha="right",
            va="top", fontsize=FONT_PT - 1,
        )  # fmt: skip
