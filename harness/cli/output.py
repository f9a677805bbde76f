"""Command-line stage: text a task was asked to write -> the file (or stdout).

In: a path given as an option (`-` for stdout) and the text. Out: the file, written
whole (temp file and rename, harness/raw/store.py), and one line on stderr naming it;
a path that cannot be written is an `OutputError` naming the option.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.raw.store import OutputError, write_atomic


def write_output(path: str | Path, text: str, option: str) -> None:
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option}: {path} is a directory; give a file name")
    try:
        write_atomic(path, text.encode("utf-8"))
    except OSError as e:
        raise OutputError(f"{option}: cannot write {path}: {e.strerror}") from None
    print(f"wrote {path}", file=sys.stderr)
