"""Raw stage: the samples a cell's sampler took, as stored in `c<N>-r<k>.samples.json`.

The bench's sampler (harness/bench/sampler.py) writes them; the table stage reads them
back and `summarize`s them into the columns the flags need. One compact row per sample
(720 samples of a 3-minute cell take ~50 KB instead of ~180 KB as indented objects).
CPU % is per one CPU, like top: 200 = two busy cores.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

from harness.raw.store import read_json

# Format history: 1 — first version (header fields, `columns`, one row per sample).
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Sample:
    t_s: float  # seconds since the sampler started
    server_pids: tuple[int, ...]  # the tree under the server's main process, sorted
    server_cpu_pct: float | None  # since the previous sample; None on the first one
    server_rss_bytes: int | None  # sum over the tree (shared pages of forked workers count twice)
    wrk_running: bool  # wrk was found alive at this sample
    wrk_cpu_pct: float | None  # None while wrk is not running or on its first sample
    accept_queue: int | None  # None when no port is watched or nothing listens on it
    established: int | None  # None also when not counted at this sample (cost)


COLUMNS = [f.name for f in fields(Sample)]


def _stat(values: list[Any], how: Callable[[list[Any]], Any]) -> Any:
    return how(values) if values else None


# A stall: the server's CPU near zero while it is otherwise busy serving wrk. "Near zero"
# is below STALL_CPU_PCT of one CPU and below STALL_SHARE of its busy level (the 90th
# percentile of its samples, so that a long stall does not hide what busy was): a paused
# (SIGSTOP) or cut-off server uses none; at 0.25 s per sample one 10 ms clock tick is 4 %.
# A server whose busy level is below STALL_BUSY_PCT is too idle to tell a gap from its pace.
STALL_CPU_PCT = 5.0
STALL_SHARE = 0.1
STALL_BUSY_PCT = 20.0
STALL_MIN_SAMPLES = 4


def stall(samples: Sequence[Sample]) -> tuple[float | None, float | None]:
    """(longest stall in s, when it began in s) inside the load, or (None, None) when
    the samples cannot tell; (0.0, None) when there is none.

    The load is the samples where wrk ran or, when wrk was not on this host (a remote
    server's sampler runs only while the clients run), all of them; a stall is a run of
    near-zero CPU between busy samples, so the idle edges before and after never count.
    Each sample's CPU covers the time since the previous sample, so a stall runs from the
    sample before its first quiet one to its last quiet one.
    """
    seen_wrk = any(s.wrk_running for s in samples)
    window = [
        (prev.t_s, s.t_s, s.server_cpu_pct)
        for prev, s in zip(samples, samples[1:], strict=False)
        if s.server_cpu_pct is not None and (s.wrk_running or not seen_wrk)
    ]
    if len(window) < STALL_MIN_SAMPLES:
        return None, None
    cpus = sorted(cpu for _, _, cpu in window)
    level = cpus[int(0.9 * (len(cpus) - 1))]
    if level < STALL_BUSY_PCT:
        return None, None
    quiet = min(STALL_CPU_PCT, STALL_SHARE * level)
    busy = [i for i, (_, _, cpu) in enumerate(window) if cpu >= quiet]
    longest, began = 0.0, None
    start: int | None = None
    for i in range(busy[0] + 1, busy[-1] + 1) if busy else ():
        if window[i][2] < quiet:
            start = i if start is None else start
            continue
        if start is not None:
            gap = window[i - 1][1] - window[start][0]
            if gap > longest:
                longest, began = gap, window[start][0]
            start = None
    return round(longest, 2), None if began is None else round(began, 2)


def summarize(samples: list[Sample]) -> dict[str, Any]:
    """Per-cell columns for the tidy table; None means "not measured"."""
    cpu = [s.server_cpu_pct for s in samples if s.server_cpu_pct is not None]
    rss = [s.server_rss_bytes for s in samples if s.server_rss_bytes is not None]
    wrk = [s.wrk_cpu_pct for s in samples if s.wrk_cpu_pct is not None]
    # Socket state only while wrk ran: before and after, no connection is expected.
    running = [s for s in samples if s.wrk_running]
    queue = [s.accept_queue for s in running if s.accept_queue is not None]
    est = [s.established for s in running if s.established is not None]
    pid_sets = [frozenset(s.server_pids) for s in samples]
    # A process that vanished: a worker died (and maybe was replaced) or the server exited.
    # A tree that only grows (workers spawned on demand) is not a change.
    vanished = any(a - b for a, b in zip(pid_sets, pid_sets[1:], strict=False))
    stall_s, stall_at_s = stall(samples)
    return {
        "samples_n": len(samples),
        "server_cpu_pct_mean": _stat(cpu, lambda v: round(statistics.fmean(v), 1)),
        "server_cpu_pct_max": _stat(cpu, max),
        "server_rss_mb_max": _stat(rss, lambda v: round(max(v) / 2**20, 1)),  # MiB
        "wrk_cpu_pct_mean": _stat(wrk, lambda v: round(statistics.fmean(v), 1)),
        "wrk_cpu_pct_max": _stat(wrk, max),
        "accept_queue_max": _stat(queue, max),
        "accept_queue_median": _stat(queue, statistics.median),
        "established_min": _stat(est, min),
        "established_median": _stat(est, statistics.median),
        "server_pids_changed": vanished if any(pid_sets) else None,
        "stall_s": stall_s,
        "stall_at_s": stall_at_s,
    }


def encode_samples(
    samples: Sequence[Sample],
    *,
    interval_s: float,
    port: int | None,
    server_pid: int,
    sampler_cpu_s: float,
) -> bytes:
    """The `c<N>-r<k>.samples.json` file of these samples (format above)."""
    head = {"format_version": FORMAT_VERSION, "kind": "samples", "interval_s": interval_s}
    head.update(port=port, server_pid=server_pid, columns=COLUMNS, sampler_cpu_s=sampler_cpu_s)
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    rows = ",\n".join("    " + json.dumps(list(astuple(s))) for s in samples)
    return ("{\n" + "\n".join(lines) + '\n  "samples": [\n' + rows + "\n  ]\n}\n").encode()


def read_samples(path: Path) -> list[Sample]:
    obj = read_json(path)
    if obj.get("kind") != "samples" or obj.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: not a samples file of format {FORMAT_VERSION} "
            f"(kind {obj.get('kind')!r}, format {obj.get('format_version')!r})"
        )
    samples = [dict(zip(obj["columns"], row, strict=True)) for row in obj["samples"]]
    return [Sample(**{**s, "server_pids": tuple(s["server_pids"])}) for s in samples]
