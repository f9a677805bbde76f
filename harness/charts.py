"""Site stage 3a: the tidy table and summaries -> chart specs (pandas, no drawing).

Each `*_chart` function returns a `harness.figures.ChartSpec`: plain data with the
site-wide colour of every server and app already chosen, so a chart of the same
cells looks the same on every page. Drawing happens in `harness.figures`.
"""

from __future__ import annotations

import zlib

import pandas as pd

from harness.figures import ChartSpec, Panel, Series
from harness.summary import ERROR_KINDS, LATENCY, as_float, ok_rows

# One colour per id across the whole site, chosen to read on white and on Material's
# slate background alike (mid luminance, saturated).
SERVER_COLOURS = {
    "gunicorn": "#3b82f6",
    "gunicorn-gthread": "#06b6d4",
    "meinheld": "#a855f7",
    "uwsgi": "#ef4444",
    "cheroot": "#f59e0b",
    "waitress": "#10b981",
    "bjoern": "#ec4899",
    "granian": "#84cc16",
}
APP_COLOURS = {
    "raw": "#0ea5e9",
    "flask": "#f97316",
    "cherrypy": "#e11d48",
    "falcon": "#8b5cf6",
    "bottle": "#14b8a6",
    "django": "#22c55e",
    # The same app timed by the latency middleware (`--server-metrics`): set apart from
    # the app itself, which is usually on the same chart.
    "raw+metrics": "#a855f7",
    "flask+metrics": "#854d0e",
}
# Ids not listed above still get a stable colour: a hash of the id picks one.
FALLBACK_COLOURS = ["#6366f1", "#d946ef", "#eab308", "#0891b2", "#dc2626", "#65a30d"]
ERROR_LABELS = {
    "connect": "connect",
    "read": "read",
    "write": "write",
    "timeout": "timeout",
    "non_2xx_3xx": "non-2xx/3xx",
}


def colour(kind: str, ident: str) -> str:
    """The site-wide colour of a server or app id."""
    table = SERVER_COLOURS if kind == "server" else APP_COLOURS
    return table.get(ident) or FALLBACK_COLOURS[zlib.crc32(ident.encode()) % len(FALLBACK_COLOURS)]


def _clean(values: pd.Series) -> list[float]:
    return [float(v) for v in values]


def _series(
    df: pd.DataFrame, ok: pd.DataFrame, label: str, colour_: str, metric: str, scale: float
) -> Series:
    """Mean line, band and dots of `metric` from the rows of one app or server.

    `ok` is `ok_rows(df)`, made once per panel by the caller.
    """
    ok = ok.dropna(subset=[metric])
    by = ok.groupby("connections")[metric].agg(["mean", "min", "max"]).sort_index()
    failed = df[df["status"] != "ok"]["connections"]
    return Series(
        label=label,
        colour=colour_,
        x=tuple(_clean(by.index.to_series())),
        mean=tuple(_clean(by["mean"] * scale)),
        low=tuple(_clean(by["min"] * scale)),
        high=tuple(_clean(by["max"] * scale)),
        dots_x=tuple(_clean(ok["connections"])),
        dots_y=tuple(_clean(ok[metric] * scale)),
        failed_x=tuple(sorted(_clean(failed))),
    )


def _grouped(df: pd.DataFrame, by: str, metric: str, scale: float = 1.0) -> tuple[Series, ...]:
    kind = "server" if by == "server" else "app"
    # Only the columns a series reads: ok_rows() copies its input, and the table is wide
    # (~140 columns), which made this the slowest step of a site build.
    wanted = dict.fromkeys([by, "connections", "status", "requests", metric, *LATENCY])
    df = df[[c for c in wanted if c in df.columns]]
    ok = dict(tuple(ok_rows(df).groupby(by, sort=True)))  # once per panel, not per line
    return tuple(
        _series(g, ok.get(k, g.iloc[0:0]), str(k), colour(kind, str(k)), metric, scale)
        for k, g in df.groupby(by, sort=True)
    )


def _levels(df: pd.DataFrame) -> tuple[int, ...]:
    return tuple(sorted(int(c) for c in df["connections"].unique()))


def throughput_chart(df: pd.DataFrame, name: str, by: str, alt: str) -> ChartSpec:
    """Requests per second against connections, one line per `by` (server or app)."""
    panel = Panel("Throughput", "Requests per second (req/s)", _grouped(df, by, "requests_per_sec"))
    return ChartSpec(name, alt, _levels(df), (panel,))


def latency_chart(df: pd.DataFrame, name: str, alt: str) -> ChartSpec:
    """p50, p99 and max latency against connections, one line per app."""
    panels = tuple(
        Panel(f"{label} latency", f"{label} latency (ms)", _grouped(df, "app", f"latency_{m}_ms"))
        for label, m in (("p50", "p50"), ("p99", "p99"), ("Max", "max"))
    )
    return ChartSpec(name, alt, _levels(df), panels, columns=3)


def errors_chart(df: pd.DataFrame, name: str, alt: str) -> ChartSpec:
    """Each wrk error counter per request (in %), one panel per counter, one line per app."""
    rated = as_float(df)
    for kind, col in ERROR_KINDS.items():
        rated[f"rate_{kind}"] = rated[col] / rated["requests"].where(rated["requests"] > 0)
    panels = tuple(
        Panel(
            f"{ERROR_LABELS[k]} errors", "per request (%)", _grouped(rated, "app", f"rate_{k}", 100)
        )
        for k in ERROR_KINDS
    )
    return ChartSpec(name, alt, _levels(df), panels, columns=3)


def overhead_chart(ov: pd.DataFrame, name: str, alt: str) -> ChartSpec:
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
                )
            )
        return Panel(title, ylabel, tuple(series), reference=ref, from_zero=False)

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
    return ChartSpec(name, alt, _levels(ov), tuple(panels), columns=2)


def resources_chart(df: pd.DataFrame, name: str, by: str, alt: str) -> ChartSpec:
    """Server CPU %, server memory and wrk CPU % against connections, one line per `by`."""
    panels = tuple(
        Panel(title, ylabel, _grouped(df, by, metric))
        for title, ylabel, metric in (
            ("Server CPU (mean)", "% of one CPU", "server_cpu_pct_mean"),
            ("Server memory (max RSS)", "MiB, whole process tree", "server_rss_mb_max"),
            ("wrk CPU (mean)", "% of one CPU", "wrk_cpu_pct_mean"),
        )
    )
    return ChartSpec(name, alt, _levels(df), panels, columns=3)
