"""Bench stage: the order a run measures its cells in, and the adaptive rounds.

Repeats are interleaved across the matrix (Kalibera & Jones, "Rigorous benchmarking in
reasonable time": measure where the variance is): every cell once, then every cell
again, each time with a fresh server, so slow drift of a shared machine falls on every
server alike. With `--precision`, once the minimum of repeats is measured, each round
adds one repeat to every cell whose interval is still wider than the target
(harness/matrix/precision.py), in the matrix's order again, until none needs one, a
cell reaches `--max-repeats`, or the next round would pass `--max-time`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.matrix.model import Cell, Matrix
from harness.matrix.precision import needs_more

Group = tuple[str, str, str, int]  # a cell without its repeat


def group_of(cell: Cell) -> Group:
    """The closed-loop cell without its repeat (an open-loop cell: the one it derives from)."""
    return cell.server, cell.app, cell.workload, cell.connections


def groups(matrix: Matrix) -> list[Group]:
    """Every cell of the matrix once, in the matrix's order."""
    return [
        (server, app, workload, conns)
        for server in matrix.servers
        for app in matrix.apps
        for workload in matrix.workloads
        for conns in matrix.connections
    ]


def next_round(
    matrix: Matrix,
    planned: Sequence[Cell],
    values: Mapping[Group, Sequence[float]],
    round_no: int,
) -> list[Cell]:
    """The cells of the next adaptive round (empty: the run is done).

    `planned`: every cell planned so far; `values`: the req/s of each group's ok repeats.
    """
    if matrix.precision is None or matrix.max_repeats is None:
        return []
    done: dict[Group, int] = {}
    for cell in planned:
        done[group_of(cell)] = max(done.get(group_of(cell), 0), cell.repeat)
    out = []
    for g in groups(matrix):
        n = done.get(g, 0)
        if needs_more(values.get(g, ()), matrix.precision, n, matrix.repeats, matrix.max_repeats):
            out.append(Cell(*g, n + 1))
    if matrix.shuffle:
        random.Random(f"{matrix.seed}-{round_no}").shuffle(out)
    return out


def adaptive_extra(matrix: Matrix, planned: Sequence[str]) -> list[Cell] | None:
    """The cells of a recorded plan beyond the matrix's own (added by adaptive rounds),
    or None if the plan is not this matrix's: a base cell is missing, or a cell is not
    one of the matrix's with a repeat it may have."""
    base = {c.key for c in matrix.cells}  # open-loop cells included: never adaptive
    by_group = set(groups(matrix))
    cap = matrix.max_repeats or matrix.repeats
    keys = set(planned)
    if not base <= keys:
        return None
    extra = []
    for key in planned:
        if key in base:
            continue
        cell = parse_key(key)
        if (
            cell is None
            or cell.rate is not None
            or group_of(cell) not in by_group
            or not matrix.repeats < cell.repeat <= cap
        ):
            return None
        extra.append(cell)
    return extra


def parse_key(key: str) -> Cell | None:
    """`server/app/workload/c<N>-r<k>` (or `c<N>-at<rate>-r<k>`) -> Cell, or None."""
    return Cell.from_key(key)


# Seconds a cell takes beyond its configured warm-up and measurement: the server's start
# (0.05-0.3 s), wrk's own stop timer for each of its two runs (0.1 s each), the preflight,
# the files; measured on the quick profile (harness/perf/ reports it per cell).
CELL_SPARE_S = 0.35
CALIBRATION_SPARE_S = 0.5  # nginx's start and stop


@dataclass(frozen=True)
class Estimate:
    """What a matrix will take, before it runs: cells and wall time, without and with
    every adaptive repeat it may add."""

    cells: int
    cells_max: int
    seconds: float
    seconds_max: float


def estimate(matrix: Matrix, calibration_s: float = 0.0) -> Estimate:
    """The cells a run of `matrix` measures and how long it takes (fixed repeats; with
    --precision, also when every cell needs its --max-repeats or --max-time ends it)."""
    per_cell = matrix.warmup_s + matrix.duration_s + CELL_SPARE_S
    fixed = len(matrix.cells)
    opened = sum(c.rate is not None for c in matrix.cells)
    most = len(groups(matrix)) * (matrix.max_repeats or matrix.repeats) + opened
    calibrations = 2 * (calibration_s + CALIBRATION_SPARE_S) if calibration_s else 0.0
    seconds = fixed * per_cell + calibrations
    seconds_max = most * per_cell + calibrations
    if matrix.max_time_s is not None:
        seconds_max = min(seconds_max, max(seconds, matrix.max_time_s + per_cell))
    return Estimate(fixed, most, seconds, seconds_max)
