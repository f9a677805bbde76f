"""Bench side: a background sampler of one cell — server tree, wrk, listen socket.

    with Sampler(server.pgid, child_named("wrk"), port) as sampler:
        run = runner.run_wrk(...)
    write_samples(base.with_suffix(".samples.json"), sampler)

A few times a second it records the server's whole process tree (pids, CPU %, RSS),
wrk's CPU %, and the kernel's view of the server port (accept queue, established
connections; see harness/bench/sockstat.py). The samples' file format and `summarize`
live in harness/raw/samples.py. CPU % is per one CPU, like top: 200 = two busy cores.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

from harness.bench.sockstat import port_state
from harness.raw import samples as samples_file
from harness.raw.samples import Sample
from harness.raw.store import write_atomic

# The sampler shares the machine with what it measures: it never spends more than this
# share of wall time sampling, whatever the interval asked for.
MAX_DUTY = 0.10
# Counting established connections walks every TCP socket of the host (see sockstat): it
# is done only as often as keeps its cost under this share of the client's CPU. Measured
# (granian, 100 connections, wrk on one core): a count cost 3.9 ms and the rest of a
# sample 0.7 ms, so at 5 % it ran every sample and the sampler took 1.8 % of the core
# wrk ran on; at 0.5 % it runs about once a second (at least once a cell) and the
# sampler takes under 1 %. The accept queue is cheap and is read every sample.
ESTABLISHED_DUTY = 0.005


class _CpuMeter:
    """CPU % of a set of processes from cpu_times deltas between two calls."""

    def __init__(self) -> None:
        self.last: dict[int, float] = {}
        self.when: float | None = None

    def update(self, procs: list[psutil.Process], now: float) -> float | None:
        totals: dict[int, float] = {}
        for p in procs:
            try:
                t = p.cpu_times()
                totals[p.pid] = t.user + t.system
            except psutil.Error:
                continue  # exited between listing and reading: its last slice is lost
        pct = None
        if totals and self.when is not None and now > self.when:
            # A pid not seen last time was born since: all its CPU time is in this interval.
            used = sum(v - self.last.get(pid, 0.0) for pid, v in totals.items())
            pct = round(max(used, 0.0) / (now - self.when) * 100, 1)
        self.last, self.when = totals, now
        return pct


def child_named(name: str) -> Callable[[], int | None]:
    """A getter for the pid of our child process called `name` (wrk run by runner.run_wrk)."""
    me = psutil.Process()

    def get() -> int | None:
        for pid in child_pids(me.pid):
            try:
                if psutil.Process(pid).name() == name:
                    return pid
            except psutil.Error:
                continue
        return None

    return get


class Sampler:
    """Samples in a daemon thread from __enter__ to __exit__; results in `.samples`."""

    def __init__(
        self,
        server_pid: int,
        wrk_pid: Callable[[], int | None] | None = None,
        port: int | None = None,
        interval_s: float = 0.25,
        cpus: Sequence[int] | None = None,
    ) -> None:
        self.server_pid, self.wrk_pid, self.port = server_pid, wrk_pid, port
        self.interval_s = interval_s
        self.cpus = cpus  # where the sampling thread runs: the client's CPUs, not the server's
        self._tree = _Tree(server_pid)
        self.samples: list[Sample] = []
        self.sampler_cpu_s = 0.0  # the sampler thread's own CPU time: its cost, recorded
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cell-sampler", daemon=True)
        self._server_cpu, self._wrk_cpu = _CpuMeter(), _CpuMeter()
        self._wrk: psutil.Process | None = None
        self._next_established = 0.0  # monotonic time of the next established count
        self._established_cost = 0.0  # seconds the last sample spent counting them

    def __enter__(self) -> Sampler:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        _stand_aside(self.cpus)
        cpu0 = time.thread_time()
        while not self._stop.is_set():
            began = time.monotonic()
            self.samples.append(self.sample_once(began))
            # Left out: the established count has its own budget (ESTABLISHED_DUTY).
            cost = time.monotonic() - began - self._established_cost
            self._stop.wait(max(self.interval_s - cost, cost * (1 / MAX_DUTY - 1)))
        self.sampler_cpu_s = round(time.thread_time() - cpu0, 3)

    def sample_once(self, now: float) -> Sample:
        tree = self._tree.processes()
        rss = sum(_rss(p) for p in tree)
        server_pct = self._server_cpu.update(tree, now)
        wrk_pct = self._wrk_sample(now)
        running = self._wrk is not None
        queue = established = None
        if self.port is not None:
            # Count once wrk has run for a sample already: its connections are open by then,
            # so a rare count never lands on the ramp-up (needs no wrk getter otherwise).
            was_running = bool(self.samples and self.samples[-1].wrk_running)
            settled = self.wrk_pid is None or (running and was_running)
            count = settled and now >= self._next_established
            began = time.monotonic()
            state = port_state(self.port, established=count)
            self._established_cost = time.monotonic() - began if count else 0.0
            if count:
                wait = self._established_cost / ESTABLISHED_DUTY
                self._next_established = now + max(self.interval_s, wait)
            if state.listening:
                queue, established = state.accept_queue, state.established
        return Sample(
            round(now - self._start, 3), tuple(sorted(p.pid for p in tree)),
            server_pct, rss if tree else None, running, wrk_pct, queue, established,
        )  # fmt: skip

    def _wrk_sample(self, now: float) -> float | None:
        if self._wrk is None or not _alive(self._wrk):
            pid = self.wrk_pid() if self.wrk_pid else None
            try:
                found = psutil.Process(pid) if pid else None
            except psutil.Error:
                found = None
            self._wrk = found if found is not None and _alive(found) else None
            self._wrk_cpu = _CpuMeter()
        if self._wrk is None:
            return None
        return self._wrk_cpu.update([self._wrk], now)


def _rss(p: psutil.Process) -> int:
    try:
        return int(p.memory_info().rss)
    except psutil.Error:
        return 0  # exited since the tree was listed


def _alive(p: psutil.Process) -> bool:
    # An exited wrk stays a zombie until run_wrk reaps it; it uses no CPU any more.
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _stand_aside(cpus: Sequence[int] | None) -> None:
    """Make the calling (sampling) thread a light neighbour: a low CPU priority (nice 10:
    a tenth of a busy wrk's share, still enough to sample through a saturated CPU, which
    the stall detection needs), on the client's CPUs (wrk's) rather than the server's.
    What it costs is recorded anyway (`sampler_cpu_s`)."""
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, 10)  # per thread on Linux
        if cpus:
            os.sched_setaffinity(0, cpus)  # pid 0: the calling thread only
    except OSError:
        pass  # not allowed here: it samples all the same


def child_pids(pid: int) -> list[int]:
    """The children of `pid`, from the kernel's own lists (/proc/<pid>/task/<tid>/children).

    psutil's `children()` reads /proc/<n>/stat of every process on the machine to find
    them: ~5 ms per sample, most of the sampler's cost, taken from the CPUs under test."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue  # the thread or process is gone: its children went with it
    return out


