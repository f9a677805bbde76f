"""Site stage 2: the tidy table of one run -> what the cells say about themselves (pandas).

Beside wrk's figures, each cell records what the sampler saw (server and wrk CPU, the
server's memory), what the preflight check found before measuring, and, for the
session workload, the replies per kind. This module sums those per cell (server, app,
workload, connections) over the ok repeats, and sets the fastest cell against the
client ceiling of `invoke calibrate`. Nothing here draws, renders or touches the disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from harness.tables.flags import CLIENT_BOUND_SHARE
from harness.tables.summary import GROUP

# How each sampler column is summed over repeats: means of means, maxima of maxima.
RESOURCES = {
    "server_cpu_pct_mean": "mean",
    "server_cpu_pct_max": "max",
    "server_rss_mb_max": "max",
    "wrk_cpu_pct_mean": "mean",
    "wrk_cpu_pct_max": "max",
}
SESSION_COUNTS = [
    *"session_get session_post session_delete session_value session_created".split(),
    *"session_deleted session_not_found session_other session_mismatches".split(),
]


def resources(df: pd.DataFrame, workers: int | None = None) -> pd.DataFrame:
    """Per cell with samples: CPU and memory of server and wrk, and requests per CPU second.

    CPU % is per one CPU, like top (200 = two busy cores); RSS is summed over the
    server's process tree. `rss_mb_per_worker` divides it by the run's worker count
    (so the master's share is spread over the workers); NaN when that is unknown.
    """
    cols = [*RESOURCES, "requests_per_sec"]
    has = df[(df["status"] == "ok") & (df["samples_n"].fillna(0) > 0)]
    has = has.astype({c: "float64" for c in cols})
    by = has.groupby(GROUP, sort=True)
    out = by.agg(**{c: (c, how) for c, how in RESOURCES.items()})
    out["samples"] = by["samples_n"].sum()
    out["requests_per_sec_mean"] = by["requests_per_sec"].mean()
    cpus = out["server_cpu_pct_mean"] / 100
    out["requests_per_cpu_s"] = out["requests_per_sec_mean"] / cpus.where(cpus > 0)
    out["rss_mb_per_worker"] = out["server_rss_mb_max"] / workers if workers else np.nan
    return out.reset_index()


def session_replies(df: pd.DataFrame) -> pd.DataFrame:
    """Per session cell: requests issued per method and replies per kind, summed over repeats.

    `exact` is true when every repeat checked each reply against its model of the store
    (one connection per wrk thread); only then is `session_mismatches` counted.
    """
    has = df[(df["status"] == "ok") & df["session_get"].notna()]
    by = has.groupby(GROUP, sort=True)
    out = by[SESSION_COUNTS].sum(min_count=1)
    out["requests"] = by["requests"].sum()
    out["exact"] = by["session_exact"].agg(lambda s: bool(s.fillna(False).all()))
    return out.reset_index()


def preflight(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Per (server, app, workload): the preflight verdict over its cells, with reasons.

    `result` is one of: ok; ok, but a check failed that does not block measuring
    (gunicorn's sync worker announces `Connection: close` by design); failed, so not
    measured; failed but measured anyway (`--ignore-preflight`); not checked (imported
    cells, runs from before the check).
    """
    rows = []
    read = ["server", "app", "workload", "status", "reason"]
    read += ["preflight_ok", "preflight_ignored", "preflight_reason"]
    df = df[[c for c in read if c in df.columns]]  # only what is read: the table is wide
    for (server, app, workload), g in df.groupby(["server", "app", "workload"], sort=True):
        reason = g["reason"].fillna("").astype(str)
        refused = g[(g["status"] != "ok") & reason.str.startswith("preflight")]
        checked = g[g["preflight_ok"].notna()]
        failed = checked[~checked["preflight_ok"].astype(bool)]
        ignored = failed[failed["preflight_ignored"].fillna(False).astype(bool)]
        why = {str(r) for r in failed["preflight_reason"].dropna() if r}
        why |= {r.removeprefix("preflight: ") for r in refused["reason"].dropna()}
        if len(refused):
            result = "failed: not measured"
        elif len(ignored):
            result = "failed: measured anyway (--ignore-preflight)"
        elif len(failed):
            result = "ok: a non-blocking check failed"
        elif len(checked):
            result = "ok"
        else:
            result = "not checked"
        rows.append(
            {
                "server": server,
                "app": app,
                "workload": workload,
                "cells": len(g),
                "checked": len(checked),
                "failed": len(failed) + len(refused.index.difference(failed.index)),
                "result": result,
                "reasons": "; ".join(sorted(why)),
            }
        )
    return rows


def client_ceiling(
    calibration: Mapping[str, Any] | None, stats: pd.DataFrame, run: Mapping[str, Any]
) -> dict[str, Any]:
    """The fastest cell of the run against the client ceiling, and whether it is near it.

    `calibration` is the run's calibration.json (harness/bench/calibrate.py) or None. The
    fastest cell is the highest mean req/s over the ok repeats of any cell.
    """
    measured = stats.dropna(subset=["requests_per_sec_mean"])
    fastest = None
    if len(measured):
        top = measured.sort_values(["requests_per_sec_mean", *GROUP]).iloc[-1]
        fastest = {k: top[k] for k in GROUP} | {"rps": float(top["requests_per_sec_mean"])}
    out: dict[str, Any] = {"fastest": fastest, "calibration": None, "share": None}
    cal = calibration or {}
    ceiling = cal.get("requests_per_sec")
    if cal.get("status") != "ok" or not isinstance(ceiling, int | float) or ceiling <= 0:
        out["failed"] = cal.get("reason") if cal else None
        return out
    settings = run.get("settings") or {}
    out["calibration"] = dict(cal)
    out["same_pinning"] = cal.get("client_cpus") == settings.get("client_cpus") and cal.get(
        "server_cpus"
    ) == settings.get("server_cpus")
    if fastest is not None:
        out["share"] = fastest["rps"] / float(ceiling)
        out["client_bound"] = out["share"] >= CLIENT_BOUND_SHARE
    return out
