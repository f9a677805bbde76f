"""The chart legend fits across its figure, however many servers a run has."""

from __future__ import annotations

import matplotlib
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.figures.draw import legend_columns
from harness.figures.style import FONT_PT, WIDTH_IN
from harness.matrix.servers import SERVERS


@pytest.mark.parametrize("width", [WIDTH_IN, 8.6])  # every chart's width, and a wider one
@pytest.mark.parametrize("count", [2, 5, 8, len(SERVERS) + 1])
def test_legend_estimate_keeps_the_drawn_legend_inside_the_figure(width: float, count: int) -> None:
    labels = (sorted(SERVERS) + ["failed repeat"])[:count]
    ncols = legend_columns(labels, width)
    with matplotlib.rc_context({"font.size": FONT_PT}):  # as harness/figures/draw.py draws
        fig = Figure(figsize=(width, 4))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        lines = [ax.plot([0, 1], [i, i], marker="D", linewidth=2)[0] for i in range(count)]
        legend = fig.legend(lines, labels, loc="upper center", ncols=ncols, frameon=False)
        fig.canvas.draw()
        box = legend.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width, (ncols, box, fig.bbox.width)
    assert ncols >= min(count, 2)  # never one long column when two fit
