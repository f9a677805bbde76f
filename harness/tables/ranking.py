"""Table stage: servers ranked by throughput, per app, workload and connection level, with ties.

`rank_servers(stats)` takes `cell_stats` of one run and orders, within every app ×
workload × connections, the servers by mean req/s over their ok repeats. A server
whose 95 % interval overlaps the leader's is tied with it: the repeats cannot tell the
two apart. Further down, each server that is not tied with a group's leader starts the
next tie group, so a ranking reads as groups of servers that are not told apart from
each other's leader. A server measured once (or whose leader was) has no interval:
whether it is tied is unknown, and it says so. Failed cells come last, unranked.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.matrix.precision import Interval

KEYS = ["app", "workload", "connections"]
COLUMNS = [
    *KEYS,
    "server",
    "rank",
    "tie_group",
    "tied_with_leader",
    "verdict",
    "requests_per_sec_mean",
    "requests_per_sec_ci_low",
    "requests_per_sec_ci_high",
    "share_of_best",
    "ok_n",
    "latency_p99_ms_mean",
]


def _interval(row: Any) -> Interval:
    low, high = row["requests_per_sec_ci_low"], row["requests_per_sec_ci_high"]
    known = pd.notna(low) and pd.notna(high)
    return Interval(
        int(row["ok_n"]) if pd.notna(row["ok_n"]) else 0,
        float(row["requests_per_sec_mean"]),
        float(low) if known else None,
        float(high) if known else None,
        None,
    )


def rank_group(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """One app × workload × connections: its servers, best first, with ranks and ties."""
    measured = rows[rows["requests_per_sec_mean"].notna()]
    measured = measured.sort_values(["requests_per_sec_mean", "server"], ascending=[False, True])
    out: list[dict[str, Any]] = []
    leaders: list[tuple[int, Interval]] = []  # (tie group, leader's interval)
    best = float(measured["requests_per_sec_mean"].iloc[0]) if len(measured) else None
    for rank, (_, row) in enumerate(measured.iterrows(), 1):
        mine = _interval(row)
        unknown = mine.low is None or (bool(leaders) and leaders[0][1].low is None)
        group = next((g for g, lead in leaders if lead.overlaps(mine)), None)
        if group is None:
            group = len(leaders) + 1
            leaders.append((group, mine))
        tied = None if unknown else (rank > 1 and group == 1)
        if rank == 1:
            verdict = "fastest" if not unknown else "fastest (noise unknown)"
        elif unknown:
            verdict = "noise unknown"
        else:
            verdict = "tied with the fastest" if tied else "slower"
        out.append(
            {
                "server": row["server"],
                "rank": rank,
                "tie_group": None if unknown else group,
                "tied_with_leader": tied,
                "verdict": verdict,
                "share_of_best": float(row["requests_per_sec_mean"]) / best if best else None,
                **{c: row[c] for c in COLUMNS if c in row and c not in ("server", "rank")},
            }
        )
    for _, row in rows[rows["requests_per_sec_mean"].isna()].sort_values("server").iterrows():
        out.append(
            {
                **{c: row[c] for c in COLUMNS if c in row},
                "rank": None, "tie_group": None, "tied_with_leader": None,
                "verdict": "failed", "share_of_best": None,
            }
        )  # fmt: skip
    return out


def rank_servers(stats: pd.DataFrame) -> pd.DataFrame:
    """Every app × workload × connections of a run's `cell_stats`, servers ranked."""
    rows: list[dict[str, Any]] = []
    for key, group in stats.groupby(KEYS, sort=True):
        for r in rank_group(group):
            rows.append({**dict(zip(KEYS, key, strict=True)), **r})
    return pd.DataFrame(rows, columns=COLUMNS)
