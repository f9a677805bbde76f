"""Figure stage: a `BarSpec` -> ranked horizontal bars as SVG (called by draw.py).

Best at the top; each bar's whisker is its 95 % interval (none with one repeat: the
noise is unknown), its req/s and share of the best printed after it. Servers the
repeats cannot tell apart (a tie group of more than one) share a shaded band labelled
"tied", so a reader sees a tie before reading a number. A failed server has no bar,
only the word. The client ceiling is a dashed line when it is near the bars, and
named in a corner when it is far above them.
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

from harness.figures.specs import BarSpec
from harness.figures.style import FONT_PT, INK, WIDTH_IN, short_number, wrap_title

ROW_IN = 0.42


def draw_bars(spec: BarSpec, path: Path) -> Path:
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    n = max(len(spec.bars), 1)
    title = wrap_title(spec.title)
    title_in = 0.22 * (1 + title.count("\n")) + 0.08
    height = 0.2 + title_in + 0.25 + ROW_IN * n + 0.7
    fig = Figure(figsize=(WIDTH_IN, height))
    longest = max((len(b.label) for b in spec.bars), default=4)
    left = min(0.3 + 0.085 * longest, 1.8)
    fig.subplots_adjust(
        left=left / WIDTH_IN,
        right=1 - 0.2 / WIDTH_IN,
        top=1 - (0.2 + title_in + 0.25) / height,
        bottom=0.7 / height,
    )
    fig.patch.set_alpha(0)
    ax = fig.subplots()
    ax.patch.set_alpha(0)
    ys = list(range(n))[::-1]  # first bar at the top
    highs = [b.high if b.high is not None else b.value for b in spec.bars if b.value is not None]
    top = max([v for v in highs if v is not None] or [1.0])
    # Room after the longest whisker for the text printed there.
    room = top * 1.62
    ceiling_near = spec.ceiling is not None and spec.ceiling <= 1.3 * top
    limit = max(room, (spec.ceiling or 0) * 1.05) if ceiling_near else room
    # A bracket at the right edge joins the servers of one tie group.
    for group, members in _runs(spec):
        if group is not None and len(members) > 1:
            y0, y1 = ys[members[-1]] - 0.3, ys[members[0]] + 0.3
            x = limit * 0.985
            ax.plot([x - limit * 0.012, x, x, x - limit * 0.012], [y0, y0, y1, y1], color=INK,
                    linewidth=1.2, solid_capstyle="butt")  # fmt: skip
            ax.text(
                x - limit * 0.02, (y0 + y1) / 2, "tied", ha="right", va="center",
                fontsize=FONT_PT - 1, style="italic",
            )  # fmt: skip
    texts: list[tuple[float, float, str]] = []  # each value printed: y, x where it starts
    for y, bar in zip(ys, spec.bars, strict=True):
        if bar.value is None:
            ax.text(0, y, f" {bar.text}", va="center", ha="left", fontsize=FONT_PT)
            continue
        ax.barh(y, bar.value, height=0.62, color=bar.colour, edgecolor=INK, linewidth=0.5)
        end = bar.value
        if bar.low is not None and bar.high is not None:
            ax.errorbar(
                bar.value, y, xerr=[[bar.value - bar.low], [bar.high - bar.value]], fmt="none",
                ecolor=INK, elinewidth=1.4, capsize=4, capthick=1.4,
            )  # fmt: skip
            end = bar.high
        ax.text(end + top * 0.02, y, bar.text, va="center", ha="left", fontsize=FONT_PT - 1)
        texts.append((y, end + top * 0.02, bar.text))
    bottom, ceiling_top = -0.6, n - 0.4 + (0.35 if ceiling_near else 0)
    if spec.ceiling is not None:
        if ceiling_near:
            # The dashed line stops short of a value printed across it (a bar near the
            # client's ceiling), so that the number stays readable.
            per_in = limit / (WIDTH_IN - left - 0.2)  # data units per inch across
            pad = 0.05 * per_in
            gaps = [y for y, x, text in texts
                    if x - pad <= spec.ceiling <= x + _width_in(text) * per_in + pad]  # fmt: skip
            for y0, y1 in _spans(bottom, ceiling_top, [(y - 0.32, y + 0.32) for y in gaps]):
                ax.plot([spec.ceiling] * 2, [y0, y1], color=INK, linestyle=(0, (5, 3)),
                        linewidth=1.2)  # fmt: skip
            ax.text(
                spec.ceiling, ys[0] + 0.55, spec.ceiling_label, ha="right", va="bottom",
                fontsize=FONT_PT - 1,
            )  # fmt: skip
        else:
            ax.text(
                1.0, -0.16, f"{spec.ceiling_label} (far to the right)", transform=ax.transAxes,
                ha="right", va="top", fontsize=FONT_PT - 1,
            )  # fmt: skip
    ax.set_xlim(0, limit)
    ax.set_ylim(bottom, ceiling_top)
    ax.set_yticks(ys, [b.label for b in spec.bars])
    ax.xaxis.set_major_formatter(FuncFormatter(short_number))
    ax.grid(True, axis="x", color=INK, alpha=0.25, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel(spec.xlabel, fontsize=FONT_PT - 1)
    fig.text(
        0.5, 1 - 0.2 / height, title, ha="center", va="top", fontsize=FONT_PT + 1,
        weight="bold",
    )  # fmt: skip
    fig.savefig(path, format="svg", metadata={"Date": None})
    return path


def _runs(spec: BarSpec) -> list[tuple[int | None, list[int]]]:
    """Consecutive bars of one tie group, as (group, bar indexes)."""
    out = []
    index = 0
    for group, members in groupby(spec.bars, key=lambda b: b.group):
        count = len(list(members))
        out.append((group, list(range(index, index + count))))
        index += count
    return out


def _width_in(text: str) -> float:
    """How wide `text` prints at the value labels' size, in inches (the chart's font)."""
    from matplotlib.textpath import TextPath

    return float(TextPath((0, 0), text, size=FONT_PT - 1).get_extents().width) / 72


def _spans(low: float, high: float, gaps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """[low, high] without the `gaps` (each inside it)."""
    out, at = [], low
    for g0, g1 in sorted(gaps):
        if g0 > at:
            out.append((at, g0))
        at = max(at, g1)
    return [*out, (at, high)] if at < high else out
