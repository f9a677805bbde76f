"""Bench stage: the cell sequence's host when server and wrk run on this machine.

`LocalCellHost` does each step of harness/bench/cell.py with the process runner: the
server in its own process group on 127.0.0.1 and a free port (retried when the port was
taken meanwhile), pinned to the server CPUs; wrk pinned to the client CPUs; the sampler
beside them while wrk measures; the server's group killed at once after its measurement.
It also keeps the marker of the running server's group, so that a run killed with
SIGKILL is cleaned up when it is resumed (harness/bench/runsetup.py).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.bench import hostinfo, runner, servermetrics
from harness.bench.cell import start_failure, wrk_argv
from harness.bench.host import (
    PORT_ATTEMPTS,
    Measurement,
    ScrapeFailed,
    ServerStart,
    ServerStop,
    WrkOutput,
)
from harness.bench.openloop import openloop_argv, openloop_env
from harness.bench.preflight import preflight
from harness.bench.sampler import Sampler, child_named, encode_samples
from harness.matrix import workloads
from harness.matrix.customservers import AnyServer
from harness.matrix.model import Cell, Matrix
from harness.matrix.serverspec import Budget
from harness.paths import REPO_ROOT
from harness.raw.preflight import PreflightResult
from harness.raw.runlock import boot_id
from harness.raw.store import RunStore, write_atomic

HOST = "127.0.0.1"
ACTIVE_MARKER = ".active-server.json"


def mark_active(store: RunStore, server: runner.ServerProcess | None) -> None:
    """Record the running server's group so a run killed with SIGKILL can be cleaned up."""
    path = store.root / ACTIVE_MARKER
    if server is None:
        path.unlink(missing_ok=True)
        return
    marker = {
        "pgid": server.pgid,
        "started": time.time(),
        # Whose server it is: resuming reaps it only when this bench is gone.
        "bench_pid": os.getpid(),
        "boot_id": boot_id(),
        "token": server.token,
    }
    write_atomic(path, json.dumps(marker).encode())


