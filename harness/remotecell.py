"""Bench side, remote hosts: one cell with the server and wrk on the plan's hosts.

`RemoteBench.open(plan, matrix)` connects to every host and prepares it
(harness/remoteprep.py); `bench.measure_cell` then hands each cell to `measure`. The
sequence is the local one (harness/bench.py `_measure`) step by step — free port,
server in its own process group, poll until it answers, warm-up, wrk with the Lua
reporter, stop — each step done by an agent on the host concerned (server agent here,
clients in harness/remoteclients.py). The outputs come back into the local raw/ tree
under the local names, and the sidecar has the local fields plus `server_host`,
`client_hosts`, `server_pid`, `server_pgid` (and `clients` for several clients).
A lost connection fails the cell (the agents' watchdogs stop what ran) and the run
goes on after reconnecting; Ctrl-C stops the remote processes, like the local path.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from harness import bench
from harness.agentlink import Agent, HostError, HostLost
from harness.apps import APPS, AppSpec
from harness.hostinfo import REPO_ROOT
from harness.matrix import WORKLOADS, Cell, Matrix
from harness.remote import HostPlan, HostSpec
from harness.remoteclients import record_runs, run_clients
from harness.remotehost import Host, LocalHost, SshHost, local_address_towards, open_host
from harness.remoteprep import Prepared, prepare, q
from harness.rawstore import RunStore, write_atomic
from harness.runner import nofile_needed
from harness.servers import SERVERS, Budget

ACTIVE_MARKER = ".active-remote.json"  # which remote group runs now (for people and tests)
READY_TIMEOUT_S = 30.0


def remap(p: Prepared, text: str) -> str:
    """A path of this checkout -> the same path in the host's copy of the code."""
    return text.replace(str(REPO_ROOT), p.root)


def cpu_arg(cpus: tuple[int, ...] | None) -> str:
    return ",".join(map(str, cpus)) if cpus else ""


