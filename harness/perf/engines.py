"""Perf stage: one site engine's build times over a synthetic raw tree.

`measure_engine(engine, raw, root)` works in a folder of its own (docs/, site/, the
harness's cache and the engine's), so each engine's cold build starts from nothing. It
times a cold `build-site --engine E` (empty docs/ and caches), then alternately a
`build-site` with nothing changed and a bare build by the engine of the same docs/ and
config: the floor a rebuild cannot beat. Zensical keeps a cache of its own, so it has
a second floor for the cold build: its bare build with that cache emptied (`--clean`);
mkdocs keeps none, so its one floor serves both. Builds run as child processes, so
their peak RSS (the engine and the build's workers included) comes from wait4().
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

from harness.perf.probe import hand_written_docs, timed

_BUILD = (
    "import sys; from pathlib import Path; from harness.site.build import build_site; "
    "build_site(*map(Path, sys.argv[1:4]), runs='all', cache_dir=Path(sys.argv[4]), "
    "engine=sys.argv[5])"
)


def floor_argv(engine: str, config: Path, clean: bool = False) -> list[str]:
    """The bare build of `config` by `engine`, as a user would type it."""
    if engine == "mkdocs":
        return [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--clean",
            "-q",
            "-f",
            str(config),
        ]
    argv = [sys.executable, "-m", "zensical", "build", "--strict", "-f", str(config)]
    return [*argv, "--clean"] if clean else argv


def measure_engine(engine: str, raw: Path, root: Path, repeats: int = 3) -> dict[str, Any]:
    """Cold, no-change and floor figures of `engine` building `raw` in `root` (new)."""
    from harness.site.cache import CACHE_NAME, read_log
    from harness.site.config import GENERATED_CONFIG

    docs, site, cache = hand_written_docs(root / "docs"), root / "site", root / CACHE_NAME
    build = [sys.executable, "-c", _BUILD, str(raw), str(docs), str(site), str(cache), engine]
    cold = timed(build)
    cold_log = read_log(cache)
    floor = floor_argv(engine, root / GENERATED_CONFIG)
    nochange, floors = [], []
    for _ in range(repeats):
        nochange.append(timed(build))
        floors.append(timed(floor))
    again = read_log(cache)
    cold_floor = (
        timed(floor_argv(engine, root / GENERATED_CONFIG, clean=True))
        if engine != "mkdocs"
        else None
    )
    floor_s = statistics.median(t["wall_s"] for t in floors)
    return {
        "build_cold_s": cold["wall_s"],
        "build_cold_cpu_s": cold["cpu_s"],
        "build_nochange_s": statistics.median(t["wall_s"] for t in nochange),
        "floor_s": floor_s,
        "floor_cold_s": cold_floor["wall_s"] if cold_floor else floor_s,
        "build_nochange_samples_s": [t["wall_s"] for t in nochange],
        "floor_samples_s": [t["wall_s"] for t in floors],
        "build_nochange_cpu_s": statistics.median(t["cpu_s"] for t in nochange),
        "floor_cpu_s": statistics.median(t["cpu_s"] for t in floors),
        "peak_rss_mb": max(t["rss_mb"] for t in [cold, *nochange]),
        "build_cold_rss_mb": cold["rss_mb"],
        "build_nochange_rss_mb": max(t["rss_mb"] for t in nochange),
        "floor_rss_mb": max(t["rss_mb"] for t in floors),
        "charts_drawn_cold": cold_log.get("charts_drawn"),
        "charts_drawn_nochange": again.get("charts_drawn"),
        "nochange_generated": again.get("generated"),
        "cold_seconds": cold_log.get("seconds"),
        "docs_files": sum(1 for p in docs.rglob("*") if p.is_file()),
    }
