"""Perf stage: how fast and how precise the open-loop client is here (`invoke perf
--open-loop`) -> perf.json's `open_loop`.

The client (wrk + harness/bench/lua/openloop.lua) is run against nginx, pinned like a
cell (server CPUs for nginx, client CPUs for wrk), at a ladder of offered rates, each
rate REPEATS times in interleaved rounds (every rate once before any twice: a shared
machine drifts). Per rate: the achieved share of the offered rate, the corrected p50 and
p99 (its latency floor at that rate: nginx answers in microseconds, so the rest is the
client's), the client's CPU, each as a mean with its 95 % interval. The highest
accurate rate is the highest rate of the ladder whose every repeat achieved at least
97 % of the offered rate with the client under 90 % of its CPUs — and every lower rate
too (a ladder with a hole is not trusted above the hole).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from harness.bench.calibrate import CalibrationError
from harness.bench.openfloor import against_nginx
from harness.matrix.build import default_pinning
from harness.matrix.precision import interval

LADDER = (1000, 2500, 5000, 10000, 20000, 30000, 40000, 60000, 80000)
CONNECTIONS = (10, 100)
REPEATS = 3
DURATION_S = 3
ACHIEVED_SHARE = 0.97  # as the rate_not_achieved flag
CPU_SHARE = 0.90  # as the client_saturated flag


def _stat(values: Sequence[float | None]) -> dict[str, Any]:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"mean": None, "low": None, "high": None, "n": 0}
    ci = interval(vals)
    return {"mean": ci.mean, "low": ci.low, "high": ci.high, "n": len(vals)}


def measure_open_loop(
    ladder: Sequence[int] = LADDER,
    connections: Sequence[int] = CONNECTIONS,
    repeats: int = REPEATS,
    duration_s: int = DURATION_S,
) -> dict[str, Any]:
    """The ladder against nginx; the figures perf.json keeps under `open_loop`."""
    server_cpus, client_cpus = default_pinning()
    cpus = len(client_cpus) if client_cpus else (os.cpu_count() or 1)
    runs: dict[tuple[int, int], list[dict[str, Any]]] = {}
    try:
        for _ in range(repeats):
            for conns in connections:
                for rate in ladder:
                    rec = against_nginx(rate, conns, duration_s, client_cpus, server_cpus)
                    runs.setdefault((conns, rate), []).append(rec)
    except CalibrationError as e:
        return {"status": "failed", "reason": str(e)}
    levels = []
    for conns in connections:
        for rate in ladder:
            recs = runs[(conns, rate)]
            ok = [r for r in recs if r.get("status") == "ok"]
            shares = [r.get("achieved_share") for r in ok]
            cpu = [r.get("wrk_cpu_pct_mean") for r in ok]
            budget = 100 * cpus
            accurate = len(ok) == len(recs) and all(
                (s or 0) >= ACHIEVED_SHARE and (c or 0) < CPU_SHARE * budget
                for s, c in zip(shares, cpu, strict=True)
            )
            levels.append(
                {
                    "connections": conns,
                    "offered_rate_rps": rate,
                    "repeats": len(recs),
                    "failed": len(recs) - len(ok),
                    "accurate": accurate,
                    "achieved_share": _stat(shares),
                    "latency_p50_ms": _stat([r.get("latency_p50_ms") for r in ok]),
                    "latency_p99_ms": _stat([r.get("latency_p99_ms") for r in ok]),
                    "latency_uncorrected_p99_ms": _stat(
                        [r.get("latency_uncorrected_p99_ms") for r in ok]
                    ),
                    "client_cpu_pct": _stat(cpu),
                }
            )
    highest = {}
    for conns in connections:
        best = None
        for lv in (x for x in levels if x["connections"] == conns):
            if not lv["accurate"]:
                break
            best = lv["offered_rate_rps"]
        highest[str(conns)] = best
    return {
        "status": "ok",
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "client": "wrk + harness/bench/lua/openloop.lua",
        "against": "nginx (harness/serving/launchers/nginx_serve.py)",
        "duration_s": duration_s,
        "client_cpus": list(client_cpus) if client_cpus else None,
        "server_cpus": list(server_cpus) if server_cpus else None,
        "rule": (
            f"every repeat achieved ≥ {ACHIEVED_SHARE:.0%} of the offered rate with the "
            f"client under {CPU_SHARE:.0%} of its CPUs, at this rate and every lower one"
        ),
        "highest_accurate_rps": highest,
        "levels": levels,
    }
