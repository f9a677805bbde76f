"""Site stage 3a: the tidy table and summaries -> chart specs (pandas, no drawing).

Each `*_chart` function returns a `harness.figures.specs.ChartSpec`: plain data with the
site-wide colour of every server and app already chosen, so a chart of the same
cells looks the same on every page. Drawing happens in `harness.figures.draw`.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from harness.figures.specs import Bar, BarSpec, ChartSpec, Panel, Series
from harness.tables.intervals import ci_bounds
from harness.tables.summary import ERROR_KINDS, LATENCY
from harness.tables.verdict import AppVerdict

# One colour and one marker per id across the whole site. The colours are Paul Tol's
# "bright" scheme with Okabe and Ito's orange: told apart with the common colour-vision
# deficiencies, and of middle lightness, so they read on white and on Material's slate
# background alike. The marker tells two lines apart where colours alone might not
# (greyscale prints, and the ninth id of a set of eight colours).
SERVER_STYLES = {
    "gunicorn": ("#4477aa", "o"),
    "gunicorn-gthread": ("#e69f00", "s"),
    "gunicorn-meinheld": ("#777777", "P"),
    "meinheld": ("#aa3377", "^"),
    "uwsgi": ("#ee6677", "v"),
    "cheroot": ("#ccbb44", "D"),
    "waitress": ("#bbbbbb", "X"),
    "bjoern": ("#66ccee", "*"),
    "granian": ("#228833", "h"),
}
APP_STYLES = {
    "raw": ("#4477aa", "o"),
    "flask": ("#e69f00", "s"),
    "cherrypy": ("#aa3377", "^"),
    "falcon": ("#228833", "D"),
    "bottle": ("#ee6677", "v"),
    "django": ("#66ccee", "X"),
    # The same app timed by the latency middleware (`--server-metrics`): set apart from
    # the app itself, which is usually on the same chart.
    "raw+metrics": ("#bbbbbb", "P"),
    "flask+metrics": ("#ccbb44", "*"),
}
SERVER_COLOURS = {k: c for k, (c, _) in SERVER_STYLES.items()}
APP_COLOURS = {k: c for k, (c, _) in APP_STYLES.items()}
# Ids not listed above still get a stable colour and marker: a hash of the id picks them.
FALLBACK_COLOURS = ["#4477aa", "#e69f00", "#aa3377", "#228833", "#ee6677", "#66ccee"]
FALLBACK_MARKERS = ["p", "d", "<", ">", "8", "H"]
ERROR_LABELS = {
    "connect": "connect",
    "read": "read",
    "write": "write",
    "timeout": "timeout",
    "non_2xx_3xx": "non-2xx/3xx",
}


def style(kind: str, ident: str) -> tuple[str, str]:
    """The site-wide (colour, marker) of a server or app id."""
    table = SERVER_STYLES if kind == "server" else APP_STYLES
    if ident in table:
        return table[ident]
    h = zlib.crc32(ident.encode())
    return FALLBACK_COLOURS[h % len(FALLBACK_COLOURS)], FALLBACK_MARKERS[h % len(FALLBACK_MARKERS)]


def colour(kind: str, ident: str) -> str:
    """The site-wide colour of a server or app id."""
    return style(kind, ident)[0]


def _clean(values: pd.Series) -> list[float]:
    return [float(v) for v in values]


def _floats(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _column(df: pd.DataFrame, name: str) -> np.ndarray:
    """A column as float64, missing values (NaN, NA) as NaN: what `as_float` makes of it."""
    return df[name].to_numpy(dtype=float, na_value=np.nan)


def _grouped(
    df: pd.DataFrame, by: str, metrics: Mapping[str, np.ndarray], scale: float = 1.0
) -> list[tuple[Series, ...]]:
    """Per metric: one series per `by` value (sorted), each from the rows of that value.

    `metrics`: each metric's values, one per row of `df` (`_column`). A series is the
    mean line, the band of its 95 % confidence interval (none with one repeat: the
    noise is unknown) and dots of the metric over the ok repeats (`ok_rows`:
    latency blanked where no request was answered), per connection level that has a
    value, and the connection level of every failed repeat. One groupby per panel on
    plain arrays: filtering and copying the wide table for each line made this the
    slowest step of planning a site.
    """
    kind = "server" if by == "server" else "app"
    named = df[by].notna().to_numpy(dtype=bool)
    key = df[by].astype(str).to_numpy(dtype=object)
    keys = sorted(set(key[named]))
    ok = (df["status"] == "ok").to_numpy(dtype=bool, na_value=False)
    answered = np.nan_to_num(_column(df, "requests"), nan=0.0) > 0
    x = _column(df, "connections")
    failed = {k: tuple(sorted(float(c) for c in x[~ok & (key == k)])) for k in keys}
    out = []
    for metric, values in metrics.items():
        if metric in LATENCY:  # wrk's 0.00us latencies when nothing was answered
            values = np.where(answered, values, np.nan)
        measured = ok & named & ~np.isnan(values)
        # Rows without a value left out before grouping, as one line's groupby of the
        # metric did: pandas's compensated mean takes another path when the column
        # holds a NaN, which can change the last bit of a mean (and a chart's cache key).
        stats = (
            pd.DataFrame({"key": key[measured], "x": x[measured], "v": values[measured]})
            .groupby(["key", "x"], sort=True)["v"]
            .agg(["mean", "std", "count"])
        )
        level_key = stats.index.get_level_values(0).to_numpy(dtype=object)
        level_x = stats.index.get_level_values(1).to_numpy(dtype=float)
        mean = stats["mean"].to_numpy(dtype=float)
        low, high = ci_bounds(mean, stats["std"], stats["count"])
        # One repeat: no band (its ends are the mean), not a band of unknown width.
        low, high = np.where(np.isnan(low), mean, low), np.where(np.isnan(high), mean, high)
        series = []
        for k in keys:
            line = level_key == k
            dots = measured & (key == k)
            series.append(
                Series(
                    label=k,
                    colour=colour(kind, k),
                    marker=style(kind, k)[1],
                    x=_floats(level_x[line]),
                    mean=_floats(mean[line] * scale),
                    low=_floats(low[line] * scale),
                    high=_floats(high[line] * scale),
                    dots_x=_floats(x[dots]),
                    dots_y=_floats(values[dots] * scale),
                    failed_x=failed[k],
                )
            )
        out.append(tuple(series))
    return out


def _levels(df: pd.DataFrame) -> tuple[int, ...]:
    return tuple(sorted(int(c) for c in df["connections"].unique()))


def ceiling_of(df: pd.DataFrame) -> float | None:
    """The run's client ceiling (the lowest measured, as the flags use it), or None."""
    if "client_ceiling_rps" not in df.columns:
        return None
    values = _column(df, "client_ceiling_rps")
    values = values[~np.isnan(values)]
    return float(values.min()) if len(values) else None


