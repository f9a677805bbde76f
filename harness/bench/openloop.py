"""Bench stage: what an open-loop cell (`--rates`) runs, and the rate it offers.

The open-loop client is wrk driving harness/bench/lua/openloop.lua: requests on a
fixed schedule (wrk2's method), one connection per wrk thread, each latency measured
from when its request was due (corrected) and from when it was sent (uncorrected).
`openloop_argv`/`openloop_env` build its command line; `offered_rate` turns a cell's
rate into requests per second — a relative rate (`50%`) is that share of the mean
req/s of the closed-loop cell's ok repeats measured in the same run, read back from
the raw store, so a resumed run offers what the first one measured.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from harness.matrix.model import Cell, Matrix
from harness.paths import LUA_DIR
from harness.raw.store import RunStore

SCRIPT = LUA_DIR / "openloop.lua"
CLIENT = "wrk + harness/bench/lua/openloop.lua"
OPEN_LOOP_REMOTE = (
    "--rates: open-loop cells run on this machine only for now (server and client on "
    "other hosts would need the script and its report carried by the remote agents); "
    "run them without --server-host/--client-host"
)


def script_sha256() -> str:
    """The script's digest, recorded with the run: the client is wrk plus this file."""
    return hashlib.sha256(SCRIPT.read_bytes()).hexdigest()


def openloop_argv(
    wrk: str, connections: int, url: str, seconds: float, timeout_s: float, measured: bool
) -> list[str]:
    """wrk with one thread per connection (the script's schedule is per thread)."""
    argv = [wrk, f"-t{connections}", f"-c{connections}", f"-d{int(seconds)}s"]
    argv += [f"--timeout={int(timeout_s)}s", "-s", str(SCRIPT)]
    if measured:
        argv += ["--latency"]
    return argv + [url]


def openloop_env(rate: float, connections: int, report: str | None = None) -> dict[str, str]:
    env = {"WSGI_BASELINE_RATE": f"{rate:.3f}", "WSGI_BASELINE_CONNECTIONS": str(connections)}
    if report is not None:
        env["WSGI_BASELINE_REPORT"] = report
    return env


@dataclass(frozen=True)
class Offered:
    """The rate an open-loop cell offers, or why it has none."""

    rps: float | None
    closed_loop_rps: float | None = None  # the mean it is a share of (relative rates)
    closed_loop_repeats: int | None = None
    reason: str | None = None


def closed_loop_mean(store: RunStore, matrix: Matrix, cell: Cell) -> tuple[float | None, int]:
    """The mean req/s of the ok repeats of `cell`'s closed-loop cell in this run, and
    how many there are (adaptive rounds may have added repeats beyond --repeats)."""
    values = []
    for repeat in range(1, max(matrix.repeats, matrix.max_repeats or 0) + 1):
        closed = Cell(cell.server, cell.app, cell.workload, cell.connections, repeat)
        rps = store.requests_per_sec(closed)
        if rps is not None:
            values.append(rps)
    return (sum(values) / len(values) if values else None), len(values)


def offered_rate(store: RunStore, matrix: Matrix, cell: Cell) -> Offered:
    assert cell.rate is not None
    if not cell.rate.relative:
        return Offered(cell.rate.value)
    mean, n = closed_loop_mean(store, matrix, cell)
    if mean is None:
        closed = cell.closed_loop.key.rpartition("-r")[0]
        return Offered(
            None, None, 0,
            f"no offered rate: {cell.rate.label} of {closed}'s closed-loop throughput, "
            "which has no ok repeat in this run",
        )  # fmt: skip
    return Offered(cell.rate.value * mean, mean, n)
