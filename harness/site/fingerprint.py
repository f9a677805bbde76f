"""Site stage: fingerprints of folders and of the code, so caches know what changed.

`listing(top)` hashes the names, sizes and mtimes of the files below `top` (raw files
are written once and renamed into place, so a changed file has a new mtime);
`Listings` does the same for the folders one build asks about, walking raw/ once: the
build's key, each run's table and each run's zip all need their listing, and at 10,000
cells one walk (39,000 files) costs ~0.2 s. `code_version()` hashes the harness's
Python code and the page templates.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from pathlib import Path

from harness.paths import HARNESS, TEMPLATES_DIR


def _lines(top: Path) -> list[str]:
    """One `path\\0size\\0mtime_ns` line per file below `top` (paths relative to it, with
    `/`), sorted; dotfiles and dot-folders (temp files) are skipped."""
    out = []
    stack = [("", os.fspath(top))]
    while stack:
        rel, folder = stack.pop()
        try:
            entries = os.scandir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        with entries:
            for e in entries:
                if e.name.startswith("."):
                    continue
                if e.is_dir(follow_symlinks=False):
                    stack.append((f"{rel}{e.name}/", e.path))
                else:
                    st = e.stat()
                    out.append(f"{rel}{e.name}\0{st.st_size}\0{st.st_mtime_ns}\n")
    out.sort()
    return out


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def files(top: Path) -> list[str]:
    """The paths of the files below `top`, relative to it with `/`, sorted (dotfiles and
    dot-folders skipped, as everywhere here)."""
    return [line.split("\0", 1)[0] for line in _lines(top)]


def listing(top: Path) -> str:
    """sha256 of the names, sizes and mtimes of the files below `top` (sorted)."""
    return _digest(_lines(top))


class Listings:
    """`listing` of every folder a build asks about, walking each tree once: a folder
    below one already walked is hashed from that walk's lines."""

    def __init__(self) -> None:
        self._walked: dict[str, list[str]] = {}  # real path -> its sorted lines

    def __call__(self, top: Path) -> str:
        key = os.path.realpath(top)
        for walked, lines in self._walked.items():
            if key == walked:
                return _digest(lines)
            if key.startswith(walked + os.sep):
                prefix = Path(os.path.relpath(key, walked)).as_posix() + "/"
                # The lines below `prefix` are one run of the sorted list ("/" < "0").
                start = bisect.bisect_left(lines, prefix)
                end = bisect.bisect_left(lines, prefix[:-1] + "0", start)
                return _digest([line[len(prefix) :] for line in lines[start:end]])
        lines = self._walked[key] = _lines(top)
        return _digest(lines)


def code_version() -> str:
    """sha256 of the harness's Python code and the page templates."""
    h = hashlib.sha256()
    for folder in (HARNESS, TEMPLATES_DIR):
        for line in _lines(folder):
            rel = line.split("\0", 1)[0]
            if rel.endswith((".py", ".j2")):
                h.update(rel.encode() + b"\0" + (folder / rel).read_bytes())
    return h.hexdigest()
