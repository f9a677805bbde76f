"""Site stage 5: one run's table and raw files -> its downloads on the site.

`export_run` writes them under docs/results/data/<run>/: the run's rows as CSV and JSON
lines, a browsable copy of its raw files, and a zip of them.

`link_tree` makes the browsable copy under docs/results/data/<run>/raw/ out of hard
links: the docs copy exists only for mkdocs to copy into site/, so sharing the bytes
with raw/ costs one directory entry per file instead of a second copy (at 10,000
cells, 40,000 files). Nothing writes into docs/ in place (builds delete and recreate
it), so raw/ is never modified through the links; across file systems it copies.
`write_zip` writes the deterministic archive of a run; `cached_zip` reuses it from
`<cache>/zips/` while the run's files (names, sizes, mtimes) are unchanged, and
`start_zip` does the same with the archive written by the build's worker processes
(`harness.site.pool`) while the build goes on.
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
from harness.site.rawcheck import published_files, unpublished

# Fixed zip entry time: the same raw files give the same archive bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_ZIP_FORMAT = 1  # bump when the archive's layout changes: cached zips are then rebuilt
KEEP_UNUSED_S = 14 * 24 * 3600


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed: a real copy
        shutil.copy2(src, dst)


def link_tree(source: Path, dest: Path) -> None:
    """`source` below `dest` as hard links: only the files the harness wrote (no temp
    file of an interrupted write, nothing dropped there by others; harness/site/rawcheck.py)."""
    shutil.copytree(source, dest, ignore=unpublished(source), copy_function=_link_or_copy)


def _files(source: Path) -> list[Path]:
    return published_files(source)


def write_zip(source: Path, prefix: str, archive: Path) -> Path:
    """Every file below `source` as `<prefix>/<path>` in a deterministic zip at `archive`."""
    tmp = archive.with_name(f".{archive.name}.{os.getpid()}.part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in _files(source):
            info = zipfile.ZipInfo(f"{prefix}/{path.relative_to(source).as_posix()}", ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
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
) -> Callable[[], Path]:
    """`cached_zip`, with the archive written in `workers` when given (a second or so per
    thousand files, while the build plans). Returns what completes it: waits for the
    archive, puts it at `archive`, and returns that path."""
    cached = None
    if cache_dir is not None:
        key = hashlib.sha256(f"{_ZIP_FORMAT}\0{prefix}\0{listing(source)}".encode()).hexdigest()
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
) -> list[tuple[str, str]]:
    """The downloads of one run under results/data/<run>/: table, raw zip, raw files.

    `zips`: a cache directory of raw zips (`cached_zip`), reused while unchanged.
    `workers` and `later`: the zip is written in `workers`, and what completes it is
    appended to `later` for the caller to run before the site is built (until then the
    zip exists, empty).
    """
    from harness.tables.export import export_table

    rel_dir = f"{DATA_DIR}/{slug(run_id)}"
    out = docs_dir / rel_dir
    out.mkdir(parents=True, exist_ok=True)
    source = raw_dir / run_id
    # The zip first: the workers write it while this process writes the tables.
    archive = out / f"{slug(run_id)}-raw.zip"
    zipped = start_zip(source, run_id, archive, zips, workers)
    written = export_table(table[table["run_id"] == run_id].reset_index(drop=True), out)
    what = {
        ".csv": "the tidy table as CSV, one row per cell",
        ".jsonl": "the same table as JSON lines",
    }
    files = [(f"{rel_dir}/{p.name}", what.get(p.suffix, "table")) for p in sorted(written)]
    link_tree(source, out / "raw")  # browsable one by one (e.g. run.json)
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
    files.append((f"{rel_dir}/raw/run.json", "the run sidecar: host, versions, settings"))
    return files
