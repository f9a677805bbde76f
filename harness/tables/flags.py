"""Table stage: validity flags per cell — why a number might not mean what it seems.

`add_flags(df)` takes the tidy table of harness.tables.dataset.load_runs (one row per cell and
repeat) and returns a copy with `flags` (flag ids, sorted, `;`-separated, '' when none)
and `flag_details` (`id: text` per flag, joined by " | "). `FLAGS` explains each id for
badges and the legend page. Pure: no I/O, no plotting.

A flag needs certain columns. A column that is missing or empty (NaN, NA) means "cannot
tell", and the flag is not raised: an absent measurement is never evidence of a problem.
The sampler columns (`wrk_cpu_pct_mean`, `established_median`, …) come from
harness.raw.samples.summarize; `client_cpus_n`/`server_cpus_n` are the pinned CPU counts
(unpinned: wrk can use `threads` CPUs, the server the host's `cores`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from harness.raw.preflight import ANNOUNCED_CLOSE
from harness.tables.flaginfo import FLAGS, LITTLE_LOW, FlagInfo, little_holds
from harness.tables.openflags import CLOSED_LOOP_ONLY, open_client_saturated, rate_not_achieved
from harness.tables.rowvalues import SATURATED, num

__all__ = ["FLAGS", "FlagInfo", "add_flags", "details_of", "row_flags"]


NOISY_CV = 0.10  # pyperf warns when stdev >= 10 % of the mean
EOF_SHARE = 0.5  # EOF-framed responses give one read error per request; others are rare
TIMEOUT_NEAR = 0.95  # a max within 5 % of --timeout: the next slower response was dropped
# A cell at 70 % or more of what wrk drives against nginx measures the client as much
# as the server: nginx answers far faster than any WSGI server, so that is the ceiling.
CLIENT_BOUND_SHARE = 0.70
STARVED_SHARE = 0.9  # established below 90 % of the open connections
QUEUE_SHARE = 0.1  # accept queue holding 10 % of the connections (at least 1)
# Typical soft open-files limits, tried when the cell's own limit is not recorded
# (imported logs): the study's wrk had 1024.
COMMON_NOFILE = (1024, 4096)
FD_SLACK = 8  # extra descriptors wrk may hold (scripts, resolver) beyond stdio + epolls
STALL_S = 1.0  # a quiet stretch longer than this inside the measurement is a stall
GROUP_KEYS = ["run_id", "server", "app", "workload", "connections", "rate"]
_CRASH = re.compile(r"server exited .*during the measurement")


def _open_conns(row: Mapping[str, Any]) -> float | None:
    c, t = num(row, "connections"), num(row, "threads")
    eff = num(row, "connections_effective")
    if eff is None and c is not None:
        eff = (c // t) * t if t else c
    if eff is None:
        return None
    return max(eff - (num(row, "errors_connect") or 0), 1.0)


def _in_flight(row: Mapping[str, Any]) -> float | None:
    rps, lat = num(row, "requests_per_sec"), num(row, "latency_avg_ms", "latency_mean_ms")
    return None if rps is None or lat is None else rps * lat / 1000


def littles_law(row: Mapping[str, Any]) -> str | None:
    rps, lat = num(row, "requests_per_sec"), num(row, "latency_avg_ms", "latency_mean_ms")
    n, opened = _in_flight(row), _open_conns(row)
    if not rps or lat is None or n is None or opened is None:
        return None
    ratio = n / opened
    if little_holds(n, opened):
        return None
    return (
        f"{rps:.2f} req/s × {lat:.2f} ms = {n:.1f} requests in flight"
        f" for {opened:.0f} open connections (ratio {ratio:.2f})"
    )


def effective_connections(row: Mapping[str, Any]) -> str | None:
    c, t = num(row, "connections"), num(row, "threads")
    if c is None or not t or (c // t) * t == c:
        return None
    each = int(c // t)
    return (
        f"wrk opened {each * int(t)} connections, not {int(c)}: {each} for each of {int(t)} threads"
    )


def fd_limit(row: Mapping[str, Any]) -> str | None:
    c, errors = num(row, "connections"), num(row, "errors_connect")
    if c is None or not errors or errors <= 0:
        return None
    opened, own = c - errors, 3 + (num(row, "threads") or 1)  # stdio + one epoll per thread
    recorded = num(row, "nofile_limit")
    for limit in [recorded] if recorded else COMMON_NOFILE:
        if limit - own - FD_SLACK <= opened <= limit - own or (recorded and c > limit - own):
            return (
                f"{errors:.0f} connect errors: {opened:.0f} connections opened, about the "
                f"open-files limit {limit:.0f} minus {own:.0f} descriptors wrk keeps for itself"
            )
    return None


def eof_read_errors(row: Mapping[str, Any]) -> str | None:
    read, requests = num(row, "errors_read"), num(row, "requests")
    if not read or not requests or read < EOF_SHARE * requests:
        return None
    return f"{read:.0f} read errors for {requests:.0f} requests: bodies end at connection close"


def timeout_truncated(row: Mapping[str, Any]) -> str | None:
    timeouts = num(row, "errors_timeout")
    if timeouts:
        return f"{timeouts:.0f} timeouts left out of the latency figures"
    top, limit_s = num(row, "latency_max_ms"), num(row, "timeout_configured_s", "timeout_s")
    if top is not None and limit_s and top >= TIMEOUT_NEAR * limit_s * 1000:
        return f"max latency {top:.0f} ms at the {limit_s * 1000:.0f} ms timeout"
    return None


def non_2xx(row: Mapping[str, Any]) -> str | None:
    bad, requests = num(row, "non_2xx_3xx"), num(row, "requests")
    besides = ""
    if row.get("workload") == "session":
        # The session mix GETs and DELETEs keys that may be absent: a 404 is a right answer
        # there. Count only other error statuses; without the Lua report, cannot tell.
        misses = num(row, "session_not_found")
        bad = None if bad is None or misses is None else bad - misses
        besides = " other than 404"
    if not bad or bad < 0:
        return None
    share = f" ({bad / requests:.0%})" if requests else ""
    return f"{bad:.0f} of {requests or 0:.0f} responses{share} had a status of 400 or more{besides}"


def client_saturated(row: Mapping[str, Any]) -> str | None:
    if row.get("loop") == "open":
        return open_client_saturated(row)
    rps, ceiling = num(row, "requests_per_sec"), num(row, "client_ceiling_rps")
    if rps is not None and ceiling and rps >= CLIENT_BOUND_SHARE * ceiling:
        return (
            f"{rps:,.0f} req/s is {rps / ceiling:.0%} of the client ceiling measured in this "
            f"run ({ceiling:,.0f} req/s, wrk against nginx)"
        )
    wrk, server = num(row, "wrk_cpu_pct_mean"), num(row, "server_cpu_pct_mean")
    threads = num(row, "threads") or 1
    wrk_cpus = min(threads, num(row, "client_cpus_n") or threads)
    server_cpus = num(row, "server_cpus_n", "cores")
    if wrk is None or server is None or server_cpus is None:
        return None
    if wrk >= SATURATED * 100 * wrk_cpus and server < SATURATED * 100 * server_cpus:
        return (
            f"wrk used {wrk:.0f} % of {wrk_cpus:.0f} CPU(s), "
            f"the server {server:.0f} % of {server_cpus:.0f}"
        )
    return None


def server_crashed(row: Mapping[str, Any]) -> str | None:
    reason = row.get("reason")
    if row.get("status") == "failed" and isinstance(reason, str) and _CRASH.search(reason):
        return reason
    changed = row.get("server_pids_changed")
    if changed is not None and changed is not pd.NA and bool(changed):
        return "the server's process ids changed during the measurement"
    return None


def starved_connections(row: Mapping[str, Any]) -> str | None:
    est, queue = num(row, "established_median"), num(row, "accept_queue_median")
    opened = _open_conns(row)
    if opened is None:
        return None
    # A server that closes every connection after its response (gunicorn's sync worker,
    # seen by the preflight) has wrk reconnecting all the time: fewer established
    # connections is its model, not starvation. The accept-queue test below still applies.
    closes = ANNOUNCED_CLOSE in str(row.get("preflight_reason") or "")
    if est is not None and est < STARVED_SHARE * opened and not closes:
        return f"median {est:.0f} of {opened:.0f} connections established at the server"
    n = _in_flight(row)
    if queue is not None and n is not None and queue >= max(1.0, QUEUE_SHARE * opened):
        if n < LITTLE_LOW * opened:
            return f"median {queue:.0f} connections in the accept queue, {n:.1f} requests in flight"
    return None


def noise_unknown(row: Mapping[str, Any]) -> str | None:
    """One ok repeat in the cell: no interval, whatever the number looks like."""
    n = num(row, "repeats_ok")
    if row.get("status") == "ok" and n is not None and n < 2:
        return "one ok repeat: no interval, the run-to-run spread is unknown"
    return None


def imprecise(row: Mapping[str, Any]) -> str | None:
    """The run asked for a precision this cell did not reach."""
    target, reached = num(row, "precision_target"), num(row, "requests_per_sec_ci_rel")
    if row.get("status") == "ok" and target and reached is not None and reached > target:
        n = num(row, "repeats_ok") or 0
        return f"±{reached:.1%} after {n:.0f} repeats, ±{target:.1%} asked"
    return None


def stalled(row: Mapping[str, Any]) -> str | None:
    gap, at = num(row, "stall_s"), num(row, "stall_at_s")
    if gap is None or gap <= STALL_S:
        return None
    when = f" from {at:.1f} s into the measurement" if at is not None else ""
    return f"the server's CPU stayed near zero for {gap:.1f} s{when} while it was otherwise busy"


def _failed_preflight(row: Mapping[str, Any]) -> str | None:
    """The failed checks of a cell measured with them, or None."""
    passed, reason = row.get("preflight_ok"), row.get("preflight_reason")
    if passed is None or passed is pd.NA or bool(passed) or not isinstance(reason, str):
        return None
    return reason


def _ignored(row: Mapping[str, Any]) -> bool:
    ignored = row.get("preflight_ignored")
    return ignored is not None and ignored is not pd.NA and bool(ignored)


def closes_connections(row: Mapping[str, Any]) -> str | None:
    """The server announced Connection: close: measured, and how it behaves."""
    reason = _failed_preflight(row)
    if reason is None or ANNOUNCED_CLOSE not in reason:
        return None
    return (
        "the server closes the connection after every response: wrk opens a new one "
        "for each request"
    )


def preflight(row: Mapping[str, Any]) -> str | None:
    """Any other failed check the cell was measured with, or one it was measured despite
    (--ignore-preflight)."""
    reason = _failed_preflight(row)
    if reason is None:
        return None
    others = [part for part in reason.split("; ") if ANNOUNCED_CLOSE not in part]
    if not others and not _ignored(row):
        return None  # closes_connections says it
    return f"measured despite a failed check: {reason}"


# fmt: off
ROW_FLAGS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {f.__name__: f for f in (
    littles_law, effective_connections, fd_limit, eof_read_errors, timeout_truncated, non_2xx,
    client_saturated, starved_connections, noise_unknown, imprecise, stalled, preflight,
    closes_connections, rate_not_achieved,
)}
# fmt: on


def noisy(df: pd.DataFrame) -> dict[Any, str]:
    """Row index -> detail for every repeat of a cell whose req/s stdev ≥ 10 % of the mean."""
    ok = df[df["status"] == "ok"] if "status" in df else df
    if "requests_per_sec" not in ok:
        return {}
    keys = [k for k in GROUP_KEYS if k in ok]
    rps = pd.to_numeric(ok["requests_per_sec"], errors="coerce").astype("float64")
    # Whole-column statistics per group: iterating over 10,000 one-cell groups of the
    # full table took ~20 s; these take milliseconds. NaN rates are left out (count, std).
    by = rps.groupby([ok[k] for k in keys] if keys else [0] * len(rps), dropna=False)
    n, mean, std = (by.transform(f) for f in ("count", "mean", "std"))
    cv = std / mean
    noisy_rows = rps.notna() & (n >= 2) & (mean > 0) & (cv >= NOISY_CV)
    return {
        i: f"{n[i]:.0f} repeats: mean {mean[i]:.0f} req/s, stdev {cv[i]:.0%} of it"
        for i in noisy_rows[noisy_rows].index
    }


def row_flags(row: Mapping[str, Any]) -> dict[str, str]:
    """Flag id -> detail for one row (all flags but `noisy`, which needs the repeats)."""
    found = {}
    if row.get("status", "ok") == "ok":
        opened = row.get("loop") == "open"
        for flag_id, check in ROW_FLAGS.items():
            if opened and flag_id in CLOSED_LOOP_ONLY:
                continue
            detail = check(row)
            if detail is not None:
                found[flag_id] = detail
    crash = server_crashed(row)
    if crash is not None:
        found["server_crashed"] = crash
    return found


def add_flags(df: pd.DataFrame, rows: Sequence[Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """A copy of `df` with `flags` and `flag_details` filled.

    `rows`: the same rows as plain dicts, in the same order, when the caller has them
    (load_runs builds the table from them): the flags are read from those instead of
    converting every cell of `df` back to a Python object (~1 s at 10,000 rows).
    """
    out = df.copy()
    noise = noisy(out)
    ids, texts = [], []
    if rows is None:
        rows = [{str(k): v for k, v in r.items()} for r in out.to_dict("records")]
    for index, row in zip(out.index, rows, strict=True):
        found = row_flags(row)
        if index in noise:
            found["noisy"] = noise[index]
        ids.append(";".join(sorted(found)))
        texts.append(" | ".join(f"{k}: {found[k].replace('|', '/')}" for k in sorted(found)))
    out["flags"] = pd.array(ids, dtype="str")
    out["flag_details"] = pd.array(texts, dtype="str")
    return out


def details_of(text: str) -> dict[str, str]:
    """`flag_details` text back into id -> detail."""
    pairs = (part.split(": ", 1) for part in text.split(" | ") if part)
    return {k: v for k, v in pairs}
