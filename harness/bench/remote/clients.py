"""Bench side, remote hosts: wrk on one or more client hosts, started together.

`run_clients` gives each client its share of the cell's connections (the cell's `N`
is the total load, split as evenly as whole numbers allow), starts a `run` agent per
client that waits, sends every agent `go` at once so all wrk processes start at the
same moment, waits for each to finish and fetches its stdout (and Lua report) back.
The cell sequence (harness/bench/cell.py `record_outputs`) writes them into the cell's
files, the same way whichever host they came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.bench.cell import wrk_argv
from harness.bench.host import HostError, WrkOutput
from harness.bench.remote.link import Agent
from harness.bench.remote.prepare import Prepared, on_host
from harness.matrix.model import Cell, Matrix


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

    def output(self) -> WrkOutput:
        """This client's run as the cell sequence keeps it."""
        return WrkOutput(
            self.host, self.connections, tuple(self.argv), self.stdout, self.report,
            self.exit_code, self.timed_out, self.stderr, self.cpu_pct,
        )  # fmt: skip


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
    argv = wrk_argv(p.info["wrk_path"], m, load.cell.workload, n, load.url, seconds, measured)
    argv = [on_host(p, a) for a in argv]  # the host's copy of the Lua scripts
    out = f"{p.scratch}/{load.slug}/client{i}.{'measured' if measured else 'warmup'}.txt"
    # The same bound as the local runner's: wrk's time, its timeout and some to spare.
    limit = m.wrk_limit_s(seconds)
    args = ["run", "--out", out, "--nofile", str(load.nofile), "--limit", str(limit)]
    args += ["--cpus", ",".join(map(str, m.client_cpus or ())), "--wait-go"]
    args += p.host.limits.agent_args()
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
    # The agents' own bound, and the time to fetch the outputs.
    limit = load.matrix.wrk_limit_s(load.matrix.duration_s + load.matrix.warmup_s) + 60
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
