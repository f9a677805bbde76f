"""Matrix stage: a profile and the command-line overrides -> a validated `Matrix`.

Reads the profile TOML, merges the options given on the command line over it, checks
every value (harness/matrix/options.py) and expands the cells in the order the bench
measures them. Every user error is a `ConfigError` naming the option and the cause.
"""

from __future__ import annotations

import os
import random
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.matrix.model import METRICS_SUFFIX, WORKLOADS, Cell, Matrix, OfferedRate
from harness.matrix.options import (
    ConfigError,
    parse_cpus,
    parse_duration,
    parse_ints,
    parse_list,
    unique,
)
from harness.matrix.precision import MIN_ADAPTIVE_REPEATS, parse_precision
from harness.matrix.schema import check_profile
from harness.paths import PROFILES_FILE

DEFAULT_PROFILE = "quick"
# With --precision and no --max-repeats: how many repeats a cell may get at most.
DEFAULT_MAX_REPEATS = 10


def load_profile(name: str, path: Path = PROFILES_FILE) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            profiles = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"--profile-file: cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--profile-file: {path}: {e}") from None
    profiles.pop("custom_servers", None)  # server declarations, not a profile
    # The whole file is checked, not only the profile asked for: a typo anywhere in it
    # is found the first time the file is used.
    for each, table in profiles.items():
        check_profile(path, each, table)
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
    split_cpus: bool = True,
) -> Matrix:
    """Merge profile and overrides (None = not given), validate, expand the cells.

    `split_cpus`: server and wrk share this machine, so unless CPUs are given the usable
    ones are split between them (first half for the server, the rest for wrk). When
    they run on different machines (harness/matrix/hosts.py) each has its own, and the
    default is no pinning at all.
    """
    raw = load_profile(profile, profile_file)
    raw.update({k: v for k, v in overrides.items() if v is not None})

    def need(key: str) -> Any:
        if key not in raw:
            raise ConfigError(f"--{key}: not set by profile {profile!r} nor on the command line")
        return raw[key]

    servers = unique(parse_list(need("servers"), "--servers"), "--servers")
    for s in servers:
        if s not in known_servers:
            raise ConfigError(
                f"--servers: unknown server {s!r} (known: {', '.join(known_servers)})"
            )
    apps = unique(parse_list(need("apps"), "--apps"), "--apps")
    for a in apps:
        if a not in known_apps:
            raise ConfigError(f"--apps: unknown app {a!r} (known: {', '.join(known_apps)})")
    workloads = parse_list(raw.get("workloads", ["plaintext"]), "--workloads")
    workloads = unique(workloads, "--workloads")
    for w in workloads:
        if w not in WORKLOADS:
            raise ConfigError(
                f"--workloads: unknown workload {w!r} (known: {', '.join(WORKLOADS)})"
            )
    connections = unique(parse_ints(need("connections"), "--connections"), "--connections")
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
    server_cpus, client_cpus = default_pinning() if split_cpus else (None, None)
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
    seed_drawn = shuffle and seed is None
    if seed_drawn:
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
        seed_drawn=seed_drawn,
        rates=parse_rates(raw.get("rates"), workloads),
        **_repeats_policy(raw, repeats),
    )
    return replace(matrix, cells=tuple(expand_cells(matrix)))


def _repeats_policy(raw: dict[str, Any], repeats: int) -> dict[str, Any]:
    """`precision`, `max_repeats`, `max_time` (adaptive repeats) and `calibrate`."""
    out: dict[str, Any] = {"calibrate": raw.get("calibrate", True) is not False}
    if raw.get("precision") in (None, "", "none"):
        for key in ("max_repeats", "max_time"):
            if raw.get(key) is not None:
                raise ConfigError(f"--{key.replace('_', '-')}: only with --precision")
        return out
    try:
        out["precision"] = parse_precision(str(raw["precision"]))
    except ValueError as e:
        raise ConfigError(f"--precision: {e} (e.g. 2%)") from None
    if repeats < MIN_ADAPTIVE_REPEATS:
        raise ConfigError(
            f"--precision: needs --repeats {MIN_ADAPTIVE_REPEATS} or more (the minimum "
            f"before a cell's interval is judged), got {repeats}"
        )
    default_max = max(DEFAULT_MAX_REPEATS, repeats)
    out["max_repeats"] = parse_ints([raw.get("max_repeats", default_max)], "--max-repeats")[0]
    if out["max_repeats"] < repeats:
        raise ConfigError(f"--max-repeats: {out['max_repeats']} is fewer than --repeats {repeats}")
    if raw.get("max_time") is not None:
        out["max_time_s"] = parse_duration(raw["max_time"], "--max-time")
    return out


# Workloads the open-loop script can send: one GET of one URL. The session mix checks
# its replies against a model that needs session.lua.
OPEN_LOOP_WORKLOADS = ("plaintext", "json")


def parse_rates(value: Any, workloads: list[str]) -> tuple[OfferedRate, ...]:
    """`25%,50%,100%` or `5000` (or a TOML list) -> offered rates, in the order given."""
    if value in (None, "", "none", []):
        return ()
    rates = []
    for item in unique(parse_list(value, "--rates"), "--rates"):
        rate = OfferedRate.from_label(item)
        if rate is None:
            raise ConfigError(
                f"--rates: {item!r} is not an offered rate (a share of the closed-loop "
                "throughput such as 50%, or requests per second such as 5000)"
            )
        rates.append(rate)
    labels = [r.label for r in rates]
    unique(labels, "--rates")  # 50% and 50.0% are the same rate
    other = [w for w in workloads if w not in OPEN_LOOP_WORKLOADS]
    if other:
        raise ConfigError(
            f"--rates: the {other[0]} workload has no open-loop client (open-loop cells "
            f"send one GET: {', '.join(OPEN_LOOP_WORKLOADS)}); measure it in a run "
            "without --rates"
        )
    return tuple(rates)


def expand_cells(m: Matrix) -> list[Cell]:
    """Repeat-major order (every cell once before any repeats), optionally shuffled;
    the open-loop cells (`--rates`) after every closed-loop one, since a relative rate
    is a share of the closed-loop throughput the run measured."""
    closed = [
        Cell(server, app, workload, conns, repeat)
        for repeat in range(1, m.repeats + 1)
        for server in m.servers
        for app in m.apps
        for workload in m.workloads
        for conns in m.connections
    ]
    opened = [
        Cell(server, app, workload, conns, repeat, rate)
        for repeat in range(1, m.repeats + 1)
        for server in m.servers
        for app in m.apps
        for workload in m.workloads
        for conns in m.connections
        for rate in m.rates
    ]
    if m.shuffle:
        random.Random(m.seed).shuffle(closed)
        random.Random(f"{m.seed}-open").shuffle(opened)
    return closed + opened
