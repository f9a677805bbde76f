"""Table stage: the tidy table of a raw/ tree, one cached piece per run.

`load_cached(raw_dir, cache_dir)` returns what `harness.tables.dataset.load_runs(raw_dir)`
returns, but builds each run's rows only when the run's files (names, sizes, mtimes)
or the harness's code changed since the last build, and otherwise unpickles them from
`<cache_dir>/<run>.pickle`. Building the rows costs ~1 ms per cell in Python (JSON
sidecars, Lua reports, flags); after a new run, a site of 10,000 cells then rebuilds
288 rows instead of 10,000. Every step of load_runs is per run (flags compare repeats
within a cell), so the pieces put together and sorted give the same table.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import pandas as pd

from harness.site.fingerprint import code_version, listing
from harness.tables.dataset import load_runs
from harness.tables.parsecache import ParseCache
from harness.tables.schema import SORT_KEYS

_FORMAT = 2  # 2: the files load_runs skipped are kept with the table


class TableCache:
    """Per-run tables under `directory`; `built` and `reused` count runs, for the log."""

    def __init__(
        self, directory: Path, parse: ParseCache | None = None, skip_bad: bool = False
    ) -> None:
        self.directory = directory
        self.parse = parse
        self.skip_bad = skip_bad  # load_runs(skip_bad=…): list unreadable files, go on
        self.built = 0
        self.reused = 0
        self._code = code_version()

    def load(self, raw_dir: Path) -> pd.DataFrame:
        """`load_runs(raw_dir)`, from cached runs where nothing changed."""
        dirs = sorted(p for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        if (raw_dir / "run.json").is_file() or any(not (d / "run.json").is_file() for d in dirs):
            # One run, or a folder that is not a run: load_runs says what is wrong with it.
            return load_runs(raw_dir, skip_bad=self.skip_bad, cache=self.parse)
        frames = [self._run(d) for d in dirs]
        if not frames:
            return load_runs(raw_dir, skip_bad=self.skip_bad, cache=self.parse)
        skipped = [s for f in frames for s in f.attrs.get("skipped", [])]
        # Runs no longer in raw/ leave nothing behind: the cache follows raw/.
        keep = {self._file(d).name for d in dirs}
        for entry in os.scandir(self.directory):
            if entry.name.endswith(".pickle") and entry.name not in keep:
                Path(entry.path).unlink(missing_ok=True)
        table = pd.concat(frames, ignore_index=True)
        table = table.sort_values(SORT_KEYS, kind="stable", ignore_index=True)
        table.attrs["skipped"] = skipped
        return table

    def _file(self, run_dir: Path) -> Path:
        # Hashed: a run directory's name comes from whoever made raw/.
        return self.directory / f"{hashlib.sha256(run_dir.name.encode()).hexdigest()[:32]}.pickle"

    def _run(self, run_dir: Path) -> pd.DataFrame:
        key = hashlib.sha256(f"{_FORMAT}\0{self._code}\0{listing(run_dir)}".encode()).hexdigest()
        path = self._file(run_dir)
        try:
            with open(path, "rb") as f:
                doc = pickle.load(f)
            if isinstance(doc, dict) and doc.get("key") == key:
                self.reused += 1
                table = doc["table"]
                # Kept relative to raw/: the tree may have moved since.
                table.attrs["skipped"] = [
                    {**s, "path": str(run_dir.parent / s["path"])} for s in doc.get("skipped", [])
                ]
                return table
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, TypeError):
            pass  # no cache yet, or one written by other code: build the rows again
        table = load_runs(run_dir, skip_bad=self.skip_bad, cache=self.parse)
        skipped = [
            {**s, "path": os.path.relpath(s["path"], run_dir.parent)}
            for s in table.attrs.get("skipped", [])
        ]
        table.attrs.clear()
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        with open(tmp, "wb") as f:
            doc = {"key": key, "table": table, "skipped": skipped}
            pickle.dump(doc, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
        self.built += 1
        table.attrs["skipped"] = [{**s, "path": str(run_dir.parent / s["path"])} for s in skipped]
        return table
