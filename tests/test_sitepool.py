"""The build's worker processes (harness/site/pool.py): jobs, errors, dead workers, no hang."""

from __future__ import annotations

import os
import time

import pytest

from harness.site.pool import BrokenWorkers, Workers


def test_jobs_run_in_workers_forked_from_one_zygote() -> None:
    with Workers(2, warm_up=False) as workers:
        jobs = [workers.submit(os.getppid) for _ in range(8)]
        parents = {job.result() for job in jobs}
        pids = {job.result() for job in [workers.submit(os.getpid) for _ in range(8)]}
    assert len(parents) == 1 and os.getpid() not in parents  # all children of the zygote
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_a_job_raises_its_own_exception_and_the_others_go_on() -> None:
    with Workers(2, warm_up=False) as workers:
        bad = workers.submit(int, "x")
        good = workers.submit(int, "7")
        for _ in range(2):  # as often as asked, like a future
            with pytest.raises(ValueError, match="invalid literal"):
                bad.result()
            assert good.result() == 7


def test_a_dead_worker_fails_the_jobs_waited_for_instead_of_hanging() -> None:
    start = time.monotonic()
    with Workers(1, warm_up=False) as workers:
        dead = workers.submit(os._exit, 3)
        with pytest.raises(BrokenWorkers, match="code 3"):
            dead.result()
        with pytest.raises(BrokenWorkers):
            workers.submit(int, "1").result()
    assert time.monotonic() - start < 10


def test_leaving_on_an_error_drops_the_jobs_not_started() -> None:
    start = time.monotonic()
    with pytest.raises(KeyError), Workers(1, warm_up=False) as workers:
        for _ in range(20):
            workers.submit(time.sleep, 0.5)
        raise KeyError("stop")
    assert time.monotonic() - start < 5  # not 20 × 0.5 s


def test_workers_not_used_start_nothing() -> None:
    with Workers(2) as workers:
        pass
    assert workers._zygote is None


def test_a_process_running_threads_spawns_the_zygote_instead_of_forking() -> None:
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        with Workers(2, warm_up=False) as workers:
            assert workers.submit(int, "5").result() == 5
            assert workers._zygote is not None and workers._zygote._start_method == "spawn"
    finally:
        stop.set()
        thread.join()


def test_an_urgent_job_goes_before_the_jobs_waiting() -> None:
    with Workers(1, warm_up=False) as workers:
        workers.submit(time.sleep, 0.3)
        waiting = [workers.submit(time.monotonic) for _ in range(5)]
        urgent = workers.submit(time.monotonic, urgent=True)
        assert urgent.result() < min(job.result() for job in waiting)