def ceiling_label(ceiling: float) -> str:
    return f"client ceiling {ceiling:,.0f} req/s"


def throughput_chart(df: pd.DataFrame, name: str, by: str, alt: str, title: str = "") -> ChartSpec:
    """Requests per second against connections, one line per `by` (server or app), with
    the run's client ceiling when it was measured."""
    (lines,) = _grouped(df, by, {"requests_per_sec": _column(df, "requests_per_sec")})
    ceiling = ceiling_of(df)
    panel = Panel(
        "Throughput",
        "Requests per second (req/s)",
        lines,
        ceiling=ceiling,
        ceiling_label=ceiling_label(ceiling) if ceiling else "",
    )
    return ChartSpec(name, alt, _levels(df), (panel,), title=title)


def latency_chart(df: pd.DataFrame, name: str, alt: str, title: str = "") -> ChartSpec:
    """p50, p99 and max latency against connections, one line per app."""
    labels = {"latency_p50_ms": "p50", "latency_p99_ms": "p99", "latency_max_ms": "Max"}
    panels = tuple(
        Panel(f"{label} latency", f"{label} latency (ms)", lines)
        for label, lines in zip(
            labels.values(), _grouped(df, "app", {m: _column(df, m) for m in labels}), strict=True
        )
    )
    return ChartSpec(name, alt, _levels(df), panels, title=title)


