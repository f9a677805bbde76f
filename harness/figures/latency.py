"""Server-side latency, figure stage: a `ClientServer` -> one bucket-density SVG.

`draw_bucket_density(data, path)` draws the server's per-bucket probability density
(share of observations ÷ bucket width) as bars on a log time axis, wrk's latencies
re-binned into the same buckets as a step line, and the quantiles as markers, so a
bimodal shape is visible where interpolated quantiles would hide it. Output is
byte-stable: fixed `svg.hashsalt`, no date in the metadata.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness.tables.clientserver import ClientServer

INK = "#888888"  # mid-grey text and axes read on light and dark pages alike
SERVER = "#3b82f6"
CLIENT = "#f97316"
VALLEY = "#ef4444"


def _fmt_s(x: float) -> str:
    if x >= 1:
        return f"{x:g} s"
    if x >= 1e-3:
        return f"{x * 1e3:g} ms"
    return f"{x * 1e6:g} µs"


def draw_bucket_density(data: ClientServer, path: Path) -> Path:
    """Write the density figure of one cell to `path` (SVG) and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "wsgi-baseline"
    matplotlib.rcParams["svg.fonttype"] = "path"  # no font lookup at view time
    rows = [r for r in data.buckets if r.pdf_per_s is not None]
    fig, ax = plt.subplots(figsize=(8, 4.6))
    try:
        if rows:
            # The first bucket starts at 0, which a log axis cannot show: draw it from
            # its upper bound divided by the next bucket's ratio, and say so in the label.
            ratio = rows[1].upper_s / rows[0].upper_s if len(rows) > 1 else 10.0
            lefts = [r.lower_s if r.lower_s > 0 else r.upper_s / ratio for r in rows]
            widths = [r.upper_s - left for r, left in zip(rows, lefts, strict=True)]
            heights = [r.pdf_per_s or 0.0 for r in rows]
            style: dict[str, Any] = {
                "color": SERVER,
                "alpha": 0.55,
                "edgecolor": SERVER,
                "linewidth": 0.6,
            }
            ax.bar(lefts, heights, widths, align="edge", label="server (buckets)", **style)
            if any(r.client_pdf_per_s is not None for r in rows):
                xs = lefts + [rows[-1].upper_s]
                ys = [r.client_pdf_per_s or 0.0 for r in rows]
                ax.stairs(ys, xs, color=CLIENT, linewidth=1.6, label="wrk, same buckets")
            bm = data.bimodality
            if bm.bimodal and bm.valley:
                lo = bm.valley[0] if bm.valley[0] > 0 else lefts[0]
                ax.axvspan(lo, bm.valley[1], color=VALLEY, alpha=0.12, label="valley (bimodal)")
            ax.set_xscale("log")
            # Fine default buckets span 10 µs–10 s: show only where there is data.
            used = [i for i, r in enumerate(rows) if r.count > 0 or (r.client_count or 0) > 0]
            if used:
                ax.set_xlim(lefts[used[0]] / 1.5, rows[used[-1]].upper_s * 1.5)
            positive = [h for h in heights if h > 0]
            if positive and max(positive) / min(positive) > 100:
                ax.set_yscale("log")  # the study's modes differ 10x in density
        # Quantiles as vertical lines, named once in the legend (labels on the lines
        # collide when quantiles are close, as wrk's p50 and p99 often are).
        label = "server p50/p90/p99 (interpolated)"
        for qb in data.server_quantiles:
            if math.isfinite(qb.value_s) and qb.value_s > 0:
                ax.axvline(qb.value_s, color=SERVER, linestyle=":", linewidth=1.2, label=label)
                label = "_"
        label = "wrk p50/p99"
        for name in ("50", "99"):
            value = data.client.percentiles_s.get(name, 0.0) if data.client else 0.0
            if value > 0:
                ax.axvline(value, color=CLIENT, linestyle="--", linewidth=1.2, label=label)
                label = "_"
        labels = ", ".join(f"{k}={v}" for k, v in sorted(data.labels.items()))
        title = data.name + (f"{{{labels}}}" if labels else "")
        ax.set_title(title, fontsize=9, color=INK)
        ax.set_xlabel("latency (bucket bounds; the first bucket starts at 0)", color=INK)
        ax.set_ylabel("density: share ÷ bucket width (1/s)", color=INK)
        ax.tick_params(colors=INK, labelsize=8)
        for spine in ax.spines.values():
            spine.set_color(INK)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: _fmt_s(x)))
        # Below the axes: inside, it would hide the quantile lines it names.
        ax.legend(fontsize=7, frameon=False, labelcolor=INK, ncol=2, loc="upper center",
                  bbox_to_anchor=(0.5, -0.16))  # fmt: skip
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="svg", metadata={"Date": None}, transparent=True,
                    bbox_inches="tight")  # fmt: skip
    finally:
        plt.close(fig)
    return path
