"""Bench entry point: one run of the matrix with a progress display.

`run_bench` opens (or resumes) a run, measures every unfinished cell in the planned
order and marks the run complete; on Ctrl-C or SIGTERM it stops the current server,
marks the run interrupted and re-raises, so the caller exits non-zero.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from harness.bench import calibrations, openfloor, runsetup
from harness.bench.calibrate import HostFor
from harness.bench.cell import CellOutcome, measure_cell
from harness.bench.localhost import LocalCellHost, off_server_cpus
from harness.bench.openloop import OPEN_LOOP_REMOTE
from harness.bench.schedule import (
    CELL_SPARE_S,
    Group,
    estimate,
    group_of,
    groups,
    next_round,
)
from harness.matrix.customservers import AnyServer
from harness.matrix.hosts import check_same_hosts
from harness.matrix.model import Cell, Matrix
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
    name: str | None = None,
    annotate: Callable[[Path, Cell], str] | None = None,
) -> str:
    """`remote`: the prepared hosts when server or clients are not this machine; `name`:
    a new run's id after its time (default: the profile); `annotate(run_dir, cell)`:
    what to add to an ok cell's line (its flags: the caller knows the table stage)."""
    console = console or Console(stderr=True)
    if remote is not None and matrix.rates:
        raise runsetup.BenchError(OPEN_LOOP_REMOTE)
    if remote is None:
        wrk = runsetup.preflight_environment(out, matrix)
    else:
        wrk = remote.preflight(out)
    runsetup.ensure_env_path()
    store, matrix = runsetup.open_run(out, matrix, resume, fresh, name=name)
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
    host_for = _host_factory(remote, wrk)
    host = host_for(store, matrix, servers)
    for what, why in unavailable.items():
        console.print(f"[red]unavailable:[/] {what}: {why} (its cells are recorded as failed)")

    planned = list(matrix.cells)
    # Closed-loop cells first (with their adaptive rounds), then the open-loop ones: a
    # relative rate is a share of the closed-loop throughput measured before it.
    todo = [c for c in planned if c.rate is None and not store.is_finished(c)]
    # Cells that ended (not the one an interruption cut short), and those lost to a host.
    failed = measured = lost = 0
    status = "interrupted"
    start = time.monotonic()
    try:
        # Locally, the harness's own threads stay off the server's CPUs (localhost.py).
        local_cpus = off_server_cpus(matrix) if remote is None else nullcontext()
        with sigterm_as_interrupt(), local_cpus, progress_display(console, matrix) as progress:
            calibrations.measure(store, matrix, "start", host_for, console, remote is not None)
            left = sum(not store.is_finished(c) for c in planned)
            task = progress.add_task("cells", total=len(planned), completed=len(planned) - left)

            def measure_all(cells: list[Cell]) -> None:
                nonlocal measured, lost, failed
                for cell in cells:
                    progress.update(task, description=cell.key)
                    outcome = measure_cell(host, store, matrix, cell, unavailable)
                    measured += 1
                    lost += outcome.infrastructure
                    failed += outcome.status != "ok" and not outcome.infrastructure
                    line = outcome_line(outcome)
                    if annotate is not None and outcome.status == "ok":
                        line += annotate(store.root, cell)
                    progress.console.print(line)
                    progress.advance(task)

            for round_no in range(1, MAX_ROUNDS + 1):
                measure_all(todo)
                todo = next_round(matrix, planned, measured_values(store, planned), round_no)
                if not todo or not within_time(matrix, start, len(todo), console):
                    break
                planned += todo
                store.write_run(
                    replace(store.read_run(), cells_planned=tuple(c.key for c in planned))
                )
                progress.update(task, total=len(planned))
                console.print(
                    f"round {round_no + 1}: {len(todo)} cell(s) not yet within "
                    f"±{matrix.precision:.1%}: one more repeat each"
                )
            opened = [c for c in planned if c.rate is not None and not store.is_finished(c)]
            measure_all(opened)
            if any(c.rate is not None for c in planned):
                openfloor.measure(store, matrix, console, host_for)
            calibrations.measure(store, matrix, "end", host_for, console, remote is not None)
        status = end_status(store, planned)
    finally:
        store.write_run(replace(store.read_run(), status=status, ended_at=utc_now()))
        store.unlock()
        console.print(end_line(store, status, measured, failed, lost, runsetup.elapsed(start)))
    return store.run_id


def _host_factory(remote: RemoteSession | None, wrk: str) -> HostFor:
    """What builds a cell's host for a store and matrix: this machine's, or the remote
    session's (the run's cells, and its client-ceiling cells, run on the same hosts)."""
    if remote is None:
        return lambda store, matrix, servers: LocalCellHost(store, matrix, servers, wrk)
    from harness.bench.remote.cell import RemoteCellHost  # paramiko: remote runs only

    return lambda store, matrix, servers: RemoteCellHost(remote, store, matrix, servers)


# A bound on adaptive rounds besides --max-repeats: the loop always ends.
MAX_ROUNDS = 1000


def measured_values(store: RunStore, planned: list[Cell]) -> dict[Group, list[float]]:
    """The req/s of every ok repeat planned so far, by cell."""
    out: dict[Group, list[float]] = {}
    for cell in planned:
        if cell.rate is not None:
            continue  # open-loop cells offer a rate: their req/s is no cell's precision
        rps = store.requests_per_sec(cell)
        if rps is not None:
            out.setdefault(group_of(cell), []).append(rps)
    return out


