"""Raw stage: what runs a raw/ directory holds -> one `RunListing` per run.

`list_runs(raw)` reads each run's run.json (through harness/raw/records.py) and counts
its finished cells (a sidecar that records neither an interruption nor a lost host:
`RunStore.is_finished`); a run.json that cannot be read is listed with the error as its
status rather than hidden. `find_run(raw, id, option)` is the one way a task names a
run: an unknown id is a `RunNotFound` listing the runs that do exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.matrix.model import Cell
from harness.raw.records import RunMeta, read_run
from harness.raw.store import RunStore

SHOWN_IN_ERRORS = 8  # the newest runs an unknown-run error names


class RunNotFound(UserError):
    """A run id that is not a run of the raw directory."""


@dataclass(frozen=True)
class RunListing:
    run_id: str
    profile: str | None
    status: str  # running, complete, incomplete, interrupted, or "unreadable: …"
    cells_done: int
    cells_planned: int
    host: str | None
    started_at: str | None
    imported: bool = False


def run_ids(raw: Path) -> list[str]:
    """The folders of `raw` holding a run.json, oldest first (ids start with the time)."""
    if not raw.is_dir():
        return []
    return sorted(p.name for p in raw.iterdir() if (p / "run.json").is_file())


def find_run(raw: Path, run_id: str, option: str = "--run") -> Path:
    """`raw/<run_id>`, or a RunNotFound naming `option` and the runs there are."""
    if run_id and "/" not in run_id and (raw / run_id / "run.json").is_file():
        return raw / run_id
    known = run_ids(raw)
    if not known:
        raise RunNotFound(
            f"{option}: {raw} holds no runs" + (f" ({run_id!r} asked)" if run_id else "")
        )
    shown = ", ".join(reversed(known[-SHOWN_IN_ERRORS:]))
    more = f" (and {len(known) - SHOWN_IN_ERRORS} older; `invoke runs` lists all)" if len(
        known
    ) > SHOWN_IN_ERRORS else ""  # fmt: skip
    raise RunNotFound(f"{option}: no run {run_id!r} in {raw}; runs there: {shown}{more}")


def list_runs(raw: Path) -> list[RunListing]:
    """Every run in `raw`, oldest first."""
    out = []
    for run_id in run_ids(raw):
        try:
            meta = read_run(raw / run_id / "run.json")
        except ValueError as e:
            out.append(RunListing(run_id, None, f"unreadable: {e}", 0, 0, None, None))
            continue
        out.append(_listing(raw, meta))
    return out


def _listing(raw: Path, meta: RunMeta) -> RunListing:
    store = RunStore(raw, meta.run_id)
    keys = meta.cells_planned or meta.imported_cells
    cells = [c for c in map(Cell.from_key, keys) if c is not None]
    done = sum(store.is_finished(c) for c in cells)
    if meta.imported_cells and meta.cells_planned:
        done += sum(store.is_finished(c) for c in map(Cell.from_key, meta.imported_cells) if c)
    host = meta.host.get("hostname")
    if meta.hosts:  # measured on other machines: name the server's
        host = (meta.hosts.get("plan") or {}).get("server") or host
    imported = meta.imported or meta.imported_from is not None
    planned = len(keys) + (len(meta.imported_cells) if meta.cells_planned else 0)
    return RunListing(
        meta.run_id, meta.profile, meta.status or "unknown", done, planned,
        str(host) if host else None, meta.started_at, imported,
    )  # fmt: skip
