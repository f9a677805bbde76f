"""Command-line stage: a cell just measured -> the flags its line shows during a bench.

In: the run's folder and the cell. Out: the validity flags the table stage gives that
repeat (harness/tables/flags.py), computed from the repeats of that one cell measured so
far — so a cell flagged `noisy` on the site is not printed as a plain `ok` in the
terminal. Read-only, and never fatal: a bench does not stop because a flag could not be
computed (the summary at the end and the site say why).
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from harness.matrix.model import Cell
from harness.matrix.precision import t_quantile
from harness.tables.dataset import load_runs
from harness.tables.flags import details_of


def prepare() -> None:
    """Import now what the first cell's flags need (scipy's Student's t), so
    that it is not paid inside the run, between two cells."""
    t_quantile(3)


def flags_now(run_dir: Path, cell: Cell) -> tuple[str, ...]:
    """The flags of `cell`'s repeat, given its cell's repeats so far; a failed preflight
    check it was measured with names the check (the table's `preflight` flag detail)."""
    group = f"{cell.server}/{cell.app}/{cell.workload}/c{cell.connections}"
    try:
        table = load_runs(run_dir, cells={group})
    except (ValueError, OSError):
        return ()  # a file the table cannot read: the summary and the site name it
    except Exception as e:  # noqa: BLE001 - a display must not end a run of hours
        return (f"flags not computed: {type(e).__name__}",)
    rows = table[table["repeat"] == cell.repeat]
    if not len(rows):
        return ()
    row = rows.iloc[0]
    flags = [f for f in str(row["flags"]).split(";") if f] if isinstance(row["flags"], str) else []
    details = details_of(row["flag_details"]) if isinstance(row["flag_details"], str) else {}
    return tuple(f"{f}: {details[f]}" if f == "preflight" and f in details else f for f in flags)


def flags_suffix(run_dir: Path, cell: Cell) -> str:
    """`  [noisy, littles_law]` (rich markup, escaped), or nothing."""
    flags = flags_now(run_dir, cell)
    return escape(f"  [{', '.join(flags)}]") if flags else ""
