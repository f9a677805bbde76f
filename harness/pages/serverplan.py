"""Site stage 3c: the subject run's cells of one server -> that server's page.

One section per workload: charts (throughput, latency, errors when there are any,
resources when the sampler ran), the table of every app and connection level with the
flags of each cell as badges, the error rates, what the server and wrk used (CPU,
memory), and for the session workload the replies per kind. Pure: takes the tables,
returns nothing but what it adds to the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.figures import charts as fig
from harness.pages.context import (
    Run,
    records,
    server_page,
    slug,
    status_text,
    warning_items,
)
from harness.pages.flagview import CellFlags, cell_badges, flag_items, key_of
from harness.pages.runplan import SitePlan
from harness.tables.runfacts import recorded_prose


@dataclass(frozen=True)
class RunTables:
    """The subject run's table and every summary of it that server pages show."""

    df: pd.DataFrame
    stats: pd.DataFrame
    errors: pd.DataFrame
    warns: pd.DataFrame
    resources: pd.DataFrame
    session: pd.DataFrame
    flags: CellFlags


def plan_server(
    plan: SitePlan, base: Callable[[str, str], dict[str, Any]], server: str, t: RunTables, run: Run
) -> None:
    page = server_page(server)

    def mine(frame: pd.DataFrame, workload: str) -> pd.DataFrame:
        sel = frame[(frame["server"] == server) & (frame["workload"] == workload)]
        return sel.sort_values(["app", "connections"])

    def rows(frame: pd.DataFrame, status: bool = False) -> list[dict[str, Any]]:
        return [
            {
                **r,
                "flags": cell_badges(t.flags, page, key_of(r)),
                **({"status": status_text(r)} if status else {}),
            }
            for r in records(frame)
        ]

    sections = []
    sdf = t.df[t.df["server"] == server]
    for workload in sorted(sdf["workload"].unique()):
        wdf = sdf[sdf["workload"] == workload]
        name = f"{slug(server)}-{slug(workload)}"
        what = f"under {server} ({workload})"
        charts = [
            plan.chart(
                page,
                fig.throughput_chart(
                    wdf,
                    f"{name}-throughput.svg",
                    "app",
                    f"Requests per second {what}, per app",
                    f"{server}, {workload}: requests per second per app",
                ),
            ),
            plan.chart(
                page,
                fig.latency_chart(
                    wdf,
                    f"{name}-latency.svg",
                    f"p50, p99 and max latency {what}, per app",
                    f"{server}, {workload}: latency per app",
                ),
            ),
        ]
        werr = mine(t.errors, workload)
        has_errors = bool((werr.filter(like="_count").fillna(0) > 0).any().any())
        if has_errors:
            charts.append(
                plan.chart(
                    page,
                    fig.errors_chart(
                        wdf,
                        f"{name}-errors.svg",
                        f"Error counters per request {what}",
                        f"{server}, {workload}: errors per request, per app",
                    ),
                )
            )
        used = mine(t.resources, workload)
        sections.append(
            {
                "workload": workload,
                "charts": charts,
                "has_errors": has_errors,
                "rows": rows(mine(t.stats, workload), status=True),
                "errors": rows(werr),
                "session": workload == "session",
                "resources": rows(used),
                "resources_chart": plan.chart(
                    page,
                    fig.resources_chart(
                        wdf,
                        f"{name}-resources.svg",
                        "app",
                        f"Server CPU, server memory and wrk CPU {what}, per app",
                        f"{server}, {workload}: CPU and memory per app",
                    ),
                )
                if len(used)
                else None,
                "replies": rows(mine(t.session, workload)),
            }
        )
    info = (run.get("servers") or {}).get(server, {})
    plan.pages[page] = (
        "server.md.j2",
        {
            **base(page, server),
            "server": server,
            "version": (run.get("versions") or {}).get(server) or "version unknown",
            "worker_model": recorded_prose(str(info.get("worker_model") or "not recorded"), run),
            "settings": sorted(
                (recorded_prose(str(k), run), recorded_prose(str(v), run))
                for k, v in info.get("settings", {}).items()
            ),
            "sections": sections,
            "warnings": warning_items(t.warns, page, server),
            "flagged": flag_items(t.flags, page, server),
        },
    )
