"""Site stage 5: one run's table and raw files -> its downloads on the site.

`export_run` writes them under docs/results/data/<run>/: the run's rows as CSV and JSON
lines, its run.json, and one zip of every raw file of the run. Only those: a copy of
each raw file (four per cell) made docs/ grow with the number of cells, and the site
engine copies and lists every file of docs/ on every build (at 10,000 cells, 39,000
files and most of a 25 s build). The zip holds them all, as they are in raw/.

`write_zip` writes the deterministic archive of a run; `cached_zip` reuses it from
`<cache>/zips/` while the run's files (names, sizes, mtimes) are unchanged, and
`start_zip` does the same with the archive written by the build's worker processes
(`harness.site.pool`) while the build goes on. The archive in docs/ is a hard link to
the cached one (nothing writes into docs/ in place: builds delete and recreate it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.pages.context import DATA_DIR, slug
from harness.site.fingerprint import listing
from harness.site.pool import Workers
from harness.site.rawcheck import published_files

# Fixed zip entry time: the same raw files give the same archive bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_ZIP_FORMAT = 4  # bump when the archive's layout changes: cached zips are then rebuilt
KEEP_UNUSED_S = 14 * 24 * 3600


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed: a real copy
        shutil.copy2(src, dst)


def write_zip(source: Path, prefix: str, archive: Path) -> Path:
    """Every file below `source` as `<prefix>/<path>` in a deterministic zip at `archive`.

    Stored, not deflated: a zip compresses each file on its own, and these are small
    (a few KB), so deflate halved the archive at best while costing ~0.1 s of CPU per
    run of 288 cells: at 10,000 cells (35 runs) 3 s, the largest step of a cold build.
    The site still holds less than when it also had a copy of every raw file, and a git
    remote (`invoke publish`) compresses what it stores anyway.
    """
    tmp = archive.with_name(f".{archive.name}.{os.getpid()}.part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        # Only the files the harness wrote (harness/raw/names.py): nothing dropped into a
        # run folder by anyone else is published.
        for rel in published_files(source):
            info = zipfile.ZipInfo(f"{prefix}/{rel}", ZIP_TIME)
            info.external_attr = 0o644 << 16
            with open(os.path.join(source, rel), "rb") as f:
                zf.writestr(info, f.read())
    tmp.replace(archive)
    return archive


def cached_zip(source: Path, prefix: str, archive: Path, cache_dir: Path | None) -> Path:
    """`write_zip`, reusing `<cache_dir>/<key>.zip` while the files of `source` are unchanged."""
    return start_zip(source, prefix, archive, cache_dir)()


def start_zip(
    source: Path,
    prefix: str,
    archive: Path,
    cache_dir: Path | None,
    workers: Workers | None = None,
    listings: Callable[[Path], str] = listing,
) -> Callable[[], Path]:
    """`cached_zip`, with the archive written in `workers` when given (a second or so per
    thousand files, while the build plans). Returns what completes it: waits for the
    archive, puts it at `archive`, and returns that path."""
    cached = None
    if cache_dir is not None:
        key = hashlib.sha256(f"{_ZIP_FORMAT}\0{prefix}\0{listings(source)}".encode()).hexdigest()
        cache_dir.mkdir(parents=True, exist_ok=True)
        cached = cache_dir / f"{key}.zip"
    # Where to write the archive now: nowhere when the cache has it.
    target = archive if cached is None else None if cached.is_file() else cached
    job = None
    if target is not None:
        if workers is None:
            write_zip(source, prefix, target)
        else:
            job = workers.submit(write_zip, source, prefix, target)

    def finish() -> Path:
        if job is not None:
            job.result()
        if cache_dir is None or cached is None:
            return archive
        archive.unlink(missing_ok=True)  # a placeholder (export_run): link in its place
        _link_or_copy(str(cached), str(archive))
        now = time.time()
        os.utime(cached, (now, now))  # in use: keep it
        for entry in os.scandir(cache_dir):
            if entry.name.endswith(".zip") and entry.stat().st_mtime < now - KEEP_UNUSED_S:
                Path(entry.path).unlink(missing_ok=True)
        return archive

    return finish


def export_run(
    table: Any,
    raw_dir: Path,
    run_id: str,
    docs_dir: Path,
    zips: Path | None = None,
    workers: Workers | None = None,
    later: list[Callable[[], object]] | None = None,
    listings: Callable[[Path], str] = listing,
    exported: Path | None = None,
) -> list[tuple[str, str]]:
    """The downloads of one run under results/data/<run>/: table, raw zip, run.json.

    `zips`: a cache directory of raw zips (`cached_zip`), reused while unchanged.
    `workers` and `later`: the zip is written in `workers`, and what completes it is
    appended to `later` for the caller to run before the site is built (until then the
    zip exists, empty). `exported`: a folder where this run's table was already written
    as results.csv and results.jsonl (harness/site/tablecache.py): linked, not written.
    """
    from harness.tables.export import CSV_NAME, JSONL_NAME, export_table

    rel_dir = f"{DATA_DIR}/{slug(run_id)}"
    out = docs_dir / rel_dir
    out.mkdir(parents=True, exist_ok=True)
    source = raw_dir / run_id
    # The zip first: the workers write it while this process writes the tables.
    archive = out / f"{slug(run_id)}-raw.zip"
    zipped = start_zip(source, run_id, archive, zips, workers, listings)
    if exported is not None:
        written = [out / CSV_NAME, out / JSONL_NAME]
        for path in written:
            _link_or_copy(str(exported / path.name), str(path))
    else:
        written = export_table(table[table["run_id"] == run_id].reset_index(drop=True), out)
    what = {
        ".csv": "the tidy table as CSV, one row per cell",
        ".jsonl": "the same table as JSON lines",
    }
    files = [(f"{rel_dir}/{p.name}", what.get(p.suffix, "table")) for p in sorted(written)]
    shutil.copyfile(source / "run.json", out / "run.json")  # one small file: readable as is
    if later is None:
        zipped()
    else:
        archive.touch()  # listed meanwhile; the link or the zip itself replaces it
        later.append(zipped)
    files.append(
        (
            f"{rel_dir}/{archive.name}",
            "every raw file of the run (wrk output, Lua reports, sidecars), as in raw/",
        )
    )
    files.append((f"{rel_dir}/run.json", "the run sidecar: host, versions, settings"))
    return files
