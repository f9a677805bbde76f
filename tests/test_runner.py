"""harness.bench.runner stops what it starts: the whole group, orphans reaped, exit codes kept."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.bench import runner
from harness.matrix.apps import APPS
from harness.paths import APPS_DIR
from tests.latency_live import NOFILE, ROOT


def start_gunicorn(tmp: Path, workers: int) -> runner.ServerProcess:
    port = runner.free_port()
    argv = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", str(workers)]
    env = {"PYTHONPATH": f"{APPS_DIR}:{ROOT}"}
    server = runner.start_server(
        [*argv, APPS["raw"].target], env, ROOT, tmp / "server.log", signal.SIGTERM, None, NOFILE
    )
    runner.wait_ready(server, f"http://127.0.0.1:{port}/", timeout_s=20)
    return server


def group_members(pgid: int) -> list[int]:
    return [p.pid for p in psutil.process_iter() if _pgid(p.pid) == pgid]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@pytest.mark.slow
def test_end_server_kills_the_group_and_reaps_its_orphans(tmp_path: Path) -> None:
    server = start_gunicorn(tmp_path, workers=2)
    deadline = time.monotonic() + 20
    while len(workers := psutil.Process(server.proc.pid).children()) < 2:
        assert time.monotonic() < deadline, "gunicorn never forked its second worker"
        time.sleep(0.01)
    start = time.monotonic()
    code = runner.end_server(server)
    elapsed = time.monotonic() - start
    assert code == -signal.SIGKILL
    assert not runner.group_alive(server.pgid)
    # Not even zombies: the workers, orphaned when their master died, were reaped by us
    # (PR_SET_CHILD_SUBREAPER), not left for init to reap when it gets round to it.
    assert not [w.pid for w in workers if psutil.pid_exists(w.pid)]
    assert not group_members(server.pgid)
    # A bound, not a benchmark: without the subreaper this waited for this VM's init to
    # reap the orphans (1.7-2.0 s seen here); with it, about 10 ms.
    assert elapsed < 1.0, f"took {elapsed:.2f} s"
    flag = ctypes.c_int(0)
    assert runner._libc.prctl(37, ctypes.byref(flag), 0, 0, 0) == 0  # PR_GET_CHILD_SUBREAPER
    assert flag.value == 1


@pytest.mark.slow
def test_stop_server_keeps_the_graceful_exit_code(tmp_path: Path) -> None:
    server = start_gunicorn(tmp_path, workers=2)
    code = runner.stop_server(server)
    assert code == 0  # gunicorn exits 0 on SIGTERM after stopping its workers
    assert not runner.group_alive(server.pgid)


@pytest.mark.slow
def test_kill_group_keeps_the_leaders_code_when_it_ignores_its_stop_signal(
    tmp_path: Path,
) -> None:
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    script += "print('up', flush=True); time.sleep(60)"
    server = runner.start_server(
        [sys.executable, "-c", script], {}, ROOT, tmp_path / "log", signal.SIGTERM, None, NOFILE
    )
    deadline = time.monotonic() + 20
    while b"up" not in (tmp_path / "log").read_bytes():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.01)
    assert runner.stop_server(server, grace_s=0.2) == -signal.SIGKILL
    assert not runner.group_alive(server.pgid)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin apart")
def test_the_harness_stays_off_the_servers_cpus_while_it_measures() -> None:
    """Its threads (and those they start: the sampler, the progress display) run on the
    client's CPUs during a pinned local run; the affinity is restored after; an unpinned
    run is left alone."""
    import threading
    from types import SimpleNamespace
    from typing import cast

    from harness.bench.localhost import off_server_cpus
    from harness.matrix.model import Matrix

    cpus = sorted(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    pinned = cast(Matrix, SimpleNamespace(client_cpus=(cpus[1],), server_cpus=(cpus[0],)))
    seen: list[set[int]] = []
    with off_server_cpus(pinned):
        seen.append(os.sched_getaffinity(0))
        thread = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))
        thread.start()
        thread.join()
    assert seen == [{cpus[1]}, {cpus[1]}]
    assert os.sched_getaffinity(0) == before
    unpinned = cast(Matrix, SimpleNamespace(client_cpus=None, server_cpus=None))
    with off_server_cpus(unpinned):
        assert os.sched_getaffinity(0) == before
