"""Site stage 3a: open-loop curves (harness/tables/loadcurve.py) -> chart specs.

`server_load_chart` is one server's latency against offered load: p50, p99 and p99.9
(log y), one line per app, against requests per second offered (left) and against the
share of the app's own closed-loop maximum (right), each curve's knee ringed.
`servers_load_chart` sets every server side by side on the same offered loads (p50,
p99, p99.9 against req/s), one line per server. Plain data (harness/figures/specs.py);
drawing is harness/figures/draw.py's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.figures.charts import colour
from harness.figures.specs import ChartSpec, Mark, Panel, Series
from harness.tables.loadcurve import LEVELS

TITLES = {"p50": "p50 latency", "p99": "p99 latency", "p99_9": "p99.9 latency"}
PCT_TICKS = (25.0, 50.0, 75.0, 100.0)


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=float))


def _series(points: pd.DataFrame, x: str, level: str, label: str, hue: str) -> Series:
    pts = points.sort_values(x, kind="stable")
    mean = pts[f"{level}_mean"]
    low = pts[f"{level}_low"].where(pts[f"{level}_low"].notna(), mean)
    high = pts[f"{level}_high"].where(pts[f"{level}_high"].notna(), mean)
    return Series(label, hue, _floats(pts[x]), _floats(mean), _floats(low), _floats(high))


def rate_ticks(values: Sequence[float], most: int = 6) -> tuple[float, ...]:
    """A few round ticks across the offered rates (req/s)."""
    vals = sorted(v for v in values if v > 0 and np.isfinite(v))
    if not vals:
        return ()
    if len(vals) <= most:
        return tuple(float(_round(v)) for v in vals)
    picks = np.linspace(0, len(vals) - 1, most).round().astype(int)
    return tuple(dict.fromkeys(float(_round(vals[i])) for i in picks))


def _round(v: float) -> float:
    """Two significant digits: 2,218 -> 2,200."""
    digits = max(0, int(np.floor(np.log10(v))) - 1)
    return round(v / 10**digits) * 10**digits


def _marks(
    knees: Mapping[str, Mapping[str, Any]], x_key: str, hue_of: Mapping[str, str]
) -> tuple[Mark, ...]:
    out = []
    for label, k in sorted(knees.items()):
        knee = k.get("knee")
        if knee is None or knee.get(x_key) is None:
            continue
        out.append(Mark(float(knee[x_key]), float(knee["p99_ms"]), hue_of[label], f"knee {label}"))
    return tuple(out)


def server_load_chart(
    points: pd.DataFrame,
    knees: Mapping[str, Mapping[str, Any]],
    name: str,
    alt: str,
    title: str = "",
) -> ChartSpec:
    """`points`: `curves(...)` rows of one server, workload and connections (several
    apps); `knees`: app -> `knee_of(...)`."""
    apps = sorted(points["app"].unique())
    hue = {a: colour("app", a) for a in apps}
    by_app = {a: points[points["app"] == a] for a in apps}
    rps_ticks = rate_ticks(list(points["offered_rate_rps"]))
    panels = []
    for level in LEVELS:
        for x, label, ticks in (
            ("offered_rate_rps", "Offered load (req/s)", rps_ticks),
            ("offered_pct", "Offered load (% of the app's closed-loop maximum)", PCT_TICKS),
        ):
            series = tuple(
                _series(by_app[a][by_app[a][x].notna()], x, level, a, hue[a]) for a in apps
            )
            panels.append(
                Panel(
                    f"{TITLES[level]} (ms, log scale)",
                    "ms",
                    tuple(s for s in series if s.x),
                    from_zero=False,
                    log_y=True,
                    xlabel=label,
                    xticks=ticks,
                    marks=_marks(knees, x, hue) if level == "p99" else (),
                )
            )
    return ChartSpec(name=name, alt=alt, xticks=(), panels=tuple(panels), title=title)


def servers_load_chart(points: pd.DataFrame, name: str, alt: str, title: str = "") -> ChartSpec:
    """`points`: `curves(...)` rows of one app, workload and connections, every server."""
    servers = sorted(points["server"].unique())
    ticks = rate_ticks(list(points["offered_rate_rps"]))
    panels = []
    for level in LEVELS:
        series = tuple(
            _series(
                points[points["server"] == s], "offered_rate_rps", level, s, colour("server", s)
            )
            for s in servers
        )
        panels.append(
            Panel(
                f"{TITLES[level]} (ms, log scale)",
                "ms",
                series,
                from_zero=False,
                log_y=True,
                xlabel="Offered load (req/s)",
                xticks=ticks,
            )  # fmt: skip
        )
    return ChartSpec(name=name, alt=alt, xticks=(), panels=tuple(panels), title=title)
