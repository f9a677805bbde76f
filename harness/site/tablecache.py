"""Site stage: the tidy table of a raw/ tree, one cached piece per run.

`TableCache.load(raw_dir)` returns what `harness.tables.dataset.load_runs(raw_dir)`
returns, but builds each run's rows only when the run's files (names, sizes, mtimes)
or the harness's code changed since the last build, and otherwise unpickles them from
`<directory>/<run>.pickle`. Building the rows costs ~0.4 ms per cell in Python (JSON
sidecars, Lua reports, flags); after a new run, a site of 10,000 cells then rebuilds
288 rows instead of 10,000. Every step of load_runs is per run (flags compare repeats
within a cell), so the pieces put together and sorted give the same table, and a
table of several runs split by run gives the same pieces: the runs to build are built
in batches, one table each (pandas' own cost is per table, ~50 ms), in the build's
worker processes when there are several.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import pandas as pd

from harness.site.fingerprint import code_version, listing
from harness.site.pool import Workers
from harness.tables.dataset import load_runs
from harness.tables.export import CSV_NAME, JSONL_NAME, export_table
from harness.tables.parsecache import ParseCache
from harness.tables.schema import SORT_KEYS

_FORMAT = 2  # 2: the files load_runs skipped are kept with the table


Skipped = list[dict[str, str]]  # load_runs(skip_bad=True)'s: {"path", "error"}


def build_runs(
    raw_dir: Path,
    runs: Sequence[tuple[str, Path, str, Path | None]],
    parse_dir: Path | None,
    skip_bad: bool = False,
) -> tuple[dict[str, pd.DataFrame], dict[str, Skipped], int, int]:
    """Build the runs (folder name, table file, key, export folder or None) of `raw_dir`
    as one table split by run: each piece is written to its table file under its key,
    with the files of the run that could not be read (`skip_bad`; paths relative to
    raw/), and as CSV and JSON lines into its export folder. Returns the pieces and
    their skipped files by folder name, with the parse cache's hits and misses. Runs in
    the build's worker processes (or in the build's own)."""
    parse = ParseCache(parse_dir) if parse_dir is not None else None
    names = [name for name, *_ in runs]
    table = load_runs(raw_dir, skip_bad=skip_bad, cache=parse, runs=set(names))
    pieces = {str(k): g.reset_index(drop=True) for k, g in table.groupby("run_id", sort=False)}
    skipped: dict[str, Skipped] = {n: [] for n in names}
    for s in table.attrs.get("skipped", []):
        rel = os.path.relpath(s["path"], raw_dir)
        skipped.setdefault(rel.split(os.sep, 1)[0], []).append({**s, "path": rel})
    if sorted(pieces) != sorted(names):
        # A folder named otherwise than its run id, or a run without a cell: one by one.
        pieces = {n: load_runs(raw_dir, skip_bad=skip_bad, cache=parse, runs={n}) for n in names}
    for name, path, key, export_dir in runs:
        piece = pieces[name]
        piece.attrs.clear()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        doc = {"key": key, "table": piece, "skipped": skipped.get(name, [])}
        with open(tmp, "wb") as f:
            pickle.dump(doc, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
        if export_dir is not None:
            export_table(piece, export_dir)
    return pieces, skipped, parse.hits if parse else 0, parse.misses if parse else 0


class TableCache:
    """Per-run tables under `directory`; `built` and `reused` count runs, for the log.

    With `workers` (`harness.site.pool`), the runs to build are built there in two
    batches, one per worker: a cold build of 10,000 cells has 35 runs and ~4 s of table
    to build. The runs named in `export` are also written as CSV and JSON lines when
    they are built (`exports` finds them): the site's downloads, reused while the run is.
    """

    def __init__(
        self,
        directory: Path,
        parse: ParseCache | None = None,
        listings: Callable[[Path], str] = listing,
        workers: Workers | None = None,
        skip_bad: bool = False,
    ) -> None:
        self.directory = directory
        self.parse = parse
        self.listings = listings
        self.workers = workers
        self.skip_bad = skip_bad  # load_runs(skip_bad=…): list unreadable files, go on
        self.built = 0
        self.reused = 0
        self._code = code_version()
        self._keys: dict[str, str] = {}  # run folder name -> its key, as loaded last

    def load(self, raw_dir: Path, export: Collection[str] = ()) -> pd.DataFrame:
        """`load_runs(raw_dir)`, from cached runs where nothing changed; the runs (folder
        names) in `export` are exported too when built."""
        dirs = sorted(p for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        if (raw_dir / "run.json").is_file() or any(not (d / "run.json").is_file() for d in dirs):
            # One run, or a folder that is not a run: load_runs says what is wrong with it.
            return load_runs(raw_dir, skip_bad=self.skip_bad, cache=self.parse)
        if not dirs:
            return load_runs(raw_dir, skip_bad=self.skip_bad, cache=self.parse)
        keys = {d: self._key(d) for d in dirs}
        cached = {d: self._cached(d, keys[d]) for d in dirs}
        frames = {d: c[0] if c else None for d, c in cached.items()}
        skipped: dict[str, Skipped] = {d.name: c[1] for d, c in cached.items() if c}
        parse_dir = self.parse.directory if self.parse is not None else None
        self._keys = {d.name: keys[d] for d in dirs}
        todo = [
            (d.name, self._file(d), keys[d], self._exports(d.name) if d.name in export else None)
            for d in dirs
            if frames[d] is None
        ]
        # Two batches for two workers, alternating so that both get old and new runs.
        batches = [todo[0::2], todo[1::2]] if self.workers is not None else [todo]
        batches = [b for b in batches if b]
        bad = self.skip_bad
        if self.workers is not None and len(batches) > 1:
            jobs = [self.workers.submit(build_runs, raw_dir, b, parse_dir, bad) for b in batches]
            built = [job.result() for job in jobs]
        else:
            built = [build_runs(raw_dir, b, parse_dir, bad) for b in batches]
        for pieces, left_out, hits, misses in built:
            frames.update({raw_dir / name: piece for name, piece in pieces.items()})
            skipped.update(left_out)
            if self.parse is not None:
                self.parse.hits += hits
                self.parse.misses += misses
        self.built += len(todo)
        self.reused += len(dirs) - len(todo)
        # Runs no longer in raw/ leave nothing behind: the cache follows raw/.
        keep = {self._file(d).name for d in dirs} | {self._exports(d.name).name for d in dirs}
        for entry in os.scandir(self.directory):
            if entry.name.endswith(".pickle") and entry.name not in keep:
                Path(entry.path).unlink(missing_ok=True)
            elif entry.name.endswith(".exports") and entry.name not in keep:
                shutil.rmtree(entry.path, ignore_errors=True)
        table = pd.concat([frames[d] for d in dirs], ignore_index=True)
        table = table.sort_values(SORT_KEYS, kind="stable", ignore_index=True)
        # Kept relative to raw/: the tree may have moved since they were cached.
        table.attrs["skipped"] = [
            {**s, "path": str(raw_dir / s["path"])} for d in dirs for s in skipped.get(d.name, [])
        ]
        return table

    def _file(self, run_dir: Path) -> Path:
        # Hashed: a run directory's name comes from whoever made raw/.
        return self.directory / f"{hashlib.sha256(run_dir.name.encode()).hexdigest()[:32]}.pickle"

    def forget(self, run_dir: Path) -> None:
        """Drop the cached table of `run_dir`: the next load builds it again."""
        self._file(run_dir).unlink(missing_ok=True)

    def exports(self, run: str) -> Path | None:
        """The folder holding results.csv and results.jsonl of `run` (a folder name of
        the raw/ loaded last) as it is now, if they were written; else None."""
        if run not in self._keys:
            return None
        folder = self._exports(run)
        ok = all((folder / name).is_file() for name in (CSV_NAME, JSONL_NAME))
        return folder if ok else None

    def _exports(self, run: str) -> Path:
        # One folder per run and key: a run that changed has none until it is built.
        name = hashlib.sha256(run.encode()).hexdigest()[:32]
        return self.directory / f"{name}-{self._keys[run][:16]}.exports"

    def _key(self, run_dir: Path) -> str:
        text = f"{_FORMAT}\0{self._code}\0{self.listings(run_dir)}"
        return hashlib.sha256(text.encode()).hexdigest()

    def _cached(self, run_dir: Path, key: str) -> tuple[pd.DataFrame, Skipped] | None:
        """The run's cached table and the files it left out, if its key is still `key`."""
        try:
            with open(self._file(run_dir), "rb") as f:
                doc = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, TypeError):
            return None  # no cache yet, or one written by other code: build the rows again
        if isinstance(doc, dict) and doc.get("key") == key:
            return doc["table"], list(doc.get("skipped", []))
        return None
