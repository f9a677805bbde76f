"""Site stage 3c: the chosen runs -> the Runs page, one page per run, the Data page.

Also defines `SitePlan`, the collection of pages and charts that `harness.pages.plan`
fills for the subject run and that `harness.site.build` renders and draws.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.figures import charts
from harness.figures.specs import AnySpec
from harness.pages.context import (
    DATA,
    ERRORS,
    HOME,
    RUNS,
    Run,
    figure,
    headline,
    measured,
    primary_app,
    primary_workload,
    rel,
    run_page,
    slug,
)
from harness.tables import summary


@dataclass
class SitePlan:
    pages: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    charts: list[AnySpec] = field(default_factory=list)
    # Called with each chart as it is planned: the build starts drawing it meanwhile.
    on_chart: Callable[[AnySpec], object] | None = None

    def chart(self, page: str, spec: AnySpec) -> dict[str, str]:
        self.charts.append(spec)
        if self.on_chart is not None:
            self.on_chart(spec)
        return figure(page, spec.name, spec.alt)


def plan_runs(
    plan: SitePlan,
    runs: Sequence[Run],
    subject: Run,
    table: pd.DataFrame,
    subject_stats: pd.DataFrame | None = None,
    unreadable: Sequence[Mapping[str, Any]] = (),
) -> None:
    """The Runs index and one page per chosen run: status, headline and chart.

    `subject_stats`: `summary.cell_stats` of the subject run, when the caller has it.
    `unreadable`: raw files that could not be read; each run page lists its own.
    """
    listing = []
    # Split once: a filter of the whole table per run cost more than the rest at 35 runs.
    pieces = {str(k): g for k, g in table.groupby("run_id", sort=False)}
    empty = table.iloc[0:0]
    subject_servers = set(pieces.get(str(subject["run_id"]), empty)["server"].unique())
    by_run = summary.cell_stats_by_run(table) if len(runs) > 1 else {}
    for run in runs:
        page = run_page(run["run_id"])
        df = pieces.get(str(run["run_id"]), empty)
        done = len(df)
        ok = int((df["status"] == "ok").sum()) if done else 0
        entry = {
            "id": run["run_id"],
            "status": run.get("status"),
            "subject_text": "subject" if run is subject else "",
            "started": measured(run, page)["started"],
            "link": rel(RUNS, page),
            "planned": len(run.get("cells_planned", [])),
            "ok": ok,
            "failed": done - ok,
        }
        listing.append(entry)
        ctx: dict[str, Any] = {
            "title": f"Run {run['run_id']}",
            "m": measured(run, page),
            "home": rel(page, HOME),
            "run": entry,
            "headline": None,
            "figure": None,
            "data": rel(page, DATA),
            "unavailable": sorted(run.get("unavailable", {}).items()),
            "unreadable": unreadable_items(
                [u for u in unreadable if u.get("run_id") == run["run_id"]], page
            ),  # fmt: skip
            "errors": rel(page, ERRORS),
        }
        if done and ok:
            stats = subject_stats if run is subject else by_run.get(run["run_id"])
            if stats is None:
                stats = summary.cell_stats(df)
            app = primary_app(run, sorted(df["app"].unique()))
            workload = primary_workload(run, sorted(df["workload"].unique()))
            ctx["headline"] = headline(stats, app, workload, page, linked=subject_servers)
            ctx["figure"] = plan.chart(
                page,
                charts.throughput_chart(
                    df[(df["app"] == app) & (df["workload"] == workload)],
                    f"run-{slug(run['run_id'])}-throughput.svg",
                    "server",
                    f"Requests per second of the {app} app in run {run['run_id']}",
                    f"Run {run['run_id']}, {app} app, {workload}: requests per second",
                ),
            )
        plan.pages[page] = ("run.md.j2", ctx)
    plan.pages[RUNS] = (
        "runs.md.j2",
        {"title": "Runs", "runs": listing, "m": measured(subject, RUNS), "home": rel(RUNS, HOME)},
    )


def unreadable_items(
    unreadable: Sequence[Mapping[str, Any]], page: str, linked: Collection[str] = ()
) -> list[dict[str, Any]]:
    """Unreadable raw files as the pages list them, with a link to their run's page when
    that run has a page in this build (`linked`: the chosen runs' ids)."""
    return [
        {
            "path": u["path"],
            "error": u["error"],
            "run_id": u.get("run_id"),
            "run_link": rel(page, run_page(str(u["run_id"])))
            if u.get("run_id") in linked
            else None,
        }
        for u in unreadable
    ]


def plan_data(
    plan: SitePlan,
    runs: Sequence[Run],
    subject: Run,
    downloads: Mapping[str, Sequence[tuple[str, str]]],
) -> None:
    """The Data page: every chosen run's downloads (docs-relative path, description)."""
    plan.pages[DATA] = (
        "data.md.j2",
        {
            "title": "Data",
            "m": measured(subject, DATA),
            "home": rel(DATA, HOME),
            "schema": rel(DATA, "schema.md"),
            "raw_format": rel(DATA, "raw-format.md"),
            "runs": [
                {
                    "id": r["run_id"],
                    "status": r.get("status"),
                    "files": [
                        {"name": f.rsplit("/", 1)[-1], "path": rel(DATA, f), "what": what}
                        for f, what in downloads.get(r["run_id"], [])
                    ],
                }
                for r in runs
            ],
        },
    )
