"""Site stage 3c: the chosen runs -> every page (template + context) and every chart.

`plan_site` is pure: it takes run sidecars, the subject run's cell sidecars, the tidy
table and the list of downloadable files, and returns what `harness.site` renders and
draws. The subject run gets the full set of pages; every chosen run gets a run page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from harness import charts as fig
from harness import summary
from harness.context import (
    DATA,
    ERRORS,
    HOME,
    METHODOLOGY,
    OVERHEAD,
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
    slug,
    status_text,
    warning_items,
)
from harness.methodology import methodology_context
from harness.runplan import SitePlan, plan_data, plan_runs


def plan_site(
    runs: Sequence[Run],
    subject: Run,
    table: pd.DataFrame,
    cells: Sequence[Mapping[str, Any]],
    downloads: Mapping[str, Sequence[tuple[str, str]]],
) -> SitePlan:
    """Pages and charts for the chosen `runs`, with `subject` on the main pages."""
    plan = SitePlan()
    df = table[table["run_id"] == subject["run_id"]]
    stats = summary.cell_stats(df)
    errors = summary.error_rates(df)
    warns = summary.warnings(stats, errors)
    app = primary_app(subject, sorted(df["app"].unique()))
    workload = primary_workload(subject, sorted(df["workload"].unique()))
    servers = sorted(df["server"].unique())

    def base(page: str, title: str) -> dict[str, Any]:
        return {"title": title, "m": measured(subject, page), "home": rel(page, HOME)}

    head = headline(stats, app, workload, HOME)
    home_fig = plan.chart(
        HOME,
        fig.throughput_chart(
            df[(df["app"] == app) & (df["workload"] == workload)],
            "home-throughput.svg",
            "server",
            f"Requests per second of the {app} app ({workload}) against connections, per server",
        ),
    )
    versions = subject.get("versions", {})
    plan.pages[HOME] = (
        "index.md.j2",
        {
            **base(HOME, "WSGI servers compared"),
            "servers": [
                {"id": s, "version": versions.get(s, ""), "link": rel(HOME, server_page(s))}
                for s in servers
            ],
            "apps": sorted(df["app"].unique()),
            "workloads": sorted(df["workload"].unique()),
            "unavailable": sorted(subject.get("unavailable", {}).items()),
            "headline": head,
            "figure": home_fig,
            "warnings": len(warns.drop_duplicates(summary.GROUP)),
            "cells": len(stats),
            "links": {
                k: rel(HOME, v)
                for k, v in {
                    "methodology": METHODOLOGY,
                    "servers": SERVERS,
                    "overhead": OVERHEAD,
                    "errors": ERRORS,
                    "data": DATA,
                    "runs": RUNS,
                }.items()
            },
        },
    )
    plan.pages[METHODOLOGY] = (
        "methodology.md.j2",
        {
            **base(METHODOLOGY, "Methodology"),
            **methodology_context(subject, cells),
            "raw_format": rel(METHODOLOGY, "raw-format.md"),
            "server_links": {s: rel(METHODOLOGY, server_page(s)) for s in servers},
            "warnings": warning_items(warns, METHODOLOGY),
        },
    )
    plan.pages[SERVERS] = (
        "servers.md.j2",
        {
            **base(SERVERS, "Servers"),
            "headline": headline(stats, app, workload, SERVERS),
            "servers": [{"id": s, "link": rel(SERVERS, server_page(s))} for s in servers],
        },
    )
    for server in servers:
        _server(plan, base, server, df, stats, errors, warns, subject)
    ov = summary.overhead(df)
    plan.pages[OVERHEAD] = (
        "overhead.md.j2",
        {
            **base(OVERHEAD, "Framework overhead"),
            "raw_app": summary.RAW_APP,
            "errors": rel(OVERHEAD, ERRORS),
            "figure": plan.chart(
                OVERHEAD,
                fig.overhead_chart(
                    ov,
                    "overhead.svg",
                    "Throughput kept and added p50 latency per framework and server",
                ),
            )
            if len(ov)
            else None,
            "rows": records(ov),
        },
    )
    plan.pages[ERRORS] = (
        "errors.md.j2",
        {
            **base(ERRORS, "Errors"),
            # Reasons are listed once, in the failed-repeats table below.
            "rows": [{**r, "status": status_text(r, reasons=False)} for r in records(errors)],
            "with_errors": int((warns["kind"] == "errors").sum()),
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
        },
    )
    plan_runs(plan, runs, subject, table)
    plan_data(plan, runs, subject, downloads)
    return plan


def _server(
    plan: SitePlan,
    base: Any,
    server: str,
    df: pd.DataFrame,
    stats: pd.DataFrame,
    errors: pd.DataFrame,
    warns: pd.DataFrame,
    run: Run,
) -> None:
    page = server_page(server)
    sdf, sstats = df[df["server"] == server], stats[stats["server"] == server]
    serr = errors[errors["server"] == server]
    sections = []
    for workload in sorted(sdf["workload"].unique()):
        wdf = sdf[sdf["workload"] == workload]
        name = f"{slug(server)}-{slug(workload)}"
        charts = [
            plan.chart(
                page,
                fig.throughput_chart(
                    wdf,
                    f"{name}-throughput.svg",
                    "app",
                    f"Requests per second under {server} ({workload}), per app",
                ),
            ),
            plan.chart(
                page,
                fig.latency_chart(
                    wdf,
                    f"{name}-latency.svg",
                    f"p50, p99 and max latency under {server} ({workload}), per app",
                ),
            ),
        ]
        werr = serr[serr["workload"] == workload]
        has_errors = bool((werr.filter(like="_count").fillna(0) > 0).any().any())
        if has_errors:
            charts.append(
                plan.chart(
                    page,
                    fig.errors_chart(
                        wdf,
                        f"{name}-errors.svg",
                        f"Error counters per request under {server} ({workload})",
                    ),
                )
            )
        rows = sstats[sstats["workload"] == workload].sort_values(["app", "connections"])
        sections.append(
            {
                "workload": workload,
                "charts": charts,
                "has_errors": has_errors,
                "rows": [{**r, "status": status_text(r)} for r in records(rows)],
                "errors": [{**r, "status": status_text(r)} for r in records(werr)],
            }
        )
    info = run.get("servers", {}).get(server, {})
    plan.pages[page] = (
        "server.md.j2",
        {
            **base(page, server),
            "server": server,
            "version": run.get("versions", {}).get(server, ""),
            "worker_model": info.get("worker_model", ""),
            "settings": sorted((str(k), str(v)) for k, v in info.get("settings", {}).items()),
            "sections": sections,
            "warnings": warning_items(warns, page, server),
        },
    )
