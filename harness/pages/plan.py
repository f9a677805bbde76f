"""Site stage 3c: the chosen runs -> every page (template + context) and every chart.

`plan_site` is pure: it takes run sidecars, the subject run's cell sidecars, the tidy
table, the list of downloadable files, the runs' client calibrations and the cells the
server timed, and returns what `harness.site.build` renders and draws. The subject run gets
the full set of pages; every chosen run gets a run page (and a client-vs-server page
when the server timed its cells).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from harness.figures import charts as fig
from harness.figures.specs import AnySpec
from harness.pages.chooseplan import plan_choose
from harness.pages.context import (
    CHOOSE,
    DATA,
    ERRORS,
    FLAGS_PAGE,
    HOME,
    LATENCY,
    METHODOLOGY,
    OVERHEAD,
    RESOURCES,
    RUNS,
    SERVERS,
    Run,
    headline,
    measured,
    primary_app,
    primary_workload,
    records,
    rel,
    server_page,
    status_text,
    warning_items,
)
from harness.pages.evidenceplan import plan_flags, plan_resources
from harness.pages.flagview import cell_badges, cell_flags, flag_items, key_of
from harness.pages.homeplan import plan_home
from harness.pages.latencyplan import TimedCell, plan_latency
from harness.pages.loadplan import LOAD, plan_load
from harness.pages.methodology import ceiling_context, linked, methodology_context
from harness.pages.runplan import SitePlan, plan_data, plan_runs, unreadable_items
from harness.pages.serverplan import RunTables, plan_server
from harness.tables import evidence, loadcurve, summary
from harness.tables.verdict import run_verdict


def plan_site(
    runs: Sequence[Run],
    subject: Run,
    table: pd.DataFrame,
    cells: Sequence[Mapping[str, Any]],
    downloads: Mapping[str, Sequence[tuple[str, str]]],
    calibrations: Mapping[str, Mapping[str, Any]] | None = None,
    timed: Sequence[TimedCell] = (),
    on_chart: Callable[[AnySpec], object] | None = None,
    unreadable: Sequence[Mapping[str, Any]] = (),
) -> SitePlan:
    """Pages and charts for the chosen `runs`, with `subject` on the main pages.

    `on_chart` is called with each chart as it is planned (`SitePlan.on_chart`).
    `unreadable`: raw files the build could not read ({"path", "run_id", "error"}, path
    relative to raw/), listed on the Errors page and on their run's page.
    """
    plan = SitePlan(on_chart=on_chart)
    # Open-loop cells (`--rates`) have their own page; every other page is closed loop.
    plan_load(plan, lambda p, t: {"title": t, "m": measured(subject, p), "home": rel(p, HOME)},
              subject, table[table["run_id"] == subject["run_id"]])  # fmt: skip
    table = loadcurve.closed_rows(table)
    df = table[table["run_id"] == subject["run_id"]]
    stats = summary.cell_stats(df)
    errors = summary.error_rates(df, stats)
    workers = (subject.get("settings") or {}).get("workers")
    t = RunTables(
        df,
        stats,
        errors,
        summary.warnings(stats, errors),
        evidence.resources(df, workers if isinstance(workers, int) else None),
        evidence.session_replies(df),
        cell_flags(df),
    )
    app = primary_app(subject, sorted(df["app"].unique()))
    workload = primary_workload(subject, sorted(df["workload"].unique()))
    servers = sorted(df["server"].unique())
    ceiling = ceiling_context(
        evidence.client_ceiling((calibrations or {}).get(subject["run_id"]), stats, subject),
        subject,
    )

    def base(page: str, title: str) -> dict[str, Any]:
        return {"title": title, "m": measured(subject, page), "home": rel(page, HOME)}

    def badges(page: str) -> Any:
        return lambda key: cell_badges(t.flags, page, key)

    verdict = run_verdict(df, subject, workload, stats=t.stats, used=t.resources)
    versions = subject.get("versions") or {}
    links = {
        "methodology": METHODOLOGY,
        "servers": SERVERS,
        "overhead": OVERHEAD,
        "errors": ERRORS,
        "resources": RESOURCES,
        "latency": LATENCY,
        "flags": FLAGS_PAGE,
        "data": DATA,
        "runs": RUNS,
        "choose": CHOOSE,
    }
    warned = {key_of(w) for w in records(t.warns)} | set(t.flags)
    plan_home(
        plan,
        base,
        t,
        subject,
        verdict,
        {
            "servers": [
                {
                    "id": s,
                    "version": versions.get(s) or "version unknown",
                    "link": rel(HOME, server_page(s)),
                }
                for s in servers
            ],
            "apps": sorted(df["app"].unique()),
            "workloads": sorted(df["workload"].unique()),
            "unavailable": sorted((subject.get("unavailable") or {}).items()),
            "warnings": len(warned),
            "cells": len(stats),
            "ceiling": linked(ceiling, HOME),
            "links": {k: rel(HOME, v) for k, v in links.items()},
            "timed": bool(timed),
        },
    )
    plan_choose(plan, base, verdict)
    plan.pages[METHODOLOGY] = (
        "methodology.md.j2",
        {
            **base(METHODOLOGY, "Methodology"),
            **methodology_context(subject, cells),
            "raw_format": rel(METHODOLOGY, "raw-format.md"),
            "load_page": rel(METHODOLOGY, LOAD),
            "server_links": {s: rel(METHODOLOGY, server_page(s)) for s in servers},
            "warnings": warning_items(t.warns, METHODOLOGY),
            "flagged": flag_items(t.flags, METHODOLOGY),
            "flags_page": rel(METHODOLOGY, FLAGS_PAGE),
            "ceiling": linked(ceiling, METHODOLOGY),
            "preflight": evidence.preflight(df),
        },
    )
    plan.pages[SERVERS] = (
        "servers.md.j2",
        {
            **base(SERVERS, "Servers"),
            "headline": headline(stats, app, workload, SERVERS, badges=badges(SERVERS)),
            "servers": [{"id": s, "link": rel(SERVERS, server_page(s))} for s in servers],
        },
    )
    for server in servers:
        plan_server(plan, base, server, t, subject)
    _overhead(plan, base, t)
    plan.pages[ERRORS] = (
        "errors.md.j2",
        {
            **base(ERRORS, "Errors"),
            # Reasons are listed once, in the failed-repeats table below.
            "rows": [
                {
                    **r,
                    "status": status_text(r, reasons=False),
                    "flags": cell_badges(t.flags, ERRORS, key_of(r)),
                }
                for r in records(errors)
            ],
            "flags_page": rel(ERRORS, FLAGS_PAGE),
            "session": bool((errors["workload"] == "session").any()),
            "with_errors": int((t.warns["kind"] == "errors").sum()),
            "cells": len(errors),
            "failed": [
                {
                    **c,
                    "exit_codes": " / ".join(
                        "—" if c.get(k) is None else str(c[k])
                        for k in ("server_exit_code", "wrk_exit_code")
                    ),
                }
                for c in cells
                if c.get("status") != "ok"
            ],
            "unreadable": unreadable_items(unreadable, ERRORS, {r["run_id"] for r in runs}),
        },
    )
    plan_flags(plan, base, t)
    plan_resources(plan, base, t, subject, app, workload)
    plan_latency(plan, runs, subject, table, timed)
    plan_runs(plan, runs, subject, table, stats, unreadable)
    plan_data(plan, runs, subject, downloads)
    return plan


def _overhead(plan: SitePlan, base: Any, t: RunTables) -> None:
    """Framework apps against the raw app; `<x>+metrics` against `<x>` (timing's own cost)."""
    ov = summary.overhead(t.df, stats=t.stats)

    def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return [
            {
                **r,
                "flags": cell_badges(t.flags, OVERHEAD, key_of(r)),
                "baseline_flags": cell_badges(
                    t.flags, OVERHEAD, key_of({**r, "app": r["baseline"]})
                ),
            }
            for r in records(frame)
        ]

    timing = ov["app"].str.endswith(summary.METRICS_SUFFIX)
    frameworks = ov[~timing & (ov["baseline"] == summary.RAW_APP)]
    plan.pages[OVERHEAD] = (
        "overhead.md.j2",
        {
            **base(OVERHEAD, "Overhead"),
            "raw_app": summary.RAW_APP,
            "errors": rel(OVERHEAD, ERRORS),
            "latency": rel(OVERHEAD, LATENCY),
            "flags_page": rel(OVERHEAD, FLAGS_PAGE),
            "suffix": summary.METRICS_SUFFIX,
            "figure": plan.chart(
                OVERHEAD,
                fig.overhead_chart(
                    frameworks,
                    "overhead.svg",
                    "Throughput kept and added p50 latency per framework and server",
                    "What each framework costs under each server "
                    f"({', '.join(sorted(frameworks['workload'].unique()))})",
                ),
            )
            if len(frameworks)
            else None,
            "rows": rows(frameworks),
            "timing": rows(ov[timing]),
            "negative": negative_latency(records(ov)),
        },
    )


def negative_latency(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The comparisons whose added p50 or p99 is below zero, each with whether its range
    reaches zero (the repeats could not tell the two apart) — for the note that explains
    them."""
    out = []
    for r in rows:
        for q in ("p50", "p99"):
            added = r.get(f"added_{q}_ms")
            if added is None or added >= 0:
                continue
            high = r.get(f"added_{q}_ms_max")
            out.append(
                {
                    **{k: r[k] for k in ("server", "app", "baseline", "workload", "connections")},
                    "quantile": q,
                    "added": added,
                    "low": r.get(f"added_{q}_ms_min"),
                    "high": high,
                    "noise": high is not None and high >= 0,
                }
            )
    return out
