"""Site stage 3b: run metadata + summary tables -> page contexts and chart specs.

Decides everything the templates show: which run is the subject of the site, what
each page lists and in which order, where pages, charts and downloads live, and how
each page says when, where and how its numbers were measured. Returns plain dicts
(NaN turned into None) for `harness.pages.render` and `ChartSpec`s for `harness.figures.draw`.
"""

from __future__ import annotations

import hashlib
import math
import posixpath
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.errors import UserError
from harness.tables.runfacts import pinning_text, project_roots, relative_to

if TYPE_CHECKING:  # pandas is imported where it is used: the site's no-change rebuild
    import pandas as pd  # imports this module but never needs pandas (harness/site/cache.py)

HOME = "index.md"
CHOOSE = "results/choose.md"
METHODOLOGY = "results/methodology.md"
SERVERS = "results/servers/index.md"
OVERHEAD = "results/overhead.md"
ERRORS = "results/errors.md"
DATA = "results/data.md"
RUNS = "results/runs/index.md"
FLAGS_PAGE = "results/flags.md"
RESOURCES = "results/resources.md"
LATENCY = "results/latency/index.md"
FIGURES = "results/figures"
DATA_DIR = "results/data"

Run = Mapping[str, Any]
FINISHED = ("complete", "incomplete")
NOFILE = ("nofile_soft", "nofile_hard")
WARNING_LABELS = {
    "failed": "failed repeats",
    "lost": "lost to the infrastructure",
    "no_responses": "no response",
    "errors": "errors",
}


class SiteError(UserError):
    """A user error in choosing or reading runs; the message is one line."""


_PLAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


def slug(ident: str) -> str:
    """A file-name-safe, link-safe form of an id (ids come from raw files), one per id.

    A plain id (letters, digits, `.` and `-` inside) is its own slug. Any other is made
    plain and given `_` and a hash of the id: `_` is in no plain id, so two ids never
    share a page (`gunicorn_gthread` and `gunicorn-gthread`, `a|b|c` and `a-b-c`), and
    the suffix depends on the id alone, so a page keeps its name whatever else is built.
    """
    if _PLAIN.fullmatch(ident):
        return ident
    plain = re.sub(r"[^A-Za-z0-9.-]+", "-", ident).strip(".-") or "x"
    return f"{plain}_{hashlib.sha256(ident.encode()).hexdigest()[:8]}"


def server_page(server: str) -> str:
    return f"results/servers/{slug(server)}.md"


def run_page(run_id: str) -> str:
    return f"results/runs/{slug(run_id)}.md"


def latency_page(run_id: str) -> str:
    return f"results/latency/{slug(run_id)}.md"


def rel(page: str, target: str) -> str:
    """The relative link from one docs path to another (what mkdocs resolves)."""
    return posixpath.relpath(target, posixpath.dirname(page) or ".")


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with NaN and NA as None, so filters print "—" and never "nan"."""
    return [
        {str(k): (None if _missing(v) else v) for k, v in row.items()}
        for row in df.to_dict("records")
    ]


def _missing(v: Any) -> bool:
    import pandas as pd  # already loaded: only a pandas table holds NA

    return v is pd.NA or (isinstance(v, float) and math.isnan(v))


def select_runs(runs: Sequence[Run], which: str) -> tuple[list[Run], Run]:
    """Pick the runs to show (newest first) and the subject run of the main pages.

    `which`: "latest" (the newest complete run), "all", or comma-separated run ids.
    The subject is the newest complete run among those chosen, else the newest.
    """
    by_id = {str(r["run_id"]): r for r in runs}
    newest_first = [by_id[k] for k in sorted(by_id, reverse=True)]
    # An incomplete run tried every cell; only some were lost to a host or link (its
    # pages show them as the infrastructure's failures): it is a finished run to show.
    complete = [r for r in newest_first if r.get("status") in FINISHED]
    if which == "latest":
        if not complete:
            known = ", ".join(by_id) or "none"
            raise SiteError(f"no complete run in raw/ (runs: {known}); choose one with --runs")
        chosen = complete[:1]
    elif which == "all":
        chosen = newest_first
    else:
        wanted = [w.strip() for w in which.split(",") if w.strip()]
        unknown = [w for w in wanted if w not in by_id]
        if unknown or not wanted:
            named = ", ".join(unknown) or repr(which)
            raise SiteError(f"unknown run {named}; known: {', '.join(by_id) or 'none'}")
        chosen = [r for r in newest_first if r["run_id"] in wanted]
    if not chosen:
        raise SiteError("no run in raw/ to build a site from")
    subject = next((r for r in chosen if r.get("status") in FINISHED), chosen[0])
    return chosen, subject


def when(iso: str | None) -> str:
    """'2026-11-26T14:51:56.123Z' -> '2026-11-26 14:51:56 UTC'."""
    if not iso:
        return "unknown"
    return iso.replace("T", " ").split(".")[0].removesuffix("Z") + " UTC"


def short_version(text: str | None) -> str:
    """The first line of a tool's version banner, without its copyright notice."""
    if not text:
        return "unknown"
    return text.splitlines()[0].split(" Copyright")[0].strip()


