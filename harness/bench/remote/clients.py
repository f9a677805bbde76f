"""Bench side, remote hosts: wrk on one or more client hosts, started together.

`run_clients` gives each client its share of the cell's connections (the cell's `N`
is the total load, split as evenly as whole numbers allow), starts a `run` agent per
client that waits, sends every agent `go` at once so all wrk processes start at the
same moment, waits for each to finish and fetches its stdout (and Lua report) back.
`record_runs` writes those outputs into the cell's files — one client: exactly the
local names; several: `c<N>-r<k>.client<i>.txt`/`.client<i>.lua.json`/
`.client<i>.warmup.txt` verbatim and the merged report as the cell's `.lua.json`
(harness/bench/remote/merge.py; no `.txt`, since no wrk printed the merged figures).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.bench import cell as bench
from harness.bench.remote.link import Agent, HostError
from harness.bench.remote.merge import MergeError, merge_reports
from harness.bench.remote.prepare import Prepared, on_host
from harness.bench.runner import WrkRun
from harness.matrix.model import Cell, Matrix
from harness.raw.store import write_atomic, write_json


@dataclass(frozen=True)
class ClientRun:
    index: int  # from 1, in --client-host order
    host: str
    connections: int
    argv: list[str]
    stdout: bytes
    report: bytes | None  # the Lua reporter's JSON, verbatim (measured runs only)
    exit_code: int | None
    timed_out: bool
    stderr: str
    cpu_s: float | None = None  # wrk's CPU time on its host (user + system, from wait4)
    wall_s: float | None = None  # from wrk's start to its exit, on its host

    @property
    def cpu_pct(self) -> float | None:
        """wrk's mean CPU use over its run, in % of one CPU (as the local sampler's)."""
        if self.cpu_s is None or not self.wall_s:
            return None
        return round(100 * self.cpu_s / self.wall_s, 1)

    def as_wrk_run(self) -> WrkRun:
        return WrkRun(self.argv, self.stdout, self.stderr, self.exit_code, self.timed_out)


def shares(connections: int, clients: int) -> list[int]:
    return [
        connections // clients + (1 if i < connections % clients else 0) for i in range(clients)
    ]


@dataclass(frozen=True)
class Load:
    """What every client of one cell runs, in the warm-up and in the measurement."""

    matrix: Matrix
    cell: Cell
    url: str
    env: dict[str, str]  # the workload's settings for its Lua script
    slug: str  # the cell's directory in each host's scratch
    nofile: int


def _start(p: Prepared, i: int, n: int, load: Load, measured: bool) -> tuple[Agent, list[str], str]:
    m = load.matrix
    seconds = m.duration_s if measured else m.warmup_s
    cell = replace(load.cell, connections=n)
    argv = bench.wrk_argv(p.info["wrk_path"], m, cell, load.url, seconds, measured)
    argv = [on_host(p, a) for a in argv]  # the host's copy of the Lua scripts
    out = f"{p.scratch}/{load.slug}/client{i}.{'measured' if measured else 'warmup'}.txt"
    # The same bound as the local runner's: wrk's time, its timeout and 30 s to spare.
    limit = m.duration_s + m.timeout_s + 30 + (0 if measured else m.warmup_s)
    args = ["run", "--out", out, "--nofile", str(load.nofile), "--limit", str(limit)]
    args += ["--cpus", ",".join(map(str, m.client_cpus or ())), "--wait-go"]
    args += [f"--env={k}={v}" for k, v in load.env.items()]
    if measured:
        args.append(f"--env=WSGI_BASELINE_REPORT={out}.lua.json")
    agent = p.host.start(p.root, p.python, [*args, "--", *argv], f"wrk on {p.host.spec}")
    return agent, argv, out


def run_clients(
    clients: list[Prepared],
    load: Load,
    measured: bool,
    on_go: Callable[[], object] = lambda: None,
    on_done: Callable[[], object] = lambda: None,
) -> list[ClientRun]:
    """Run wrk on every client at once (the warm-up unless `measured`); outputs fetched.

    `on_go` runs just before the clients are let go, `on_done` once all have exited.
    """
    agents: list[Agent] = []
    plans = []
    limit = load.matrix.duration_s + load.matrix.warmup_s + load.matrix.timeout_s + 90
    try:
        counts = shares(load.cell.connections, len(clients))
        for i, (p, n) in enumerate(zip(clients, counts, strict=True), 1):
            agent, argv, out = _start(p, i, n, load, measured)
            agents.append(agent)
            plans.append((i, p, n, argv, out))
        for a in agents:
            expect(a.event(60), "waiting")
        on_go()
        for a in agents:  # one `go` after another, no round trip in between
            a.send("go")
        for a in agents:
            expect(a.event(60), "started")
        done = [expect(a.event(limit), "exited") for a in agents]
        on_done()
        runs = []
        for (i, p, n, argv, out), d in zip(plans, done, strict=True):
            report = p.host.read(out + ".lua.json") if measured else None
            stdout = p.host.read(out) or b""
            runs.append(
                ClientRun(
                    i,
                    str(p.host.spec),
                    n,
                    argv,
                    stdout,
                    report,
                    d["code"],
                    d["timed_out"],
                    d["stderr"],
                    d.get("cpu_s"),
                    d.get("wall_s"),
                )
            )
        return runs
    finally:
        for a in agents:
            a.close()  # the agent's watchdog kills a wrk that is still running


def ask(agent: Agent, line: str, answer: str) -> dict[str, Any]:
    """Send a command and wait for its answer (a short one: 30 s at most)."""
    agent.send(line)
    return expect(agent.event(30), answer)


def expect(event: dict[str, Any], name: str) -> dict[str, Any]:
    if event.get("event") != name:
        raise HostError(f"agent said {event} where {name!r} was expected")
    return event


def record_runs(
    files: dict[str, Path],
    base: dict[str, Any],
    warm: list[ClientRun],
    runs: list[ClientRun],
    crashed: int | None,
) -> tuple[str | None, bytes, str | None]:
    """Write the outputs and sidecar fields; (failure reason, stdout for _finish, req/s)."""
    reasons = [bench._wrk_failure(r.as_wrk_run(), crashed) for r in runs]
    reason = next(
        (f"client {i}: {r}" if len(runs) > 1 else r for i, r in enumerate(reasons, 1) if r), None
    )
    if len(runs) == 1:
        run = runs[0]
        if warm:
            write_atomic(files["warmup"], warm[0].stdout)
        if run.stdout:
            write_atomic(files["stdout"], run.stdout)
        if run.report is not None:
            write_atomic(files["lua_json"], run.report)
        base.update(wrk_argv=run.argv, wrk_exit_code=run.exit_code, wrk_stderr=run.stderr[-4000:])
        base.update(wrk_cpu_pct_mean=run.cpu_pct)
        return reason, run.stdout, None
    sidecar = files["sidecar"]
    clients = []
    for r in runs:
        names = {"stdout": f".client{r.index}.txt", "lua_json": f".client{r.index}.lua.json"}
        data = {"stdout": r.stdout, "lua_json": r.report}
        if warm:
            names["warmup"] = f".client{r.index}.warmup.txt"
            data["warmup"] = warm[r.index - 1].stdout
        written = {}
        for key, suffix in names.items():
            if data[key]:
                write_atomic(sidecar.with_suffix(suffix), data[key] or b"")
                written[key] = sidecar.with_suffix(suffix).name
        clients.append(
            {
                "host": r.host,
                "connections": r.connections,
                "wrk_argv": r.argv,
                "wrk_exit_code": r.exit_code,
                "wrk_stderr": r.stderr[-4000:],
                "wrk_cpu_pct_mean": r.cpu_pct,
                "files": written,
            }
        )
    first_bad = next((r.exit_code for r in runs if r.exit_code != 0), 0)
    cpus = [r.cpu_pct for r in runs if r.cpu_pct is not None]
    base.update(
        wrk_argv=None,
        wrk_exit_code=first_bad,
        # The busiest client: the one that would saturate first.
        wrk_cpu_pct_mean=max(cpus) if cpus else None,
        clients=clients,
        wrk_stderr="\n".join(r.stderr[-1000:] for r in runs)[-4000:],
    )
    rps = None
    if reason is None:
        try:
            merged = merge_reports([json.loads(r.report or b"") for r in runs])
        except (ValueError, MergeError) as e:
            return f"cannot merge the clients' reports: {e}", b"", None
        write_json(files["lua_json"], merged)
        if merged["duration_us"]:
            rps = f"{merged['requests'] / (merged['duration_us'] / 1e6):.2f} (merged)"
    return reason, b"", rps
