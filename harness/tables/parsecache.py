"""Table stage: a cache of parsed wrk outputs, keyed by the bytes of each file.

`ParseCache.parse(path)` returns what `parse_wrk_file(path)` would, but reads the
`WrkResult` from `.harness-cache/parse/<run-id>.pickle` when a file with the same SHA-256 was
parsed before by the same parser. Hashing 10,000 small files costs ~0.15 s; parsing
them ~1 s. The key also holds a hash of the parser's own source (parse.py and
records.py), so a change to the grammar invalidates every entry without a version
number to remember. One cache file per run keeps a rebuild after a new run from
rewriting the others; each file keeps only the entries its run used last time, so the
cache mirrors raw/ instead of growing forever. Deleting `.harness-cache/` is always safe.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from pathlib import Path

from harness.parse import records
from harness.parse import wrk as parse
from harness.parse.wrk import WrkResult, parse_wrk

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")
_FORMAT = 1  # of the pickle below: {"format", "parser", "entries": {sha256: WrkResult}}


def parser_version() -> str:
    """A hash of the parser's source: entries written by another parser are ignored."""
    h = hashlib.sha256()
    for module in (parse, records):
        h.update(Path(str(module.__file__)).read_bytes())
    return h.hexdigest()[:16]


class ParseCache:
    """Parsed wrk outputs by content hash, one pickle per run under `directory`.

    With `directory=None` it only parses (no cache): the default of `load_runs`.
    `hits` and `misses` count lookups, for `invoke perf` and the tests.
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.version = parser_version() if directory is not None else ""
        self._runs: dict[str, dict[str, WrkResult]] = {}  # run id -> entries on disk
        self._used: dict[str, dict[str, WrkResult]] = {}  # run id -> entries used now
        self.hits = 0
        self.misses = 0

    def parse(self, path: Path, run_id: str) -> WrkResult:
        """`parse_wrk_file(path)`, from the cache when its bytes were parsed before."""
        data = path.read_bytes()
        if self.directory is None:
            return self._parse(data, path)
        key = hashlib.sha256(data).hexdigest()
        entries = self._runs.get(run_id)
        if entries is None:
            entries = self._runs[run_id] = self._load(run_id)
        used = self._used.setdefault(run_id, {})
        result = used.get(key) or entries.get(key)
        if result is None:
            self.misses += 1
            result = self._parse(data, path)
        else:
            self.hits += 1
        used[key] = result
        return result

    @staticmethod
    def _parse(data: bytes, path: Path) -> WrkResult:
        try:
            return parse_wrk(parse.decode_text(data))  # as parse_wrk_file reads it
        except parse.RawFormatError as e:
            raise e.at(path) from None

    def _file(self, run_id: str) -> Path:
        assert self.directory is not None
        # Run ids come from raw files: one that is not a plain name is hashed.
        name = run_id if _PLAIN.fullmatch(run_id) else hashlib.sha256(run_id.encode()).hexdigest()
        return self.directory / f"{name}.pickle"

    def _load(self, run_id: str) -> dict[str, WrkResult]:
        try:
            with open(self._file(run_id), "rb") as f:
                doc = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, TypeError):
            return {}  # no cache yet, or one from another version of the code: rebuilt
        ok = isinstance(doc, dict) and doc.get("format") == _FORMAT
        if not ok or doc.get("parser") != self.version:
            return {}
        entries = doc.get("entries")
        return entries if isinstance(entries, dict) else {}

    def save(self) -> None:
        """Write the runs whose entries changed (new files parsed, or files gone)."""
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for run_id, used in self._used.items():
            if used.keys() == self._runs.get(run_id, {}).keys():
                continue  # nothing new: leave the file (and its mtime) alone
            path = self._file(run_id)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
            doc = {"format": _FORMAT, "parser": self.version, "entries": used}
            with open(tmp, "wb") as f:
                pickle.dump(doc, f, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(path)  # atomic: a reader never sees half a cache file
            self._runs[run_id] = dict(used)
