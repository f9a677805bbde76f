"""Raw stage: the raw store, `raw/<run-id>/…` (format in docs/raw-format.md).

Writes wrk's output verbatim and the typed records of harness/raw/records.py (run.json,
the cell sidecars), always atomically (temp file in the same directory + fsync +
rename), so a file that exists is complete. Reads back what resuming needs: the run
record and which cells are finished.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.matrix.model import Cell
from harness.raw.documents import read_document
from harness.raw.records import CellSidecar, RunMeta, read_cell, read_run


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id(profile: str) -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{profile}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all, with the mode any new file gets (0666 less the
    user's umask, as `open()` would), not mkstemp's 0600: sidecars and exports are read
    by other users and web servers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new `.<name>.<random>.part` beside `path`, opened exclusively (as mkstemp
    does) with mode 0666 so that the kernel applies the umask, without reading it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(tempfile.TMP_MAX):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


def write_json(path: Path, obj: dict[str, Any]) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        obj = json.load(f)
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return obj


_UNLISTED = ("sidecar", "server_log")


class RunStore:
    """The files of one run under `<out>/<run-id>/`."""

    def __init__(self, out: Path, run_id: str) -> None:
        self.out = out
        self.run_id = run_id
        self.root = out / run_id

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    def cell_base(self, cell: Cell) -> Path:
        return (
            self.root
            / cell.server
            / cell.app
            / cell.workload
            / f"c{cell.connections}-r{cell.repeat}"
        )

    def cell_files(self, cell: Cell) -> dict[str, Path]:
        base = self.cell_base(cell)
        return {
            "sidecar": base.with_suffix(".json"),
            "stdout": base.with_suffix(".txt"),
            "lua_json": base.with_suffix(".lua.json"),
            "warmup": base.with_suffix(".warmup.txt"),
            "metrics_before": base.with_suffix(".metrics.before.prom"),
            "metrics_after": base.with_suffix(".metrics.after.prom"),
            "metrics": base.with_suffix(".metrics.prom"),
            "samples": base.with_suffix(".samples.json"),
            "server_log": base.with_suffix(".server.log"),  # not listed in `files`
        }

    def is_finished(self, cell: Cell) -> bool:
        """A cell is finished when its sidecar exists (written last, atomically) and does
        not record an interruption or a lost host or link (`infrastructure`): those are
        not results, and are measured again on resume."""
        path = self.cell_files(cell)["sidecar"]
        if not path.exists():
            return False
        try:
            doc = read_document(path)
        except ValueError:
            return False
        return not (doc.get("interrupted") is True or doc.get("infrastructure") is True)

    def write_run(self, meta: RunMeta) -> None:
        write_json(self.run_json, meta.to_json())

    def read_run(self) -> RunMeta:
        return read_run(self.run_json)

    def write_cell(self, record: CellSidecar) -> Path:
        """Write a cell's sidecar last, listing the cell's files that exist; its path."""
        files = self.cell_files(record.cell)
        names = {k: p.name for k, p in files.items() if k not in _UNLISTED and p.exists()}
        write_json(files["sidecar"], replace(record, files=names).to_json())
        return files["sidecar"]

    def read_cell(self, cell: Cell) -> CellSidecar:
        return read_cell(self.cell_files(cell)["sidecar"])


def find_unfinished(out: Path, profile: str, settings: dict[str, Any]) -> str | None:
    """The newest run in `out` with the same profile and settings that did not complete."""
    if not out.is_dir():
        return None
    for run_dir in sorted(out.iterdir(), reverse=True):
        path = run_dir / "run.json"
        if not path.is_file():
            continue
        try:
            meta = read_run(path)
        except ValueError:
            continue
        if (
            meta.profile == profile
            and meta.status != "complete"
            and _same_matrix(dict(meta.settings), settings)
        ):
            return run_dir.name
    return None


def _same_matrix(a: dict[str, Any], b: dict[str, Any]) -> bool:
    # An unseeded shuffle draws a fresh seed each time; a resumed run keeps the order it
    # recorded, so only the set of cells and how each is measured must match.
    keys = (set(a) | set(b)) - {"seed", "shuffle"}
    return all(a.get(k) == b.get(k) for k in keys)
