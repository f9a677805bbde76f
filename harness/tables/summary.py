"""Site stage 2: the tidy table of one run -> summary tables (pandas only).

Takes the table of `harness.tables.dataset.load_runs` restricted to one run (one row per
cell: server, app, workload, connections, repeat) and returns DataFrames the page and
figure stages only format: per-cell statistics across repeats, overhead (of a framework
against the raw app, of the latency middleware against the same app without it), error
rates per request, and warnings about failures. The validity flags (noisy repeats,
Little's law, …) come with the table (harness/tables/flags.py). Nothing here draws, renders or
touches the disk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.tables.intervals import ci_bounds

GROUP = ["server", "app", "workload", "connections"]
METRICS = [
    "requests_per_sec",
    "latency_avg_ms",
    "latency_p50_ms",
    "latency_p99_ms",
    "latency_max_ms",
]
LATENCY = [m for m in METRICS if m.startswith("latency_")]
# Each wrk counter is its own failure mode (see the Methodology page): kept apart,
# never summed into one "errors" figure.
ERROR_KINDS = {
    "connect": "errors_connect",
    "read": "errors_read",
    "write": "errors_write",
    "timeout": "errors_timeout",
    "non_2xx_3xx": "non_2xx_3xx",
}
RAW_APP = "raw"
# `invoke bench --server-metrics` runs each app also as `<app>+metrics`: the same app
# inside the latency middleware (harness/serving/instrumented.py).
METRICS_SUFFIX = "+metrics"


def as_float(df: pd.DataFrame) -> pd.DataFrame:
    """Figures and counters as float64, so missing values are NaN, not pd.NA.

    The table keeps counts as nullable integers; statistics and rates need plain
    floats (a mean of Int64 with NA, or a rate of it, would otherwise carry pd.NA).
    """
    cols = [*METRICS, "requests", *ERROR_KINDS.values(), "session_not_found"]
    cols = [c for c in cols if c in df.columns]
    return df.astype({c: "float64" for c in cols})


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The measured cells, with latency blanked where wrk got no response at all.

    wrk prints 0.00us latencies when no request completed; that is "not measured",
    not "zero latency", so it must not pull means down or draw as a point at 0.
    """
    ok = as_float(df[df["status"] == "ok"])
    ok.loc[ok["requests"].fillna(0) <= 0, LATENCY] = np.nan
    return ok