def within_time(matrix: Matrix, start: float, cells: int, console: Console) -> bool:
    """Whether a round of `cells` more fits in --max-time (always, without one)."""
    if matrix.max_time_s is None:
        return True
    per_cell = matrix.warmup_s + matrix.duration_s + CELL_SPARE_S
    spent = time.monotonic() - start
    if spent + cells * per_cell <= matrix.max_time_s:
        return True
    console.print(
        f"[yellow]--max-time {matrix.max_time_s:.0f} s: no time for {cells} more cell(s) "
        f"({spent:.0f} s spent); the cells not within ±{matrix.precision:.1%} keep the "
        "flag 'imprecise'"
    )
    return False


def outcome_line(outcome: CellOutcome) -> str:
    if outcome.infrastructure:
        return f"[red]lost[/]   {outcome.cell.key}: {outcome.reason}"
    if outcome.status != "ok":
        return f"[red]failed[/] {outcome.cell.key}: {outcome.reason}"
    return f"ok     {outcome.cell.key}: {outcome.requests_per_sec} req/s"


@contextmanager
def progress_display(console: Console, matrix: Matrix) -> Iterator[Progress]:
    """A progress bar whose ETA is known from the first cell: the cells left times their
    configured seconds (warm-up, measurement) and a little for each server start."""
    per_cell = matrix.warmup_s + matrix.duration_s + CELL_SPARE_S
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        EtaColumn(per_cell),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        yield progress


class EtaColumn(ProgressColumn):
    """Time left from the cells left, not from the speed so far (unknown at the start)."""

    def __init__(self, per_cell_s: float) -> None:
        super().__init__()
        self.per_cell_s = per_cell_s

    def render(self, task: Task) -> Text:
        left = max(0.0, (task.total or 0) - task.completed) * self.per_cell_s
        minutes, seconds = divmod(int(left), 60)
        return Text(f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}", style="progress.remaining")


def dry_run(matrix: Matrix, remote: bool) -> str:
    """What a run of `matrix` would measure and how long it would take; starts nothing."""
    from harness.bench.calibrations import CALIBRATION_S, will_calibrate

    calibration_s = min(CALIBRATION_S, max(1.0, matrix.duration_s))
    calibrating = will_calibrate(matrix, remote)
    est = estimate(matrix, calibration_s if calibrating is None else 0.0)
    shape = (
        f"{len(matrix.servers)} server(s) × {len(matrix.apps)} app(s) × "
        f"{len(matrix.workloads)} workload(s) × {len(matrix.connections)} connection level(s)"
    )
    lines = [
        f"profile {matrix.profile}: {shape} = {len(groups(matrix))} closed-loop cells",
        f"  servers: {', '.join(matrix.servers)}",
        f"  apps: {', '.join(matrix.apps)}; workloads: {', '.join(matrix.workloads)}",
        f"  connections: {', '.join(map(str, matrix.connections))}",
        f"  each: {matrix.warmup_s:g} s warm-up + {matrix.duration_s:g} s measured, "
        f"a fresh server every time (~{CELL_SPARE_S:g} s to start and stop)",
        f"  repeats: {matrix.repeats}, interleaved (every cell once before any twice)",
    ]
    if matrix.rates:
        opened = sum(c.rate is not None for c in matrix.cells)
        lines.append(
            f"  then open loop: {opened} cells at offered rates "
            f"{', '.join(r.label for r in matrix.rates)} (a % is of the cell's closed-loop "
            "req/s in this run), a fresh server each, one wrk thread per connection"
        )
    if matrix.precision is not None:
        cap = f", within {_hms(matrix.max_time_s)}" if matrix.max_time_s is not None else ""
        lines.append(
            f"  then up to {matrix.max_repeats} while a cell's 95 % interval is wider than "
            f"±{matrix.precision:.1%} of its mean{cap}"
        )
    lines.append(
        f"  client ceiling: {calibration_s:g} s of wrk against nginx at the start and the end"
        if calibrating is None
        else f"  client ceiling: not measured ({calibrating})"
    )
    total = f"{est.cells} cells, about {_hms(est.seconds)}"
    if est.cells_max > est.cells:
        total += f"; at most {est.cells_max} cells, {_hms(est.seconds_max)}"
    lines += [f"estimated: {total}", "nothing started (--dry-run)"]
    return "\n".join(lines)


def _hms(seconds: float | None) -> str:
    s = int(round(seconds or 0))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def end_status(store: RunStore, planned: list[Cell]) -> str:
    """`complete`, or `incomplete` while cells lost to a host or link (not results) are
    left for --resume to measure again."""
    return "complete" if all(store.is_finished(c) for c in planned) else "incomplete"


def end_line(store: RunStore, status: str, measured: int, failed: int, lost: int, took: str) -> str:
    """The run's last line: the cells this invocation measured, not those planned."""
    line = f"run {store.run_id}: {status}, {measured} cell(s) measured in {took}, {failed} failed"
    if lost:
        line += f", {lost} lost to a host or link (not results: --resume measures them again)"
    return f"{line}; raw output in {store.root}"
