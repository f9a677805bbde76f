"""Site stage 3c: the subject run's open-loop cells -> the "Latency against load" page.

Per server: p50 / p99 / p99.9 (log scale) against the offered load, in req/s and as a
share of each app's closed-loop maximum, one line per app, each knee ringed on the
chart and stated in words (harness/tables/loadcurve.py); then every server on the same
offered loads; then the open-loop client's own floor against nginx at the run's highest
offered rate. A run without `--rates` gets the page too, saying how to measure one.
Pure: adds the page and its chart specs to the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from harness.figures import loadcharts
from harness.pages.context import FLAGS_PAGE, METHODOLOGY, Run, records, rel, server_page
from harness.pages.runplan import SitePlan
from harness.tables import loadcurve

LOAD = "results/load.md"


def _slug(*parts: object) -> str:
    return "-".join(str(p) for p in parts).replace("+", "-").replace("/", "-").lower()


def _flag_links(flags: str) -> list[dict[str, str]]:
    return [{"id": f, "link": rel(LOAD, FLAGS_PAGE) + f"#{f}"} for f in flags.split(";") if f]


def plan_load(
    plan: SitePlan,
    base: Callable[[str, str], dict[str, Any]],
    subject: Run,
    table: pd.DataFrame,
) -> None:
    """`table`: the tidy table of the subject run, closed- and open-loop rows."""
    curves = loadcurve.curves(table)
    knees = {
        (k["server"], k["app"], k["workload"], k["connections"]): k for k in loadcurve.knees(curves)
    }
    floor = subject.get("open_loop") or None
    sections = []
    for (server, workload, conns), part in curves.groupby(
        ["server", "workload", "connections"], sort=True
    ):
        apps = sorted(part["app"].unique())
        by_app = {a: knees[(server, a, workload, conns)] for a in apps}
        name = f"load-{_slug(server, workload, f'c{conns}')}.svg"
        alt = (
            f"p50, p99 and p99.9 latency of {server} ({workload}, {conns} connections) "
            "against offered load, one line per app"
        )
        title = f"{server}, {workload}, {conns} connections: latency against offered load"
        figure = plan.chart(LOAD, loadcharts.server_load_chart(part, by_app, name, alt, title))
        rows = []
        for r in records(part.sort_values(["app", "offered_rate_rps"], kind="stable")):
            rows.append({**r, "flag_links": _flag_links(r.get("flags") or "")})
        sections.append(
            {
                "server": server,
                "link": rel(LOAD, server_page(str(server))),
                "workload": workload,
                "connections": conns,
                "figure": figure,
                "knees": [
                    {
                        "app": a,
                        "text": loadcurve.knee_sentence(by_app[a]),
                        "knee": by_app[a]["knee"],
                    }
                    for a in apps
                ],
                "rows": rows,
            }
        )
    together = []
    for (app, workload, conns), part in curves.groupby(
        ["app", "workload", "connections"], sort=True
    ):
        if part["server"].nunique() < 2:
            continue
        name = f"load-servers-{_slug(app, workload, f'c{conns}')}.svg"
        alt = (
            f"p50, p99 and p99.9 latency of every server with the {app} app ({workload}, "
            f"{conns} connections) against offered load"
        )
        together.append(
            {
                "app": app,
                "workload": workload,
                "connections": conns,
                "figure": plan.chart(
                    LOAD,
                    loadcharts.servers_load_chart(
                        part,
                        name,
                        alt,
                        f"{app} app, {workload}, {conns} connections: every server's latency "
                        "against offered load",
                    ),  # fmt: skip
                ),
            }
        )
    plan.pages[LOAD] = (
        "load.md.j2",
        {
            **base(LOAD, "Latency against load"),
            "sections": sections,
            "together": together,
            "floor": _floor(floor),
            "factor": loadcurve.KNEE_FACTOR,
            "rates": (subject.get("settings") or {}).get("rates") or [],
            "methodology": rel(LOAD, METHODOLOGY),
            "flags_page": rel(LOAD, FLAGS_PAGE),
        },
    )


def _floor(summary: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not summary:
        return None
    return dict(summary)
