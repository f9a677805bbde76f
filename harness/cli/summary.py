"""Command-line stage: a run's table -> the summary `invoke bench` ends with.

In: the tidy table of one run (harness.tables.dataset.load_runs). Out: a `RunSummary`
— per app × workload × connection level, the servers ranked by mean req/s with their
95 % intervals, repeats and validity flags; harness/cli/summaryout.py prints and exports
it. The ranking and its ties are the site's (`harness.tables.ranking.rank_servers`), so
the terminal and the site never disagree; each group ends with hyperfine's sentence, "X
ran 1.90 ± 0.05 × faster than Y", or why it cannot be said (tied, noise unknown).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.parse.records import RawFormatError
from harness.tables.flaginfo import FLAGS
from harness.tables.ranking import rank_servers
from harness.tables.summary import GROUP, cell_stats

FORMAT_VERSION = 1  # of the JSON summary (summaryout.to_json); 1 — first version
TITLES = {f: info.title for f, info in FLAGS.items()}


@dataclass(frozen=True)
class ServerLine:
    """One server in one group: its place, its figures over the ok repeats, its flags."""

    server: str
    rank: int | None  # None: every repeat failed
    tie_group: int | None  # servers of one group are not told apart from its leader
    verdict: str  # the ranking's: fastest, tied with the fastest, slower, noise unknown, failed
    requests_per_sec: float | None
    ci_low: float | None
    ci_high: float | None
    repeats_ok: int
    repeats: int
    latency_p99_ms: float | None
    flags: tuple[str, ...]
    reasons: str  # why repeats failed

    @property
    def plus_minus(self) -> float | None:
        """The interval's half-width: above the mean (below, it stops at zero req/s)."""
        if self.ci_high is None or self.requests_per_sec is None:
            return None
        return self.ci_high - self.requests_per_sec


@dataclass(frozen=True)
class Group:
    app: str
    workload: str
    connections: int
    servers: tuple[ServerLine, ...]

    @property
    def title(self) -> str:
        return f"{self.app} / {self.workload}, {self.connections} connections"

    def sentences(self) -> list[str]:
        """hyperfine's "X ran N × faster than Y", for the leader against each other server."""
        ranked = [s for s in self.servers if s.rank is not None and s.requests_per_sec]
        if len(ranked) < 2:
            return []
        lead = ranked[0]
        out = [f"{lead.server} ran"]
        for other in ranked[1:]:
            ratio = ratio_of(lead, other)
            text = f"{ratio[0]:.2f}" + (f" ± {ratio[1]:.2f}" if ratio[1] is not None else "")
            text += f" × faster than {other.server}"
            if other.verdict == "tied with the fastest":
                text += " (not significant: tied)"
            elif other.verdict == "noise unknown" or lead.plus_minus is None:
                text += " (noise unknown)"
            out.append(text)
        return out


def ratio_of(a: ServerLine, b: ServerLine) -> tuple[float, float | None]:
    """a's mean over b's, with the half-width of its 95 % interval by propagating the
    two relative half-widths (hyperfine's ± on its ratios), None without intervals."""
    assert a.requests_per_sec and b.requests_per_sec
    ratio = a.requests_per_sec / b.requests_per_sec
    if a.plus_minus is None or b.plus_minus is None:
        return ratio, None
    rel = math.hypot(a.plus_minus / a.requests_per_sec, b.plus_minus / b.requests_per_sec)
    return ratio, ratio * rel


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    profile: str | None
    status: str | None
    groups: tuple[Group, ...]

    @property
    def flagged(self) -> list[str]:
        """Every flag some cell carries, in the legend's order."""
        seen = {f for g in self.groups for s in g.servers for f in s.flags}
        return [f for f in FLAGS if f in seen] + sorted(seen - set(FLAGS))


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def cell_flags(table: pd.DataFrame) -> dict[tuple[str, str, str, int], tuple[str, ...]]:
    """Per cell, every flag any of its repeats carries, in the legend's order."""
    order = {f: i for i, f in enumerate(FLAGS)}
    found: dict[tuple[str, str, str, int], set[str]] = {}
    for row in table[[*GROUP, "flags"]].itertuples(index=False):
        key = (str(row.server), str(row.app), str(row.workload), int(str(row.connections)))
        flags = str(row.flags) if isinstance(row.flags, str) else ""
        found.setdefault(key, set()).update(f for f in flags.split(";") if f)
    return {
        k: tuple(sorted(v, key=lambda f: (order.get(f, len(order)), f))) for k, v in found.items()
    }


def summarize(table: pd.DataFrame) -> RunSummary:
    """The summary of the one run in `table`."""
    if not len(table):
        raise ValueError("an empty table has no summary")
    first = table.iloc[0]
    stats = cell_stats(table)
    ranking = rank_servers(stats).merge(stats[[*GROUP, "repeats", "reasons"]], on=GROUP, how="left")
    flags = cell_flags(table)
    groups = []
    for (app, workload, conns), rows in ranking.groupby(["app", "workload", "connections"]):
        lines = []
        for r in rows.to_dict("records"):
            key = (str(r["server"]), str(app), str(workload), int(str(conns)))
            lines.append(
                ServerLine(
                    server=key[0],
                    rank=None if pd.isna(r["rank"]) else int(r["rank"]),
                    tie_group=None if pd.isna(r["tie_group"]) else int(r["tie_group"]),
                    verdict=str(r["verdict"]),
                    requests_per_sec=_num(r["requests_per_sec_mean"]),
                    ci_low=_num(r["requests_per_sec_ci_low"]),
                    ci_high=_num(r["requests_per_sec_ci_high"]),
                    repeats_ok=int(_num(r["ok_n"]) or 0),
                    repeats=int(r["repeats"]),
                    latency_p99_ms=_num(r["latency_p99_ms_mean"]),
                    flags=flags.get(key, ()),
                    reasons=str(r["reasons"] or ""),
                )
            )
        groups.append(Group(key[1], key[2], key[3], tuple(lines)))
    return RunSummary(
        str(first["run_id"]),
        None if pd.isna(first["profile"]) else str(first["profile"]),
        None if pd.isna(first["run_status"]) else str(first["run_status"]),
        tuple(groups),
    )


def summarize_run(run_dir: Path) -> RunSummary:
    from harness.tables.dataset import load_runs

    table = load_runs(run_dir)
    if not len(table):
        raise RawFormatError("no cell recorded yet: nothing to sum up", path=str(run_dir))
    return summarize(table)
