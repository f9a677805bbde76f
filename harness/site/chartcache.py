"""Site stage 3: chart specs -> SVG files, drawing only the charts not drawn before.

A chart's SVG depends only on its spec (plain data) and on the drawing code, so both
are hashed: `.harness-cache/charts/<sha256>.svg` holds every chart drawn, and a build copies
the ones it needs into docs/ and draws only the missing ones (`ChartDrawer`, in the
build's worker processes of `harness.site.pool`, which alone import matplotlib). A rebuild
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
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from harness.figures.draw import draw
from harness.figures.specs import AnySpec
from harness.paths import HARNESS
from harness.site.pool import Job, Workers

# The modules that draw: a change to either redraws every chart.
DRAWING_CODE = tuple(
    HARNESS / "figures" / f for f in ("specs.py", "style.py", "draw.py", "bars.py", "latency.py")
)
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
    for path in DRAWING_CODE:
        h.update(path.read_bytes())
    return h.hexdigest()


def chart_key(spec: AnySpec, version: str) -> str:
    """sha256 of what is drawn (not the file name or alt text) and of the drawing code."""
    # repr of frozen dataclasses of tuples, floats and strings is stable across runs.
    data = repr(dataclasses.replace(spec, name="", alt=""))
    return hashlib.sha256(f"{version}\n{data}".encode()).hexdigest()


class ChartDrawer:
    """Draws each chart as it is planned (`add`), in `workers`, and puts them in place (`finish`).

    With `cache_dir`, a chart is drawn only when no build drew it before, and at most
    once per build; without, every chart is drawn straight into `out_dir`.
    """

    def __init__(self, workers: Workers, out_dir: Path, cache_dir: Path | None) -> None:
        self.workers = workers
        self.out_dir = out_dir
        self.cache_dir = cache_dir
        self.specs: list[AnySpec] = []
        self.keys: list[str] = []
        self.pending: dict[str, Job[Path]] = {}
        self._version = drawing_version() if cache_dir is not None else ""

    def add(self, spec: AnySpec) -> None:
        """Start drawing `spec` unless done before; `out_dir/<name>` exists from now on,
        empty until `finish` (so a site generator can list it meanwhile)."""
        self.specs.append(spec)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / spec.name).touch()
        if self.cache_dir is None:
            job = self.workers.submit(draw, spec, self.out_dir / spec.name)
            self.pending[spec.name] = job
            return
        key = chart_key(spec, self._version)
        self.keys.append(key)
        cached = self.cache_dir / f"{key}.svg"
        if key in self.pending or cached.is_file():
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # draw() writes under a temporary name and renames: a build that is interrupted
        # never leaves half an SVG in the cache.
        named = dataclasses.replace(spec, name=cached.name)
        self.pending[key] = self.workers.submit(draw, named, cached)

    def finish(self) -> ChartReport:
        """Wait for the charts still being drawn; every chart is then in `out_dir`."""
        for future in self.pending.values():
            future.result()
        if self.cache_dir is not None and self.specs:
            now = time.time()
            for spec, key in zip(self.specs, self.keys, strict=True):
                cached = self.cache_dir / f"{key}.svg"
                shutil.copyfile(cached, self.out_dir / spec.name)
                os.utime(cached, (now, now))  # in use: keep it
            _prune(self.cache_dir, now)
        return ChartReport(drawn=len(self.pending), reused=len(self.specs) - len(self.pending))


def _prune(cache_dir: Path, now: float) -> None:
    """Delete entries unused for KEEP_UNUSED_S: the cache follows raw/, it does not grow."""
    for entry in os.scandir(cache_dir):
        if entry.name.endswith(".svg") and entry.stat().st_mtime < now - KEEP_UNUSED_S:
            Path(entry.path).unlink(missing_ok=True)
