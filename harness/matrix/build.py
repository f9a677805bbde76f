"""Bench stage 1: options and profiles -> a validated `Matrix` of cells.

Takes the profile TOML and the command-line overrides, checks every value and
returns the typed matrix the bench loop walks. Every user error is a
`ConfigError` with one line naming the option and the cause.
"""

from __future__ import annotations

import os
import random
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.paths import PROFILES_FILE

DEFAULT_PROFILE = "quick"
# Workload id -> URL path wrk loads. "session" is a GET/POST/DELETE mix over /kv/<key>
# driven by harness/bench/lua/session.lua.
WORKLOADS = {"plaintext": "/", "json": "/json", "session": "/kv/"}
METRICS_SUFFIX = "+metrics"  # app variant wrapped in the server-side timing middleware
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ConfigError(ValueError):
    """A bad option or profile value; the message is one line for the user."""


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
        return f"{self.server}/{self.app}/{self.workload}/c{self.connections}-r{self.repeat}"


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
    threads: int
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
    cells: tuple[Cell, ...] = field(default=())

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
        }


def parse_duration(value: str | int | float, option: str) -> float:
    """`180`, `180s`, `3m`, `500ms` -> seconds; negative or garbage is a ConfigError."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ConfigError(
                f"{option}: {value!r} is not a duration (use e.g. 180, 180s, 3m, 500ms)"
            )
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    if seconds < 0:
        raise ConfigError(f"{option}: duration must not be negative, got {value!r}")
    return seconds


def parse_list(value: str | list[Any], option: str) -> list[str]:
    """Comma-separated `a,b,c` (or a TOML list) -> stripped, non-empty items."""
    items = value if isinstance(value, list) else str(value).split(",")
    out = [str(item).strip() for item in items if str(item).strip()]
    if not out:
        raise ConfigError(f"{option}: empty list")
    return out


def parse_ints(value: str | list[Any], option: str, minimum: int = 1) -> list[int]:
    out = []
    for item in parse_list(value, option):
        try:
            n = int(item)
        except ValueError:
            raise ConfigError(f"{option}: {item!r} is not a whole number") from None
        if n < minimum:
            raise ConfigError(f"{option}: {n} is below the minimum of {minimum}")
        out.append(n)
    return out


def parse_cpus(value: str | list[Any] | None, option: str) -> tuple[int, ...] | None:
    if value in (None, "", "none"):
        return None
    cpus = tuple(parse_ints(value, option, minimum=0))
    usable = os.sched_getaffinity(0)
    bad = [c for c in cpus if c not in usable]
    if bad:
        raise ConfigError(f"{option}: CPU {bad[0]} is not usable here (usable: {sorted(usable)})")
    return cpus


def load_profile(name: str, path: Path = PROFILES_FILE) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            profiles = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"--profile-file: cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--profile-file: {path}: {e}") from None
    profiles.pop("custom_servers", None)  # server declarations, not a profile
    if name not in profiles:
        raise ConfigError(
            f"--profile: unknown profile {name!r} in {path} (known: {', '.join(profiles)})"
        )
    return dict(profiles[name])


def default_pinning() -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
    """Split the usable CPUs: first half for the server, the rest for wrk."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    half = len(cpus) // 2
    return tuple(cpus[:half]), tuple(cpus[half:])


