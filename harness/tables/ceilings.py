"""Table stage: each run's client ceilings — what wrk drove against nginx at the run's
start and end (`calibration.start.json`, `.resume.json`, `.end.json`) and when asked
(`invoke calibrate`: `calibration.json`), read as they are (docs/raw-format.md,
"Calibration")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.parse.wrk import RawFormatError
from harness.raw.documents import CALIBRATION_FORMAT_VERSION
from harness.tables.dataset import read_json, run_dirs

CALIBRATION_FILES = ("calibration.start.json", "calibration.resume.json",
                     "calibration.end.json", "calibration.json")  # fmt: skip


def load_calibrations(
    raw_dir: str | Path, skipped: list[dict[str, str]] | None = None
) -> dict[str, dict[str, Any]]:
    """Run id -> its client ceiling (harness/bench/calibrate.py: wrk against nginx).

    A run measures it at its start and end (`calibration.start.json`, `.end.json`, and
    `.resume.json` when resumed); `invoke calibrate` adds `calibration.json`. The record
    returned is the one with the lowest ok req/s (a cell near it was near what wrk could
    drive at some point of the run), plus `path` relative to raw/, `measurements` (each
    file's `when`, req/s, status, path) and `drift` (end over start, less one). Runs
    without any are left out; a file that cannot be read raises RawFormatError naming
    it, or with `skipped`, is listed there ({"path", "error"}) and left out."""
    raw_dir = Path(raw_dir)
    root = raw_dir.parent if (raw_dir / "run.json").is_file() else raw_dir
    found = {}
    for run_dir in run_dirs(raw_dir):
        docs = []
        for name in CALIBRATION_FILES:
            path = run_dir / name
            if not path.is_file():
                continue
            try:
                doc = read_json(path, "calibration", CALIBRATION_FORMAT_VERSION)
            except RawFormatError as e:
                if skipped is None:
                    raise
                skipped.append({"path": str(path), "error": str(e)})
                continue
            docs.append({**doc, "path": path.relative_to(root).as_posix()})
        if docs:
            found[run_dir.name] = _ceiling_record(docs)
    return found


def _ceiling_record(docs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [d for d in docs if d.get("status") == "ok" and _positive(d.get("requests_per_sec"))]
    chosen = min(ok, key=lambda d: float(d["requests_per_sec"])) if ok else docs[0]
    by_when = {d.get("when"): d.get("requests_per_sec") for d in ok}
    start, end = by_when.get("start"), by_when.get("end")
    measurements = [
        {k: d.get(k) for k in ("when", "requests_per_sec", "status", "reason", "path")}
        for d in docs
    ]
    drift = end / start - 1 if start and end else None
    return {**chosen, "measurements": measurements, "drift": drift}


def _positive(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v > 0
