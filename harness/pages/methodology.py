"""Site stage 3d: run and cell sidecars -> the context of the Methodology page.

Takes `run.json` and the cell sidecars of one run (as dicts, straight from raw/) and
returns the facts the page lists: host, versions, the matrix settings, pinning and
limits, and the exact command lines, one per server and app (they differ between
cells only by port and `-c`). The method's caveats are fixed text in the template.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from harness.matrix.hosts import redact_argv
from harness.pages.context import Run, rel, run_hosts, server_page, when
from harness.tables.evidence import CLIENT_BOUND_SHARE
from harness.tables.runfacts import (
    cpus_text,
    pinning_text,
    project_roots,
    recorded_prose,
    relative_to,
)


def _join(values: Sequence[object] | None) -> str:
    return ", ".join(str(v) for v in values) if values else "not pinned"


def _distinct(cells: Sequence[Mapping[str, Any]], key: str) -> str:
    values = sorted({str(c.get(key)) for c in cells if c.get(key) is not None})
    return ", ".join(values) if values else "not recorded"


def _seconds(value: Any) -> str:
    return f"{value:g} s" if isinstance(value, int | float) else "not recorded"


def _git(git: Mapping[str, Any]) -> str:
    commit = git.get("commit") or "an unrecorded commit"
    return f"{commit} with uncommitted changes" if git.get("dirty") else str(commit)


def methodology_context(run: Run, cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Facts of one run for the Methodology page, all as display strings."""
    s, host = run.get("settings") or {}, run.get("host") or {}
    memory = host.get("memory_bytes")
    ordered = sorted(
        cells, key=lambda c: (c["server"], c["app"], c["workload"], c["connections"], c["repeat"])
    )
    commands: dict[tuple[str, str], dict[str, str]] = {}
    wrk: dict[str, dict[str, str]] = {}
    # Paths of the machine that measured, shown relative to the project's folder there.
    roots = project_roots(run, cells)

    def shown(argv: Sequence[object]) -> str:
        return relative_to(shlex.join(str(a) for a in argv), roots)

    for c in ordered:
        if c.get("server_argv") and (c["server"], c["app"]) not in commands:
            env = c.get("server_env") or {}
            commands[(c["server"], c["app"])] = {
                "server": c["server"],
                "app": c["app"],
                "argv": shown(c["server_argv"]),
                "env": relative_to(
                    " ".join(f"{k}={shlex.quote(str(v))}" for k, v in sorted(env.items())), roots
                )
                or "nothing",
            }
        if c.get("wrk_argv") and c["workload"] not in wrk:
            wrk[c["workload"]] = {
                "workload": c["workload"],
                "url": str(c.get("url", "")),
                "argv": shown(c["wrk_argv"]),
            }
    ready = [
        float(c["server_ready_s"])
        for c in cells
        if isinstance(c.get("server_ready_s"), int | float)
    ]
    hosts = run_hosts(run)
    return {
        "hosts": hosts,
        "merging": _merging(hosts),
        "limits": _limits(run),
        "host": [
            ("Host name", host.get("hostname") or "unknown"),
            ("CPU", host.get("cpu_model") or "unknown"),
            ("Cores", str(host.get("cores") or "unknown")),
            ("Memory", f"{memory / 2**30:.1f} GiB" if memory else "unknown"),
            ("Kernel", host.get("kernel") or "unknown"),
            ("Operating system", host.get("os") or "unknown"),
            (
                "Open files (soft / hard)",
                f"{host.get('nofile_soft', '?')} / {host.get('nofile_hard', '?')}",
            ),
        ],
        "versions": sorted(
            (str(k), relative_to(str(v), roots) if v else "unknown")
            for k, v in (run.get("versions") or {}).items()
        ),
        "settings": [
            ("Run", f"{run['run_id']} ({run.get('status', 'unknown')})"),
            ("Started / ended", f"{when(run.get('started_at'))} / {when(run.get('ended_at'))}"),
            ("Servers", ", ".join(s.get("servers") or []) or "not recorded"),
            ("Apps", ", ".join(s.get("apps") or []) or "not recorded"),
            ("Workloads", ", ".join(s.get("workloads") or []) or "not recorded"),
            (
                "Connections (wrk -c)",
                ", ".join(str(c) for c in s.get("connections") or []) or "not recorded",
            ),
            ("Repeats per cell", str(s.get("repeats", "?"))),
            ("Duration per cell", _seconds(s.get("duration_s"))),
            ("Warm-up per cell (not measured)", _seconds(s.get("warmup_s"))),
            ("wrk threads (-t)", str(s.get("threads", "?"))),
            ("wrk timeout (--timeout)", _seconds(s.get("timeout_s"))),
            (
                "Server workers / threads",
                f"{s.get('workers', '?')} / {s.get('server_threads', '?')}",
            ),
            (
                "Cell order",
                f"shuffled (seed {s.get('seed')})"
                if s.get("shuffle")
                else "as planned, not shuffled",
            ),
            ("Where server and wrk ran", pinning_text(run)),
            ("Open-files limit given to server and wrk", _distinct(cells, "nofile_limit")),
            (
                "Server ready after",
                f"{min(ready):.2f}–{max(ready):.2f} s" if ready else "not recorded",
            ),
            ("Cells planned / recorded", f"{len(run.get('cells_planned', []))} / {len(cells)}"),
        ],
        # Each server's settings, with the reason for each, are on its own page.
        "servers": [
            {"id": str(k), "model": recorded_prose(str(v.get("worker_model", "")), run)}
            for k, v in sorted((run.get("servers") or {}).items())
        ],
        # Runs recorded before the redaction kept the key's path: never shown.
        "bench_argv": shown(redact_argv([str(a) for a in run.get("argv", [])])),
        "git": _git(run.get("git") or {}),
        "commands": list(commands.values()),
        "wrk": list(wrk.values()),
        "unavailable": sorted((run.get("unavailable") or {}).items()),
    }


