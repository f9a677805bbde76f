"""Raw stage: what an import may read and where it may write (invoke import-logs).

The source directory is walked without following any symbolic link (links are listed,
and the import refuses them: a link can point anywhere); files are read with
O_NOFOLLOW; every path an import writes is checked, resolved, to lie under `--out`;
names taken from file names must be one plain directory name each.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PureWindowsPath

from harness.errors import UserError

REPEAT_DIR = re.compile(r"(?:r|run|repeat)?[-_]?(\d+)", re.IGNORECASE)
REPEAT_DIRS = "r1, run2, repeat3 or 4"


class ImportLogsError(UserError, ValueError):
    """The directory or pattern cannot be imported; the message lists what to fix."""


Skipped = dict[str, str]  # {"path": relative to the source directory, "why": ...}


def candidates(src: Path) -> tuple[list[tuple[Path, int | None]], list[Skipped], list[Path]]:
    """Files that may be logs: (file, repeat from its directory or None) for files at
    the top and right inside a repeat directory; the other files, skipped, with why;
    and every symbolic link (never followed)."""
    found: list[tuple[Path, int | None]] = []
    skipped: list[Skipped] = []
    links: list[Path] = []

    def skip(path: Path, why: str) -> None:
        skipped.append({"path": path.relative_to(src).as_posix(), "why": why})

    for entry in sorted(src.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            links.append(entry)
        elif entry.is_file():
            found.append((entry, None))
        elif not entry.is_dir():
            skip(entry, "not a regular file")
        elif m := REPEAT_DIR.fullmatch(entry.name):
            for sub, depth in tree(entry, links):
                if depth > 0 or not sub.is_file():
                    why = "not a regular file" if not sub.is_file() else "below a repeat directory"
                    skip(sub, why)
                else:
                    found.append((sub, int(m.group(1))))
        else:
            for sub, _depth in tree(entry, links):
                skip(sub, f"in a directory that is not a repeat directory ({REPEAT_DIRS})")
    return found, skipped, links


def tree(top: Path, links: list[Path]) -> list[tuple[Path, int]]:
    """Entries under `top` that are not directories, with their depth below it, sorted;
    symbolic links are appended to `links` and not followed; hidden names are left out."""
    out: list[tuple[Path, int]] = []
    for root, dirs, files in os.walk(top):  # followlinks=False: a linked dir is a name
        here = Path(root)
        depth = len(here.relative_to(top).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in [d for d in dirs if (here / d).is_symlink()]:
            links.append(here / name)
            dirs.remove(name)
        for name in sorted(f for f in files if not f.startswith(".")):
            if (here / name).is_symlink():
                links.append(here / name)
            else:
                out.append((here / name, depth))
    return sorted(out)


def unsafe_name(value: str) -> bool:
    """Not one plain directory name: it could point outside its parent or mean another."""
    return (
        value in ("", ".", "..")
        or any(c in value for c in ("/", "\\", "\0"))
        or PureWindowsPath(value).drive != ""
    )


def confined(out: Path, targets: dict[Path, str]) -> None:
    """Every path to write, resolved (links and '..' followed), must lie under `out`
    resolved; `targets` maps each to what it comes from, for the message."""
    root = out.resolve()
    for path, source in targets.items():
        if not path.resolve().is_relative_to(root):
            raise ImportLogsError(
                f"{source}: would be written to {path}, outside {out}; nothing imported"
            )


def read_bytes(path: Path) -> bytes:
    # O_NOFOLLOW: a file replaced by a link after the directory was listed is refused.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise ImportLogsError(f"{path}: cannot read: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        return f.read()
