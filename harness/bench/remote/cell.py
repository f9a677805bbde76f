"""Bench stage, remote hosts: the cell sequence's host when server or wrk run elsewhere.

`RemoteCellHost` does each step of harness/bench/cell.py through agents
(harness/bench/remote/agent.py) on the hosts of a `RemoteSession`: a free port and the
server in its own process group on the server host, polled until it answers; the
preflight check from the first client; wrk on every client at once
(harness/bench/remote/clients.py) while the server's agent samples its processes; the
/metrics scrapes beside the server; the stop, and the server's log brought home. The
outputs come back into the local raw/ tree under the local names; the sidecar gets the
hosts, the server's PID and process group. A lost connection is a HostError of the step
that noticed it (the agents' watchdogs stop what ran); Ctrl-C stops the remote
processes, like the local path.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from harness.bench.host import (
    PORT_ATTEMPTS,
    HostError,
    Measurement,
    ScrapeFailed,
    ServerStart,
    ServerStop,
)
from harness.bench.openloop import OPEN_LOOP_REMOTE
from harness.bench.remote.clients import Load, ask, expect, run_clients
from harness.bench.remote.link import Agent
from harness.bench.remote.prepare import agent_shell, check, on_host
from harness.bench.remote.session import RemoteSession
from harness.bench.runner import tail_lines
from harness.matrix import workloads
from harness.matrix.customservers import AnyServer
from harness.matrix.model import Cell, Matrix
from harness.matrix.serverspec import Budget
from harness.raw.preflight import PreflightResult
from harness.raw.store import RunStore, write_atomic

ACTIVE_MARKER = ".active-remote.json"  # which remote group runs now (for people and tests)
READY_TIMEOUT_S = 30.0


def cpu_arg(cpus: tuple[int, ...] | None) -> str:
    return ",".join(map(str, cpus)) if cpus else ""


class RemoteCellHost:
    """The `CellHost` of a run whose server or clients are other machines."""

    def __init__(
        self,
        session: RemoteSession,
        store: RunStore,
        matrix: Matrix,
        servers: dict[str, AnyServer],
    ) -> None:
        self.session, self.store, self.matrix, self.servers = session, store, matrix, servers
        self.agent: Agent | None = None
        self.pgid: int | None = None
        self.port = 0
        self.slug = ""
        self.remote_log = ""
        self.local_log: Path | None = None
        self.log_fetched = False

    @property
    def where(self) -> dict[str, Any]:
        plan = self.session.plan
        return {"server_host": str(plan.server), "client_hosts": tuple(map(str, plan.clients))}

    def start_server(self, cell: Cell, log: Path) -> ServerStart:
        self.session.reconnect()
        srv, m = self.session.server, self.matrix
        spec, app = self.servers[cell.server], workloads.app_for(cell.app)
        self.slug = f"{self.store.run_id}/{cell.slug}"
        self.remote_log = f"{srv.scratch}/{self.slug}/server.log"
        self.local_log, self.log_fetched = log, False
        budget = Budget(workers=m.workers, threads=m.server_threads)
        bind = self.session.bind
        result = ServerStart((), {}, m.backlog, failure="server did not start: no attempt")
        for attempt in range(PORT_ATTEMPTS):
            code, out, _ = srv.host.run(agent_shell(srv.root, srv.python, ["port", bind]), 60)
            if code != 0 or not out.strip().isdigit():
                raise HostError(f"{self.session.plan.server}: no free port ({out.strip() or code})")
            port = int(out.strip())
            argv = spec.argv(srv.python, app, bind, port, budget, m.backlog)
            argv = [on_host(srv, a) for a in argv]
            env = {k: on_host(srv, v) for k, v in spec.env().items()}
            env, metrics_dir = self._metrics_env(cell, env)
            host = f"[{bind}]" if ":" in bind else bind
            origin = f"http://{host}:{port}"
            args = [
                "serve", "--port", str(port), "--log", self.remote_log,
                "--stop-signal", str(int(spec.stop_signal)), "--nofile", str(cell.nofile_limit),
                "--cpus", cpu_arg(m.server_cpus), "--ready-url", origin + "/",
                "--ready-timeout", str(READY_TIMEOUT_S), "--metrics-dir", metrics_dir,
                *srv.host.limits.agent_args(),
                *[f"--env={k}={v}" for k, v in env.items()], "--", *argv,
            ]  # fmt: skip
            label = f"server on {self.session.plan.server}"
            self.agent = agent = srv.host.start(srv.root, srv.python, args, label)
            started = expect(agent.event(60), "started")
            self.pgid = started["pgid"]
            marker = {"host": str(self.session.plan.server), **started, "started": time.time()}
            write_atomic(self.store.root / ACTIVE_MARKER, json.dumps(marker).encode())
            ready = agent.event(READY_TIMEOUT_S + 30)
            common = dict(pid=started["pid"], pgid=started["pgid"])
            if ready["event"] == "ready":
                self.port = port
                return ServerStart(tuple(argv), env, m.backlog, origin, ready["seconds"], **common)
            agent.close()
            self.agent = None
            tail = self._fetch_log()
            result = ServerStart(
                tuple(argv), env, m.backlog, failure=f"server did not start: {ready.get('reason')}",
                exit_code=ready.get("code"), stderr_tail=tail, **common,
            )  # fmt: skip
            if "Address already in use" not in tail or attempt + 1 == PORT_ATTEMPTS:
                break
        return result

    def _metrics_env(self, cell: Cell, env: dict[str, str]) -> tuple[dict[str, str], str]:
        """--server-metrics: the instrumented app's environment, as a local server gets
        it, with the multiprocess directory in the cell's scratch on the server host (the
        agent empties it); (env, that directory or "" when not instrumented)."""
        if not workloads.is_instrumented(cell.app):
            return env, ""
        directory = self.remote_log.rsplit("/", 1)[0] + "/prometheus"
        root = self.session.server.root
        return workloads.instrumented_env(cell.app, env, root, directory), directory

    def preflight(self, workload: str) -> PreflightResult:
        """The check from the first client host: what wrk will be answered."""
        path, body, ctype = workloads.expected_response(workload)
        c = self.session.clients[0]
        bind = self.session.bind
        args = ["preflight", bind, str(self.port), path, base64.b64encode(body).decode(), ctype]
        said = json.loads(check(c.host, agent_shell(c.root, c.python, args), "preflight", 60))
        return PreflightResult(said["ok"], [tuple(x) for x in said["checks"]], said["reason"])

    def run_open_loop(
        self, cell: Cell, url: str, rate: float, seconds: float, measured: bool
    ) -> Measurement:
        # run_bench refuses --rates with remote hosts before measuring anything; this is
        # the protocol's answer should a caller get here anyway.
        raise HostError(OPEN_LOOP_REMOTE)

    def run_wrk(self, cell: Cell, url: str, seconds: float, measured: bool) -> Measurement:
        env = workloads.wrk_env(self.matrix, cell.workload)
        load = Load(self.matrix, cell, url, env, self.slug, cell.nofile_limit)
        clients = self.session.clients
        if not measured:
            runs = run_clients(clients, load, measured=False)
            return Measurement(tuple(r.output() for r in runs))
        server = self.agent  # the sampler runs beside the server only while wrk runs
        assert server is not None
        samples = f"{self.session.server.scratch}/{self.slug}/samples.json"
        runs = run_clients(
            clients,
            load,
            measured=True,
            on_go=lambda: server.send(f"sample {samples}"),
            on_done=lambda: ask(server, "unsample", "sampled"),
        )
        data = self.session.server.host.read(samples) or b""
        return Measurement(tuple(r.output() for r in runs), data)

    def scrape(self, path: Path) -> str:
        """/metrics read beside the server by its agent, kept verbatim here."""
        assert self.agent is not None
        remote = f"{self.remote_log.rsplit('/', 1)[0]}/{path.name}"
        said = ask(self.agent, f"scrape {remote}", "scraped")
        if said.get("error"):
            raise ScrapeFailed(said["error"])
        data = self.session.server.host.read(remote) or b""
        write_atomic(path, data)
        return data.decode("utf-8", "replace")

    def stop_server(self) -> ServerStop:
        assert self.agent is not None
        stopped = ask(self.agent, "stop", "exited")
        self.agent.close()
        self.agent = None
        tail = self._fetch_log()
        crashed = stopped["crashed"] is not None
        return ServerStop(stopped["code"], crashed, bool(stopped.get("killed")), tail)

    def _fetch_log(self) -> str:
        """Bring the server's output home as the cell's `.server.log`; its last lines."""
        data = self.session.server.host.read(self.remote_log) or b""
        assert self.local_log is not None
        write_atomic(self.local_log, data)
        self.log_fetched = True
        return tail_lines(data)

    def end_cell(self) -> None:
        """Abnormal end (Ctrl-C, a failure): close the agent (its watchdog kills the
        group) and, while the connection lasts, kill the group by its id as well; bring
        the server's log home if it is still there; clean the cell's scratch."""
        if self.agent is not None:
            self.agent.close()
            self.agent = None
            if self.pgid:
                try:
                    kill = f"kill -KILL -- -{int(self.pgid)} 2>/dev/null; true"
                    host = self.session.server.host
                    host.run(kill, host.limits.cleanup_s)
                except HostError:
                    pass  # connection gone: the watchdog saw its stdin close and did it
        if self.local_log is not None and not self.log_fetched:
            try:
                self._fetch_log()
            except HostError:
                pass
        self.pgid, self.local_log = None, None
        (self.store.root / ACTIVE_MARKER).unlink(missing_ok=True)
        if self.slug:
            self.session.clean(self.slug)
            self.slug = ""
