"""Matrix stage: the typed records of what a run measures — `Cell` and `Matrix`.

Frozen, and every fact derived from them is computed here once: the cell's key, how
many threads and connections wrk really runs, the listen backlog servers are given,
the open-files limit, the time limit a wrk run gets. The bench, the raw store and the
tables all read these properties instead of computing them again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Workload id -> URL path wrk loads. "session" is a GET/POST/DELETE mix over /kv/<key>
# driven by harness/bench/lua/session.lua.
WORKLOADS = {"plaintext": "/", "json": "/json", "session": "/kv/"}
METRICS_SUFFIX = "+metrics"  # app variant wrapped in the server-side timing middleware
# Descriptors beyond the connections: wrk's own, a server's listening socket, workers,
# logs, the interpreter's imports.
NOFILE_SPARE = 256
# A wrk run is killed when it outlasts its -d by its --timeout and this much: wrk stops
# on its own timer, so only a wedged wrk gets there.
WRK_SPARE_S = 30.0
MIN_BACKLOG = 1024


def wrk_threads(threads: int, connections: int) -> int:
    """wrk refuses fewer connections than threads: a share of a cell (one of several
    clients) smaller than the threads asked for runs with one thread per connection."""
    return min(threads, connections)


def effective_connections(threads: int, connections: int) -> int:
    """What wrk opens: each thread gets connections // threads, so -c10 -t4 opens 8."""
    return threads * (connections // threads)


def nofile_needed(connections: int) -> int:
    """Open files a process needs to hold `connections` sockets (wrk or a server)."""
    return connections + NOFILE_SPARE


def listen_backlog(connections: int) -> int:
    """The listen backlog a server is given for at most `connections` at once: more than
    it will hold, so no connection waits on a full queue (uWSGI's default of 100 stalled
    SYNs for 1 s at c=500). The kernel may cap it (net.core.somaxconn)."""
    return max(MIN_BACKLOG, 2 * connections)


def wrk_limit_s(seconds: float, timeout_s: float) -> float:
    """How long a wrk run of `seconds` may take before it is killed."""
    return seconds + timeout_s + WRK_SPARE_S


@dataclass(frozen=True)
class Cell:
    """One measurement: a server serving an app under one load level, one repeat."""

    server: str
    app: str
    workload: str
    connections: int
    repeat: int

    @property
    def key(self) -> str:
        """`server/app/workload/c<N>-r<k>`: the cell's name in run.json and on screen."""
        return f"{self.server}/{self.app}/{self.workload}/c{self.connections}-r{self.repeat}"

    @property
    def slug(self) -> str:
        """The key as one path component (a remote host's scratch folder)."""
        return self.key.replace("/", "-")

    @property
    def nofile_limit(self) -> int:
        return nofile_needed(self.connections)


@dataclass(frozen=True)
class Matrix:
    profile: str
    servers: tuple[str, ...]
    apps: tuple[str, ...]
    workloads: tuple[str, ...]
    connections: tuple[int, ...]
    repeats: int
    duration_s: float
    warmup_s: float
    threads: int  # at most min(connections): checked when the matrix is built
    timeout_s: float
    workers: int
    server_threads: int
    shuffle: bool = False
    seed: int | None = None
    server_cpus: tuple[int, ...] | None = None
    client_cpus: tuple[int, ...] | None = None
    server_metrics: bool = False
    ignore_preflight: bool = False
    session_mix: str = "80,15,5"
    session_keys: int = 1000
    session_seed: int = 1
    # Adaptive repeats (harness/matrix/precision.py): after `repeats`, a cell whose 95 %
    # interval's half-width exceeds `precision` (a share of its mean) is measured again,
    # up to `max_repeats` and while the run is within `max_time_s`. None: fixed repeats.
    precision: float | None = None
    max_repeats: int | None = None
    max_time_s: float | None = None
    calibrate: bool = True  # measure the client ceiling at the start and end of the run
    cells: tuple[Cell, ...] = field(default=())

    @property
    def backlog(self) -> int:
        """The listen backlog every server of the run is given (`listen_backlog`)."""
        return listen_backlog(max(self.connections))

    @property
    def nofile_limit(self) -> int:
        """Open files the largest cell needs, checked against the hard limit up front."""
        return nofile_needed(max(self.connections))

    def wrk_limit_s(self, seconds: float) -> float:
        """How long a wrk run of `seconds` may take before it is killed."""
        return wrk_limit_s(seconds, self.timeout_s)

    def settings(self) -> dict[str, Any]:
        """The matrix as recorded in run.json (everything but the cell list)."""
        return {
            "servers": list(self.servers),
            "apps": list(self.apps),
            "workloads": list(self.workloads),
            "connections": list(self.connections),
            "repeats": self.repeats,
            "duration_s": self.duration_s,
            "warmup_s": self.warmup_s,
            "threads": self.threads,
            "timeout_s": self.timeout_s,
            "workers": self.workers,
            "server_threads": self.server_threads,
            "shuffle": self.shuffle,
            "seed": self.seed,
            "server_cpus": list(self.server_cpus) if self.server_cpus else None,
            "client_cpus": list(self.client_cpus) if self.client_cpus else None,
            "server_metrics": self.server_metrics,
            "ignore_preflight": self.ignore_preflight,
            "session_mix": self.session_mix,
            "session_keys": self.session_keys,
            "session_seed": self.session_seed,
            "precision": self.precision,
            "max_repeats": self.max_repeats,
            "max_time_s": self.max_time_s,
            "calibrate": self.calibrate,
        }
