"""Site stage 3: chart specs -> SVG files, drawing only the charts not drawn before.

A chart's SVG depends only on its spec (plain data) and on the drawing code, so both
are hashed: `.cache/charts/<sha256>.svg` holds every chart drawn, and a build copies
the ones it needs into docs/ and draws only the missing ones (through
`harness.figures.draw_all`, which imports matplotlib inside its workers). A rebuild
with nothing changed therefore draws nothing and never imports matplotlib; after a new
run only that run's charts are drawn. Neither the file name nor the alt text is drawn,
so neither is part of the key: the same chart on two pages (the home page's and its
run page's) is drawn once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from harness import figures

HERE = Path(__file__).resolve().parent
# Cache entries no build has used for this long are deleted (each use refreshes mtime).
KEEP_UNUSED_S = 14 * 24 * 3600


@dataclass(frozen=True)
class ChartReport:
    """How a build got its charts: drawn now, or copied from the cache."""

    drawn: int
    reused: int


def drawing_version() -> str:
    """The drawing code and matplotlib's version: a new style redraws every chart."""
    h = hashlib.sha256(metadata.version("matplotlib").encode())
    for path in sorted(HERE.glob("figures*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


def chart_key(spec: figures.ChartSpec | figures.DensitySpec, version: str) -> str:
    """sha256 of what is drawn (not the file name or alt text) and of the drawing code."""
    # repr of frozen dataclasses of tuples, floats and strings is stable across runs.
    data = repr(dataclasses.replace(spec, name="", alt=""))
    return hashlib.sha256(f"{version}\n{data}".encode()).hexdigest()


def draw_cached(
    specs: Sequence[figures.ChartSpec | figures.DensitySpec],
    out_dir: Path,
    cache_dir: Path,
    processes: int = 2,
) -> ChartReport:
    """Put every spec's SVG at `out_dir/<name>`, drawing only what the cache lacks."""
    if not specs:
        return ChartReport(0, 0)
    version = drawing_version()
    keys = [chart_key(s, version) for s in specs]
    cache_dir.mkdir(parents=True, exist_ok=True)
    missing: dict[str, figures.ChartSpec | figures.DensitySpec] = {}
    for spec, key in zip(specs, keys, strict=True):
        if key not in missing and not (cache_dir / f"{key}.svg").is_file():
            missing[key] = dataclasses.replace(spec, name=f"{key}.svg")
    # draw_all writes each file under a temporary name and renames it: a build that is
    # interrupted never leaves half an SVG in the cache.
    figures.draw_all(list(missing.values()), cache_dir, processes=processes)
    out_dir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for spec, key in zip(specs, keys, strict=True):
        cached = cache_dir / f"{key}.svg"
        shutil.copyfile(cached, out_dir / spec.name)
        os.utime(cached, (now, now))  # in use: keep it
    _prune(cache_dir, now)
    return ChartReport(drawn=len(missing), reused=len(specs) - len(missing))


def _prune(cache_dir: Path, now: float) -> None:
    """Delete entries unused for KEEP_UNUSED_S: the cache follows raw/, it does not grow."""
    for entry in os.scandir(cache_dir):
        if entry.name.endswith(".svg") and entry.stat().st_mtime < now - KEEP_UNUSED_S:
            Path(entry.path).unlink(missing_ok=True)