def cell_stats_by_run(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """`cell_stats` of each run of `df`, by run id, from one computation: per run, pandas'
    own cost was most of it (35 runs at 10,000 cells)."""
    every = cell_stats(df, by=["run_id"])
    return {
        str(run): part.drop(columns="run_id").reset_index(drop=True)
        for run, part in every.groupby("run_id", sort=False)
    }


def cell_stats(df: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Per (server, app, workload, connections): mean/min/max of each metric over ok repeats.

    Also counts repeats (planned, ok, failed), joins the failure reasons, and the
    coefficient of variation of throughput. A cell whose repeats all failed keeps its
    row with NaN metrics, so pages show it as failed instead of dropping it. `by`:
    columns to group by first (`cell_stats_by_run`).
    """
    keys = [*(by or []), *GROUP]
    # Only the columns read below: ok_rows() copies its input, and the table is wide
    # (~140 columns); with every run's page calling this, the copies dominated a build.
    lost_to = ["infrastructure"] if "infrastructure" in df.columns else []
    df = df[[*keys, "repeat", "status", "reason", "requests", *METRICS, *lost_to]]
    ok = ok_rows(df)
    stats = ok.groupby(keys, sort=True)[METRICS].agg(["mean", "min", "max", "std", "count"])
    stats.columns = pd.Index([f"{col[0]}_{col[1]}" for col in stats.columns])
    for m in METRICS:
        # The 95 % interval of the mean (harness/tables/intervals.py); NaN with one repeat.
        low, high = ci_bounds(stats[f"{m}_mean"], stats[f"{m}_std"], stats[f"{m}_count"])
        stats[f"{m}_ci_low"], stats[f"{m}_ci_high"] = low, high
    stats["requests_per_sec_ci_rel"] = (
        stats["requests_per_sec_ci_high"] - stats["requests_per_sec_mean"]
    ) / stats["requests_per_sec_mean"]
    stats["ok_n"] = stats["requests_per_sec_count"]
    rps = ok.groupby(keys, sort=True)["requests_per_sec"]
    stats["requests_per_sec_cv"] = rps.std(ddof=1) / rps.mean()
    stats["requests_total"] = ok.groupby(keys, sort=True)["requests"].sum()
    # Sums of booleans, not Python lambdas per group: a lambda runs once per cell, which
    # cost seconds at thousands of cells.
    no_response = ok.assign(no_response=ok["requests"].fillna(0) <= 0)
    stats["no_response"] = no_response.groupby(keys, sort=True)["no_response"].sum()
    counts = (
        df.assign(is_ok=df["status"] == "ok")
        .groupby(keys, sort=True)
        .agg(repeats=("repeat", "count"), ok=("is_ok", "sum"))
    )
    counts["failed"] = counts["repeats"] - counts["ok"]
    # Failed because a host or link was lost: the infrastructure's failure, not a result.
    lost = df["infrastructure"].fillna(False).astype(bool) if lost_to else df["status"].isna()
    counts["lost"] = lost.groupby([df[k] for k in GROUP], sort=True).sum()
    failed = df[df["status"] != "ok"]
    reasons = failed.groupby(keys, sort=True)["reason"].agg(
        lambda s: "; ".join(sorted({str(r) for r in s if isinstance(r, str) and r}))
    )
    out = counts.join(stats, how="left").join(reasons.rename("reasons"), how="left")
    out["reasons"] = out["reasons"].fillna("")
    return out.reset_index()


def headline(stats: pd.DataFrame, app: str, workload: str, metric: str) -> pd.DataFrame:
    """Servers x connection levels of one metric's mean for one app and workload."""
    sel = stats[(stats["app"] == app) & (stats["workload"] == workload)]
    table = sel.pivot(index="server", columns="connections", values=f"{metric}_mean")
    return table.sort_index().sort_index(axis=1)


def baseline_of(app: str, raw_app: str = RAW_APP) -> str | None:
    """What an app is compared with: `<x>+metrics` with `<x>`, a framework with the raw app."""
    if app.endswith(METRICS_SUFFIX):
        return app.removesuffix(METRICS_SUFFIX)
    return None if app == raw_app else raw_app


def overhead(
    df: pd.DataFrame, raw_app: str = RAW_APP, stats: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per (server, app, workload, connections): the cost of what the app adds.

    Each app is compared with its `baseline` (see `baseline_of`): a framework with the
    raw app, `<x>+metrics` with `<x>` (the cost of timing every request). `share` is the
    app's mean throughput over the baseline's mean; its range pairs the extremes (worst
    app repeat over best baseline repeat and vice versa), because repeats of different
    apps are not paired measurements. Added latency is the same comparison on p50 and p99.
    `stats`: `cell_stats(df)` when the caller has it already.
    """
    stats = cell_stats(df) if stats is None else stats.copy()
    keys = ["server", "workload", "connections"]
    cols = [
        f"{m}_{a}"
        for m in ("requests_per_sec", "latency_p50_ms", "latency_p99_ms")
        for a in ("mean", "min", "max")
    ]
    base = stats.rename(columns={"app": "baseline"}).set_index([*keys, "baseline"])[cols]
    stats["baseline"] = [baseline_of(str(a), raw_app) for a in stats["app"]]
    apps = stats.dropna(subset=["baseline"]).set_index([*keys, "baseline"])
    joined = apps.merge(base, left_index=True, right_index=True, suffixes=("", "_raw"))
    out = pd.DataFrame(index=joined.index)
    out["app"] = joined["app"]
    r = "requests_per_sec"
    out["share"] = joined[f"{r}_mean"] / joined[f"{r}_mean_raw"]
    out["share_min"] = joined[f"{r}_min"] / joined[f"{r}_max_raw"]
    out["share_max"] = joined[f"{r}_max"] / joined[f"{r}_min_raw"]
    for q in ("p50", "p99"):
        m = f"latency_{q}_ms"
        out[f"added_{q}_ms"] = joined[f"{m}_mean"] - joined[f"{m}_mean_raw"]
        out[f"added_{q}_ms_min"] = joined[f"{m}_min"] - joined[f"{m}_max_raw"]
        out[f"added_{q}_ms_max"] = joined[f"{m}_max"] - joined[f"{m}_min_raw"]
    out["failed"] = joined["failed"]
    out = out.replace([np.inf, -np.inf], np.nan).reset_index()
    columns = ["server", "app", "baseline", "workload", "connections"]
    out = out[[*columns, *(c for c in out.columns if c not in columns)]]
    return out.sort_values(["server", "app", "workload", "connections"], ignore_index=True)


def error_rates(df: pd.DataFrame, stats: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (server, app, workload, connections): each error counter per request.

    Counters and requests are summed over the ok repeats before dividing, so a rate
    is errors per request actually made. No requests means no rate (NaN), not 0.
    `stats`: `cell_stats(df)` when the caller has it already.
    """
    cols = ["requests", *ERROR_KINDS.values()]
    # Only the columns read here: the table is wide, and as_float() copies what it gets.
    read = [c for c in [*GROUP, "status", *cols, "session_not_found"] if c in df.columns]
    ok = as_float(df.loc[df["status"] == "ok", read])
    sums = ok.groupby(GROUP, sort=True)[cols].sum()
    out = pd.DataFrame(index=sums.index)
    out["requests"] = sums["requests"]
    requests = sums["requests"].where(sums["requests"] > 0)
    for kind, col in ERROR_KINDS.items():
        out[f"{kind}_count"] = sums[col]
        out[f"{kind}_rate"] = sums[col] / requests
    # The session workload GETs and DELETEs absent keys on purpose: its 404s are answers.
    out["session_not_found_count"] = np.nan
    if "session_not_found" in ok:
        misses = ok.groupby(GROUP, sort=True)["session_not_found"].sum(min_count=1)
        out["session_not_found_count"] = misses
    out["session_not_found_rate"] = out["session_not_found_count"] / requests
    stats = cell_stats(df) if stats is None else stats
    counts = stats.set_index(GROUP)[["repeats", "ok", "failed", "reasons"]]
    return counts.join(out, how="left").reset_index()


def warnings(stats: pd.DataFrame, errors: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, reason to distrust it): columns GROUP + kind + detail.

    Kinds: failed, lost (to the infrastructure: a host or link), no_responses, errors.
    Noisy repeats, Little's law and the other validity checks are the table's flags
    (harness/tables/flags.py), shown as badges.
    """
    rows: list[dict[str, object]] = []

    def add(row: pd.Series, kind: str, detail: str) -> None:
        rows.append({**{k: row[k] for k in GROUP}, "kind": kind, "detail": detail})

    for _, row in stats.iterrows():
        lost = int(row.get("lost", 0) or 0)
        if row["failed"] > lost:
            add(row, "failed", f"{row['failed'] - lost} of {row['repeats']} repeats failed")
        if lost:
            add(
                row,
                "lost",
                f"{lost} of {row['repeats']} repeats lost to a host or link (not the server's "
                "failure, not a result: the same command or --resume measures them again)",
            )
        if row["no_response"] > 0:
            add(row, "no_responses", f"{row['no_response']} of {row['ok']} repeats got no response")
    for _, row in errors.iterrows():
        # The session workload's 404s answer requests for absent keys: not errors.
        counts = {k: row.get(f"{k}_count", 0) for k in ERROR_KINDS}
        misses = row.get("session_not_found_count")
        if pd.notna(misses):
            counts["non_2xx_3xx"] -= misses
        kinds = [k for k, n in counts.items() if n > 0]
        if kinds:
            add(row, "errors", ", ".join(kinds))
    out = pd.DataFrame(rows, columns=[*GROUP, "kind", "detail"])
    return out.sort_values([*GROUP, "kind"], ignore_index=True)
