"""Site stage 5: raw/ -> docs/ -> site/, the orchestration behind `invoke build-site`.

Reads only raw/: loads the tidy table (`harness.tables.dataset`), plans pages and charts
(`harness.pages.plan`, plus comparisons and the perf page) and writes the data downloads
(`harness.site.downloads`), while worker processes (`harness.site.pool`) draw each chart as it
is planned (`harness.figures.draw`), zip the raw files and render the markdown
(`harness.pages.render`); then builds the site with the engine (`harness.site.engine`)
from one generated config (`harness.site.config`). mkdocs, in this process, lists docs/
while the pages are rendered and converts them while the last charts are drawn (each
file exists, empty, until it is written); Zensical starts once docs/ is complete.
Generated files go to `docs/index.md` and `docs/results/` only, which are wiped first;
hand-written pages and vendored assets are never touched. With a cache
(`harness.site.cache`), unchanged inputs skip straight to mkdocs, and parsed outputs,
per-run tables, charts and zips are reused by content.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.pages import render as pages
from harness.pages.context import (
    FIGURES,
    LATENCY,
    RUNS,
    SERVERS,
    SiteError,
)
from harness.pages.perfpage import PERF_JSON, plan_perf
from harness.paths import GOLDEN_DIR, GOLDEN_RAW
from harness.raw.records import read_cell, read_run
from harness.site import rawcheck
from harness.site.buildrecord import record_build
from harness.site.cache import CACHE_NAME, BuildCache
from harness.site.config import check_site_url, config_path, write_config
from harness.site.downloads import export_run
from harness.site.engine import DEFAULT_ENGINE, build_strict, build_zensical, check_engine
from harness.site.pool import Workers

GENERATED = ("index.md", "results")  # relative to docs/; rebuilt on every build


def read_runs(raw_dir: Path) -> list[dict[str, Any]]:
    """Every run record under raw_dir (harness/raw/records.py), by run id, as the plain
    mappings the page contexts take."""
    runs = [read_run(p).as_dict() for p in sorted(raw_dir.glob("*/run.json"))]
    return sorted(runs, key=lambda r: str(r.get("run_id")))


def read_cells(run_dir: Path) -> list[dict[str, Any]]:
    """The cell records of one run (`c<N>-r<k>.json`, not the Lua reports)."""
    return [
        read_cell(path).as_dict()
        for path in sorted(run_dir.glob("*/*/*/c*-r*.json"))
        if path.name.count(".") == 1  # c10-r1.json, not c10-r1.lua.json
    ]


@dataclass
class Pending:
    """What completes docs/ while worker processes do it: `pages` must run before the
    pages are read (rendered markdown), `files` before the other files are (charts,
    zips, the build stamp). Until then each such file exists, empty."""

    pages: list[Callable[[], object]] = field(default_factory=list)
    files: list[Callable[[], object]] = field(default_factory=list)


def generate_docs(
    raw_dir: Path,
    docs_dir: Path,
    runs: str = "latest",
    draw: bool = True,
    compare: Sequence[tuple[str, str]] = (),
    cache: BuildCache | None = None,
    workers: Workers | None = None,
    pending: Pending | None = None,
) -> dict[str, list[str]]:
    """Write the generated pages, charts and downloads; return the nav additions.

    `compare`: (run A, run B) pairs to compare besides the newest two of one shape.
    This process plans; worker processes (`workers`, or a pool of its own) draw each
    chart as it is planned, zip the raw files and render the pages.
    With `pending`, what waits for them is left there for the caller (which starts
    mkdocs meanwhile); without, it is done before returning.
    """
    cache = cache or BuildCache(None)
    if workers is None or pending is None:
        with Workers(2, warm_up=draw) if workers is None else nullcontext(workers) as pool:
            steps = Pending()
            nav = generate_docs(raw_dir, docs_dir, runs, draw, compare, cache, pool, steps)
            for step in [*steps.pages, *steps.files]:
                step()
        return nav
    # The workers start now, so they are ready (the pages are theirs to render, and in a
    # cold build the tables too) while this process imports pandas. They import
    # matplotlib for the charts only when they will draw every chart: with some in the
    # chart cache, a worker imports it when it draws one, and with all of them, never.
    workers.start(warm_up=draw and cache.charts_cold(), tables=cache.tables_cold(raw_dir))
    # Imported here: pandas and the planners are needed only when docs/ is regenerated.
    from harness.pages.comparepage import COMPARE, plan_compare, with_compared
    from harness.pages.plan import plan_site

    every_run, bad_runs = rawcheck.readable_runs(raw_dir)
    chosen, subject = rawcheck.select_readable(every_run, runs, bad_runs)
    chosen = with_compared(chosen, every_run, compare)
    # All runs (comparisons need them); the chosen ones exported for the Data page.
    everything = cache.load(raw_dir, workers, [r["run_id"] for r in chosen], skip_bad=True)
    table = everything[everything["run_id"].isin([r["run_id"] for r in chosen])]
    if not (table["run_id"] == subject["run_id"]).any():
        raise SiteError(f"run {subject['run_id']} has no recorded cell yet")
    for name in GENERATED:
        target = docs_dir / name
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    zips = cache.directory / "zips" if cache.directory else None
    zipped: list[Callable[[], object]] = []
    downloads = {
        r["run_id"]: export_run(
            table,
            raw_dir,
            r["run_id"],
            docs_dir,
            zips,
            workers,
            zipped,
            cache.listings,
            cache.exported(r["run_id"]),
        )
        for r in chosen
    }
    drawer = cache.drawer(workers, docs_dir / FIGURES) if draw else None
    # What cannot be read is left out and listed (harness/site/rawcheck.py).
    cells, calibrations, timed, unreadable = rawcheck.plan_inputs(
        raw_dir, subject["run_id"], table, everything, bad_runs
    )
    plan = plan_site(
        chosen,
        subject,
        table,
        cells,
        downloads,
        calibrations,
        timed,
        on_chart=drawer.add if drawer else None,
        unreadable=unreadable,
    )
    compared = plan_compare(plan.pages, every_run, everything, compare, chosen, subject)
    plan_perf(plan.pages, docs_dir)
    # The pages go before the charts still waiting: mkdocs reads them first.
    for part in _shares(plan.pages, workers.processes):
        for rel in part:
            (docs_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (docs_dir / rel).touch()
        pending.pages.append(workers.submit(pages.write_pages, part, docs_dir, urgent=True).result)
    cache.lap("plan")
    if drawer is not None:
        pending.files.append(lambda: cache.drawn(drawer))  # waits for the charts
    pending.files.extend(zipped)
    return {
        SERVERS: sorted(p for p in plan.pages if p.startswith("results/servers/") and p != SERVERS),
        RUNS: sorted(
            (p for p in plan.pages if p.startswith("results/runs/") and p != RUNS), reverse=True
        ),
        LATENCY: sorted(
            (p for p in plan.pages if p.startswith("results/latency/") and p != LATENCY),
            reverse=True,
        ),
        COMPARE: compared,
        rawcheck.UNREADABLE: rawcheck.for_nav(unreadable),
    }


def _shares(planned: Mapping[str, tuple[str, Any]], parts: int) -> list[dict[str, tuple[str, Any]]]:
    """The pages split in up to `parts` shares of about equal size, the pages of one
    template in one share (each worker compiles the templates it renders)."""
    by_template: dict[str, dict[str, tuple[str, Any]]] = {}
    for rel, (template, ctx) in planned.items():
        by_template.setdefault(template, {})[rel] = (template, ctx)
    shares: list[dict[str, tuple[str, Any]]] = [{} for _ in range(max(1, parts))]
    sizes = [0] * len(shares)
    weight = {t: len(pickle.dumps(group)) for t, group in by_template.items()}
    for template in sorted(by_template, key=lambda t: (-weight[t], t)):
        least = sizes.index(min(sizes))
        shares[least].update(by_template[template])
        sizes[least] += weight[template]
    return [share for share in shares if share]


def mkdocs(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", *args],
        env=env,
        text=True,
        capture_output=args[0] == "build",
        check=False,
    )


def build_site(
    raw_dir: Path,
    docs_dir: Path,
    site_dir: Path,
    runs: str = "latest",
    compare: Sequence[tuple[str, str]] = (),
    cache_dir: Path | None = None,
    engine: str = DEFAULT_ENGINE,
    strict_raw: bool = False,
    note: Callable[[str], None] | None = None,
    site_url: str | None = None,
) -> Path:
    """raw/ -> generated docs -> a strict build by `engine` into site_dir; returns site_dir.

    `site_url` (https://org.github.io/project/): 404.html links under its path and the
    sitemap lists every page; without it (`note` says so) neither works under a path.
    The build records it in site/ (harness/site/buildrecord.py).

    Caches live in `cache_dir` (default: `.harness-cache/` beside docs/); when raw/, the
    code and the options are as at the last build, docs/ is kept and only the engine
    runs. mkdocs starts while the pages are rendered (harness/site/engine.py); Zensical,
    which takes no plugin, once docs/ is complete. Raw files that cannot be read are
    left out, shown on the site and passed to `note`; with `strict_raw` they fail the
    build instead (harness/site/rawcheck.py).
    """
    raw_dir, docs_dir = Path(raw_dir), Path(docs_dir)
    site_url = check_site_url(site_url) if site_url else None
    check_engine(engine, config_path(docs_dir).parent, Path(site_dir))
    cache = BuildCache(Path(cache_dir or docs_dir.resolve().parent / CACHE_NAME))
    with Workers(2) as workers:
        pending = Pending()

        def complete(steps: list[Callable[[], object]], before: str | None, after: str) -> None:
            if not steps:
                return
            if before is not None:
                cache.lap(before)  # what mkdocs did meanwhile
            while steps:
                steps.pop(0)()
            cache.lap(after)  # how long mkdocs then waited

        extra = cache.generate(
            raw_dir,
            docs_dir,
            {"runs": runs, "compare": list(compare)},
            [docs_dir / PERF_JSON],
            lambda: generate_docs(
                raw_dir,
                docs_dir,
                runs,
                compare=compare,
                cache=cache,
                workers=workers,
                pending=pending,
            ),
            pending.files,  # the stamp last, once docs/ is complete
        )
        extra = rawcheck.check_unreadable(extra, strict_raw, note)
        config = write_config(docs_dir, Path(site_dir), extra, site_url=site_url)
        try:
            if engine == "zensical":
                complete(pending.pages, None, "pages")  # how long it waited for them
                complete(pending.files, None, "files")
                build_zensical(config)
            else:
                # mkdocs starts (imports, config, listing docs/) while the pages are
                # rendered, and reads and converts them while the charts are drawn.
                build_strict(
                    config,
                    before_read=lambda: complete(pending.pages, "mkdocs_start", "pages"),
                    before_copy=lambda: complete(pending.files, "mkdocs_read", "files"),
                )
            for step in [*pending.pages, *pending.files]:  # if mkdocs did not ask
                step()
            record_build(Path(site_dir), raw_dir, runs, compare, engine, site_url)
            if site_url is None and note is not None:
                note("no --site-url: 404.html works only at a domain's root; no sitemap")
        finally:
            cache.lap(engine)
            cache.log["engine"] = engine
            cache.write_log()
    return Path(site_dir)


def serve_site(
    raw_dir: Path,
    docs_dir: Path,
    site_dir: Path,
    runs: str = "latest",
    addr: str = "127.0.0.1:8000",
) -> int:
    """Generate the docs and preview them with `mkdocs serve` (until interrupted)."""
    extra = generate_docs(Path(raw_dir), Path(docs_dir), runs)
    extra = rawcheck.check_unreadable(extra, False, None)
    config = write_config(Path(docs_dir), Path(site_dir), extra)
    return mkdocs("serve", "--config-file", str(config), "--dev-addr", addr).returncode


def golden_pages(raw_dir: Path, work_dir: Path) -> dict[str, str]:
    """The generated markdown of the fixture run (no charts drawn): path -> text."""
    generate_docs(raw_dir, work_dir, runs="all", draw=False)
    return {
        p.relative_to(work_dir).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(work_dir.rglob("*.md"))
    }


def update_golden(raw_dir: Path = GOLDEN_RAW, golden_dir: Path = GOLDEN_DIR) -> list[Path]:
    """Regenerate tests/golden/ from the fixture raw tree; review the diff like code."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rendered = golden_pages(raw_dir, Path(tmp))
    shutil.rmtree(golden_dir, ignore_errors=True)
    written = []
    for rel, text in rendered.items():
        path = golden_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
