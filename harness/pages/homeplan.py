"""Site stage 3c: the subject run's verdict and tables -> the home page.

The home page answers "which server, with which framework, and how sure are we?"
before anything else: the run's verdict (harness/tables/verdict.py) per app, as a
ranked table with each server's confidence label and flags, a ranked bar chart with
the 95 % intervals, the sentences the verdict wrote, and a notice when the run is
indicative only. Then every connection level of every app, as tables and line charts.
This module only formats the verdict: links, badges, labels and chart specs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.figures import charts as fig
from harness.pages.context import (
    CHOOSE,
    FLAGS_PAGE,
    HOME,
    LATENCY,
    Run,
    headline,
    rel,
    server_page,
    slug,
)
from harness.pages.flagview import cell_badges
from harness.pages.runplan import SitePlan
from harness.pages.serverplan import RunTables
from harness.tables import verdict as v

# What each confidence label means, and the flag explaining it where there is one.
CONFIDENCE = {
    v.CLEAR: ("clear", None),
    v.TIED: ("tied", None),
    v.CLIENT_BOUND: ("client-bound", "client_saturated"),
    v.NOISE_UNKNOWN: ("noise unknown", "noise_unknown"),
    v.FAILED: ("failed", None),
}
MANY = 3  # tied with more servers than this: say how many instead of naming them


def confidence_text(row: v.Ranked, alone: bool = False) -> str:
    """The label as the table shows it: 'clear lead', 'tied with granian', 'client-bound'.
    `alone`: the only server of its app measured, so leading nothing."""
    if alone and row.requests_per_sec is not None:
        return "the only one measured"
    mates = row.tied_with
    named = (
        ", ".join(mates) if len(mates) <= MANY else f"{len(mates)} others"
    )  # fmt: skip
    if row.confidence == v.CLEAR:
        return "clear lead" if row.place == 1 else "clear"
    if row.confidence == v.TIED:
        return f"tied with {named}"
    if row.confidence == v.CLIENT_BOUND:
        if mates:
            return f"client-bound; tied with {named}"
        return "clear lead; client-bound" if row.place == 1 else "clear; client-bound"
    if row.confidence == v.NOISE_UNKNOWN:
        if row.ok_n == 1:
            return "noise unknown (1 repeat)"
        return "noise unknown (the fastest has 1 repeat)"
    return f"failed: {row.reason}" if row.reason else "failed"


def app_context(
    plan: SitePlan,
    a: v.AppVerdict,
    t: RunTables,
    page: str,
    ceiling: float | None,
    name: str,
) -> dict[str, Any]:
    """One app's verdict as the home page shows it, with its bar chart planned."""
    flags = rel(page, FLAGS_PAGE)
    alone = sum(r.requests_per_sec is not None for r in a.rows) == 1
    rows = []
    for r in a.rows:
        label, flag = CONFIDENCE[r.confidence]
        rows.append(
            {
                "place": r.place,
                "server": r.server,
                "link": rel(page, server_page(r.server)),
                "rps": r.requests_per_sec,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "ok_n": r.ok_n,
                "share": r.share_of_best,
                "p99": r.latency_p99_ms,
                "per_cpu": r.requests_per_cpu_s,
                "confidence": confidence_text(r, alone),
                "label": label,
                "label_link": f"{flags}#{flag}" if flag else None,
                "tied": bool(r.tied_with),
                # The confidence column says these two already.
                "flags": [
                    b
                    for b in cell_badges(
                        t.flags, page, (r.server, a.app, a.workload, a.connections)
                    )
                    if b["id"] not in ("client_saturated", "noise_unknown")
                ],
            }
        )
    chart = plan.chart(
        page,
        fig.verdict_chart(
            a,
            name,
            f"{a.title}: servers ranked by mean requests per second at c={a.connections} "
            f"({a.workload}), with 95 % intervals; " + " ".join(a.sentences),
            ceiling,
        ),
    )
    return {
        "app": a.app,
        "title": a.title,
        "heading": fig.app_heading(a.app, a.title),
        "connections": a.connections,
        "workload": a.workload,
        "sentences": list(a.sentences),
        "clear_win": a.clear_win,
        "rows": rows,
        "figure": chart,
    }


def plan_home(
    plan: SitePlan,
    base: Callable[[str, str], dict[str, Any]],
    t: RunTables,
    run: Run,
    verdict: v.Verdict,
    extra: Mapping[str, Any],
) -> None:
    """The home page: the verdict first, then every connection level of every app."""
    page = HOME
    ceiling = fig.ceiling_of(t.df)

    def badges(key: tuple[str, str, str, int]) -> list[dict[str, str]]:
        return cell_badges(t.flags, page, key)

    apps = [
        app_context(plan, a, t, page, ceiling, f"verdict-{slug(a.app)}-{slug(a.workload)}.svg")
        for a in verdict.apps
    ]
    levels = []
    for a in verdict.apps:
        sel = t.df[(t.df["app"] == a.app) & (t.df["workload"] == verdict.workload)]
        heading = fig.app_heading(a.app, a.title)
        levels.append(
            {
                "heading": heading,
                "headline": headline(t.stats, a.app, verdict.workload, page, badges=badges),
                "figure": plan.chart(
                    page,
                    fig.throughput_chart(
                        sel,
                        f"home-{slug(a.app)}-{slug(verdict.workload)}-throughput.svg",
                        "server",
                        f"Requests per second of the {a.app} app ({verdict.workload}) against "
                        "connections, per server",
                        f"{heading}, {verdict.workload}: requests per second per server",
                    ),
                ),
            }
        )
    plan.pages[page] = (
        "index.md.j2",
        {
            **base(page, "WSGI servers compared"),
            **extra,
            "verdict": {
                "workload": verdict.workload,
                "connections": verdict.connections,
                "why": verdict.why_connections,
                "indicative": [n.text for n in verdict.indicative],
                "apps": apps,
            },
            "levels": levels,
            "ceiling_rps": ceiling,
            "choose": rel(page, CHOOSE),
            "flags_page": rel(page, FLAGS_PAGE),
            "latency_link": rel(page, LATENCY) if extra.get("timed") else None,
            "run_profile": run.get("profile"),
        },
    )
