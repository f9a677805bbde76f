"""Site stage 3: the build's worker processes: they draw the charts, zip the raw files
and render the pages while the build's own process plans and runs mkdocs.

A cold build draws every chart (matplotlib, ~0.25 s each), zips every run's raw files
and renders its pages; done one after the other in one process, that was half of its
time. `Workers` starts worker processes that take jobs as the build gives them:
charts are drawn as they are planned, and the build waits only for what is left when
mkdocs needs it (harness/site/build.py). An `urgent` job (the pages, which mkdocs reads
first) goes before the jobs still waiting.

Importing matplotlib costs a worker about a second of CPU, as much as four charts. So
one process (the "zygote") imports it and warms it up (`warm`), then forks the workers
from itself: they share that import instead of each paying for it, and the zygote
waits for them, so their CPU time counts towards the build's own (wait4). The build
process starts the zygote with fork (cheap, and works from any caller: spawn re-imports
__main__, which fails for `python -` or `-c`), or with spawn if it already runs
threads (forking those can deadlock); the zygote itself runs no thread and forks.

Jobs go through queues and come back as `Job`s, whose `result()` waits like a
future's. A worker that dies, or a zygote that does, fails every job still waited
for (`BrokenWorkers`) instead of leaving the build waiting for ever; workers whose
build process is gone stop by themselves.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import threading
from collections.abc import Callable
from multiprocessing import get_context
from multiprocessing.connection import wait
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
_POLL_S = 0.5  # how often a waiting process checks that the other side is still alive
_IDLE_S = 0.05  # how often an idle worker looks for urgent jobs


class BrokenWorkers(RuntimeError):
    """A worker process ended before doing its jobs."""


def warm(draw: bool = True, tables: bool = False) -> None:
    """Import and start what the jobs need (in the zygote, once for every worker):
    the page templates' machinery, with `tables` pandas and the table code (half a
    second of CPU), and with `draw` matplotlib's (a second)."""
    import harness.pages.render  # noqa: F401  (jinja2)

    if tables:
        import harness.tables.dataset  # noqa: F401  (pandas)

    if not draw:
        return
    import io

    import matplotlib

    matplotlib.use("svg")
    from matplotlib.figure import Figure

    import harness.figures.draw  # noqa: F401

    # One small drawing loads the font list and the text machinery before the first
    # chart does; the drawing settings are each chart's own (harness/figures/draw.py).
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig = Figure(figsize=(1, 1))
        fig.text(0.5, 0.5, "0")
        fig.savefig(io.BytesIO(), format="svg")


def _next(tasks: Any, urgent: Any, parent: int) -> Any:
    """The next job, urgent ones first; None to stop (also once the zygote is gone)."""
    while True:
        try:
            return urgent.get_nowait()
        except queue.Empty:
            pass
        try:
            # Short: an urgent job given while this worker idles waits at most this long.
            return tasks.get(timeout=_IDLE_S)
        except queue.Empty:
            if os.getppid() != parent:
                return None


def _serve(tasks: Any, urgent: Any, results: Any, parent: int) -> None:
    """A worker: run jobs until told to stop, or until the zygote is gone."""
    while True:
        item = _next(tasks, urgent, parent)
        if item is None:
            return
        job, fn, args = item
        try:
            out = (job, True, fn(*args))
        except BaseException as e:  # the build's process raises it again
            out = (job, False, e)
        try:
            data = pickle.dumps(out)
        except Exception as e:  # an answer that cannot travel: say what it was
            data = pickle.dumps((job, False, RuntimeError(f"{type(e).__name__}: {e}")))
        results.put_bytes(data)


def _zygote(
    tasks: Any,
    urgent: Any,
    results: Any,
    processes: int,
    parent: int,
    warm_up: bool,
    tables: bool = False,
) -> None:
    """Warm up once, fork the workers, and wait for them (reporting any that dies)."""
    # Ctrl-C is the build's to handle: it stops the workers (Workers.close) itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        warm(warm_up, tables)
    except Exception:  # a job that needs what failed says why itself
        pass
    ctx = get_context("fork")
    me = os.getpid()
    workers = [
        ctx.Process(target=_serve, args=(tasks, urgent, results, me)) for _ in range(processes)
    ]
    for w in workers:
        w.start()
    alive: dict[Any, Any] = {w.sentinel: w for w in workers}
    while alive:
        for sentinel in wait(list(alive), timeout=_POLL_S):
            w = alive.pop(sentinel)
            w.join()
            if w.exitcode != 0:
                why = BrokenWorkers(f"a worker process exited with code {w.exitcode}")
                results.put_bytes(pickle.dumps((None, False, why)))
        if os.getppid() != parent:  # the build is gone: so are the jobs
            for w in alive.values():
                w.terminate()
            parent = os.getppid()


