"""harness.bench.sampler and harness.bench.sockstat: what the kernel and psutil say during a cell.

Fast tests use real sockets and real processes (a listener nobody accept()s from, busy
loops standing in for a server tree and for wrk); the slow one samples a real waitress
under wrk and stores the samples beside a cell.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.bench import sockstat
from harness.bench.sampler import Sampler, child_named, write_samples
from harness.raw.samples import Sample, read_samples, summarize
from harness.tables.flags import row_flags
from tests import trustkit as kit

BUSY = "while True: pass"
# A parent whose child exits and is replaced again and again, like a worker restarting.
RESPAWN = (
    "import subprocess, sys\n"
    "while True: subprocess.run([sys.executable, '-c', 'import time; time.sleep(0.2)'])"
)


@contextmanager
def process(code: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def wait_for(sampler: Sampler, done: Callable[[list[Sample]], bool], limit_s: float = 10) -> None:
    """Poll the sampler's results until `done` holds (bounded)."""
    deadline = time.monotonic() + limit_s
    while not done(list(sampler.samples)):
        assert time.monotonic() < deadline, f"condition not met in {limit_s} s"
        time.sleep(0.05)


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_netlink_and_proc_agree_on_queue_and_established(family: int, host: str) -> None:
    with socket.socket(family) as listener:
        listener.bind((host, 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        clients = [socket.create_connection((host, port)) for _ in range(3)]
        accepted, _ = listener.accept()  # one served, two waiting in the accept queue
        want = sockstat.PortState(listening=True, accept_queue=2, established=3)
        assert sockstat.from_netlink(port) == want
        assert sockstat.from_proc(port) == want
        assert sockstat.port_state(port) == want
        # The accept queue alone (cheap: listening sockets only), established not counted.
        assert sockstat.from_netlink(port, established=False) == sockstat.PortState(True, 2, None)
        assert sockstat.from_proc(port, established=False) == sockstat.PortState(True, 2, None)
        for s in [accepted, *clients]:
            s.close()


def test_port_with_no_listener() -> None:
    port = kit.runner.free_port()
    assert sockstat.port_state(port) == sockstat.PortState(False, 0, 0)


def both_busy(samples: list[Sample]) -> list[Sample]:
    """Samples taken after the child started and a previous sample gave a CPU baseline."""
    return [s for i, s in enumerate(samples) if i > 0 and len(samples[i - 1].server_pids) == 2]


def test_tree_cpu_rss_and_wrk_cpu_are_sampled() -> None:
    tree = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BUSY!r}])"
    with process(tree) as server, process(BUSY) as client:
        start = time.monotonic()
        with Sampler(server.pid, lambda: client.pid, None, interval_s=0.1) as sampler:
            wait_for(sampler, lambda s: len(both_busy(s)) >= 4)
        elapsed = time.monotonic() - start
    # Once the child runs, the tree is busy: the child's CPU counts, not only the parent's
    # (which sleeps in wait()). Loose bounds: the test machine may be shared.
    summary = summarize(both_busy(sampler.samples))
    assert 10 < summary["server_cpu_pct_mean"] <= 110
    assert 10 < summary["wrk_cpu_pct_mean"] <= 110
    assert summary["server_rss_mb_max"] > 1
    assert summary["server_pids_changed"] is False
    assert len(sampler.samples[-1].server_pids) == 2
    assert summary["accept_queue_max"] is None and summary["established_median"] is None
    assert 0 < sampler.sampler_cpu_s < 0.5 * elapsed  # the sampler's own cost is recorded


def test_replaced_worker_changes_pids() -> None:
    with process(RESPAWN) as server:
        with Sampler(server.pid, None, None, interval_s=0.05) as sampler:
            wait_for(sampler, lambda s: len({x.server_pids for x in s if x.server_pids}) >= 3)
    summary = summarize(sampler.samples)
    assert summary["server_pids_changed"] is True
    assert "server_crashed" in row_flags({"status": "ok", **summary})


def test_summarize_uses_socket_state_only_while_wrk_runs() -> None:
    def sample(t: float, running: bool, queue: int | None, est: int | None) -> Sample:
        cpu = 50.0 if running else None
        return Sample(t, (1, 2), 80.0, 2**20 * 30, running, cpu, queue, est)

    samples = [sample(0, False, 0, 0), sample(0.25, True, 3, 100), sample(0.5, True, 1, 98),
               sample(0.75, True, 2, 100), sample(1.0, False, 0, 0)]  # fmt: skip
    assert summarize(samples) == {
        "samples_n": 5, "server_cpu_pct_mean": 80.0, "server_cpu_pct_max": 80.0,
        "server_rss_mb_max": 30.0, "wrk_cpu_pct_mean": 50.0, "wrk_cpu_pct_max": 50.0,
        "accept_queue_max": 3, "accept_queue_median": 2, "established_min": 98,
        "established_median": 100, "server_pids_changed": False, "stall_s": None,
        "stall_at_s": None,
    }  # fmt: skip
    assert set(summarize([]).values()) == {0, None}


def test_samples_file_round_trip_and_format_check(tmp_path: Path) -> None:
    with process(BUSY) as server:
        with Sampler(server.pid, None, None, interval_s=0.05) as sampler:
            wait_for(sampler, lambda s: len(s) >= 2)
    path = tmp_path / "c10-r1.samples.json"
    write_samples(path, sampler)
    assert read_samples(path) == sampler.samples
    path.write_text('{"format_version": 99, "kind": "samples", "samples": []}')
    with pytest.raises(ValueError, match=r"c10-r1\.samples\.json: not a samples file of format 1"):
        read_samples(path)


@pytest.mark.slow
def test_real_server_under_wrk(tmp_path: Path) -> None:
    with kit.serving(lambda p: kit.waitress(p, 4), tmp_path) as (server, port):
        with Sampler(server.pgid, child_named("wrk"), port, 0.1) as sampler:
            run = kit.wrk(port, c=20, d=2)
    write_samples(tmp_path / "c20-r1.samples.json", sampler)
    summary = summarize(read_samples(tmp_path / "c20-r1.samples.json"))
    assert summary["wrk_cpu_pct_mean"] > 0 and summary["server_cpu_pct_mean"] > 0
    assert summary["established_median"] >= 18  # all 20 connections reached the server
    assert row_flags(kit.row(run, **summary)) == {}  # a sound cell: no flag
