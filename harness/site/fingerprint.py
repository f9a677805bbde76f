"""Site stage: fingerprints of folders and of the code, so caches know what changed.

`listing(top)` hashes the names, sizes and mtimes of the files below `top` (raw files
are written once and renamed into place, so a changed file has a new mtime);
`code_version()` hashes the harness's Python code and the page templates.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from harness.paths import HARNESS, TEMPLATES_DIR


def _files(top: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(path relative to top, stat) of every file below top; dotfiles (temp files) skipped."""
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))
            else:
                yield os.path.relpath(e.path, top), e.stat()


def listing(top: Path) -> str:
    """sha256 of the names, sizes and mtimes of the files below `top` (sorted)."""
    h = hashlib.sha256()
    for rel, st in sorted(_files(top)):
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def code_version() -> str:
    """sha256 of the harness's Python code and the page templates."""
    h = hashlib.sha256()
    for folder in (HARNESS, TEMPLATES_DIR):
        for rel, _ in sorted(_files(folder)):
            if rel.endswith((".py", ".j2")):
                h.update(rel.encode() + b"\0" + (folder / rel).read_bytes())
    return h.hexdigest()