def _known(value: Any, default: str = "unknown") -> Any:
    """A recorded value, or `default` when it is missing or null (imported runs)."""
    return default if value is None or value == "" else value


def measured(run: Run, page: str) -> dict[str, Any]:
    """When, where and how a run was measured: the block every results page opens with."""
    s = run.get("settings") or {}
    host, versions = run.get("host") or {}, run.get("versions") or {}
    memory = host.get("memory_bytes")
    roots = project_roots(run)
    return {
        "run_id": run["run_id"],
        "run_link": rel(page, run_page(run["run_id"])),
        "status": _known(run.get("status")),
        "started": when(run.get("started_at")),
        "ended": when(run.get("ended_at")),
        "hostname": _known(host.get("hostname")),
        "cpu": _known(host.get("cpu_model"), "unknown CPU"),
        "cores": _known(host.get("cores"), "?"),
        "memory": f"{memory / 2**30:.1f} GiB" if memory else "unknown memory",
        "kernel": _known(host.get("kernel")),
        "os": _known(host.get("os"), "unknown OS"),
        "python": relative_to(short_version(versions.get("python")), roots),
        "wrk": short_version(versions.get("wrk")).removeprefix("wrk "),
        "pinning": pinning_text(run),
        "duration_s": s.get("duration_s"),
        "warmup_s": s.get("warmup_s"),
        "repeats": _known(s.get("repeats"), "?"),
        "threads": _known(s.get("threads"), "?"),
        "timeout_s": s.get("timeout_s"),
        "workers": _known(s.get("workers"), "?"),
        "connections": ", ".join(str(c) for c in s.get("connections") or []) or "not recorded",
        "imported": bool(run.get("imported") or run.get("imported_from")),
        "methodology": rel(page, METHODOLOGY),
        "hosts": run_hosts(run),
    }


def run_hosts(run: Run) -> list[dict[str, Any]] | None:
    """Each machine of a run whose server or wrk ran elsewhere (run.json's `hosts`):
    the server host, then every client host, with its facts as display strings; None
    for a run on one machine (the run's `host` says all)."""
    hosts = run.get("hosts")
    if not isinstance(hosts, Mapping) or not isinstance(hosts.get("server"), Mapping):
        return None
    clients = [c for c in hosts.get("clients") or [] if isinstance(c, Mapping)]
    roots = project_roots(run)
    roles = [("server", hosts["server"])]
    roles += [
        (f"client {i}" if len(clients) > 1 else "client", c) for i, c in enumerate(clients, 1)
    ]
    out = []
    for role, h in roles:
        memory = h.get("memory_bytes")
        out.append(
            {
                "role": role,
                "spec": _known(h.get("spec")),
                "hostname": _known(h.get("hostname")),
                "cpu": _known(h.get("cpu_model"), "unknown CPU"),
                "cores": _known(h.get("cores"), "?"),
                "memory": f"{memory / 2**30:.1f} GiB" if memory else "unknown memory",
                "kernel": _known(h.get("kernel")),
                "os": _known(h.get("os"), "unknown OS"),
                "nofile": " / ".join(str(_known(h.get(k), "?")) for k in NOFILE),
                "python": relative_to(short_version(h.get("python")), roots),
                # wrk's version where wrk ran: on the clients (a server host may have none)
                "wrk": short_version(h.get("wrk")).removeprefix("wrk ")
                if role != "server"
                else "—",
                "same_as_server": role != "server" and h.get("spec") == hosts["server"].get("spec"),
            }
        )
    return out


