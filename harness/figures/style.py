"""Figure stage: how every line and bar chart looks — sizes, ink, tick labels, titles.

Shared by harness/figures/draw.py (line charts) and harness/figures/bars.py (ranked
bars). Every chart is drawn once, for every screen: 5 in wide (480 CSS px) with 11 pt
text (10 pt at the smallest), so that shrunk to a 390 px phone's content column (about
358 px) its smallest text is still about 10 px, and on a wide screen it shows at its
drawn size, its text as large as the page's.
"""

from __future__ import annotations

INK = "#888888"  # text and axes: mid-grey reads on both light and dark pages
WIDTH_IN = 5.0
FONT_PT = 11
LOG_TICKS = (1.0, 2.0, 5.0)  # 1, 2, 5 per decade: enough labels to read a value off


def style() -> None:
    """The settings every line and bar chart is drawn with."""
    import matplotlib

    matplotlib.use("svg")
    matplotlib.rcParams.update(
        {
            "svg.hashsalt": "wsgi-baseline",  # fixed ids: same input, same bytes
            # Text as <text>, not glyph outlines: ~17 % less CPU per chart (the slowest
            # step of a cold build), smaller files, and the browser's own font.
            "svg.fonttype": "none",
            "font.size": FONT_PT,
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


def short_number(value: float, _pos: object = None) -> str:
    """A tick label: 2k, 50k, 1.5M; plain below 1,000."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def wrap_title(text: str) -> str:
    """A chart title in lines that fit across the chart (bold 11 pt: ~0.09 in a character)."""
    import textwrap

    width = int((WIDTH_IN - 0.3) / (0.0082 * (FONT_PT + 1)))
    return "\n".join(textwrap.fill(part, width) for part in text.split("\n"))
