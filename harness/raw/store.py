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
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.matrix.model import Cell
from harness.parse.wrk import parse_wrk_file
from harness.raw.documents import read_document
from harness.raw.records import CellSidecar, RunMeta, read_cell, read_run
from harness.raw.runlock import FolderLock, RunLock


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id(profile: str) -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{profile}"


# A run's name: one path component that reads as a name (`--name`).
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_run_name(name: str, option: str = "--name") -> str:
    """`name` if it is a plain name (letters, digits, `.`, `_`, `-`; at most 64; not
    starting with a dot or dash), else a UserError saying so."""
    if not _RUN_NAME.fullmatch(name):
        raise UserError(
            f"{option}: {name!r} is not a plain name (letters, digits, . _ -, starting with "
            "a letter or digit, at most 64 characters)"
        )
    return name


def _named(meta: RunMeta, name: str | None) -> bool:
    if name is None:
        return True
    _stamp, _, rest = meta.run_id.partition("-")
    return rest == name or re.fullmatch(rf"{re.escape(name)}-\d+", rest) is not None


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


class OutputError(UserError):
    """An output folder that cannot be written; the message names the option and why."""


def check_writable(out: Path, option: str = "--out") -> None:
    """`out` exists (made if missing) and takes a file, or an OutputError says why, before
    anything is written (not a traceback halfway through)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputError(f"{option}: cannot write to {out}: {e.strerror}") from None


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
    """The files of one run under `<out>/<run-id>/`.

    A writer holds the run's lock (`lock`, harness/raw/runlock.py) from before its first
    write until `unlock`; a run being opened also holds `--out`'s opening lock until its
    run.json exists, so that a second bench started meanwhile finds the run (and its
    lock) instead of opening another one beside it.
    """

    def __init__(self, out: Path, run_id: str) -> None:
        self.out = out
        self.run_id = run_id
        self.root = out / run_id
        self._lock: RunLock | None = None
        self._opening: FolderLock | None = None

    def lock(self, note: Callable[[str], None] | None = None) -> None:
        """Become the run's only writer, or RunLocked naming the one there is."""
        self._lock = RunLock.take(self.root, note)

    def release_when_written(self, opening: FolderLock) -> None:
        """Hold --out's opening lock until run.json is written (or `unlock`)."""
        self._opening = opening

    def unlock(self) -> None:
        for held in (self._opening, self._lock):
            if held is not None:
                held.release()
        self._lock = self._opening = None

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    def cell_base(self, cell: Cell) -> Path:
        return self.root / cell.server / cell.app / cell.workload / cell.stem

    def cell_files(self, cell: Cell) -> dict[str, Path]:
        base = self.cell_base(cell)
        return {
            "sidecar": base.with_suffix(".json"),
            "stdout": base.with_suffix(".txt"),
            "lua_json": base.with_suffix(".lua.json"),
            "open_json": base.with_suffix(".open.json"),  # open-loop cells (openloop.lua)
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
        if self._opening is not None:  # the run can be found now: others may look
            self._opening.release()
            self._opening = None

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

    def requests_per_sec(self, cell: Cell) -> float | None:
        """What a finished, ok cell measured: exact from its Lua report (merged, with
        several clients), else as wrk printed it; None for a failed or unreadable cell."""
        try:
            rec = self.read_cell(cell)
            if not rec.ok:
                return None
            folder = self.cell_files(cell)["sidecar"].parent
            if "lua_json" in rec.files:
                doc = read_document(folder / rec.files["lua_json"])
                requests, duration_us = doc.get("requests"), doc.get("duration_us")
                if isinstance(requests, int) and isinstance(duration_us, int | float):
                    return requests / (duration_us / 1e6) if duration_us > 0 else None
            if "stdout" in rec.files:
                return parse_wrk_file(folder / rec.files["stdout"]).requests_per_sec
        except (ValueError, OSError):
            return None  # unreadable: the table stage names it; here it only counts as none
        return None


def unfinished_runs(out: Path, profile: str, name: str | None = None) -> list[RunMeta]:
    """The runs in `out` of `profile` that did not complete, newest first (run.json
    files that cannot be read are left out); with `name`, only the runs so named
    (`<time>-<name>`, or `-<name>-<n>` when two started in one second)."""
    if not out.is_dir():
        return []
    found = []
    for run_dir in sorted(out.iterdir(), reverse=True):
        path = run_dir / "run.json"
        if not path.is_file():
            continue
        try:
            meta = read_run(path)
        except ValueError:
            continue
        if meta.profile == profile and meta.status != "complete" and _named(meta, name):
            found.append(meta)
    return found
