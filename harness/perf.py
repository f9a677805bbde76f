"""Perf stage: measure the harness itself -> docs/about/perf.json, behind `invoke perf`.

For each size, writes a synthetic raw tree (`harness.synth`) to a temp dir and times,
in this order: parsing every wrk output, building the table with and without the
parse cache, a cold `build-site` (empty docs/ and caches), a `build-site` with nothing
changed, and a bare `mkdocs build` of the same docs/ (the floor a rebuild cannot beat).
Builds run as subprocesses, so their peak RSS (including mkdocs and the chart
workers) comes from wait4(). Optionally it runs one real 10 s cell with `invoke bench`
and compares its wall time with its configured time. Targets are judged here, once,
and stored with the figures; the site's page only prints them.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import synth

REPO = Path(__file__).resolve().parents[1]
FORMAT_VERSION = 1
STUDY_SIZE = synth.RUN_CELLS
BENCH_DURATION_S = 10
# The targets for this 2-core machine (issue 8). Each is judged against a figure and,
# where it has one, its floor from the same run.
PARSE_TARGET_FILES = 10_000
PARSE_TARGET_S = 1.0
COLD_TARGET_S = 10.0
NOCHANGE_TARGET_RATIO = 1.3
OVERHEAD_TARGET = 0.03
RSS_TARGET_MB = 500.0
_BUILD = (
    "import sys; from pathlib import Path; from harness.site import build_site; "
    "build_site(*map(Path, sys.argv[1:4]), runs='all', cache_dir=Path(sys.argv[4]))"
)


def timed(argv: Sequence[str], cwd: Path = REPO) -> tuple[float, float]:
    """Run a command to completion: (wall seconds, peak RSS in MB of it and its children)."""
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
    return seconds, usage.ru_maxrss / 1024


def hand_written_docs(dest: Path) -> Path:
    """A copy of docs/ without what a build generates (as the tests do)."""
    top = REPO / "docs"

    def generated(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if Path(folder) == top and n in ("index.md", "results")]

    shutil.copytree(top, dest, ignore=generated)
    return dest


def measure_size(cells: int, work: Path) -> dict[str, Any]:
    """Every figure of one size, measured in `work` (a fresh temp dir)."""
    from harness.dataset import load_runs
    from harness.parse import parse_wrk_file
    from harness.parsecache import ParseCache
    from harness.sitecache import read_log

    raw, docs, site, cache = work / "raw", work / "docs", work / "site", work / ".cache"
    runs = synth.write_tree(raw, cells)
    outputs = sorted(p for p in raw.glob("*/*/*/*/c*-r*.txt") if p.name.count(".") == 1)
    start = time.perf_counter()
    for path in outputs:
        parse_wrk_file(path)
    parse_s = time.perf_counter() - start
    start = time.perf_counter()
    load_runs(raw)
    table_s = time.perf_counter() - start
    load_runs(raw, cache=ParseCache(work / "warm-parse"))  # fills the cache
    start = time.perf_counter()
    load_runs(raw, cache=ParseCache(work / "warm-parse"))
    table_cached_s = time.perf_counter() - start
    hand_written_docs(docs)
    build = [sys.executable, "-c", _BUILD, str(raw), str(docs), str(site), str(cache)]
    cold_s, cold_rss = timed(build)
    cold = read_log(cache)
    nochange_s, nochange_rss = timed(build)
    again = read_log(cache)
    config = work / ".mkdocs.generated.yml"
    floor_s, _ = timed(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean", "-q", "-f", str(config)]
    )
    return {
        "cells": cells,
        "runs": len(runs),
        "parsed_files": len(outputs),
        "parse_s": round(parse_s, 3),
        "parse_files_per_s": round(len(outputs) / parse_s, 1) if parse_s else None,
        "table_s": round(table_s, 3),
        "table_cached_s": round(table_cached_s, 3),
        "build_cold_s": round(cold_s, 3),
        "build_nochange_s": round(nochange_s, 3),
        "mkdocs_floor_s": round(floor_s, 3),
        "peak_rss_mb": round(max(cold_rss, nochange_rss), 1),
        "charts_drawn_cold": cold.get("charts_drawn"),
        "charts_drawn_nochange": again.get("charts_drawn"),
        "nochange_generated": again.get("generated"),
        "cold_seconds": cold.get("seconds"),
        "docs_files": sum(1 for p in docs.rglob("*") if p.is_file()),
    }


def measure_harness(work: Path, duration_s: int = BENCH_DURATION_S) -> dict[str, Any]:
    """One real cell (`invoke bench --profile smoke`): its wall time against its settings."""
    out = work / "bench-raw"
    argv = [sys.executable, "-m", "invoke", "bench", "--profile", "smoke"]
    argv += ["--duration", f"{duration_s}s", "--warmup", "0s", "--out", str(out), "--new"]
    process_s, _ = timed(argv)
    sidecar = next(p for p in out.glob("*/*/*/*/c*-r*.json") if p.name.count(".") == 1)
    cell = json.loads(sidecar.read_text(encoding="utf-8"))

    def at(key: str) -> datetime:
        return datetime.fromisoformat(str(cell[key]).replace("Z", "+00:00"))

    configured = float(cell.get("duration_s") or 0) + float(cell.get("warmup_s") or 0)
    wall = (at("ended_at") - at("started_at")).total_seconds()
    return {
        "cell": "/".join(str(cell[k]) for k in ("server", "app", "workload"))
        + f"/c{cell['connections']}",
        "status": cell.get("status"),
        "configured_s": configured,
        "cell_wall_s": round(wall, 3),
        "process_wall_s": round(process_s, 3),
        "overhead_ratio": round(wall / configured - 1, 4) if configured else None,
    }


def _host() -> dict[str, Any]:
    from harness.hostinfo import cpu_model

    return {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def _row(what: str, target: str, measured: str, floor: str, met: bool | None) -> dict[str, str]:
    return {
        "what": what,
        "target": target,
        "measured": measured,
        "floor": floor,
        "met": "not measured" if met is None else "yes" if met else "no",
    }


def judge(sizes: Sequence[dict[str, Any]], harness: dict[str, Any] | None) -> list[dict[str, str]]:
    """The issue's targets against what was measured (a size not measured: not judged)."""
    rows = []
    big = max(sizes, key=lambda s: s["cells"]) if sizes else None
    if big is not None and big.get("parse_files_per_s"):
        # Extrapolated linearly from the largest size: parsing is per file.
        needed = PARSE_TARGET_FILES / big["parse_files_per_s"]
        rows.append(
            _row(
                f"parse {PARSE_TARGET_FILES:,} wrk outputs (from {big['parsed_files']:,})",
                f"≤ {PARSE_TARGET_S:g} s",
                f"{needed:.2f} s",
                f"{PARSE_TARGET_FILES / (big['parsed_files'] / big['table_cached_s']):.2f} s "
                "for the whole table with the parse cache",
                needed <= PARSE_TARGET_S,
            )
        )
    study = next((s for s in sizes if s["cells"] == STUDY_SIZE), None)
    rows.append(
        _row(
            f"cold build-site of the study ({STUDY_SIZE} cells)",
            f"≤ {COLD_TARGET_S:g} s",
            f"{study['build_cold_s']:.2f} s" if study else "—",
            f"{study['mkdocs_floor_s']:.2f} s (bare mkdocs)" if study else "—",
            study["build_cold_s"] <= COLD_TARGET_S if study else None,
        )
    )
    for s in sizes:
        ratio = s["build_nochange_s"] / s["mkdocs_floor_s"]
        rows.append(
            _row(
                f"no-change build-site, {s['cells']:,} cells",
                f"≤ {NOCHANGE_TARGET_RATIO:g} × floor",
                f"{s['build_nochange_s']:.2f} s ({ratio:.2f} ×)",
                f"{s['mkdocs_floor_s']:.2f} s (bare mkdocs)",
                ratio <= NOCHANGE_TARGET_RATIO,
            )
        )
    if big is not None:
        rows.append(
            _row(
                f"peak RSS of build-site, {big['cells']:,} cells",
                f"≤ {RSS_TARGET_MB:g} MB",
                f"{big['peak_rss_mb']:.0f} MB",
                "—",
                big["peak_rss_mb"] <= RSS_TARGET_MB,
            )
        )
    ratio = (harness or {}).get("overhead_ratio")
    rows.append(
        _row(
            f"harness overhead on a {BENCH_DURATION_S} s cell",
            f"≤ {OVERHEAD_TARGET:.0%}",
            f"{ratio:.1%}" if ratio is not None else "—",
            f"{harness['configured_s']:g} s configured" if harness else "—",
            ratio <= OVERHEAD_TARGET if ratio is not None else None,
        )
    )
    return rows


def run_perf(sizes: Sequence[int], out: Path, bench: bool = True) -> dict[str, Any]:
    """Measure every size (and one real cell when `bench`), write perf.json to `out`."""
    load = [round(x, 2) for x in os.getloadavg()]
    measured = []
    for cells in sizes:
        with tempfile.TemporaryDirectory(prefix=f"perf-{cells}-") as tmp:
            measured.append(measure_size(cells, Path(tmp)))
    harness = None
    if bench:
        with tempfile.TemporaryDirectory(prefix="perf-bench-") as tmp:
            harness = measure_harness(Path(tmp))
    top = max(measured, key=lambda s: s["cells"]) if measured else {}
    doc: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": _host(),
        "load_average_before": load,
        # The top-level figures are those of the largest size measured.
        "cells": top.get("cells"),
        **{
            k: top.get(k)
            for k in (
                "parse_files_per_s",
                "table_s",
                "build_cold_s",
                "build_nochange_s",
                "mkdocs_floor_s",
                "peak_rss_mb",
            )
        },
        "harness_overhead_ratio": (harness or {}).get("overhead_ratio"),
        "sizes": measured,
        "harness": harness,
        "targets": judge(measured, harness),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.part")
    tmp_out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    tmp_out.replace(out)
    return doc
