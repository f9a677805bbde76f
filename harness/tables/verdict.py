"""Table stage: the verdict of one run — which server to run with each app, and how sure.

`run_verdict(df, run)` takes the tidy table of one run (harness.tables.dataset.load_runs,
one row per cell and repeat) and its run.json as a mapping, and returns a `Verdict`:
for each app measured (no framework first, then each framework), the servers ranked
by mean req/s at the run's headline connection count, each with its share of the
best, p99, requests per CPU-second, 95 % interval and a confidence label; the tie
groups of harness/tables/ranking.py; one or two sentences saying it in words; and
the reasons the run is indicative only. The headline level is the highest connection
count measured: the most concurrent load the run offered, where servers differ most.

Pure: no I/O, no formatting beyond the sentences. The home page formats a `Verdict`;
the terminal can print `Verdict.lines()`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.matrix.apps import app_title
from harness.tables import evidence, ranking, summary
from harness.tables.verdicttext import (
    CLEAR,
    CLIENT_BOUND,
    FAILED,
    NOISE_UNKNOWN,
    TIED,
    Notice,
    Ranked,
    notices,
    sentences,
)

# Confidence labels of a ranked server (defined with the words that use them).
__all__ = [
    "CLEAR", "CLIENT_BOUND", "FAILED", "NOISE_UNKNOWN", "TIED", "Notice", "Ranked", "run_verdict",
]  # fmt: skip


@dataclass(frozen=True)
class AppVerdict:
    app: str
    title: str  # "no framework", "Flask"
    workload: str
    connections: int
    rows: tuple[Ranked, ...]  # best first, failed last
    leaders: tuple[str, ...]  # the fastest and every server tied with it
    clear_win: bool | None  # one server ahead beyond noise; None: noise unknown
    sentences: tuple[str, ...]
    # The fastest (and those tied with it) at every connection level measured.
    by_level: tuple[tuple[int, tuple[str, ...]], ...] = ()

    @property
    def spread(self) -> float | None:
        """The fastest's req/s over the slowest measured one's."""
        rps = [r.requests_per_sec for r in self.rows if r.requests_per_sec]
        return max(rps) / min(rps) if len(rps) > 1 else None


@dataclass(frozen=True)
class Verdict:
    run_id: str
    workload: str
    connections: int | None  # the headline level; None when nothing was measured
    why_connections: str
    apps: tuple[AppVerdict, ...]
    indicative: tuple[Notice, ...]  # empty: nothing makes the run only indicative

    def lines(self) -> list[str]:
        """The verdict as plain text lines, for a terminal."""
        out = [f"Verdict of run {self.run_id} ({self.workload}, c={self.connections}):"]
        for a in self.apps:
            out += [f"  {s}" for s in a.sentences]
        out += [f"  Indicative only: {n.text}" for n in self.indicative]
        return out


def app_order(apps: Sequence[str]) -> list[str]:
    """No framework first, then the frameworks by name, then apps timed by the server."""
    return sorted(apps, key=lambda a: (a != summary.RAW_APP, summary.METRICS_SUFFIX in a, a))


def silent_as_failed(stats: pd.DataFrame) -> pd.DataFrame:
    """`stats` with the cells whose every ok repeat got no response at all counted as
    failed: wrk's 0 req/s there says the server answered nothing, not that it was slow,
    so it takes no place in a ranking."""
    silent = (stats["ok"] > 0) & (stats["no_response"] >= stats["ok"])
    if not silent.any():
        return stats
    out = stats.copy()
    for col in ("requests_per_sec_mean", "requests_per_sec_ci_low", "requests_per_sec_ci_high"):
        out.loc[silent, col] = float("nan")
    out.loc[silent, "ok"] = 0
    out.loc[silent, "reasons"] = "no response in any repeat"
    return out


def headline_level(stats: pd.DataFrame) -> int | None:
    """The highest connection level at which any cell has an ok repeat."""
    ok = stats[stats["ok"] > 0]
    return int(ok["connections"].max()) if len(ok) else None


def cell_flag_ids(df: pd.DataFrame) -> dict[tuple[str, str, str, int], set[str]]:
    """(server, app, workload, connections) -> the flag ids any of its repeats raised."""
    out: dict[tuple[str, str, str, int], set[str]] = {}
    cols = ["server", "app", "workload", "connections", "flags"]
    for server, app, workload, conns, flags in df[cols].itertuples(index=False):
        ids = {f for f in (flags if isinstance(flags, str) else "").split(";") if f}
        out.setdefault((str(server), str(app), str(workload), int(conns)), set()).update(ids)
    return out


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def _rank_app(
    ranked: pd.DataFrame,
    used: pd.DataFrame,
    stats: pd.DataFrame,
    flags: Mapping[tuple[str, str, str, int], set[str]],
    key: tuple[str, str, int],
) -> list[Ranked]:
    app, workload, conns = key
    sel = ranked[
        (ranked["app"] == app) & (ranked["workload"] == workload) & (ranked["connections"] == conns)
    ]
    cpu = used.set_index(["server", "app", "workload", "connections"])["requests_per_cpu_s"]
    reasons = stats.set_index(["server", "app", "workload", "connections"])["reasons"]
    records = [{str(k): x for k, x in r.items()} for r in sel.to_dict("records")]
    groups: dict[int, list[str]] = {}
    for r in records:
        if _num(r["tie_group"]) is not None:
            groups.setdefault(int(r["tie_group"]), []).append(str(r["server"]))
    places: dict[int | None, int] = {}
    rows = []
    for r in records:
        server = str(r["server"])
        k = (server, app, workload, conns)
        ids = flags.get(k, set())
        group = int(r["tie_group"]) if _num(r["tie_group"]) is not None else None
        mates = tuple(s for s in groups.get(group, []) if s != server) if group else ()
        ok_n = _num(r["ok_n"])
        if r["verdict"] == "failed":
            confidence, place = FAILED, None
        else:
            rank = int(r["rank"])
            place = places.setdefault(group, rank) if group is not None else rank
            if group is None:
                confidence = NOISE_UNKNOWN
            elif "client_saturated" in ids:
                confidence = CLIENT_BOUND
            elif mates:
                confidence = TIED
            else:
                confidence = CLEAR
        rows.append(
            Ranked(
                server=server,
                place=place,
                tie_group=group,
                tied_with=mates,
                confidence=confidence,
                requests_per_sec=_num(r["requests_per_sec_mean"]),
                ci_low=_num(r["requests_per_sec_ci_low"]),
                ci_high=_num(r["requests_per_sec_ci_high"]),
                ok_n=int(ok_n) if ok_n is not None else 0,
                share_of_best=_num(r["share_of_best"]),
                latency_p99_ms=_num(r["latency_p99_ms_mean"]),
                requests_per_cpu_s=_num(cpu.get(k)),
                flags=tuple(sorted(ids)),
                reason=str(reasons.get(k, "") or "") if r["verdict"] == "failed" else "",
            )
        )
    return rows


def run_verdict(
    df: pd.DataFrame,
    run: Mapping[str, Any],
    workload: str | None = None,
    stats: pd.DataFrame | None = None,
    used: pd.DataFrame | None = None,
) -> Verdict:
    """The verdict of one run. `df`: its rows of the tidy table; `run`: its run.json.

    `workload`: the workload to rank on (default: the run's first one measured);
    `stats` and `used`: `summary.cell_stats(df)` and `evidence.resources(df)` when the
    caller has them already.
    """
    stats = summary.cell_stats(df) if stats is None else stats
    used = evidence.resources(df) if used is None else used
    listed = [
        w for w in (run.get("settings") or {}).get("workloads") or [] if w in set(df["workload"])
    ]
    workload = workload or (listed[0] if listed else str(sorted(df["workload"].unique())[0]))
    mine = silent_as_failed(stats[stats["workload"] == workload])
    level = headline_level(mine)
    why = (
        f"c={level}, the highest connection count measured: the most concurrent load this run "
        "offered, where servers differ most"
        if level is not None
        else "no cell of this workload was measured"
    )
    ranked = ranking.rank_servers(mine)
    flags = cell_flag_ids(df[df["workload"] == workload])
    apps: list[AppVerdict] = []
    for app in app_order([str(a) for a in mine["app"].unique()]):
        if level is None:
            break
        levels = mine[(mine["app"] == app) & (mine["ok"] > 0)]["connections"]
        conns = level if (levels == level).any() else int(levels.max()) if len(levels) else level
        rows = _rank_app(ranked, used, mine, flags, (app, workload, conns))
        title = app_title(app)
        said, clear = sentences(title, conns, rows)
        by_level = []
        for c in sorted(int(x) for x in mine[mine["app"] == app]["connections"].unique()):
            at = _rank_app(ranked, used, mine, flags, (app, workload, c))
            top = [r for r in at if r.place == 1]
            by_level.append((c, tuple(r.server for r in top)))
        apps.append(
            AppVerdict(
                app=app,
                title=title,
                workload=workload,
                connections=conns,
                rows=tuple(rows),
                leaders=tuple(r.server for r in rows if r.place == 1),
                clear_win=clear,
                sentences=tuple(said),
                by_level=tuple(by_level),
            )
        )
    return Verdict(
        run_id=str(run.get("run_id")),
        workload=workload,
        connections=level,
        why_connections=why,
        apps=tuple(apps),
        indicative=tuple(notices(run, mine, [(a.title, a.rows) for a in apps], level)),
    )