def _merging(hosts: Sequence[Mapping[str, Any]] | None) -> str | None:
    """How the figures of several client hosts became one cell's, or None for one."""
    clients = [h for h in hosts or [] if h["role"] != "server"]
    if len(clients) < 2:
        return None
    return (
        f"Each cell's connections were split between the {len(clients)} client hosts as "
        "evenly as whole numbers allow, and every wrk started on the same signal. The "
        "cell's figures merge their Lua reports: requests, bytes and errors summed, "
        "throughput over the common interval (the longest client's), latency percentiles "
        "read from the clients' merged latency histograms (never averaged), wrk's CPU the "
        "busiest client's. Each client's own wrk output is kept beside the cell."
    )


def _limits(run: Run) -> list[tuple[str, str]]:
    """The bounds of the remote operations (run.json's `hosts.limits`) as display rows."""
    limits = (run.get("hosts") or {}).get("limits")
    if not isinstance(limits, Mapping):
        return []
    backoff = ", ".join(f"{b:g}" for b in limits.get("reconnect_backoff_s") or [])
    return [
        ("Heartbeat (agents and controller)", _seconds(limits.get("heartbeat_s"))),
        ("Silence limit (a host is lost; agents stop their processes)",
         _seconds(limits.get("silence_s"))),
        ("Deadline of one file transfer", _seconds(limits.get("transfer_s"))),
        ("Reconnect attempts (pauses, s)",
         f"{limits.get('reconnect_attempts', '?')} ({backoff or 'not recorded'})"),
    ]  # fmt: skip


MEASURED_WHEN = {
    "start": "at the start",
    "end": "at the end",
    "resume": "when resumed",
}


def _cpus(values: Sequence[int] | None) -> str:
    return cpus_text(values) if values else "no CPU in particular (not pinned)"


def ceiling_context(found: Mapping[str, Any], run: Run) -> dict[str, Any]:
    """`harness.tables.evidence.client_ceiling` as display facts for Methodology and Home."""
    fastest = found.get("fastest")
    cal = found.get("calibration")
    out: dict[str, Any] = {
        "measured": cal is not None,
        "failed": found.get("failed"),
        # wrk and nginx on this machine: not where a run on other hosts loaded its servers.
        "command": None if run_hosts(run) else f"invoke calibrate --run {run['run_id']}",
        "threshold": CLIENT_BOUND_SHARE,
        "share": found.get("share"),
        "client_bound": bool(found.get("client_bound")),
        "fastest": None
        if fastest is None
        else {**fastest, "link": server_page(str(fastest["server"]))},
    }
    if cal is not None:
        s = run.get("settings") or {}
        out.update(
            rps=cal.get("requests_per_sec"),
            date=when(cal.get("started_at")),
            nginx=cal.get("nginx_version") or "nginx, version unknown",
            connections=cal.get("connections"),
            threads=cal.get("threads"),
            duration_s=cal.get("duration_s"),
            client_cpus=_cpus(cal.get("client_cpus")),
            server_cpus=_cpus(cal.get("server_cpus")),
            run_client_cpus=_cpus(s.get("client_cpus")),
            run_server_cpus=_cpus(s.get("server_cpus")),
            same_pinning=bool(found.get("same_pinning")),
            wrk_cpu=cal.get("wrk_cpu_pct_mean"),
            path=cal.get("path"),
            measurements=[
                {
                    "when": MEASURED_WHEN.get(str(m.get("when")), "on request"),
                    "rps_text": f"{m['requests_per_sec']:,.0f} req/s"
                    if m.get("status") == "ok" and m.get("requests_per_sec")
                    else f"failed: {m.get('reason')}",
                }
                for m in cal.get("measurements") or []
            ],
            drift=cal.get("drift"),
        )
    else:
        # Why a run has none, as its run.json recorded it (--no-calibrate, no nginx, …).
        out["why_not"] = "; ".join(
            sorted({str(c.get("reason")) for c in run.get("calibrations") or [] if c.get("reason")})
        )
    return out


def linked(ceiling: Mapping[str, Any], page: str) -> dict[str, Any]:
    """The ceiling facts with the fastest cell's server page linked from `page`."""
    fastest = ceiling.get("fastest")
    if fastest is None:
        return dict(ceiling)
    return {**ceiling, "fastest": {**fastest, "link": rel(page, fastest["link"])}}
