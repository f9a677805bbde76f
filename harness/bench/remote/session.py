"""Bench side, remote hosts: the hosts of one run, connected and prepared.

`RemoteSession.open(plan, matrix)` connects to every host of the plan once (the same
host in two roles shares one connection), prepares it (harness/bench/remote/prepare.py), checks
CPUs, the open-files limit and that every client gets a connection, and picks the
address the server binds: the one we reached the server host at (or, for a local
server with remote clients, our address towards them). It also answers what
run.json needs (`hosts`, and the server's `host` and `versions`), and reconnects.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from harness.bench.host import HostError
from harness.bench.remote.hosts import Host, LocalHost, SshHost, local_address_towards, open_host
from harness.bench.remote.limits import LIMITS, Limits, say_stderr
from harness.bench.remote.prepare import Prepared, check_host, prepare, q
from harness.bench.runsetup import BenchError, check_writable
from harness.matrix import workloads
from harness.matrix.hosts import HostPlan, HostSpec
from harness.matrix.model import Matrix
from harness.matrix.servers import SERVERS


class RemoteSession:
    """Connected, prepared hosts for one run: server, clients, the address to bind."""

    def __init__(
        self,
        plan: HostPlan,
        hosts: dict[HostSpec, Host],
        server: Prepared,
        clients: list[Prepared],
        bind: str,
    ) -> None:
        self.plan, self.hosts, self.server, self.clients, self.bind = (
            plan,
            hosts,
            server,
            clients,
            bind,
        )
        self.limits: Limits = LIMITS
        self.say: Callable[[str], None] = say_stderr
        self.sleep: Callable[[float], None] = time.sleep  # the backoff; tests shorten it

    @classmethod
    def open(
        cls,
        plan: HostPlan,
        matrix: Matrix,
        say: Callable[[str], None] = say_stderr,
        limits: Limits = LIMITS,
    ) -> Self:
        """Connect to and prepare every host; HostError says which one and why."""
        hosts: dict[HostSpec, Host] = {}
        try:
            for spec in (plan.server, *plan.clients):
                if spec not in hosts:
                    say(f"connecting to {spec}")
                    hosts[spec] = open_host(spec, plan.ssh, limits, say)
            session = cls(plan, hosts, *_prepare(plan, matrix, hosts, say))
            session.limits, session.say = limits, say
            return session
        except BaseException:
            for host in hosts.values():
                host.close()
            raise

    @property
    def unavailable(self) -> dict[str, str]:
        return dict(self.server.info["unavailable"])

    def preflight(self, out: Path) -> str:
        """What runsetup.preflight_environment checks that still applies here; wrk's label."""
        check_writable(out)
        return "wrk on the client hosts"

    def run_metadata(self, matrix: Matrix) -> dict[str, Any]:
        """run.json fields: `hosts` (facts per host), and `host`/`versions` of the server."""

        def describe(p: Prepared, spec: HostSpec) -> dict[str, Any]:
            info = p.info
            return {
                **info["facts"],
                "spec": str(spec),
                "host_key": p.host.host_key,
                "python": info["python"],
                "wrk": info["wrk"],
                "versions": info["versions"],
            }

        versions: dict[str, Any] = {"python": self.server.info["python"]}
        versions["wrk"] = self.clients[0].info["wrk"]
        for what in (*matrix.servers, *matrix.apps):
            if what in matrix.servers or workloads.app_for(what).framework_package:
                versions[what] = self.server.info["versions"].get(what)
        hosts = {
            "server": {**describe(self.server, self.plan.server), "address": self.bind},
            "clients": [
                describe(c, s) for c, s in zip(self.clients, self.plan.clients, strict=True)
            ],
            "ssh": self.plan.ssh.record(),
            "plan": self.plan.record(),
            "limits": self.limits.record(),
        }
        return {"host": self.server.info["facts"], "versions": versions, "hosts": hosts}

    def reconnect(self) -> None:
        """Every host connected, reconnecting a lost one up to `limits.reconnect_attempts`
        times with growing pauses, each attempt printed; BenchError (the run stops, to
        be resumed) when a host stays unreachable."""
        for spec, host in self.hosts.items():
            if host.connected():
                continue
            attempts = self.limits.reconnect_attempts
            began = time.monotonic()
            for attempt in range(1, attempts + 1):
                self.say(f"reconnecting to {spec} (attempt {attempt} of {attempts})")
                try:
                    host.ensure()
                    self.say(f"reconnected to {spec}")
                    break
                except HostError as e:
                    if attempt == attempts:
                        spent = time.monotonic() - began
                        raise BenchError(
                            f"{e}; still unreachable after {attempts} attempts in {spent:.0f} s;"
                            " run the same command again to resume"
                        ) from None
                    pause = self.limits.pause(attempt)
                    self.say(f"  {e}; next attempt in {pause:g} s")
                    self.sleep(pause)

    def close(self) -> None:
        for p in (self.server, *self.clients):
            if isinstance(p.host, LocalHost):
                shutil.rmtree(p.scratch, ignore_errors=True)
        for host in self.hosts.values():
            host.close()

    def clean(self, slug: str) -> None:
        """Remove one cell's scratch folder on every host (best effort)."""
        for host, scratch in {(p.host, p.scratch) for p in (self.server, *self.clients)}:
            try:
                host.run(f"rm -rf -- {q(scratch + '/' + slug)}", 60)
            except HostError:
                pass


