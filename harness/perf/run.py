"""Perf stage: measure the harness itself -> docs/about/perf.json, behind `invoke perf`.

For each size, in a fresh process, writes a synthetic raw tree (`harness.perf.synth`) to a
temp dir and times, for each site engine (mkdocs, and Zensical when installed), a cold
`build-site`, then alternately a `build-site` with nothing changed and a bare build by
the engine (`harness.perf.engines`); then parsing every wrk output, and the table from
scratch, with the parse cache and after one new run (`harness.perf.probe`). Optionally
it runs real 10 s cells (2 s warm-up + 8 s measured) with `invoke bench` and compares
the cells' wall time with their configured time.
Targets are judged here, once, and stored with the figures; the site's page only
prints them.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.paths import REPO_ROOT as REPO  # noqa: E402
from harness.perf import synth
from harness.perf.engines import measure_engine
from harness.perf.fidelity import (
    FIDELITY_PAIRS,
    fidelity_matrix,
    measure_fidelity,
    measure_time_to_answer,
)
from harness.perf.probe import measure_parse, measure_table, timed
from harness.perf.targets import BENCH_CONNECTIONS, BENCH_DURATION_S, BENCH_WARMUP_S, judge
from harness.perf.together import measure_together
from harness.raw.records import read_cell

FORMAT_VERSION = 2  # 2: both engines (`zensical_*`), table figures, docs without raw copies
ENGINES = ("mkdocs", "zensical")

_MEASURE = (
    "import json, sys; from pathlib import Path; from harness.perf.run import measure_size; "
    "print(json.dumps(measure_size(int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))))"
)


def measure_size(cells: int, work: Path, repeats: int = 3) -> dict[str, Any]:
    """Every figure of one size, measured in `work` (a fresh temp dir).

    Each engine builds in a folder of its own (`harness.perf.engines`): mkdocs's figures
    keep their names (`build_cold_s`, `mkdocs_floor_s`, …), Zensical's are prefixed
    `zensical_`. The no-change build and the bare engine build are run `repeats` times,
    alternately, and their medians reported: on a shared machine one sample can be off
    by half.
    """
    import importlib.util

    from harness.site.cache import CACHE_NAME

    raw = work / "raw"
    runs = synth.write_tree(raw, cells)
    # The builds first, while this process is small: a child's peak RSS counts this
    # process's until it execs (vfork), so a big parent would inflate every figure.
    out: dict[str, Any] = {"cells": cells, "runs": len(runs)}
    for engine in ENGINES:
        if engine != "mkdocs" and importlib.util.find_spec(engine) is None:
            out[f"{engine}_not_installed"] = True
            continue
        figures = measure_engine(engine, raw, work / engine, repeats)
        if engine == "mkdocs":  # the default engine: its figures keep their names
            rename = {k: k.replace("floor", "mkdocs_floor") for k in figures if "floor" in k}
            out.update({rename.get(k, k): v for k, v in figures.items()})
        else:
            out.update({f"{engine}_{k}": v for k, v in figures.items()})
    outputs = sorted(p for p in raw.glob("*/*/*/*/c*-r*.txt") if p.name.count(".") == 1)
    out.update(measure_parse(outputs))
    out.update(measure_table(raw, work / "mkdocs" / CACHE_NAME / "tables", work))
    cold = out.get("cold_seconds") or {}
    out["table_build_cold_s"] = cold.get("table")
    return out


def _cell_timing(sidecar: Path) -> dict[str, Any]:
    """One measured cell: its wall time against its configured seconds, and where the
    rest went: the server's start (until it answered), wrk beyond its configured time
    (wrk stops its threads on a 100 ms timer), and the rest (files, sampling, stop)."""
    cell = read_cell(sidecar)

    def at(value: str | None) -> datetime:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))

    warmup = float(cell.warmup_configured_s or 0)
    configured = float(cell.duration_configured_s or 0) + warmup
    wall = (at(cell.ended_at) - at(cell.started_at)).total_seconds()
    lua = sidecar.parent / cell.files.get("lua_json", "")
    wrk_s = round(json.loads(lua.read_text())["duration_us"] / 1e6, 3) if lua.is_file() else None
    ready = cell.server_ready_s
    return {
        "cell": cell.key,
        "status": cell.status,
        "configured_s": configured,
        "cell_wall_s": round(wall, 3),
        "overhead_ratio": round(wall / configured - 1, 4) if configured else None,
        "server_ready_s": ready,
        "wrk_measured_s": wrk_s,
        "other_s": round(wall - (ready or 0) - (wrk_s or 0) - warmup, 3),
    }


def measure_harness(
    work: Path, warmup_s: int = BENCH_WARMUP_S, duration_s: int = BENCH_DURATION_S - BENCH_WARMUP_S
) -> dict[str, Any]:
    """A real short bench: one 10 s cell (2 s warm-up + 8 s measured) per server of the
    quick profile that is installed, each with a fresh server as always. The overhead
    is the run's: the cells' wall time over their configured time, less one. Every cell
    is kept, with where its extra time went."""
    from harness.matrix.build import load_profile
    from harness.matrix.servers import SERVERS
    from harness.matrix.serverspec import check_available

    # Servers not installed here are left out (and named in the figures), not failed.
    quick = [str(s) for s in load_profile("quick")["servers"]]
    missing = {s: why for s in quick if (why := check_available(SERVERS[s]))}
    servers = [s for s in quick if s not in missing]
    out = work / "bench-raw"
    argv = [sys.executable, "-m", "invoke", "bench", "--profile", "smoke"]
    argv += ["--servers", ",".join(servers), "--connections", str(BENCH_CONNECTIONS)]
    argv += ["--duration", f"{duration_s}s", "--warmup", f"{warmup_s}s"]
    argv += ["--out", str(out), "--new"]
    process = timed(argv)
    sidecars = sorted(p for p in out.glob("*/*/*/*/c*-r*.json") if p.name.count(".") == 1)
    cells = [_cell_timing(p) for p in sidecars]
    measured = [c for c in cells if c["status"] == "ok" and c["overhead_ratio"] is not None]
    if not measured:
        raise RuntimeError(f"the perf bench measured no cell: {[c['status'] for c in cells]}")
    configured = sum(c["configured_s"] for c in measured)
    wall = sum(c["cell_wall_s"] for c in measured)
    ready = [c["server_ready_s"] for c in measured if c["server_ready_s"] is not None]
    return {
        "cell": f"{len(measured)} servers × raw/plaintext/c{BENCH_CONNECTIONS}",
        "status": "ok" if len(measured) == len(cells) else f"{len(measured)}/{len(cells)} ok",
        "configured_s": round(configured / len(measured), 3),  # per cell
        "cell_wall_s": round(wall / len(measured), 3),  # per cell
        "overhead_ratio": round(wall / configured - 1, 4),
        "server_ready_s": round(statistics.mean(ready), 3) if ready else None,
        "wrk_measured_s": round(
            statistics.mean(c["wrk_measured_s"] for c in measured if c["wrk_measured_s"]), 3
        ),
        "other_s": round(statistics.mean(c["other_s"] for c in measured), 3),
        "worst_cell": max(measured, key=lambda c: c["overhead_ratio"])["cell"],
        "servers_not_installed": missing,
        "process_wall_s": process["wall_s"],
        "cells": cells,
    }


def _host() -> dict[str, Any]:
    from harness.bench.hostinfo import cpu_model

    return {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def run_perf(
    sizes: Sequence[int],
    out: Path,
    bench: bool = True,
    repeats: int = 3,
    fidelity: bool = False,
    fidelity_pairs: int = FIDELITY_PAIRS,
    answer: bool = False,
    open_loop: bool = False,
    fresh: bool = False,
) -> dict[str, Any]:
    """Measure every size (and one real cell when `bench`), write perf.json to `out`.

    `fidelity`: the harness against a hand-run wrk (harness/perf/fidelity.py);
    `answer`: fixed long cells against --precision on a seed-like subset (~45 min);
    `open_loop`: the open-loop client's highest accurate rate against nginx
    (harness/perf/openloop.py, ~4 minutes). A section not measured now is carried over
    from the perf.json at `out`, with the time it was measured (`carried_over`), unless
    `fresh`."""
    load = [round(x, 2) for x in os.getloadavg()]
    measured = []
    for cells in sizes:
        # Each size in a fresh process, so no size inherits the memory of the one before.
        with tempfile.TemporaryDirectory(prefix=f"perf-{cells}-") as tmp:
            argv = [sys.executable, "-c", _MEASURE, str(cells), tmp, str(repeats)]
            done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"measuring {cells} cells failed:\n{done.stderr[-3000:]}")
            measured.append(json.loads(done.stdout.strip().splitlines()[-1]))
    harness = None
    if bench:
        with tempfile.TemporaryDirectory(prefix="perf-bench-") as tmp:
            harness = measure_harness(Path(tmp))
    fidelity_doc = answer_doc = None
    if fidelity:
        with tempfile.TemporaryDirectory(prefix="perf-fidelity-") as tmp:
            fidelity_doc = measure_fidelity(Path(tmp), max(2, fidelity_pairs))
            # The same question without the machine's drift between the two cells.
            together = measure_together(Path(tmp), fidelity_matrix(), max(2, fidelity_pairs))
            fidelity_doc["together"] = together
    if answer:
        with tempfile.TemporaryDirectory(prefix="perf-answer-") as tmp:
            answer_doc = measure_time_to_answer(Path(tmp))
    open_loop_doc = None
    if open_loop:
        from harness.perf.openloop import measure_open_loop

        open_loop_doc = measure_open_loop()
    top = max(measured, key=lambda s: s["cells"]) if measured else {}
    sections = {"harness": harness, "fidelity": fidelity_doc, "time_to_answer": answer_doc,
                "open_loop": open_loop_doc}  # fmt: skip
    carried = {} if fresh else carry_over(out, sections)
    harness, fidelity_doc = sections["harness"], sections["fidelity"]
    answer_doc, open_loop_doc = sections["time_to_answer"], sections["open_loop"]
    doc: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": _host(),
        "load_average_before": load,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        # The top-level figures are those of the largest size measured.
        "cells": top.get("cells"),
        **{
            k: top.get(k)
            for k in (
                "parse_files_per_s",
                "table_s",
                "table_new_run_s",
                "build_cold_s",
                "build_nochange_s",
                "mkdocs_floor_s",
                "peak_rss_mb",
                "zensical_build_cold_s",
                "zensical_build_nochange_s",
                "zensical_floor_s",
            )
        },
        "harness_overhead_ratio": (harness or {}).get("overhead_ratio"),
        "fidelity_ratio": (fidelity_doc or {}).get("ratio_mean"),
        "fidelity_together_ratio": ((fidelity_doc or {}).get("together") or {}).get("ratio_mean"),
        "sizes": measured,
        "harness": harness,
        "fidelity": fidelity_doc,
        "time_to_answer": answer_doc,
        "open_loop": open_loop_doc,
        "targets": judge(measured, harness, fidelity_doc, answer_doc, carried),
        # Sections this run did not measure, kept from the file it replaces: name -> when
        # they were measured (a 45-minute time_to_answer is not thrown away by a size run).
        "carried_over": carried,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.part")
    tmp_out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    tmp_out.replace(out)
    return doc


def carry_over(out: Path, sections: dict[str, Any]) -> dict[str, str]:
    """Fill the sections of `sections` not measured now (None) from the perf.json at
    `out`, if it has them; return each carried section's name -> when it was measured."""
    try:
        previous = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(previous, dict) or previous.get("format_version") != FORMAT_VERSION:
        return {}
    earlier = previous.get("carried_over") or {}
    carried = {}
    for name, now in sections.items():
        if now is None and previous.get(name):
            sections[name] = previous[name]
            carried[name] = str(earlier.get(name) or previous.get("measured_at") or "unknown")
    return carried