def descendants(pid: int) -> list[int]:
    """Every process under `pid` (children, theirs, …), through the kernel's lists."""
    found, todo = [], [pid]
    while todo:
        kids = child_pids(todo.pop())
        found += kids
        todo += kids
    return found


class _Tree:
    """The process tree under one pid, walked through the kernel's children lists, with
    each process's psutil handle kept between samples (its CPU times are read anew)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.known: dict[int, psutil.Process] = {}

    def processes(self) -> list[psutil.Process]:
        found = []
        for pid in [self.pid, *descendants(self.pid)]:
            proc = self.known.get(pid)
            try:
                if proc is None or not proc.is_running():
                    proc = psutil.Process(pid)
                found.append(proc)
            except psutil.Error:
                continue  # exited between listing and reading
        self.known = {p.pid: p for p in found}
        return found


def encode_samples(sampler: Sampler) -> bytes:
    """What `sampler` took, as a `c<N>-r<k>.samples.json` file (harness/raw/samples.py)."""
    return samples_file.encode_samples(
        sampler.samples, interval_s=sampler.interval_s, port=sampler.port,
        server_pid=sampler.server_pid, sampler_cpu_s=sampler.sampler_cpu_s,
    )  # fmt: skip


def write_samples(path: Path, sampler: Sampler) -> None:
    """Store what `sampler` took as `c<N>-r<k>.samples.json`, atomically."""
    write_atomic(path, encode_samples(sampler))
