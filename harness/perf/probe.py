"""Perf stage: the probes `harness.perf.run` measures with.

`timed` runs a command and returns its wall time, CPU time and peak RSS (children
included, from wait4); `measure_parse` times the wrk parser, its floor (reading the
files) and the parse cache over at least PARSE_TARGET_FILES files; `measure_table` the
table, from scratch and as a build makes it after a new run, with its floor (reading
the files); `hand_written_docs` copies docs/ without what a build generates, for builds
in a temp dir.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.paths import REPO_ROOT as REPO  # noqa: E402
from harness.perf.targets import PARSE_TARGET_FILES


def timed(argv: Sequence[str], cwd: Path = REPO) -> dict[str, float]:
    """Run a command to completion: wall seconds, CPU seconds (user + system) and peak RSS
    in MB, its children (mkdocs, the chart workers) included."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(REPO)}
    # Output to a file, not a pipe: nothing reads a pipe while wait4() blocks.
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=log, stderr=log)
        # wait4 gives this child's rusage, which includes its own waited-for children
        # (mkdocs, the chart workers): ru_maxrss is the largest of them, in KiB on Linux.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(argv[:3])}… exited {code}:\n{tail}")
    return {
        "wall_s": round(seconds, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def hand_written_docs(dest: Path) -> Path:
    """A copy of docs/ without what a build generates (as the tests do)."""
    top = REPO / "docs"

    def generated(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if Path(folder) == top and n in ("index.md", "results")]

    shutil.copytree(top, dest, ignore=generated)
    return dest


def measure_parse(outputs: Sequence[Path]) -> dict[str, Any]:
    """Parse throughput over at least PARSE_TARGET_FILES parses (the files again if fewer),
    with its floor: only reading the same files."""
    from harness.parse.wrk import parse_wrk, parse_wrk_file
    from harness.tables.parsecache import ParseCache

    rounds = max(1, -(-PARSE_TARGET_FILES // max(len(outputs), 1)))
    start = time.perf_counter()
    for _ in range(rounds):
        for path in outputs:
            path.read_bytes()
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(rounds):
        for path in outputs:
            parse_wrk_file(path)
    parse_s = time.perf_counter() - start
    # What a build pays for a file parsed before: read, hash, look up
    # (harness/tables/parsecache.py).
    with tempfile.TemporaryDirectory() as tmp:
        cache = ParseCache(Path(tmp))
        for path in outputs:
            cache.parse(path, "perf")
        start = time.perf_counter()
        for _ in range(rounds):
            for path in outputs:
                cache.parse(path, "perf")
        cached_s = time.perf_counter() - start
    texts = [p.read_text() for p in outputs]
    start = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            parse_wrk(text)
    grammar_s = time.perf_counter() - start
    n = rounds * len(outputs)
    return {
        "parsed_files": n,
        "parse_s": round(parse_s, 3),
        "parse_files_per_s": round(n / parse_s, 1) if parse_s else None,
        "parse_grammar_only_files_per_s": round(n / grammar_s, 1) if grammar_s else None,
        "parse_cached_files_per_s": round(n / cached_s, 1) if cached_s else None,
        "read_only_files_per_s": round(n / read_s, 1) if read_s else None,
    }


def measure_table(raw: Path, tables: Path | None, work: Path) -> dict[str, Any]:
    """The table of `raw`: `load_runs` from scratch in this process, again with the parse
    cache warm, and as a build makes it after one new run (`tables`: the per-run table
    cache a cold build left; the newest run's entry removed), with its floor: reading
    every file the table reads."""
    from harness.site.fingerprint import Listings
    from harness.site.tablecache import TableCache
    from harness.tables.dataset import load_runs
    from harness.tables.parsecache import ParseCache

    read = [p for p in raw.glob("*/**/*") if p.is_file() and not p.name.endswith(".warmup.txt")]
    start = time.perf_counter()
    for path in read:
        path.read_bytes()
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    load_runs(raw)
    table_s = time.perf_counter() - start
    load_runs(raw, cache=ParseCache(work / "warm-parse"))  # fills the cache
    start = time.perf_counter()
    load_runs(raw, cache=ParseCache(work / "warm-parse"))
    table_cached_s = time.perf_counter() - start
    new_run_s = None
    if tables is not None and tables.is_dir():
        copy = shutil.copytree(tables, work / "tables-new-run")
        cache = TableCache(copy, None, Listings())
        newest = max(p for p in raw.iterdir() if p.is_dir())
        cache.forget(newest)  # as if that run had just been measured
        start = time.perf_counter()
        cache.load(raw)
        new_run_s = time.perf_counter() - start
    return {
        "table_s": round(table_s, 3),
        "table_cached_s": round(table_cached_s, 3),
        "table_new_run_s": round(new_run_s, 3) if new_run_s is not None else None,
        "table_read_s": round(read_s, 4),
        "table_files": len(read),
    }