class _Results:
    """The workers' answers, read by the build's process alone. Each is pickled by the
    worker itself, so a failure to pickle is reported there (a queue's feeder thread
    would only print it, and the build would wait for ever)."""

    def __init__(self, ctx: Any) -> None:
        self.reader, self._writer = ctx.Pipe(duplex=False)
        self._lock = ctx.Lock()

    def put_bytes(self, data: bytes) -> None:
        with self._lock:
            self._writer.send_bytes(data)

    def poll(self, timeout: float) -> bool:
        return bool(self.reader.poll(timeout))

    def get(self) -> Any:
        return pickle.loads(self.reader.recv_bytes())


class Job(Generic[T]):
    """One job given to the workers; `result()` waits for it, like a future's."""

    def __init__(self, workers: Workers, number: int) -> None:
        self._workers = workers
        self._number = number
        self._outcome: tuple[bool, Any] | None = None

    def result(self) -> T:
        if self._outcome is None:
            try:
                self._outcome = (True, self._workers._wait(self._number))
            except Exception as e:
                self._outcome = (False, e)
        ok, value = self._outcome
        if not ok:
            raise value
        return cast(T, value)


class Workers:
    """`processes` worker processes, started by `start` or by the first job."""

    def __init__(self, processes: int = 2, warm_up: bool = True) -> None:
        self.processes = processes
        # Whether the zygote imports matplotlib for the workers: worth it when they
        # will draw charts, not when they only render pages or write zips.
        self.warm_up = warm_up
        self._zygote: Any = None
        self._jobs = 0
        self._done: dict[int, tuple[bool, Any]] = {}
        self._broken: BaseException | None = None

    def start(self, warm_up: bool | None = None, tables: bool = False) -> None:
        """Start the workers now: they warm up while the build does something else.
        `warm_up` overrides the one given when made (no effect once started); with
        `tables`, they import the table code too (they are to build tables)."""
        if self._zygote is not None:
            return
        if warm_up is not None:
            self.warm_up = warm_up
        method = "fork" if threading.active_count() == 1 else "spawn"
        ctx: Any = get_context(method)
        self._tasks = ctx.Queue()
        self._urgent = ctx.Queue()
        self._results = _Results(ctx)
        zygote = ctx.Process(
            target=_zygote,
            args=(
                self._tasks,
                self._urgent,
                self._results,
                self.processes,
                os.getpid(),
                self.warm_up,
                tables,
            ),
        )
        zygote.start()
        self._zygote = zygote

    def submit(self, fn: Callable[..., T], *args: Any, urgent: bool = False) -> Job[T]:
        """Run `fn(*args)` in a worker (`fn` and `args` must pickle); an `urgent` job
        goes before every job that is not and has not started yet."""
        self.start()
        if self._broken is not None:
            raise BrokenWorkers(str(self._broken)) from self._broken
        self._jobs += 1
        (self._urgent if urgent else self._tasks).put((self._jobs, fn, args))
        return Job(self, self._jobs)

    def _wait(self, number: int) -> Any:
        while number not in self._done:
            if self._broken is not None:
                raise BrokenWorkers(str(self._broken)) from self._broken
            if not self._read():
                if not self._zygote.is_alive() and not self._results.poll(0):
                    self._broken = BrokenWorkers(
                        f"the worker processes ended (exit code {self._zygote.exitcode})"
                    )
        ok, value = self._done.pop(number)
        if not ok:
            raise value
        return value

    def _read(self) -> bool:
        """Take one answer if one comes within _POLL_S; False if none did (at once when
        the zygote ends)."""
        wait([self._results.reader, self._zygote.sentinel], _POLL_S)
        if not self._results.poll(0):
            return False
        job, ok, value = self._results.get()
        if job is None:
            self._broken = value
        else:
            self._done[job] = (ok, value)
        return True

    def close(self, cancel: bool = False) -> None:
        """Let the workers finish the jobs given (`cancel`: drop those not started), then
        stop them."""
        if self._zygote is None:
            return
        if cancel:
            for jobs in (self._urgent, self._tasks):
                try:
                    while True:
                        jobs.get(timeout=0.05)
                except queue.Empty:
                    pass
        for _ in range(self.processes):
            self._tasks.put(None)
        for jobs in (self._urgent, self._tasks):
            jobs.close()
            jobs.join_thread()
        while self._zygote.is_alive():
            self._read()  # a worker blocked on a full answer pipe must not hang this
        while self._results.poll(0):
            self._read()
        self._zygote.join()
        self._zygote = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(cancel=exc[0] is not None)