def build_matrix(
    profile: str,
    overrides: dict[str, Any],
    known_servers: list[str],
    known_apps: list[str],
    profile_file: Path = PROFILES_FILE,
) -> Matrix:
    """Merge profile and overrides (None = not given), validate, expand the cells."""
    raw = load_profile(profile, profile_file)
    raw.update({k: v for k, v in overrides.items() if v is not None})

    def need(key: str) -> Any:
        if key not in raw:
            raise ConfigError(f"--{key}: not set by profile {profile!r} nor on the command line")
        return raw[key]

    servers = parse_list(need("servers"), "--servers")
    for s in servers:
        if s not in known_servers:
            raise ConfigError(
                f"--servers: unknown server {s!r} (known: {', '.join(known_servers)})"
            )
    apps = parse_list(need("apps"), "--apps")
    for a in apps:
        if a not in known_apps:
            raise ConfigError(f"--apps: unknown app {a!r} (known: {', '.join(known_apps)})")
    workloads = parse_list(raw.get("workloads", ["plaintext"]), "--workloads")
    for w in workloads:
        if w not in WORKLOADS:
            raise ConfigError(
                f"--workloads: unknown workload {w!r} (known: {', '.join(WORKLOADS)})"
            )
    connections = parse_ints(need("connections"), "--connections")
    threads = parse_ints([need("threads")], "--threads")[0]
    if min(connections) < threads:
        raise ConfigError(
            f"--connections: {min(connections)} is fewer than --threads {threads} "
            "(wrk needs at least one connection per thread)"
        )
    duration = parse_duration(need("duration"), "--duration")
    if duration <= 0:
        raise ConfigError(f"--duration: must be positive, got {raw['duration']!r}")
    if duration != int(duration):
        raise ConfigError(f"--duration: wrk takes whole seconds, got {duration} s")
    warmup = parse_duration(raw.get("warmup", 0), "--warmup")
    if warmup != int(warmup):
        raise ConfigError(f"--warmup: wrk takes whole seconds, got {warmup} s")
    timeout = parse_duration(raw.get("timeout", "2s"), "--timeout")
    if timeout < 1 or timeout != int(timeout):
        # wrk parses --timeout in whole seconds (units s/m/h only).
        raise ConfigError(
            f"--timeout: wrk takes whole seconds (at least 1), got {raw['timeout']!r}"
        )
    repeats = parse_ints([need("repeats")], "--repeats")[0]
    workers = parse_ints([raw.get("workers", 1)], "--workers")[0]
    if workers > 1 and "session" in workloads:
        # Each worker process keeps its own store (apps/app_contract.py): a key stored by
        # one worker is a 404 on another, which the session check would report as the
        # server's inconsistency.
        raise ConfigError(
            f"--workers {workers} with the session workload: each worker process keeps its "
            "own key-value store, so a key stored through one is missing on another; "
            "use --workers 1 for session"
        )
    server_threads = parse_ints([raw.get("server_threads", 1)], "--server-threads")[0]
    server_cpus, client_cpus = default_pinning()
    if "server_cpus" in raw:
        server_cpus = parse_cpus(raw["server_cpus"], "--server-cpus")
    if "client_cpus" in raw:
        client_cpus = parse_cpus(raw["client_cpus"], "--client-cpus")
    if server_cpus and client_cpus and set(server_cpus) & set(client_cpus):
        raise ConfigError("--server-cpus/--client-cpus: server and wrk CPUs must be disjoint")
    server_metrics = bool(raw.get("server_metrics", False))
    if server_metrics:
        # The same cells with and without the timing middleware: its cost is measured.
        apps += [a + METRICS_SUFFIX for a in apps]
    session_mix = parse_ints(raw.get("session_mix", "80,15,5"), "--session-mix", minimum=0)
    if len(session_mix) != 3 or sum(session_mix) == 0:
        raise ConfigError("--session-mix: give three weights GET,POST,DELETE, e.g. 80,15,5")
    session_keys = parse_ints([raw.get("session_keys", 1000)], "--session-keys")[0]
    session_seed = parse_ints([raw.get("session_seed", 1)], "--session-seed", minimum=0)[0]
    shuffle = bool(raw.get("shuffle", False))
    seed = raw.get("seed")
    if shuffle and seed is None:
        seed = random.SystemRandom().randrange(2**31)
    matrix = Matrix(
        profile=profile,
        servers=tuple(servers),
        apps=tuple(apps),
        workloads=tuple(workloads),
        connections=tuple(connections),
        repeats=repeats,
        duration_s=duration,
        warmup_s=warmup,
        threads=threads,
        timeout_s=timeout,
        workers=workers,
        server_threads=server_threads,
        shuffle=shuffle,
        seed=int(seed) if seed is not None else None,
        server_cpus=server_cpus,
        client_cpus=client_cpus,
        server_metrics=server_metrics,
        ignore_preflight=bool(raw.get("ignore_preflight", False)),
        session_mix=",".join(map(str, session_mix)),
        session_keys=session_keys,
        session_seed=session_seed,
    )
    return replace(matrix, cells=tuple(expand_cells(matrix)))


def expand_cells(m: Matrix) -> list[Cell]:
    """Repeat-major order (every cell once before any repeats), optionally shuffled."""
    cells = [
        Cell(server, app, workload, conns, repeat)
        for repeat in range(1, m.repeats + 1)
        for server in m.servers
        for app in m.apps
        for workload in m.workloads
        for conns in m.connections
    ]
    if m.shuffle:
        random.Random(m.seed).shuffle(cells)
    return cells
