"""Site stage 3c: the subject run's verdict -> the "How to choose" page.

How the verdict shifts with the framework, with more workers or cores, and with a
latency target instead of peak throughput, with this run's own figures where it has
them (the spread of each app's ranking, the fastest at each connection level, the most
requests per CPU-second, the lowest p99), and the flags that matter for a decision.
The guidance is fixed text in the template; every figure is computed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.pages.context import (
    CHOOSE,
    FLAGS_PAGE,
    OVERHEAD,
    RESOURCES,
    SERVERS,
    rel,
    server_page,
)
from harness.pages.runplan import SitePlan
from harness.tables import verdict as v
from harness.tables.flaginfo import FLAGS

# The flags that change a decision, in the order a reader should check them.
DECISION_FLAGS = (
    "noise_unknown",
    "noisy",
    "client_saturated",
    "preflight",
    "closes_connections",
    "littles_law",
    "starved_connections",
    "non_2xx",
    "stalled",
)


def _best(rows: tuple[v.Ranked, ...], key: str, lowest: bool) -> v.Ranked | None:
    measured = [r for r in rows if getattr(r, key) is not None]
    if not measured:
        return None
    return sorted(measured, key=lambda r: (getattr(r, key) * (1 if lowest else -1), r.server))[0]


def how_sure(a: v.AppVerdict, measured: list[v.Ranked]) -> str:
    """How sure the fastest is the fastest, in a few words."""
    if len(measured) < 2:
        return "the only one measured" if measured else "nothing measured"
    if a.clear_win:
        return "a clear win"
    if a.clear_win is None:
        return "noise unknown: measured once"
    if len(a.leaders) > 1:
        return "tied within noise"
    return "both at the client's limit: not established"


def app_facts(a: v.AppVerdict, page: str) -> dict[str, Any]:
    measured = [r for r in a.rows if r.requests_per_sec is not None]
    cheapest = _best(a.rows, "requests_per_cpu_s", lowest=False)
    quickest = _best(a.rows, "latency_p99_ms", lowest=True)
    return {
        "title": a.title,
        "connections": a.connections,
        "spread": a.spread,
        "fastest": measured[0].server if measured else None,
        "fastest_rps": measured[0].requests_per_sec if measured else None,
        "slowest": measured[-1].server if len(measured) > 1 else None,
        "slowest_rps": measured[-1].requests_per_sec if len(measured) > 1 else None,
        "leaders": list(a.leaders),
        "clear_win": a.clear_win,
        "how_sure": how_sure(a, measured),
        "by_level": [{"connections": c, "leaders": list(s)} for c, s in a.by_level],
        "level_changes": len({s for _, s in a.by_level}) > 1,
        "per_cpu": None
        if cheapest is None
        else {"server": cheapest.server, "value": cheapest.requests_per_cpu_s},
        "p99": None
        if quickest is None
        else {
            "server": quickest.server,
            "value": quickest.latency_p99_ms,
            "is_fastest": bool(measured) and quickest.server == measured[0].server,
        },
        "links": {r.server: rel(page, server_page(r.server)) for r in a.rows},
    }


def plan_choose(
    plan: SitePlan, base: Callable[[str, str], dict[str, Any]], verdict: v.Verdict
) -> None:
    page = CHOOSE
    facts = [app_facts(a, page) for a in verdict.apps]
    raw: dict[str, Any] | None = next(
        (f for a, f in zip(verdict.apps, facts, strict=True) if a.app == "raw"), None
    )
    framework = [f for a, f in zip(verdict.apps, facts, strict=True) if a.app != "raw"]
    context = base(page, "How to choose")
    flags = rel(page, FLAGS_PAGE)
    plan.pages[page] = (
        "choose.md.j2",
        {
            **context,
            "verdict": {"connections": verdict.connections, "workload": verdict.workload},
            "apps": facts,
            "raw": raw,
            "frameworks": framework,
            "same_leader": raw is not None
            and bool(framework)
            and all(set(f["leaders"]) & set(raw["leaders"]) for f in framework),
            "per_cpu": any(f["per_cpu"] for f in facts),
            "p99": any(f["p99"] for f in facts),
            "workers": context["m"]["workers"],
            "pinning": context["m"]["pinning"],
            "flags": [
                {"id": f, "title": FLAGS[f].title, "link": f"{flags}#{f}"}
                for f in DECISION_FLAGS
                if f in FLAGS
            ],
            "links": {
                "overhead": rel(page, OVERHEAD),
                "resources": rel(page, RESOURCES),
                "servers": rel(page, SERVERS),
                "flags": flags,
            },
        },
    )
