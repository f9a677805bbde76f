"""Bench entry point: one run of the matrix with a progress display.

`run_bench` opens (or resumes) a run, measures every unfinished cell in the planned
order and marks the run complete; on Ctrl-C or SIGTERM it stops the current server,
marks the run interrupted and re-raises, so the caller exits non-zero.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from harness.bench import runsetup
from harness.bench.cell import measure_cell
from harness.bench.host import CellHost
from harness.bench.localhost import LocalCellHost
from harness.matrix.customservers import AnyServer
from harness.matrix.hosts import check_same_hosts
from harness.matrix.model import Matrix
from harness.raw.store import RunStore, utc_now

if TYPE_CHECKING:  # paramiko and fabric load only when a run has remote hosts
    from harness.bench.remote.session import RemoteSession


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C so servers are stopped and the run marked interrupted."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_bench(
    matrix: Matrix,
    out: Path,
    servers: dict[str, AnyServer],
    resume: str | bool = False,
    fresh: bool = False,
    console: Console | None = None,
    remote: RemoteSession | None = None,
) -> str:
    """`remote`: the prepared hosts when server or clients are not this machine."""
    console = console or Console(stderr=True)
    if remote is None:
        wrk = runsetup.preflight_environment(out, matrix)
    else:
        wrk = remote.preflight(out)
    runsetup.ensure_env_path()
    store, matrix = runsetup.open_run(out, matrix, resume, fresh)
    if remote is None:
        unavailable = runsetup.unavailable_reasons(matrix, servers)
    else:
        unavailable = remote.unavailable
    if store.run_json.exists():
        reaped = runsetup.reap_leftovers(store)
        if reaped:
            console.print(
                f"[yellow]stopped {len(reaped)} server process(es) left by the killed run"
            )
        runsetup.cleanup_partial(store)
        meta = store.read_run()
        check_same_hosts(meta.run_id, meta.hosts, remote.plan if remote else None)
        store.write_run(replace(meta, status="running", resumed_at=utc_now()))
        console.print(f"resuming run [bold]{store.run_id}[/] in {out}")
    else:
        meta = runsetup.run_metadata(matrix, store.run_id, unavailable, servers)
        if remote is not None:
            # hosts, and the server's host and versions
            meta = replace(meta, **remote.run_metadata(matrix))
        store.write_run(meta)
        console.print(f"new run [bold]{store.run_id}[/] in {out}")
    if remote is None:
        host: CellHost = LocalCellHost(store, matrix, servers, wrk)
    else:
        from harness.bench.remote.cell import RemoteCellHost  # paramiko: remote runs only

        host = RemoteCellHost(remote, store, matrix, servers)
    for what, why in unavailable.items():
        console.print(f"[red]unavailable:[/] {what}: {why} (its cells are recorded as failed)")

    todo = [c for c in matrix.cells if not store.is_finished(c)]
    done_before = len(matrix.cells) - len(todo)
    failed = measured = lost = 0
    status = "interrupted"
    start = time.monotonic()
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    try:
        with (
            sigterm_as_interrupt(),
            Progress(*columns, console=console, transient=False) as progress,
        ):
            task = progress.add_task("cells", total=len(matrix.cells), completed=done_before)
            for cell in todo:
                progress.update(task, description=cell.key)
                outcome = measure_cell(host, store, matrix, cell, unavailable)
                measured += 1
                if outcome.infrastructure:
                    lost += 1
                    progress.console.print(f"[red]lost[/]   {cell.key}: {outcome.reason}")
                elif outcome.status != "ok":
                    failed += 1
                    progress.console.print(f"[red]failed[/] {cell.key}: {outcome.reason}")
                else:
                    progress.console.print(f"ok     {cell.key}: {outcome.requests_per_sec} req/s")
                progress.advance(task)
        status = end_status(store, matrix)
    finally:
        store.write_run(replace(store.read_run(), status=status, ended_at=utc_now()))
        console.print(end_line(store, status, measured, failed, lost, runsetup.elapsed(start)))
    return store.run_id


def end_status(store: RunStore, matrix: Matrix) -> str:
    """`complete`, or `incomplete` while cells lost to a host or link (not results) are
    left for --resume to measure again."""
    return "complete" if all(store.is_finished(c) for c in matrix.cells) else "incomplete"


def end_line(store: RunStore, status: str, measured: int, failed: int, lost: int, took: str) -> str:
    """The run's last line: the cells this invocation measured, not those planned."""
    line = f"run {store.run_id}: {status}, {measured} cell(s) measured in {took}, {failed} failed"
    if lost:
        line += f", {lost} lost to a host or link (not results: --resume measures them again)"
    return f"{line}; raw output in {store.root}"
