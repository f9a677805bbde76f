"""Figure stage: chart specs (harness/figures/specs.py) -> SVG files; with
harness/figures/latency.py, the only modules that use matplotlib.

`draw` runs in the build's worker processes
(`harness.site.pool`); matplotlib is imported there, and only when there is something
to draw.
Output is byte-stable: the same spec gives the same SVG bytes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness.figures.specs import ChartSpec, DensitySpec

INK = "#888888"  # text and axes: mid-grey reads on both light and dark pages


def draw(spec: ChartSpec | DensitySpec, path: Path) -> Path:
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
        else:
            _draw_chart(spec, tmp)
    tmp.replace(path)
    return path


def legend_columns(labels: list[str], width_in: float) -> int:
    """As many legend columns (at most 6) as fit across the figure: with 8 servers, six
    columns ran off the right edge. matplotlib fills the legend column by column, each
    column as wide as its longest label; an entry is its handle and padding (~0.6 in)
    plus ~0.07 in per character at 9 pt. (Measuring the drawn legend would draw twice.)"""
    for ncols in range(min(len(labels), 6), 1, -1):
        # As matplotlib splits them: the first n % ncols columns get one entry more.
        rows, extra = divmod(len(labels), ncols)
        sizes = [rows + 1] * extra + [rows] * (ncols - extra)
        starts = [sum(sizes[:i]) for i in range(ncols)]
        longest = [max(map(len, labels[a : a + n])) for a, n in zip(starts, sizes, strict=True)]
        if sum(0.6 + 0.07 * chars for chars in longest) <= width_in - 0.2:
            return ncols
    return 1


def _tick(x: float) -> str:
    """10, 2500, 12k: whole numbers, thousands shortened past 10,000."""
    if x >= 10_000 and x % 1000 == 0:
        return f"{x / 1000:g}k"
    return f"{x:g}"


def _draw_chart(spec: ChartSpec, path: Path) -> Path:
    import matplotlib

    matplotlib.use("svg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator
    from matplotlib.transforms import blended_transform_factory

    matplotlib.rcParams.update(
        {
            "svg.hashsalt": "wsgi-baseline",  # fixed ids: same input, same bytes
            # Text as <text>, not glyph outlines: ~17 % less CPU per chart (the slowest
            # step of a cold build), smaller files, and the browser's own font.
            "svg.fonttype": "none",
            "font.size": 9,
            "text.color": INK,
            "axes.labelcolor": INK,
            "axes.edgecolor": INK,
            "xtick.color": INK,
            "ytick.color": INK,
            "axes.titlecolor": INK,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    rows = math.ceil(len(spec.panels) / spec.columns)
    # Sized for Material's content column (1 in = 96 CSS px), so text is not shrunk.
    width = 6.8 if spec.columns == 1 else 8.6
    height = (3.4 if spec.columns == 1 else 2.6) * rows + 0.4
    # No layout engine: "constrained" drew every chart twice (once to measure it), which
    # made drawing the slowest step of a cold build. Fixed margins in inches instead,
    # wide enough for 6-digit tick labels; the top one is set below, for the legend.
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(
        left=0.75 / width,
        right=1 - 0.15 / width,
        bottom=0.5 / height,
        wspace=0.9 / ((width - 0.9) / spec.columns),
        hspace=0.85 / ((height - 1.2) / rows),
    )
    fig.patch.set_alpha(0)  # transparent: the page's own background shows through
    axes = fig.subplots(rows, spec.columns, squeeze=False).ravel()
    handles: dict[str, Any] = {}
    for ax, panel in zip(axes, spec.panels, strict=False):
        ax.patch.set_alpha(0)
        ax.grid(True, color=INK, alpha=0.25, linewidth=0.6)
        for s in panel.series:
            # A marker on the mean keeps a series with a single level visible.
            (line,) = ax.plot(
                s.x, s.mean, color=s.colour, linewidth=2, marker="D", markersize=4, label=s.label
            )
            ax.fill_between(s.x, s.low, s.high, color=s.colour, alpha=0.18, linewidth=0)
            ax.scatter(s.dots_x, s.dots_y, color=s.colour, s=14, alpha=0.85, linewidths=0)
            if s.failed_x:
                # Failed repeats have no value: mark them on the axis, never as zeros.
                trans = blended_transform_factory(ax.transData, ax.transAxes)
                ax.scatter(
                    s.failed_x,
                    [0.0] * len(s.failed_x),
                    transform=trans,
                    marker="x",
                    color=s.colour,
                    s=40,
                    clip_on=False,
                    zorder=5,
                )
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
                fontsize=8, color=mark.colour,
            )  # fmt: skip
            handles.setdefault("knee", ring)
        # y given: matplotlib then skips moving the title clear of top-side ticks (there
        # are none), which measured every tick label's box: ~10 % of drawing a chart.
        ax.set_title(panel.title, fontsize=9, y=1.0)
        ax.set_ylabel(panel.ylabel)
        ax.set_xlabel(panel.xlabel or spec.xlabel)
        ticks = panel.xticks if panel.xticks is not None else spec.xticks
        if ticks and ticks[0] > 0 and ticks[-1] >= 8 * ticks[0]:
            ax.set_xscale("log")
        ax.set_xticks(ticks, [_tick(x) if panel.xticks else str(x) for x in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        if panel.log_y:
            ax.set_yscale("log")
            # 0.1, 1, 10 ms, not 10^-1: readers compare milliseconds.
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        elif panel.from_zero:
            ax.set_ylim(bottom=0)
    for ax in axes[len(spec.panels) :]:
        ax.set_visible(False)
    ncols = legend_columns(list(handles), width)
    legend_rows = math.ceil(len(handles) / ncols)
    fig.subplots_adjust(top=1 - (0.35 + 0.22 * legend_rows) / height)
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="upper center",
            bbox_to_anchor=(0.5, 1.0),
            ncols=ncols,
            frameon=False,
        )
    fig.savefig(path, format="svg", metadata={"Date": None})
    return path