def errors_chart(df: pd.DataFrame, name: str, alt: str, title: str = "") -> ChartSpec:
    """Each wrk error counter per request (in %), one panel per counter, one line per app."""
    requests = _column(df, "requests")
    per_request = np.where(requests > 0, requests, np.nan)
    rates = _grouped(
        df,
        "app",
        {f"rate_{k}": _column(df, col) / per_request for k, col in ERROR_KINDS.items()},
        100,
    )
    panels = tuple(
        Panel(f"{ERROR_LABELS[k]} errors", "per request (%)", lines)
        for k, lines in zip(ERROR_KINDS, rates, strict=True)
    )
    return ChartSpec(name, alt, _levels(df), panels, title=title)


def overhead_chart(ov: pd.DataFrame, name: str, alt: str, title: str = "") -> ChartSpec:
    """Per framework: throughput kept (% of raw) and added p50 latency, one line per server."""

    def panel(app: str, col: str, title: str, ylabel: str, scale: float, ref: float) -> Panel:
        sel = ov[ov["app"] == app]
        series = []
        for server, g in sel.groupby("server", sort=True):
            g = g.dropna(subset=[col]).sort_values("connections")
            series.append(
                Series(
                    str(server),
                    colour("server", str(server)),
                    tuple(_clean(g["connections"])),
                    tuple(_clean(g[col] * scale)),
                    tuple(_clean(g[f"{col}_min"] * scale)),
                    tuple(_clean(g[f"{col}_max"] * scale)),
                    marker=style("server", str(server))[1],
                )
            )
        # Shares and differences: a log axis cannot show a difference below 0.
        return Panel(title, ylabel, tuple(series), reference=ref, from_zero=False, log_above=None)

    apps = sorted(ov["app"].unique())
    # One row per framework: what it keeps of the raw app's throughput, what it adds to p50.
    panels = [
        p
        for a in apps
        for p in (
            panel(a, "share", f"{a}: throughput kept", "% of raw app's req/s", 100, 100),
            panel(a, "added_p50_ms", f"{a}: added p50 latency", "ms over raw app", 1, 0),
        )
    ]
    return ChartSpec(name, alt, _levels(ov), tuple(panels), title=title)


def resources_chart(df: pd.DataFrame, name: str, by: str, alt: str, title: str = "") -> ChartSpec:
    """Server CPU %, server memory and wrk CPU % against connections, one line per `by`."""
    titles = {
        "server_cpu_pct_mean": ("Server CPU (mean)", "% of one CPU"),
        "server_rss_mb_max": ("Server memory (max RSS)", "MiB, whole process tree"),
        "wrk_cpu_pct_mean": ("wrk CPU (mean)", "% of one CPU"),
    }
    panels = tuple(
        Panel(title, ylabel, lines)
        for (title, ylabel), lines in zip(
            titles.values(), _grouped(df, by, {m: _column(df, m) for m in titles}), strict=True
        )
    )
    return ChartSpec(name, alt, _levels(df), panels, title=title)


def app_heading(app: str, title: str) -> str:
    """'No framework (raw app)', 'Flask': how a chart title names an app."""
    named = title[:1].upper() + title[1:]
    return named if title.lower() == app.lower() else f"{named} ({app} app)"


def verdict_chart(verdict: AppVerdict, name: str, alt: str, ceiling: float | None) -> BarSpec:
    """One app's ranking as horizontal bars, best at the top, each with its 95 % interval
    as a whisker, its req/s and share of the best printed after it; tie groups of more
    than one server drawn as tied; the client ceiling when it was measured."""
    bars = []
    for r in verdict.rows:
        if r.requests_per_sec is None:
            text = "failed"
        else:
            share = f" ({r.share_of_best:.0%})" if r.share_of_best is not None else ""
            text = f"{r.requests_per_sec:,.0f}{share}"
        tied = r.tie_group if r.tied_with else None
        bars.append(
            Bar(
                label=r.server,
                colour=colour("server", r.server),
                value=r.requests_per_sec,
                low=r.ci_low,
                high=r.ci_high,
                text=text,
                group=tied,
            )
        )
    return BarSpec(
        name,
        alt,
        f"{app_heading(verdict.app, verdict.title)}, {verdict.workload}, c={verdict.connections}: "
        "mean req/s",
        "Requests per second (whisker: 95 % interval)",
        tuple(bars),
        ceiling=ceiling,
        ceiling_label=ceiling_label(ceiling) if ceiling else "",
    )
