"""Matrix stage: the typed records of what a run measures — `Cell` and `Matrix`.

Frozen, and every fact derived from them is computed here once: the cell's key, how
many threads and connections wrk really runs, the listen backlog servers are given,
the open-files limit, the time limit a wrk run gets. The bench, the raw store and the
tables all read these properties instead of computing them again.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def listen_backlog(connections: int, somaxconn: int | None = None) -> int:
    """The listen backlog a server is given for at most `connections` at once: more than
    it will hold, so no connection waits on a full queue (uWSGI's default of 100 stalled
    SYNs for 1 s at c=500), but never above the host kernel's `somaxconn` when it is
    known: the kernel cuts a larger one to it, and uWSGI refuses to start."""
    wanted = max(MIN_BACKLOG, 2 * connections)
    return wanted if somaxconn is None else max(1, min(wanted, somaxconn))


def wrk_limit_s(seconds: float, timeout_s: float) -> float:
    """How long a wrk run of `seconds` may take before it is killed."""
    return seconds + timeout_s + WRK_SPARE_S


def _plain(x: float) -> str:
    """A number without exponent or trailing zeros: 5000, 12.5."""
    return f"{x:.6f}".rstrip("0").rstrip(".")


@dataclass(frozen=True, order=True)
class OfferedRate:
    """An open-loop cell's offered load (`--rates`): a share of its closed-loop cell's
    throughput measured in the same run (`50%`: relative), or requests per second
    (`5000`). `label` is how it is written in a key and on a page; `slug` how it is
    written in a file name (no `%`)."""

    value: float  # the share (0.5 for 50 %) or requests per second
    relative: bool

    @property
    def number(self) -> float:
        """The number as written: percent for a relative rate, else req/s."""
        return round(self.value * 100, 6) if self.relative else self.value

    @property
    def label(self) -> str:
        return _plain(self.number) + ("%" if self.relative else "")

    @property
    def slug(self) -> str:
        """`50pct`, `12p5pct`, `5000rps`: no dot, so a file name keeps one suffix."""
        return _plain(self.number).replace(".", "p") + ("pct" if self.relative else "rps")

    @classmethod
    def from_slug(cls, slug: str) -> OfferedRate | None:
        """`50pct` -> 50 %, `5000rps` -> 5000 req/s; None for anything else."""
        for suffix, relative in (("pct", True), ("rps", False)):
            number = slug.removesuffix(suffix)
            if number != slug:
                rate = cls.from_label(number.replace("p", ".") + ("%" if relative else ""))
                return rate if rate is not None and rate.slug == slug else None
        return None

    @classmethod
    def from_label(cls, label: str) -> OfferedRate | None:
        """`50%` -> 50 %, `5000` -> 5000 req/s (as `label` writes them); None otherwise."""
        text = label.strip()
        relative = text.endswith("%")
        try:
            value = float(text.removesuffix("%"))
        except ValueError:
            return None
        if not 0 < value < 1e9:
            return None
        return cls(value / 100 if relative else value, relative)

    def offered(self, closed_loop_rps: float | None) -> float | None:
        """Requests per second to offer; a relative rate needs its closed-loop
        cell's throughput (None: not measured, so no rate)."""
        if not self.relative:
            return self.value
        if closed_loop_rps is None or not closed_loop_rps > 0:
            return None
        return self.value * closed_loop_rps


