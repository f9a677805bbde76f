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
