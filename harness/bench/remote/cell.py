"""Bench side, remote hosts: one cell with the server and wrk on the plan's hosts.

`RemoteBench.open(plan, matrix)` connects to and prepares every host
(harness/bench/remote/session.py); `bench.measure_cell` then hands each cell to `measure`. The
sequence is the local one (harness/bench/cell.py `_measure`) step by step — free port,
server in its own process group, poll until it answers, warm-up, wrk with the Lua
reporter, stop — each step done by an agent on the host concerned (server agent here,
clients in harness/bench/remote/clients.py). The outputs come back into the local raw/ tree
under the local names, and the sidecar has the local fields plus `server_host`,
`client_hosts`, `server_pid`, `server_pgid` (and `clients` for several clients).
A lost connection fails the cell (the agents' watchdogs stop what ran) and the run
goes on after reconnecting; Ctrl-C stops the remote processes, like the local path.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from harness.bench import cell as bench
from harness.bench import servermetrics
from harness.bench.remote.clients import Load, ask, expect, record_runs, run_clients
from harness.bench.remote.link import Agent, HostError, HostLost
from harness.bench.remote.prepare import agent_shell, check, on_host
from harness.bench.remote.session import RemoteSession
from harness.matrix import workloads
from harness.matrix.apps import AppSpec
from harness.matrix.model import WORKLOADS, Cell, Matrix
from harness.matrix.servers import Budget
from harness.raw.records import PreflightResult
from harness.raw.store import RunStore, write_atomic

ACTIVE_MARKER = ".active-remote.json"  # which remote group runs now (for people and tests)
READY_TIMEOUT_S = 30.0


def cpu_arg(cpus: tuple[int, ...] | None) -> str:
    return ",".join(map(str, cpus)) if cpus else ""


class RemoteBench(RemoteSession):
    """`bench.measure_cell`'s remote path: `measure` one cell on the session's hosts."""

    def measure(
        self,
        store: RunStore,
        matrix: Matrix,
        cell: Cell,
        spec: bench.AnyServer,
        app: AppSpec,
        files: dict[str, Path],
        base: dict[str, Any],
    ) -> bench.CellOutcome:
        """Measure one cell on the plan's hosts and write its files; sidecar last."""
        self.reconnect()
        base.update(
            server_host=str(self.plan.server), client_hosts=[str(c) for c in self.plan.clients]
        )
        slug = f"{store.run_id}/{cell.key.replace('/', '-')}"
        log = f"{self.server.scratch}/{slug}/server.log"
        agent: Agent | None = None
        try:
            agent, origin, port = self._start_server(store, matrix, cell, spec, app, base, log)
            if agent is None:
                return bench._finish(store, cell, base, "failed", origin)
            base["url"] = url = origin + WORKLOADS[cell.workload]
            base["wrk_env"] = env = workloads.wrk_env(matrix, cell.workload)
            refused = self._preflight(matrix, cell, port, base)
            if refused:
                return bench._finish(store, cell, base, "failed", refused)
            files["lua_json"].unlink(missing_ok=True)
            load = Load(matrix, cell, url, env, slug, base["nofile_limit"])
            warm = run_clients(self.clients, load, measured=False) if matrix.warmup_s else []
            instrumented = workloads.is_instrumented(cell.app)
            before = (
                self._scrape(agent, files["metrics_before"], log, base) if instrumented else None
            )
            server = agent  # the sampler runs beside the server only while wrk runs
            samples = f"{self.server.scratch}/{slug}/samples.json"
            runs = run_clients(
                self.clients,
                load,
                measured=True,
                on_go=lambda: server.send(f"sample {samples}"),
                on_done=lambda: ask(server, "unsample", "sampled"),
            )
            write_atomic(files["samples"], self.server.host.read(samples) or b"")
            after = self._scrape(agent, files["metrics_after"], log, base) if instrumented else None
            if before is not None and after is not None:
                servermetrics.store_delta(before, after, files["metrics"])
            stopped = ask(agent, "stop", "exited")
            agent.close()
            agent = None
            base["server_exit_code"] = stopped["code"]
            if stopped.get("killed"):
                base["server_stop"] = "sigkill-after-measurement"
            base["server_stderr_tail"] = self._fetch_log(store, cell, log)
            reason, stdout, rps = record_runs(files, base, warm, runs, stopped["crashed"])
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
        self,
        store: RunStore,
        matrix: Matrix,
        cell: Cell,
        spec: bench.AnyServer,
        app: AppSpec,
        base: dict[str, Any],
        log: str,
    ) -> tuple[Agent | None, str, int]:
        """(agent, origin URL, port) of a server that answers, or (None, why not, 0)."""
        srv = self.server
        budget = Budget(workers=matrix.workers, threads=matrix.server_threads)
        backlog = max(1024, 2 * max(matrix.connections))
        why = "no attempt"
        for attempt in range(bench.PORT_ATTEMPTS):
            code, out, _ = srv.host.run(agent_shell(srv.root, srv.python, ["port", self.bind]), 60)
            if code != 0 or not out.strip().isdigit():
                raise HostError(f"{self.plan.server}: no free port ({out.strip() or code})")
            port = int(out.strip())
            argv = [
                on_host(srv, a)
                for a in spec.argv(srv.python, app, self.bind, port, budget, backlog)
            ]
            env = {k: on_host(srv, v) for k, v in spec.env().items()}
            env, metrics_dir = self._metrics_env(cell, env, log)
            base.update(server_argv=argv, server_env=env, backlog=backlog)
            host = f"[{self.bind}]" if ":" in self.bind else self.bind
            origin = f"http://{host}:{port}"
            args = [
                "serve",
                "--port",
                str(port),
                "--log",
                log,
                "--stop-signal",
                str(int(spec.stop_signal)),
                "--nofile",
                str(base["nofile_limit"]),
                "--cpus",
                cpu_arg(matrix.server_cpus),
                "--ready-url",
                origin + "/",
                "--ready-timeout",
                str(READY_TIMEOUT_S),
                "--metrics-dir",
                metrics_dir,
                *[f"--env={k}={v}" for k, v in env.items()],
                "--",
                *argv,
            ]
            agent = srv.host.start(srv.root, srv.python, args, f"server on {self.plan.server}")
            started = expect(agent.event(60), "started")
            base.update(server_pid=started["pid"], server_pgid=started["pgid"])
            marker = {"host": str(self.plan.server), **started, "started": time.time()}
            write_atomic(store.root / ACTIVE_MARKER, json.dumps(marker).encode())
            ready = agent.event(READY_TIMEOUT_S + 30)
            if ready["event"] == "ready":
                base["server_ready_s"] = round(ready["seconds"], 3)
                return agent, origin, port
            agent.close()
            base["server_exit_code"] = ready.get("code")
            base["server_stderr_tail"] = tail = self._fetch_log(store, cell, log)
            why = f"server did not start: {ready.get('reason')}"
            if "Address already in use" not in tail or attempt + 1 == bench.PORT_ATTEMPTS:
                break
        return None, why, 0

    def _metrics_env(self, cell: Cell, env: dict[str, str], log: str) -> tuple[dict[str, str], str]:
        """--server-metrics: the instrumented app's environment, as bench's MetricsDir
        gives it, with the multiprocess directory in the cell's scratch on the server
        host (the agent empties it); (env, that directory or "" when not instrumented)."""
        if not workloads.is_instrumented(cell.app):
            return env, ""
        directory = log.rsplit("/", 1)[0] + "/prometheus"
        return workloads.instrumented_env(cell.app, env, self.server.root, directory), directory

    def _scrape(self, agent: Agent, local: Path, log: str, base: dict[str, Any]) -> str | None:
        """bench._scrape through the server's agent: /metrics read beside the server,
        kept verbatim here; a failure is recorded in the sidecar, not the cell's end."""
        remote = f"{log.rsplit('/', 1)[0]}/{local.name}"
        said = ask(agent, f"scrape {remote}", "scraped")
        if said.get("error"):
            base.setdefault("metrics_errors", []).append(said["error"])
            return None
        data = self.server.host.read(remote) or b""
        write_atomic(local, data)
        return data.decode("utf-8", "replace")

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

    def _preflight(self, matrix: Matrix, cell: Cell, port: int, base: dict[str, Any]) -> str | None:
        """bench._preflight from the first client host: what wrk will be answered."""
        path, body, ctype = workloads.expected_response(cell.workload)
        c = self.clients[0]
        args = ["preflight", self.bind, str(port), path, base64.b64encode(body).decode(), ctype]
        said = json.loads(check(c.host, agent_shell(c.root, c.python, args), "preflight", 60))
        result = PreflightResult(said["ok"], [tuple(x) for x in said["checks"]], said["reason"])
        return bench.record_preflight(matrix, result, base)