class RemoteBench:
    def __init__(
        self, plan: HostPlan, hosts: dict[HostSpec, Host], server: Prepared,
        clients: list[Prepared], bind: str,
    ) -> None:  # fmt: skip
        self.plan, self.hosts, self.server, self.clients, self.bind = (
            plan, hosts, server, clients, bind,
        )  # fmt: skip

    @classmethod
    def open(cls, plan: HostPlan, matrix: Matrix) -> RemoteBench:
        """Connect to and prepare every host; HostError says which one and why."""
        hosts: dict[HostSpec, Host] = {}
        for spec in (plan.server, *plan.clients):
            if spec not in hosts:
                hosts[spec] = open_host(spec, plan.ssh)
        builtin = [s for s in matrix.servers if s in SERVERS]
        needs = {s: [SERVERS[s].package, *SERVERS[s].also_packages] for s in builtin}
        needs |= {a: [d] for a in matrix.apps if (d := APPS[a].framework_package)}
        server = prepare(hosts[plan.server], "server", plan.remote_dir, plan.remote_venv,
                         builtin, list(matrix.apps), needs)  # fmt: skip
        clients = []
        for spec in plan.clients:
            uploaded = server.root if spec == plan.server and not spec.is_local else None
            clients.append(prepare(hosts[spec], "client", plan.remote_dir, None, [], [], {},
                                   uploaded=uploaded))  # fmt: skip
        if min(matrix.connections) < len(clients):
            raise HostError(f"--connections: {min(matrix.connections)} is fewer than the "
                            f"{len(clients)} client hosts (each needs a connection)")  # fmt: skip
        for p, cpus in [(server, matrix.server_cpus)] + [(c, matrix.client_cpus) for c in clients]:
            _check_host(p, cpus, nofile_needed(max(matrix.connections)))
        server_host = hosts[plan.server]
        if isinstance(server_host, SshHost):
            bind = server_host.peer_address()
        else:
            remote = [h for s, h in hosts.items() if isinstance(h, SshHost) and s != plan.server]
            bind = local_address_towards(remote[0].peer_address()) if remote else "127.0.0.1"
        return cls(plan, hosts, server, clients, bind)

    @property
    def unavailable(self) -> dict[str, str]:
        return dict(self.server.info["unavailable"])

    def preflight(self, out: Path) -> str:
        """What bench.preflight_environment checks that still applies here; wrk's label."""
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise bench.BenchError(f"--out: cannot write to {out}: {e.strerror}") from None
        return "wrk on the client hosts"

    def run_metadata(self, matrix: Matrix) -> dict[str, Any]:
        """run.json fields: `hosts` (facts per host), and `host`/`versions` of the server."""

        def describe(p: Prepared, spec: HostSpec) -> dict[str, Any]:
            info = p.info
            return {**info["facts"], "spec": str(spec), "host_key": p.host.host_key,
                    "python": info["python"], "wrk": info["wrk"], "versions": info["versions"]}  # fmt: skip

        versions: dict[str, Any] = {"python": self.server.info["python"]}
        versions["wrk"] = self.clients[0].info["wrk"]
        for what in (*matrix.servers, *matrix.apps):
            if what in matrix.servers or APPS[what].framework_package:
                versions[what] = self.server.info["versions"].get(what)
        hosts = {
            "server": {**describe(self.server, self.plan.server), "address": self.bind},
            "clients": [describe(c, s) for c, s in zip(self.clients, self.plan.clients, strict=True)],
            "ssh": self.plan.ssh.record(),
            "plan": self.plan.record(),
        }  # fmt: skip
        return {"host": self.server.info["facts"], "versions": versions, "hosts": hosts}

    def reconnect(self) -> None:
        for host in self.hosts.values():
            try:
                host.ensure()
            except HostError as e:
                raise bench.BenchError(f"{e}; run the same command again to resume") from None

    def close(self) -> None:
        for p in (self.server, *self.clients):
            if isinstance(p.host, LocalHost):
                shutil.rmtree(p.scratch, ignore_errors=True)
        for host in self.hosts.values():
            host.close()

    def measure(
        self, store: RunStore, matrix: Matrix, cell: Cell, spec: bench.AnyServer,
        app: AppSpec, files: dict[str, Path], base: dict[str, Any],
    ) -> bench.CellOutcome:  # fmt: skip
        """Measure one cell on the plan's hosts and write its files; sidecar last."""
        self.reconnect()
        base.update(server_host=str(self.plan.server),
                    client_hosts=[str(c) for c in self.plan.clients])  # fmt: skip
        slug = f"{store.run_id}/{cell.key.replace('/', '-')}"
        log = f"{self.server.scratch}/{slug}/server.log"
        agent: Agent | None = None
        try:
            agent, origin = self._start_server(store, matrix, cell, spec, app, base, log)
            if agent is None:
                return bench._finish(store, cell, base, "failed", origin)
            base["url"] = url = origin + WORKLOADS[cell.workload]
            limit = matrix.duration_s + matrix.timeout_s + 30
            shares = run_clients(self.clients, matrix, cell, url, slug, base["nofile_limit"],
                                 matrix.warmup_s + limit, measured=False) if matrix.warmup_s > 0 else []  # fmt: skip
            runs = run_clients(self.clients, matrix, cell, url, slug, base["nofile_limit"],
                               limit, measured=True)  # fmt: skip
            agent.send("stop")
            stopped = _expect(agent.event(30), "exited")
            agent.close()
            agent = None
            base["server_exit_code"] = stopped["code"]
            base["server_stderr_tail"] = self._fetch_log(store, cell, log)
            reason, stdout, rps = record_runs(files, base, shares, runs, stopped["crashed"])
            outcome = bench._finish(store, cell, base, "failed" if reason else "ok", reason, stdout)
            return bench.CellOutcome(cell, outcome.status, reason, outcome.requests_per_sec or rps)
        except HostError as e:  # HostLost included: whatever ran there is stopped by now
            if not base.get("server_stderr_tail"):
                try:
                    base["server_stderr_tail"] = self._fetch_log(store, cell, log)
                except HostError:
                    pass
            what = "lost the connection" if isinstance(e, HostLost) else "host failure"
            return bench._finish(store, cell, base, "failed", f"{what} during the cell: {e}")
        finally:
            if agent is not None:
                self._kill_server(agent, base.get("server_pgid"))
            (store.root / ACTIVE_MARKER).unlink(missing_ok=True)
            self._clean(slug)

    def _start_server(
        self, store: RunStore, matrix: Matrix, cell: Cell, spec: bench.AnyServer,
        app: AppSpec, base: dict[str, Any], log: str,
    ) -> tuple[Agent | None, str]:  # fmt: skip
        """(agent, origin URL) of a server that answers, or (None, why it did not start)."""
        srv = self.server
        budget = Budget(workers=matrix.workers, threads=matrix.server_threads)
        backlog = max(1024, 2 * max(matrix.connections))
        why = "no attempt"
        for attempt in range(bench.PORT_ATTEMPTS):
            code, out, _ = srv.host.run(
                f"cd {q(srv.root)} && PYTHONPATH={q(srv.root)} {q(srv.python)} "
                f"-m harness.remoteagent port {q(self.bind)}", 60
            )  # fmt: skip
            port = int(out.strip()) if code == 0 else 0
            argv = [remap(srv, a) for a in spec.argv(srv.python, app, self.bind, port, budget, backlog)]
            env = {k: remap(srv, v) for k, v in spec.env().items()}
            base.update(server_argv=argv, server_env=env, backlog=backlog)
            host = f"[{self.bind}]" if ":" in self.bind else self.bind
            origin = f"http://{host}:{port}"
            args = ["serve", "--log", log, "--stop-signal", str(int(spec.stop_signal)),
                    "--nofile", str(base["nofile_limit"]), "--cpus", cpu_arg(matrix.server_cpus),
                    "--ready-url", origin + "/", "--ready-timeout", str(READY_TIMEOUT_S),
                    *[f"--env={k}={v}" for k, v in env.items()], "--", *argv]  # fmt: skip
            agent = srv.host.start(srv.root, srv.python, args, f"server on {self.plan.server}")
            started = _expect(agent.event(60), "started")
            base.update(server_pid=started["pid"], server_pgid=started["pgid"])
            marker = {"host": str(self.plan.server), **started, "started": time.time()}
            write_atomic(store.root / ACTIVE_MARKER, json.dumps(marker).encode())
            ready = agent.event(READY_TIMEOUT_S + 30)
            if ready["event"] == "ready":
                base["server_ready_s"] = round(ready["seconds"], 3)
                return agent, origin
            agent.close()
            base["server_exit_code"] = ready.get("code")
            base["server_stderr_tail"] = tail = self._fetch_log(store, cell, log)
            why = f"server did not start: {ready.get('reason')}"
            if "Address already in use" not in tail or attempt + 1 == bench.PORT_ATTEMPTS:
                break
        return None, why

    def _fetch_log(self, store: RunStore, cell: Cell, log: str) -> str:
        """Bring the server's stderr home as the local `.server.log`; its last lines."""
        data = self.server.host.read(log) or b""
        write_atomic(store.cell_base(cell).with_suffix(".server.log"), data)
        text = data[-16384:].decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-40:])

    def _kill_server(self, agent: Agent, pgid: int | None) -> None:
        """Abnormal end (Ctrl-C, failure): close the agent (its watchdog kills the group)
        and, while the connection lasts, kill the group by its id as well."""
        agent.close()
        if pgid:
            try:
                self.server.host.run(f"kill -KILL -- -{int(pgid)} 2>/dev/null; true", 30)
            except HostError:
                pass  # connection gone: the watchdog saw its stdin close and did it

    def _clean(self, slug: str) -> None:
        for p in {id(p): p for p in (self.server, *self.clients)}.values():
            try:
                p.host.run(f"rm -rf -- {q(p.scratch + '/' + slug)}", 60)
            except HostError:
                pass


def _expect(event: dict[str, Any], name: str) -> dict[str, Any]:
    if event.get("event") != name:
        raise HostError(f"agent said {event} where {name!r} was expected")
    return event


def _check_host(p: Prepared, cpus: tuple[int, ...] | None, nofile: int) -> None:
    facts = p.info["facts"]
    usable = set(facts.get("usable_cpus") or [])
    bad = [c for c in cpus or () if c not in usable]
    if bad:
        raise HostError(f"{p.host.spec}: CPU {bad[0]} is not usable there (usable: {sorted(usable)}); "
                        "set --server-cpus/--client-cpus for that host")  # fmt: skip
    hard = facts.get("nofile_hard")
    if hard is not None and hard != -1 and hard < nofile:
        raise HostError(f"{p.host.spec}: open-files hard limit {hard} is below the {nofile} "
                        "descriptors the largest connection count needs")  # fmt: skip