def _prepare(
    plan: HostPlan, matrix: Matrix, hosts: dict[HostSpec, Host], say: Callable[[str], None]
) -> tuple[Prepared, list[Prepared], str]:
    """Prepare the server host, then each client host; check them; pick the bind address."""
    builtin = [s for s in matrix.servers if s in SERVERS]
    needs = {s: [SERVERS[s].package, *SERVERS[s].also_packages] for s in builtin}
    needs |= {a: [d] for a in matrix.apps if (d := workloads.app_for(a).framework_package)}
    for a in filter(workloads.is_instrumented, matrix.apps):  # --server-metrics
        needs[a] = [*needs.get(a, []), workloads.PROMETHEUS_DIST]
    say(f"preparing the server host {plan.server}")
    server = prepare(
        hosts[plan.server],
        "server",
        plan.remote_dir,
        plan.remote_venv,
        builtin,
        list(matrix.apps),
        needs,
    )
    clients = []
    for spec in plan.clients:
        say(f"preparing the client host {spec}")
        # The same machine in both roles already has the code: upload it once.
        uploaded = server.root if spec == plan.server and not spec.is_local else None
        clients.append(
            prepare(hosts[spec], "client", plan.remote_dir, None, [], [], {}, uploaded=uploaded)
        )
    if min(matrix.connections) < len(clients):
        raise HostError(
            f"--connections: {min(matrix.connections)} is fewer than the "
            f"{len(clients)} client hosts (each needs a connection)"
        )
    for p, cpus in [(server, matrix.server_cpus)] + [(c, matrix.client_cpus) for c in clients]:
        check_host(p, cpus, matrix.nofile_limit)
    server_host = hosts[plan.server]
    if isinstance(server_host, SshHost):
        return server, clients, server_host.peer_address()
    remote = [h for s, h in hosts.items() if isinstance(h, SshHost) and s != plan.server]
    bind = local_address_towards(remote[0].peer_address()) if remote else "127.0.0.1"
    return server, clients, bind


@contextmanager
def remote_bench(
    plan: HostPlan | None, matrix: Matrix, say: Callable[[str], None]
) -> Iterator[RemoteSession | None]:
    """Connected, prepared hosts for the run (None for a local run); closed afterwards."""
    if plan is None:
        yield None
        return
    remote = RemoteSession.open(plan, matrix, say)
    try:
        yield remote
    finally:
        remote.close()
