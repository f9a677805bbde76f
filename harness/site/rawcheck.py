"""Site stage: what of raw/ a build can read, and what it cannot, without stopping.

One truncated wrk output or one broken run.json must not stop the site of every other
run: `readable_runs` and `readable_cells` read what they can and list the rest as
`unreadable` entries `{"path", "run_id", "error"}` (path relative to raw/), and
`table_unreadable` does the same for the files the table stage skipped
(`load_runs(skip_bad=True)`). The build shows them on the Errors page and on their run's
page, prints them, and with `--strict-raw` fails instead (`check_unreadable`). A raw
directory that does not exist is said as such (`check_raw_dir`). Only the files the
harness writes are published and zipped (`published_files`, `unpublished`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.pages.context import SiteError, select_runs
from harness.parse.records import RawFormatError
from harness.raw.names import harness_file
from harness.raw.records import read_cell, read_run

# The nav additions of a build carry its unreadable files under this key, so that a
# build that reuses docs/ (harness/site/cache.py) still reports them.
UNREADABLE = "unreadable"
Unreadable = dict[str, Any]


def check_raw_dir(raw_dir: Path) -> None:
    if not raw_dir.exists():
        raise SiteError(f"--raw: {raw_dir} does not exist")
    if not raw_dir.is_dir():
        raise SiteError(f"--raw: {raw_dir} is not a directory")


def entry(raw_dir: Path, path: str | Path | None, error: str) -> Unreadable:
    """An unreadable file, its run (the first folder below raw/) and why."""
    where = Path(path) if path else raw_dir
    try:
        rel = where.relative_to(raw_dir).as_posix()
    except ValueError:
        rel = where.as_posix()
    prefix = f"{where}:"
    reason = error[len(prefix) :].strip() if error.startswith(prefix) else error
    reason = re.sub(r"^(\d+): ", r"line \1: ", reason)  # RawFormatError's `path:line: …`
    first = rel.split("/", 1)[0]
    return {"path": rel, "run_id": first if "/" in rel else None, "error": reason}


def readable_runs(raw_dir: Path) -> tuple[list[dict[str, Any]], list[Unreadable]]:
    """Every run record under raw_dir that can be read (by run id), and the others."""
    check_raw_dir(raw_dir)
    runs, bad = [], []
    for path in sorted(raw_dir.glob("*/run.json")):
        try:
            runs.append(read_run(path).as_dict())
        except RawFormatError as e:
            bad.append(entry(raw_dir, path, str(e)))
    return sorted(runs, key=lambda r: str(r.get("run_id"))), bad


def readable_cells(raw_dir: Path, run_id: str) -> tuple[list[dict[str, Any]], list[Unreadable]]:
    """The cell records of one run (`c<N>-r<k>.json`, not the Lua reports) that can be
    read, and the others."""
    cells, bad = [], []
    for path in sorted((raw_dir / run_id).glob("*/*/*/c*-r*.json")):
        if path.name.count(".") != 1:  # c10-r1.json, not c10-r1.lua.json
            continue
        try:
            cells.append(read_cell(path).as_dict())
        except RawFormatError as e:
            bad.append(entry(raw_dir, path, str(e)))
    return cells, bad


def table_unreadable(raw_dir: Path, skipped: Iterable[Mapping[str, str]]) -> list[Unreadable]:
    """The files the table stage left out: `load_runs(skip_bad=True)`'s
    `attrs["skipped"]` ({"path", "error"}), and the like."""
    return [entry(raw_dir, s.get("path"), str(s.get("error"))) for s in skipped]


def select_readable(
    runs: Sequence[Mapping[str, Any]], which: str, bad_runs: Sequence[Unreadable]
) -> tuple[list[Mapping[str, Any]], Mapping[str, Any]]:
    """`select_runs`; when no run can be chosen, the error names the run.json files that
    could not be read too (a run someone meant may be among them)."""
    try:
        return select_runs(runs, which)
    except SiteError as e:
        if not bad_runs:
            raise
        first = bad_runs[0]
        more = f" and {len(bad_runs) - 1} more" if len(bad_runs) > 1 else ""
        raise SiteError(f"{e}; unreadable: {first['path']}: {first['error']}{more}") from None


def plan_inputs(
    raw_dir: Path, subject: str, table: Any, everything: Any, bad_runs: Sequence[Unreadable]
) -> tuple[list[dict[str, Any]], dict[str, Any], list[Any], list[Unreadable]]:
    """What the page plan reads besides the table — the subject run's cell records, the
    runs' calibrations, the cells the server timed — and every file of raw/ that could
    not be read: those, `bad_runs` and what the table stage skipped (`everything`, the
    table of every run, loaded with skip_bad)."""
    from harness.pages.latencyplan import read_timed_cells  # pandas: with the plan only
    from harness.tables.ceilings import load_calibrations

    cells, bad_cells = readable_cells(raw_dir, subject)
    skipped = list(everything.attrs["skipped"])
    calibrations = load_calibrations(raw_dir, skipped)
    from harness.tables.loadcurve import closed_rows

    # The client-vs-server pages compare closed-loop cells (open-loop ones have their page).
    timed = read_timed_cells(raw_dir, closed_rows(table), skipped)
    unreadable = merged(bad_runs, bad_cells, table_unreadable(raw_dir, skipped))
    return cells, calibrations, timed, unreadable


def for_nav(unreadable: Sequence[Unreadable]) -> list[str]:
    """The entries as the nav additions carry them (strings, kept in the build stamp)."""
    return [json.dumps(u, sort_keys=True) for u in unreadable]


def merged(*lists: Iterable[Unreadable]) -> list[Unreadable]:
    """One entry per file (a bad run.json is found by several readers), by path."""
    found: dict[str, Unreadable] = {}
    for items in lists:
        for item in items:
            found.setdefault(item["path"], item)
    return [found[p] for p in sorted(found)]


def check_unreadable(
    nav: Mapping[str, Any], strict: bool, note: Callable[[str], None] | None
) -> dict[str, Any]:
    """A build's nav additions without its unreadable files; each of those is said to
    `note`, and with `strict` (--strict-raw) they fail the build (count and first one).
    `nav` itself is left as it is: the build stamp keeps them for the next build."""
    bad: list[Unreadable] = [json.loads(u) for u in nav.get(UNREADABLE) or []]
    if note is not None:
        for item in bad:
            note(f"unreadable: {item['path']}: {item['error']}")
    if strict and bad:
        first = bad[0]
        raise SiteError(
            f"--strict-raw: {len(bad)} raw file(s) cannot be read, first "
            f"{first['path']}: {first['error']} (site/ was not rebuilt)"
        )
    return {k: v for k, v in nav.items() if k != UNREADABLE}


def published_files(run_dir: Path) -> list[str]:
    """The files of a run folder the site publishes and zips, as sorted paths relative
    to it: only those the harness writes (harness/raw/names.py). A file dropped there by
    anyone else (an `.html` page, a note) is not served from the site's origin. (Plain
    strings from os.walk: pathlib's objects were a third of zipping a run.)"""
    root = os.fspath(run_dir)
    found: list[str] = []
    for folder, _dirs, names in os.walk(root):
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if rel == "." else f"{rel}/"
        found.extend(
            f"{prefix}{name}"
            for name in names
            if harness_file(f"{prefix}{name}") and os.path.isfile(os.path.join(folder, name))
        )
    return sorted(found)


def unpublished(run_dir: Path) -> Callable[[str, list[str]], set[str]]:
    """A `shutil.copytree` ignore function that leaves out what `published_files` does
    (and folders deeper than a cell's, which cannot hold a harness file)."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        rel = Path(folder).relative_to(run_dir)
        depth = len(rel.parts)
        left_out = set()
        for name in names:
            if Path(folder, name).is_dir():
                if name.startswith(".") or depth >= 3:
                    left_out.add(name)
            elif not harness_file((rel / name).as_posix()):
                left_out.add(name)
        return left_out

    return ignore