@dataclass(frozen=True)
class Cell:
    """One measurement: a server serving an app under one load level, one repeat.

    `rate` None: closed loop (wrk, each connection sends as soon as it is answered).
    An `OfferedRate`: open loop at that offered load (harness/bench/lua/openloop.lua),
    over `connections` connections, derived from the closed-loop cell of the same
    server, app, workload and connections."""

    server: str
    app: str
    workload: str
    connections: int
    repeat: int
    rate: OfferedRate | None = None

    @property
    def loop(self) -> str:
        return "closed" if self.rate is None else "open"

    @property
    def stem(self) -> str:
        """`c<N>-r<k>`, or `c<N>-at<rate slug>-r<k>` for an open-loop cell: the file
        name of its sidecar without `.json`."""
        at = "" if self.rate is None else f"-at{self.rate.slug}"
        return f"c{self.connections}{at}-r{self.repeat}"

    @property
    def key(self) -> str:
        """`server/app/workload/c<N>-r<k>` (open loop: `c<N>-at50pct-r<k>`): the cell's
        name in run.json and on screen."""
        return f"{self.server}/{self.app}/{self.workload}/{self.stem}"

    @property
    def closed_loop(self) -> Cell:
        """The closed-loop cell this one derives from (itself when closed)."""
        return Cell(self.server, self.app, self.workload, self.connections, self.repeat)

    @classmethod
    def from_key(cls, key: str) -> Cell | None:
        """`server/app/workload/c<N>-r<k>` (or `c<N>-at<rate>-r<k>`) -> Cell, or None if
        `key` is not one."""
        parts = key.split("/")
        if len(parts) != 4 or not parts[3].startswith("c") or "-r" not in parts[3]:
            return None
        head, _, repeat = parts[3][1:].rpartition("-r")
        conns, _, at = head.partition("-at")
        rate = OfferedRate.from_slug(at) if at else None
        if not (conns.isdigit() and repeat.isdigit()) or (at and rate is None):
            return None
        return cls(parts[0], parts[1], parts[2], int(conns), int(repeat), rate)

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
    # Open-loop cells (`--rates`): for every closed-loop cell, one per offered rate.
    rates: tuple[OfferedRate, ...] = ()
    cells: tuple[Cell, ...] = field(default=())
    # --shuffle without --seed draws one: a run resumed keeps its recorded order, so a
    # drawn seed is no setting to compare (`differences`).
    seed_drawn: bool = False

    @property
    def backlog(self) -> int:
        """The backlog the run's connections ask for (`listen_backlog`): per-process
        connection caps take it; the listen queue is `listen_within` a host's limit."""
        return listen_backlog(max(self.connections))

    def listen_within(self, somaxconn: int | None) -> int:
        """The listen backlog servers get on a host whose net.core.somaxconn is
        `somaxconn` (None: unknown, not capped)."""
        return listen_backlog(max(self.connections), somaxconn)

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
            **({"rates": [r.label for r in self.rates]} if self.rates else {}),
        }

    def differences(self, recorded: Mapping[str, Any]) -> list[str]:
        """Each setting of run.json's `settings` (`recorded`) that this matrix does not
        share, as `--option: <recorded> in the run, <this> given`; empty when it would
        measure the same cells the same way."""
        mine = self.settings()
        out = []
        for key in sorted(set(mine) | set(recorded), key=_setting_order(mine)):
            if key == "seed" and self.seed_drawn:
                continue
            if _comparable(recorded.get(key)) != _comparable(mine.get(key)):
                out.append(
                    f"{option_name(key)}: {_shown(key, recorded.get(key))} in the run, "
                    f"{_shown(key, mine.get(key))} given"
                )
        return out


def option_name(setting: str) -> str:
    """The command-line option of a run.json setting: `duration_s` -> `--duration`."""
    return "--" + setting.removesuffix("_s").replace("_", "-")


def _setting_order(mine: Mapping[str, Any]) -> Any:
    order = {k: i for i, k in enumerate(mine)}
    return lambda k: (order.get(k, len(order)), k)


def _comparable(value: Any) -> Any:
    """JSON's view of a value: tuples are lists."""
    if isinstance(value, tuple | list):
        return [_comparable(v) for v in value]
    return value


def _shown(key: str, value: Any) -> str:
    """A setting as typed on the command line: `3 s`, `10,100`, `none`."""
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value == int(value):
        value = int(value)
    return f"{value} s" if key.endswith("_s") and isinstance(value, int | float) else str(value)
