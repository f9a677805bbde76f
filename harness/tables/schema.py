"""Table stage: the schema of the tidy table and how one cell's figures fill it.

Column order, pandas dtypes and row sort order are fixed here so every output is
deterministic; docs/schema.md documents each column (a test keeps both in step).
`figures()` turns a WrkResult plus the cell's Lua report into the figure columns:
exact values where the report has them, wrk's printed ones in the `*_printed` twins.
Imports no pandas, so pages and figures can name columns cheaply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.parse.openloop import OpenLoopResult
from harness.parse.records import RawFormatError, WrkResult

# `loop` and `rate` keep an open-loop cell's rows apart from its closed-loop cell's:
# closed rows have loop "closed" and no rate, so their order is what it always was.
SORT_KEYS = ["run_id", "server", "app", "workload", "connections", "loop", "rate", "repeat"]
PERCENTILES = (50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0)


def percentile_column(p: float) -> str:
    """50.0 -> 'latency_p50_ms', 99.9 -> 'latency_p99_9_ms'."""
    return "latency_p" + f"{p:g}".replace(".", "_") + "_ms"


_PCTS = [percentile_column(p) for p in PERCENTILES]
# Figures the Lua report knows exactly; each keeps wrk's printed value in `<name>_printed`.
EXACT = [
    *"requests duration_s requests_per_sec bytes_read transfer_per_sec_bytes".split(),
    *"latency_avg_ms latency_stdev_ms latency_max_ms".split(),
    *_PCTS,
    *"thread_requests_per_sec_avg thread_requests_per_sec_stdev".split(),
    "thread_requests_per_sec_max",
]
# Columns of one cell beyond wrk's summary (harness/tables/cellcolumns.py and the samples).
SESSION = [
    *"session_get session_post session_delete session_value session_created".split(),
    *"session_deleted session_not_found session_other session_exact session_mismatches".split(),
]
CELL_STATS = [
    "repeats_ok",
    *"requests_per_sec_ci_low requests_per_sec_ci_high requests_per_sec_cv".split(),
    "requests_per_sec_ci_rel",
    *"latency_p50_ms_ci_low latency_p50_ms_ci_high".split(),
    *"latency_p99_ms_ci_low latency_p99_ms_ci_high".split(),
]
SAMPLES = [
    *"samples_n server_cpu_pct_mean server_cpu_pct_max server_rss_mb_max".split(),
    *"wrk_cpu_pct_mean wrk_cpu_pct_max accept_queue_max accept_queue_median".split(),
    *"established_min established_median server_pids_changed stall_s stall_at_s".split(),
]
# Open-loop cells (`--rates`): the offered load, what was achieved, and the latency
# before the coordinated-omission correction (the corrected one fills latency_*_ms).
OPEN_LOOP = [
    *"offered_rate_rps offered_pct closed_loop_rps achieved_rate_rps achieved_pct".split(),
    *"sent sent_early latency_uncorrected_avg_ms latency_uncorrected_max_ms".split(),
    *"latency_uncorrected_p50_ms latency_uncorrected_p90_ms latency_uncorrected_p99_ms".split(),
    *"latency_uncorrected_p99_9_ms send_lag_p99_ms send_lag_max_ms".split(),
]
COLUMNS = [
    *"run_id server app workload connections loop rate repeat status reason".split(),
    "infrastructure",
    *"flags flag_details".split(),
    *"tool url figures_from requests duration_s requests_per_sec bytes_read".split(),
    *"transfer_per_sec_bytes latency_min_ms latency_avg_ms latency_stdev_ms".split(),
    *"latency_max_ms latency_within_stdev_pct".split(),
    *_PCTS,
    *"errors_connect errors_read errors_write errors_timeout non_2xx_3xx".split(),
    # The cell's statistics over its ok repeats, on each of its rows (harness/tables/intervals.py)
    *CELL_STATS,
    *"precision_target client_ceiling_rps".split(),
    *"thread_requests_per_sec_avg thread_requests_per_sec_stdev".split(),
    *"thread_requests_per_sec_max thread_requests_per_sec_within_stdev_pct".split(),
    *SESSION,
    *OPEN_LOOP,
    *[f"{name}_printed" for name in EXACT],
    *"threads connections_effective test_duration_s duration_configured_s".split(),
    *"warmup_configured_s timeout_configured_s nofile_limit started_at ended_at".split(),
    *"server_ready_s wrk_exit_code server_exit_code client_cpus_n server_cpus_n".split(),
    *"preflight_ok preflight_ignored preflight_reason".split(),
    *SAMPLES,
    *"profile run_status run_started_at run_ended_at imported python_version".split(),
    *"wrk_version server_version framework_version host cpu_model cores kernel os".split(),
    *"server_host client_hosts clients_n".split(),
    *"git_commit git_dirty stdout_file lua_json_file has_server_metrics metrics_file".split(),
    "samples_file",
    "open_json_file",
]
_INT = set(
    "connections repeat requests requests_printed errors_connect errors_read errors_write sent"
    " sent_early"
    " errors_timeout non_2xx_3xx threads connections_effective nofile_limit wrk_exit_code"
    " server_exit_code cores client_cpus_n server_cpus_n samples_n accept_queue_max"
    " established_min repeats_ok clients_n".split()
    + [c for c in SESSION if c != "session_exact"]
)
_TEXT = set(
    "run_id server app workload status reason flags flag_details tool url figures_from"
    " started_at ended_at preflight_reason profile run_status run_started_at run_ended_at"
    " python_version wrk_version server_version framework_version host cpu_model kernel os"
    " git_commit stdout_file lua_json_file metrics_file samples_file server_host"
    " client_hosts loop rate open_json_file".split()
)
_BOOL = set(
    "git_dirty preflight_ok preflight_ignored server_pids_changed imported has_server_metrics"
    " session_exact infrastructure".split()
)


def _dtype(column: str) -> str:
    if column in _INT:
        return "Int64"  # nullable: a failed cell has no count, not a zero
    if column in _TEXT:
        return "str"
    return "boolean" if column in _BOOL else "float64"


DTYPES = {c: _dtype(c) for c in COLUMNS}


# Names looked up once, not per cell: figures() runs for every cell of every run.
_PRINTED = [k for k in EXACT if k not in _PCTS]
_PRINTED_NAMES = [(k, f"{k}_printed") for k in [*_PRINTED, *_PCTS]]
_ERRORS = [k for k in COLUMNS if k.startswith(("errors_", "non_2xx"))]


def figures(
    r: WrkResult, report: dict[str, Any] | None = None, report_path: str | Path = ""
) -> dict[str, Any]:
    """The figure columns of one ok cell; `report` is its parsed .lua.json, if any."""
    printed: dict[str, Any] = {k: getattr(r, k) for k in _PRINTED}
    printed.update(zip(_PCTS, map(r.latency_percentiles_ms.get, PERCENTILES), strict=True))
    exact = _exact(report, str(report_path)) if report is not None else {}
    out = {k: v if (e := exact.get(k)) is None else e for k, v in printed.items()}
    out.update({name: printed[k] for k, name in _PRINTED_NAMES})
    out.update(
        {k: getattr(r, k) for k in _ERRORS},
        tool=r.tool,
        figures_from="lua.json" if exact else "stdout",
        latency_min_ms=exact.get("latency_min_ms"),
        latency_within_stdev_pct=r.latency_within_stdev_pct,
        thread_requests_per_sec_within_stdev_pct=r.thread_requests_per_sec_within_stdev_pct,
        test_duration_s=r.test_duration_s,
    )
    return out


def report_figures(report: dict[str, Any], report_path: str | Path) -> dict[str, Any]:
    """The figure columns of an ok cell that has only a Lua report: the merged figures of
    several wrk clients (no wrk printed them, so there is no stdout to parse)."""
    out: dict[str, Any] = {k: None for k in COLUMNS if k.endswith("_printed")}
    out.update(_exact(report, str(report_path)))
    found = report.get("errors")
    errors: dict[str, Any] = found if isinstance(found, dict) else {}
    for kind in ("connect", "read", "write", "timeout"):
        out[f"errors_{kind}"] = errors.get(kind)
    # wrk's summary.errors.status is what it prints as "Non-2xx or 3xx responses".
    out["non_2xx_3xx"] = errors.get("status")
    out.update(tool="wrk", figures_from="lua.json (merged clients)")
    return out


def open_loop_figures(r: OpenLoopResult) -> dict[str, Any]:
    """The figure columns of an ok open-loop cell from its parsed `.open.json` report:
    the latency columns hold the corrected latency (from when each request was due), the
    `latency_uncorrected_*` ones the latency from when it was sent; requests per second
    is what was achieved (answered over the schedule's window)."""
    pc, pu = r.latency_percentiles_ms, r.latency_uncorrected_percentiles_ms
    lag = r.send_lag_percentiles_ms
    out: dict[str, Any] = {k: None for k in COLUMNS if k.endswith("_printed")}
    out.update(
        tool=r.tool,
        figures_from="open.json",
        requests=r.answered,
        duration_s=r.window_s,
        requests_per_sec=r.achieved_rate_rps,
        bytes_read=float(r.bytes_read),
        transfer_per_sec_bytes=r.bytes_read / r.window_s if r.window_s > 0 else None,
        latency_avg_ms=r.latency_mean_ms,
        latency_max_ms=r.latency_max_ms,
        errors_connect=r.errors_connect,
        errors_read=r.errors_read,
        errors_write=r.errors_write,
        errors_timeout=r.errors_timeout,
        non_2xx_3xx=r.non_2xx_3xx,
        offered_rate_rps=r.offered_rate_rps,
        achieved_rate_rps=r.achieved_rate_rps,
        achieved_pct=100 * r.achieved_rate_rps / r.offered_rate_rps if r.offered_rate_rps else None,
        sent=r.sent,
        sent_early=r.sent_early,
        latency_uncorrected_avg_ms=r.latency_uncorrected_mean_ms,
        latency_uncorrected_max_ms=r.latency_uncorrected_max_ms,
        send_lag_p99_ms=lag.get(99.0),
        send_lag_max_ms=r.send_lag_max_ms,
        test_duration_s=r.duration_s,
    )
    for p in PERCENTILES:
        out[percentile_column(p)] = pc.get(p)
    for p in (50.0, 90.0, 99.0, 99.9):
        out[percentile_column(p).replace("latency_", "latency_uncorrected_")] = pu.get(p)
    return out


def wrk2_open_loop(r: WrkResult, offered: float | None) -> dict[str, Any]:
    """The open-loop columns of a wrk2 output (imported): achieved is its req/s, the
    uncorrected percentiles its `-U` block's (empty without one)."""
    achieved = r.requests_per_sec
    out: dict[str, Any] = {
        "offered_rate_rps": offered,
        "achieved_rate_rps": achieved,
        "achieved_pct": 100 * achieved / offered if offered else None,
        "sent": None,
    }
    for p in (50.0, 90.0, 99.0, 99.9):
        col = percentile_column(p).replace("latency_", "latency_uncorrected_")
        out[col] = r.latency_uncorrected_percentiles_ms.get(p)
    return out


def _number(v: Any, keys: str, path: str) -> Any:
    if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
        raise RawFormatError(f"{keys}: expected a number, found {v!r}", path=path)
    return v


def _member(doc: Any, key: str) -> dict[str, Any]:
    v = doc.get(key)
    return v if isinstance(v, dict) else {}


_PCT_KEYS = [(f"{p:g}", col) for p, col in zip(PERCENTILES, _PCTS, strict=True)]


def _exact(doc: dict[str, Any], path: str) -> dict[str, Any]:
    """The Lua report (docs/raw-format.md) in table units: ms, s, per second."""
    lat, per_thread = _member(doc, "latency_us"), _member(doc, "requests_per_thread_sec")
    pcts = _member(lat, "percentiles")

    def ms(key: str, values: dict[str, Any] = lat, prefix: str = "latency_us.") -> float | None:
        v = _number(values.get(key), prefix + key, path)
        return None if v is None else v / 1000

    seconds = _number(doc.get("duration_us"), "duration_us", path)
    requests = _number(doc.get("requests"), "requests", path)
    size = _number(doc.get("bytes"), "bytes", path)
    if requests is not None and not isinstance(requests, int):
        raise RawFormatError(f"requests: expected a whole number, found {requests!r}", path=path)
    seconds = seconds / 1e6 if seconds else None
    thread = "requests_per_thread_sec."
    out = {
        "requests": requests,
        "duration_s": seconds,
        "bytes_read": size,
        "requests_per_sec": requests / seconds if seconds and requests is not None else None,
        "transfer_per_sec_bytes": size / seconds if seconds and size is not None else None,
        "latency_min_ms": ms("min"),
        "latency_avg_ms": ms("mean"),
        "latency_stdev_ms": ms("stdev"),
        "latency_max_ms": ms("max"),
        "thread_requests_per_sec_avg": _number(per_thread.get("mean"), thread + "mean", path),
        "thread_requests_per_sec_stdev": _number(per_thread.get("stdev"), thread + "stdev", path),
        "thread_requests_per_sec_max": _number(per_thread.get("max"), thread + "max", path),
    }
    # Keys as Lua's tostring() writes them: "50", "99.9".
    for key, col in _PCT_KEYS:
        out[col] = ms(key, pcts, "latency_us.percentiles.")
    return out
