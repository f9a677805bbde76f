"""Site stage 5: what a build read and wrote, so an unchanged rebuild skips to mkdocs.

`input_key` hashes everything the generated docs depend on: the name, size and mtime
of every file under raw/ (raw files are written once and renamed into place, so a
changed file has a new mtime), the harness's site code and templates, the perf
figures, and the build's options. `fresh` says whether docs/ still holds what a
build with that key wrote (its own files unchanged, by the same listing), and gives
back that build's nav additions; the build then runs only `mkdocs build`. The stamp
is a dotfile, which mkdocs does not publish. `BuildCache` bundles this with the parse
and chart caches and records what a build did (charts drawn, parse cache hits,
seconds per step) in `<cache>/last-build.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.site.chartcache import ChartDrawer
from harness.site.fingerprint import Listings, code_version, listing
from harness.site.pool import Workers
from harness.tables.parsecache import ParseCache

# The harness's caches, beside docs/. Not `.cache`: Zensical keeps its own cache in
# `<config dir>/.cache` (the config is beside docs/ too) and `zensical build --clean`
# deletes that whole folder, so nothing of ours may live in or under it.
CACHE_NAME = ".harness-cache"
STAMP = "results/.build-stamp.json"  # relative to docs/, inside what a build wipes
GENERATED = ("index.md", "results")
_FORMAT = 1


def input_key(
    raw_dir: Path,
    extra: Mapping[str, Any],
    files: Sequence[Path] = (),
    listings: Callable[[Path], str] = listing,
) -> str:
    """The key of a build: raw/ listing, code, options (`extra`) and some input files."""
    h = hashlib.sha256(listings(raw_dir).encode())
    h.update(code_version().encode())
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    for path in files:
        h.update(path.read_bytes() if path.is_file() else b"(absent)")
    return h.hexdigest()


def _outputs(docs_dir: Path) -> str:
    h = hashlib.sha256()
    for name in GENERATED:
        target = docs_dir / name
        if target.is_file():
            st = target.stat()
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        h.update(listing(target).encode())
    return h.hexdigest()


def fresh(docs_dir: Path, key: str) -> dict[str, list[str]] | None:
    """The nav additions of the build that wrote docs/ with this key, if untouched since."""
    try:
        stamp = json.loads((docs_dir / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("format") != _FORMAT or stamp.get("key") != key:
        return None
    if stamp.get("outputs") != _outputs(docs_dir):
        return None  # a generated file was edited or deleted: generate again
    nav = stamp.get("nav")
    return nav if isinstance(nav, dict) else None


def write_stamp(docs_dir: Path, key: str, nav: Mapping[str, Sequence[str]]) -> None:
    doc = {"format": _FORMAT, "key": key, "outputs": _outputs(docs_dir), "nav": nav}
    (docs_dir / STAMP).write_text(json.dumps(doc, indent=1), encoding="utf-8")


class BuildCache:
    """The caches of one build under `directory` (None: no cache, everything is redone).

    Holds the parse cache (`parse`), draws charts through the chart cache (`draw`),
    skips generating docs/ when its inputs did not change (`generate`), and counts what
    it did; `write_log` saves the counts to `<directory>/last-build.json`.
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.parse = ParseCache(directory / "parse") if directory else None
        self.listings = Listings()  # raw/ is walked once per build
        self._tables: Any = None  # the TableCache of the last load
        self.log: dict[str, Any] = {"generated": False, "charts_drawn": 0, "charts_reused": 0}
        self.seconds: dict[str, float] = {}
        self._lap = time.perf_counter()

    def lap(self, step: str) -> None:
        """Record the seconds since the previous lap under `step`."""
        now = time.perf_counter()
        self.seconds[step] = round(now - self._lap, 3)
        self._lap = now

    def load(
        self,
        raw_dir: Path,
        workers: Workers | None = None,
        export: Sequence[str] = (),
        skip_bad: bool = False,
    ) -> Any:
        """The tidy table of raw/ (`load_runs`), rebuilding only the runs that changed
        (in `workers` when given), and exporting the runs in `export` as they are built
        (`exported` finds their files). `skip_bad`: files that cannot be read are left
        out, in `attrs["skipped"]`."""
        # Imported here: pandas is needed only when docs/ is generated.
        from harness.site.tablecache import TableCache
        from harness.tables.dataset import load_runs

        if self.directory is None:
            table = load_runs(raw_dir, skip_bad=skip_bad)
        else:
            tables = TableCache(
                self.directory / "tables", self.parse, self.listings, workers, skip_bad
            )
            table = tables.load(raw_dir, export)
            self._tables = tables
            self.log.update(tables_built=tables.built, tables_reused=tables.reused)
        self.lap("table")
        return table

    def exported(self, run: str) -> Path | None:
        """The folder of `run`'s results.csv and results.jsonl, if the table cache wrote
        them for the run as it is now."""
        return self._tables.exports(run) if self._tables is not None else None

    def drawer(self, workers: Workers, out_dir: Path) -> ChartDrawer:
        """What draws the charts as they are planned (`add`), in `workers`, through the
        chart cache; `drawn` then waits for them and counts them."""
        return ChartDrawer(workers, out_dir, self.directory / "charts" if self.directory else None)

    def drawn(self, drawer: ChartDrawer) -> None:
        report = drawer.finish()
        self.log["charts_drawn"] += report.drawn
        self.log["charts_reused"] += report.reused
        self.lap("charts")

    def tables_cold(self, raw_dir: Path) -> bool:
        """Whether no build left a run's table in this cache and raw/ holds several runs:
        then this build makes them all, in the workers (one run: in its own process)."""
        if self.directory is None:
            return False  # no cache: the table is built in the build's own process
        try:
            with os.scandir(raw_dir) as entries:
                if sum(1 for e in entries if e.is_dir() and not e.name.startswith(".")) < 2:
                    return False
        except OSError:
            return False
        try:
            with os.scandir(self.directory / "tables") as entries:
                return not any(e.name.endswith(".pickle") for e in entries)
        except OSError:
            return True

    def charts_cold(self) -> bool:
        """Whether no build drew a chart into this cache yet: then this one draws them all."""
        if self.directory is None:
            return True
        try:
            with os.scandir(self.directory / "charts") as entries:
                return not any(e.name.endswith(".svg") for e in entries)
        except OSError:
            return True

    def generate(
        self,
        raw_dir: Path,
        docs_dir: Path,
        options: Mapping[str, Any],
        files: Sequence[Path],
        generate: Callable[[], dict[str, list[str]]],
        later: list[Callable[[], object]] | None = None,
    ) -> dict[str, list[str]]:
        """`generate()`'s nav additions, or those of the build that left docs/ as it is.

        The key is made of raw/, the code, `options` and the bytes of `files` (inputs
        read from outside raw/, such as the perf figures). `later`: where `generate`
        left what completes docs/ (charts still being drawn); the stamp is then written
        last in that list, once docs/ is complete, instead of now.
        """
        if self.directory is None:
            self.log["generated"] = True
            return generate()
        key = input_key(raw_dir, options, files, self.listings)
        self.lap("inputs")
        nav = fresh(docs_dir, key)
        if nav is None:
            self.log["generated"] = True
            nav = generate()
            made = nav
            if later is None:
                write_stamp(docs_dir, key, made)
            else:
                later.append(lambda: write_stamp(docs_dir, key, made))
        return nav

    def write_log(self) -> None:
        if self.directory is None:
            return
        if self.parse is not None:
            self.log.update(parse_hits=self.parse.hits, parse_misses=self.parse.misses)
        doc = {**self.log, "seconds": self.seconds}
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / "last-build.json"
        path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def read_log(cache_dir: Path) -> dict[str, Any]:
    """What the last build that used `cache_dir` did (empty if none)."""
    try:
        doc = json.loads((cache_dir / "last-build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}
