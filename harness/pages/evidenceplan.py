"""Site stage 3c: the subject run -> the Flags legend page and the Resources page.

The legend explains every flag of harness/tables/flaginfo.py (title, likely cause) and lists
the cells of this run that carry it, with each repeat's detail. The Resources page sets
the servers side by side on what they used while measured: server CPU, server memory
(the study's VMs had 4 GB, so memory per worker decides how many workers fit) and wrk's
CPU. Pure: adds pages and chart specs to the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.figures import charts as fig
from harness.figures.charts import app_heading
from harness.matrix.apps import app_title
from harness.pages.context import FLAGS_PAGE, RESOURCES, Run, records, rel, server_page
from harness.pages.flagview import cell_badges, key_of, legend
from harness.pages.runplan import SitePlan
from harness.pages.serverplan import RunTables

# The study ran on virtual machines with 4 GB of memory.
STUDY_MEMORY_GB = 4


def plan_flags(plan: SitePlan, base: Callable[[str, str], dict[str, Any]], t: RunTables) -> None:
    flagged = {k for k, v in t.flags.items() if v}
    plan.pages[FLAGS_PAGE] = (
        "flags.md.j2",
        {
            **base(FLAGS_PAGE, "Flags"),
            "flags": legend(t.flags, FLAGS_PAGE),
            "flagged_cells": len(flagged),
            "cells": len(t.stats),
        },
    )


def plan_resources(
    plan: SitePlan,
    base: Callable[[str, str], dict[str, Any]],
    t: RunTables,
    run: Run,
    app: str,
    workload: str,
) -> None:
    page = RESOURCES
    used = t.resources
    sel = t.df[(t.df["app"] == app) & (t.df["workload"] == workload)]
    figure = None
    if len(used[(used["app"] == app) & (used["workload"] == workload)]):
        figure = plan.chart(
            page,
            fig.resources_chart(
                sel,
                "resources.svg",
                "server",
                f"Server CPU, server memory and wrk CPU of the {app} app ({workload}), per server",
                f"{app_heading(app, app_title(app))}, {workload}: CPU and memory per server",
            ),
        )
    workers = (run.get("settings") or {}).get("workers")
    plan.pages[page] = (
        "resources.md.j2",
        {
            **base(page, "Resources"),
            "app": app,
            "workload": workload,
            "figure": figure,
            "workers": workers,
            # With one worker, RSS ÷ workers is RSS again: the column is left out.
            "per_worker": isinstance(workers, int) and workers > 1,
            "memory_gb": STUDY_MEMORY_GB,
            "saturated": f"{rel(page, FLAGS_PAGE)}#client_saturated",
            "workloads": [
                {
                    "workload": w,
                    "rows": [
                        {
                            **r,
                            "link": rel(page, server_page(str(r["server"]))),
                            "flags": cell_badges(t.flags, page, key_of(r)),
                        }
                        for r in records(used[used["workload"] == w])
                    ],
                }
                for w in sorted(used["workload"].unique())
            ],
        },
    )