class LocalCellHost:
    """Server and wrk on this machine (the `CellHost` of a local run)."""

    def __init__(
        self, store: RunStore, matrix: Matrix, servers: dict[str, AnyServer], wrk: str
    ) -> None:
        self.store, self.matrix, self.servers, self.wrk = store, matrix, servers, wrk
        self.server: runner.ServerProcess | None = None
        self.port = 0
        self.metrics: servermetrics.MetricsDir | None = None
        self.scratch: Path | None = None
        self.somaxconn = hostinfo.somaxconn()

    @property
    def where(self) -> dict[str, Any]:
        return {}

    def start_server(self, cell: Cell, log: Path) -> ServerStart:
        m = self.matrix
        spec, app = self.servers[cell.server], workloads.app_for(cell.app)
        self.metrics = servermetrics.MetricsDir(cell.app)
        budget = Budget(workers=m.workers, threads=m.server_threads)
        listen = m.listen_within(self.somaxconn)
        failed = ServerStart(
            (), {}, listen, failure="server did not start", backlog_requested=m.backlog
        )
        for attempt in range(PORT_ATTEMPTS):
            port = runner.free_port(HOST)
            argv = spec.argv(sys.executable, app, HOST, port, budget, m.backlog, listen)
            env = self.metrics.server_env(cell.app, spec.env())
            server = runner.start_server(
                argv, env, REPO_ROOT, log, spec.stop_signal, m.server_cpus, cell.nofile_limit
            )
            self.server = server
            mark_active(self.store, server)
            try:
                ready = runner.wait_ready(server, f"http://{HOST}:{port}/")
            except runner.LaunchError as e:
                code = runner.stop_server(server)
                tail = server.stderr_tail()  # complete now that the whole group is gone
                self.server = None
                failed = ServerStart(
                    tuple(argv), env, listen, failure=start_failure(str(e), tail),
                    exit_code=code, stderr_tail=tail, backlog_requested=m.backlog,
                )  # fmt: skip
                if "Address already in use" not in tail or attempt + 1 == PORT_ATTEMPTS:
                    return failed
                continue
            self.port = port
            return ServerStart(
                tuple(argv), env, listen, f"http://{HOST}:{port}", ready,
                backlog_requested=m.backlog,
            )  # fmt: skip
        return failed

    def preflight(self, workload: str) -> PreflightResult:
        path, body, ctype = workloads.expected_response(workload)
        return preflight(HOST, self.port, path, body, ctype)

    def run_wrk(self, cell: Cell, url: str, seconds: float, measured: bool) -> Measurement:
        m = self.matrix
        argv = wrk_argv(self.wrk, m, cell.workload, cell.connections, url, seconds, measured)
        env = workloads.wrk_env(m, cell.workload)
        limit = m.wrk_limit_s(seconds)
        if not measured:
            run = runner.run_wrk(argv, env, m.client_cpus, cell.nofile_limit, limit)
            return Measurement((self._output(cell, run, None),))
        self.scratch = self.scratch or Path(tempfile.mkdtemp(prefix="wsgi-baseline-cell-"))
        report = self.scratch / "report.lua.json"
        report.unlink(missing_ok=True)
        env = {**env, "WSGI_BASELINE_REPORT": str(report)}
        assert self.server is not None
        wrk = child_named(Path(self.wrk).name)
        with Sampler(self.server.pgid, wrk, self.port, cpus=m.client_cpus) as sampler:
            run = runner.run_wrk(argv, env, m.client_cpus, cell.nofile_limit, limit)
        data = report.read_bytes() if report.is_file() else None
        return Measurement((self._output(cell, run, data),), encode_samples(sampler))

    def run_open_loop(
        self, cell: Cell, url: str, rate: float, seconds: float, measured: bool
    ) -> Measurement:
        m = self.matrix
        argv = openloop_argv(self.wrk, cell.connections, url, seconds, m.timeout_s, measured)
        limit = m.wrk_limit_s(seconds)
        if not measured:
            env = openloop_env(rate, cell.connections)
            run = runner.run_wrk(argv, env, m.client_cpus, cell.nofile_limit, limit)
            return Measurement((self._output(cell, run, None),))
        self.scratch = self.scratch or Path(tempfile.mkdtemp(prefix="wsgi-baseline-cell-"))
        report = self.scratch / "report.open.json"
        report.unlink(missing_ok=True)
        env = openloop_env(rate, cell.connections, str(report))
        assert self.server is not None
        with Sampler(self.server.pgid, child_named(Path(self.wrk).name), self.port) as sampler:
            run = runner.run_wrk(argv, env, m.client_cpus, cell.nofile_limit, limit)
        data = report.read_bytes() if report.is_file() else None
        return Measurement((self._output(cell, run, data),), encode_samples(sampler))

    @staticmethod
    def _output(cell: Cell, run: runner.WrkRun, report: bytes | None) -> WrkOutput:
        return WrkOutput(
            None, cell.connections, tuple(run.argv), run.stdout, report, run.exit_code,
            run.timed_out, run.stderr,
        )  # fmt: skip

    def scrape(self, path: Path) -> str:
        try:
            return servermetrics.scrape_to(f"http://{HOST}:{self.port}/metrics", path)
        except Exception as e:  # noqa: BLE001 - any scrape failure is data, not a crash
            raise ScrapeFailed(f"{path.name}: {e}") from None

    def stop_server(self) -> ServerStop:
        server, self.server = self.server, None
        assert server is not None
        crashed = server.proc.poll() is not None
        if crashed:
            code = runner.stop_server(server)
        else:
            code = runner.end_server(server)  # measured: no graceful stop to wait for
        return ServerStop(code, crashed, not crashed, server.stderr_tail(), server.escaped)

    def end_cell(self) -> None:
        if self.server is not None:
            runner.stop_server(self.server)
            self.server = None
        mark_active(self.store, None)
        if self.metrics is not None:
            self.metrics.cleanup()
            self.metrics = None
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


@contextmanager
def off_server_cpus(matrix: Matrix) -> Iterator[None]:
    """Keep the harness's own threads (the progress display, each cell's sampler, file
    writes) on the client's CPUs while a pinned local run measures, and off the server's:
    on a 2-core machine the server saturates its one core, so any harness work
    scheduled there was taken from the server. Threads started inside inherit it; the
    server and wrk are pinned to their own CPUs as they start. Restored after."""
    if not matrix.client_cpus or not matrix.server_cpus:
        yield
        return
    before = os.sched_getaffinity(0)  # pid 0: this thread (and those it starts)
    try:
        os.sched_setaffinity(0, matrix.client_cpus)
    except OSError:  # not allowed here: measured all the same, as before
        yield
        return
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
