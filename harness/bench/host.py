"""Bench stage: what a cell's host does, and what each of its steps returns.

`CellHost` is the protocol the cell sequence (harness/bench/cell.py) drives:
`start_server`, `preflight`, `run_wrk` (or `run_open_loop` for an open-loop cell),
`scrape`, `stop_server`, `end_cell`. Each
step returns a frozen record of what happened (`ServerStart`, `Measurement` made of
`WrkOutput`s, `ServerStop`) and raises `HostError` (`HostLost`) only when a host or
its link failed. Implementations: harness/bench/localhost.py (this machine),
harness/bench/remote/cell.py (over SSH), and the tests' fake host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.errors import UserError
from harness.matrix.model import Cell
from harness.raw.preflight import PreflightResult

# A server start is tried again on another free port when its port was taken meanwhile.
PORT_ATTEMPTS = 3


class HostError(UserError):
    """A host cannot be reached or prepared; the message says which and why."""


class HostLost(HostError):
    """The connection to a host dropped while we depended on it."""


@dataclass(frozen=True)
class ServerStart:
    """How starting the server went: its exact command line and, if it answers, where."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    backlog: int
    origin: str | None = None  # http://host:port once it answers 200
    ready_s: float | None = None
    failure: str | None = None  # why it did not start (then `origin` is None)
    exit_code: int | None = None
    stderr_tail: str | None = None
    pid: int | None = None  # recorded for servers on another host (its process group)
    pgid: int | None = None
    # The backlog the connections asked for, when `backlog` is what the host's kernel
    # allows of it (net.core.somaxconn); None: the same as `backlog`. Both are recorded.
    backlog_requested: int | None = None

    def record(self) -> dict[str, Any]:
        """The sidecar fields this step fills."""
        fields: dict[str, Any] = {
            "server_argv": self.argv,
            "server_env": self.env,
            "backlog": self.backlog,
            "backlog_requested": self.backlog_requested or self.backlog,
            "server_ready_s": None if self.ready_s is None else round(self.ready_s, 3),
        }
        if self.failure is not None:
            fields.update(server_exit_code=self.exit_code, server_stderr_tail=self.stderr_tail)
        if self.pid is not None:
            fields.update(server_pid=self.pid, server_pgid=self.pgid)
        return fields


@dataclass(frozen=True)
class WrkOutput:
    """One wrk process of a cell (one per client host), kept as it ran."""

    host: str | None  # the client host (None: this machine)
    connections: int  # its share of the cell's connections
    argv: tuple[str, ...]
    stdout: bytes
    report: bytes | None  # the Lua reporter's JSON (measured runs only)
    exit_code: int | None
    timed_out: bool
    stderr: str
    cpu_pct: float | None = None  # its CPU over its run, read at exit on a client host


@dataclass(frozen=True)
class Measurement:
    """A wrk run of the cell: every client's output, and the server's samples (as the
    `.samples.json` file's bytes) when it was measured."""

    clients: tuple[WrkOutput, ...]
    samples: bytes | None = None


@dataclass(frozen=True)
class ServerStop:
    exit_code: int | None
    crashed: bool  # it had exited before we stopped it
    killed: bool  # still running after the measurement, so its group was killed at once
    stderr_tail: str
    escaped: tuple[int, ...] = ()  # its processes outside its group (setsid), killed too


class ScrapeFailed(Exception):
    """A /metrics scrape that failed: data for the sidecar, not the end of the cell."""


class CellHost(Protocol):
    """Where one cell's processes run. One cell at a time: `start_server` begins it,
    `end_cell` ends it whatever happened. Steps raise HostError when a host or its
    link is lost; everything else they report in their results."""

    @property
    def where(self) -> dict[str, Any]:
        """Sidecar fields naming the hosts (empty for this machine)."""
        ...

    def start_server(self, cell: Cell, log: Path) -> ServerStart:
        """Start the cell's server and wait until it answers; its output goes to `log`."""
        ...

    def preflight(self, workload: str) -> PreflightResult:
        """Check the running server's answer as wrk will get it."""
        ...

    def run_wrk(self, cell: Cell, url: str, seconds: float, measured: bool) -> Measurement:
        """Run wrk (every client together); a measured run is sampled and reports."""
        ...

    def run_open_loop(
        self, cell: Cell, url: str, rate: float, seconds: float, measured: bool
    ) -> Measurement:
        """Run the open-loop client (harness/bench/openloop.py) at `rate` requests per
        second; a measured run is sampled and its report is the output's `report`. A
        host that cannot raises HostError saying so."""
        ...

    def scrape(self, path: Path) -> str:
        """The server's /metrics text, kept verbatim at `path`; ScrapeFailed if not."""
        ...

    def stop_server(self) -> ServerStop:
        """Stop the server after its measurement; its log is complete at `log` then."""
        ...

    def end_cell(self) -> None:
        """Stop whatever still runs (quickly: nothing is measured) and clean up."""
        ...
