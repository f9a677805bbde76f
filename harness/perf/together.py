"""Perf stage: the harness and a hand-run wrk measured at the same time.

Interleaved one after the other (harness/perf/fidelity.py), each pair's two cells see
a different machine: on a shared 2-core VM, consecutive 5 s cells of one server differ
by 15 % (coefficient of variation), so ±2 % cannot be resolved in any reasonable number
of pairs. Here both run at once: the harness's cell (`invoke bench`, as a user runs it:
preflight, warm-up, sampler, Lua reporter, sidecars) and a hand-started copy of its
server driven by bare wrk, both servers on the server's CPUs and both wrk on the
client's, as the run pins them. The hand's warm-up and measured wrk start when the
harness's do (followed through its process tree), so the machine's slowdowns fall on
both alike and the scheduler shares the CPUs between them: what the harness costs the
server, or its client, shows as the ratio's departure from 1. Each side gets about
half a CPU, so a fixed cost per second weighs twice what it does in a cell alone: if
anything, this overstates the observer effect.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from harness.bench import runner
from harness.bench.sampler import descendants
from harness.matrix.model import Matrix
from harness.paths import REPO_ROOT
from harness.perf.fidelity import (
    HARNESS_ARGS,
    bench_argv,
    hand_server,
    hand_wrk,
    harness_rps,
    ratio_summary,
)

FOLLOW_TIMEOUT_S = 60.0  # the bench's start-up, preflight and warm-up take a few seconds
_POLL_S = 0.002  # how often its process tree is looked at: the start offset it allows


class BenchEnded(RuntimeError):
    """The harness's bench ended before its wrk started."""


def _wrk_started(pid: int, measured: bool) -> bool:
    """Whether a wrk of the bench `pid` runs: its measured run (`--latency`) or not."""
    for child in descendants(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if os.path.basename(argv[0]) == b"wrk" and (b"--latency" in argv) == measured:
            return True
    return False


def _follow(bench: subprocess.Popen[str], measured: bool) -> None:
    """Wait (polling, bounded) until the bench's warm-up or measured wrk has started."""
    deadline = time.monotonic() + FOLLOW_TIMEOUT_S
    while not _wrk_started(bench.pid, measured):
        if bench.poll() is not None:
            raise BenchEnded(f"invoke bench exited ({bench.returncode}) before its wrk ran")
        if time.monotonic() > deadline:
            raise BenchEnded(f"invoke bench ran no wrk within {FOLLOW_TIMEOUT_S:g} s")
        time.sleep(_POLL_S)


def together_pair(work: Path, matrix: Matrix) -> dict[str, Any]:
    """One harness cell and one hand cell at the same time; their req/s."""
    with hand_server(matrix) as url:
        argv = bench_argv(work, *HARNESS_ARGS)
        pipe = subprocess.PIPE
        bench = subprocess.Popen(
            argv, cwd=REPO_ROOT, stdout=pipe, stderr=pipe, text=True, start_new_session=True
        )
        try:
            if matrix.warmup_s > 0:
                _follow(bench, measured=False)
                hand_wrk(matrix, url, measured=False)
            _follow(bench, measured=True)
            own = psutil.Process(bench.pid)
            cpu0 = sum(own.cpu_times()[:2])
            hand = hand_wrk(matrix, url, measured=True)
            cpu = sum(own.cpu_times()[:2]) - cpu0  # its own threads, not its children
            out, err = bench.communicate(timeout=FOLLOW_TIMEOUT_S + matrix.duration_s)
        except BaseException:
            runner.kill_group(bench.pid, bench)  # its server dies with it (PDEATHSIG)
            raise
    if bench.returncode != 0:
        raise RuntimeError(f"invoke bench failed: {err[-2000:]}")
    harness = harness_rps(work, out.strip().splitlines()[-1], matrix)
    # What the harness process itself used meanwhile (progress display, sampler): at once,
    # it is shared by both sides, so it is recorded rather than seen in the ratio.
    return {
        "harness": harness,
        "hand": hand,
        "harness_cpu_share": round(cpu / matrix.duration_s, 4),
    }


def measure_together(work: Path, matrix: Matrix, pairs: int) -> dict[str, Any]:
    """Harness ÷ hand-run req/s over `pairs` simultaneous pairs, with its 95 % interval."""
    rows: list[dict[str, Any]] = []
    for i in range(pairs):
        got = together_pair(work, matrix)
        got["ratio"] = round(got["harness"] / got["hand"], 4)
        rows.append({"pair": i + 1, **got})
    design = (
        "simultaneous: both servers on the server's CPUs, both wrk on the client's, "
        "the hand's wrk started with the harness's"
    )
    share = max(r["harness_cpu_share"] for r in rows)
    return {"design": design, **ratio_summary(rows), "harness_cpu_share_max": share}