def primary_app(run: Run, apps: Sequence[str]) -> str:
    """The no-framework app when the run has it, else its first app."""
    listed = list((run.get("settings") or {}).get("apps") or []) or sorted(apps)
    return "raw" if "raw" in apps else listed[0]


def primary_workload(run: Run, workloads: Sequence[str]) -> str:
    settings = run.get("settings") or {}
    listed = [w for w in settings.get("workloads") or [] if w in workloads]
    return listed[0] if listed else sorted(workloads)[0]


def headline(
    stats: pd.DataFrame,
    app: str,
    workload: str,
    page: str,
    linked: Collection[str] | None = None,
    badges: Callable[[tuple[str, str, str, int]], list[dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """Servers x connection levels of mean req/s and mean p99 for one app and workload.

    Servers link to their page when they have one (`linked`; None: all do). `badges`
    gives the flag badges of a cell (server, app, workload, connections).
    """
    sel = stats[(stats["app"] == app) & (stats["workload"] == workload)]
    levels = sorted(int(c) for c in sel["connections"].unique())
    rows = []
    for server, g in sel.groupby("server", sort=True):
        by = g.set_index("connections")
        rows.append(
            {
                "server": server,
                "link": rel(page, server_page(str(server)))
                if linked is None or server in linked
                else None,
                "rps": [_get(by, c, "requests_per_sec_mean") for c in levels],
                "p99": [_get(by, c, "latency_p99_ms_mean") for c in levels],
                "flags": [
                    badges((str(server), app, workload, c)) if badges else [] for c in levels
                ],
            }
        )
    return {
        "app": app,
        "workload": workload,
        "levels": levels,
        "rows": rows,
        "errors": rel(page, ERRORS),
        "flags_page": rel(page, FLAGS_PAGE),
    }


def _get(frame: pd.DataFrame, index: Any, col: str) -> float | None:
    if index not in frame.index:
        return None
    v: Any = frame.at[index, col]
    return None if v is None or _missing(v) else float(v)


def status_text(row: Mapping[str, Any], reasons: bool = True) -> str:
    """'2/2 ok', '1/2 ok; 1 failed: reason', 'failed: reason' for one cell."""
    ok, repeats, failed = int(row["ok"]), int(row["repeats"]), int(row["failed"])
    parts = [f"{ok}/{repeats} ok" if ok else "failed"]
    if failed and ok:
        parts.append(f"{failed} failed")
    if row.get("no_response"):
        parts.append(f"{int(row['no_response'])} without any response")
    text = "; ".join(parts)
    return f"{text}: {row['reasons']}" if reasons and failed and row.get("reasons") else text


def warning_items(warns: pd.DataFrame, page: str, server: str | None = None) -> list[dict]:
    """Warnings as list items, optionally for one server, with a link to its page."""
    sel = warns if server is None else warns[warns["server"] == server]
    return [
        {
            **w,
            "link": rel(page, server_page(str(w["server"]))),
            "label": WARNING_LABELS.get(str(w["kind"]), str(w["kind"])),
        }
        for w in records(sel)
    ]


def figure(page: str, name: str, alt: str) -> dict[str, str]:
    """An image reference from a page to a chart under results/figures/."""
    return {"src": rel(page, f"{FIGURES}/{name}"), "alt": alt}
