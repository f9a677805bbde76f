"""Build caches: an unchanged rebuild only runs mkdocs; charts and parses are reused.

Runs on copies of the committed fixture raw tree (real wrk output) with a build cache
of its own per test, and reads what each build did from `<cache>/last-build.json`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.paths import GOLDEN_RAW
from harness.paths import REPO_ROOT as REPO
from harness.perf.probe import hand_written_docs
from harness.site.build import build_site
from harness.site.cache import CACHE_NAME, read_log
from harness.site.pool import Workers
from harness.site.tablecache import TableCache
from harness.tables import parsecache
from harness.tables.dataset import load_runs
from harness.tables.parsecache import ParseCache

pytestmark = pytest.mark.site  # builds the real site: not in `invoke test --fast`

SUBJECT = "20261126T145156Z-fixture"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(GOLDEN_RAW, tmp_path / "raw")
    hand_written_docs(tmp_path / "docs")
    return tmp_path


def build(root: Path) -> dict:
    cache = root / CACHE_NAME
    build_site(root / "raw", root / "docs", root / "site", runs="all", cache_dir=cache)
    return read_log(cache)


def test_unchanged_rebuild_draws_and_generates_nothing(tree: Path) -> None:
    first = build(tree)
    assert first["generated"] and first["charts_drawn"] > 0 and first["parse_misses"] > 0
    home = (tree / "site/index.html").read_bytes()
    second = build(tree)
    assert not second["generated"]
    assert second["charts_drawn"] == 0 and second["parse_misses"] == 0
    assert (tree / "site/index.html").read_bytes() == home  # mkdocs still built it


def test_files_written_meanwhile_are_complete_in_docs_and_site(tree: Path) -> None:
    """Pages, charts and zips written by the workers while mkdocs ran (each an empty file
    until then) are whole in docs/ and in the site, and the same as a build without."""
    from harness.site.build import generate_docs

    log = build(tree)
    assert {"mkdocs_start", "pages", "mkdocs_read", "charts", "mkdocs"} <= set(log["seconds"])
    docs, site = tree / "docs/results", tree / "site/results"
    for top in (docs, site):
        empty = [p for p in top.rglob("*") if p.is_file() and p.stat().st_size == 0]
        assert not empty, empty
    alone = hand_written_docs(tree / "alone")
    generate_docs(tree / "raw", alone, runs="all")  # no cache, no mkdocs: waits for all

    def listed(top: Path) -> list[str]:  # every file but the build stamp
        return sorted(p.relative_to(top).as_posix() for p in top.rglob("[!.]*") if p.is_file())

    assert listed(docs) == listed(alone / "results")
    for name in listed(docs):
        assert (docs / name).read_bytes() == (alone / "results" / name).read_bytes(), name


def test_unchanged_rebuild_imports_neither_pandas_nor_matplotlib(tree: Path) -> None:
    build(tree)
    code = (
        "import sys; from pathlib import Path; from harness.site.build import build_site;"
        f"r = Path({str(tree)!r});"
        "build_site(r / 'raw', r / 'docs', r / 'site', runs='all', cache_dir=r / '.harness-cache');"
        "assert 'pandas' not in sys.modules, 'pandas imported';"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_changes_regenerate_but_reuse_charts(tree: Path) -> None:
    first = build(tree)
    # A generated page deleted by hand: docs/ no longer is what the stamp says.
    (tree / "docs/results/errors.md").unlink()
    again = build(tree)
    assert again["generated"] and again["charts_drawn"] == 0
    assert again["charts_reused"] == first["charts_drawn"] + first["charts_reused"]
    assert (tree / "docs/results/errors.md").is_file()
    # A new interrupted run: pages change; only its own chart is drawn (its title names
    # the run), every other chart is reused.
    new = tree / "raw/20261127T000000Z-fixture"
    shutil.copytree(tree / "raw" / SUBJECT, new)
    doc = json.loads((new / "run.json").read_text())
    (new / "run.json").write_text(json.dumps({**doc, "run_id": new.name, "status": "interrupted"}))
    for sidecar in new.glob("*/*/*/c*-r?.json"):
        cell = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**cell, "run_id": new.name}))
    third = build(tree)
    assert third["generated"] and third["charts_drawn"] == 1
    assert third["charts_reused"] == again["charts_reused"]
    assert (third["tables_built"], third["tables_reused"]) == (1, 2)  # only the new run
    assert third["parse_misses"] == 14  # its 15 wrk outputs (two alike), under a new id
    assert (tree / f"site/results/runs/{new.name}.html").is_file()


@pytest.mark.parametrize("in_workers", [False, True])
def test_table_cache_gives_the_same_table(tmp_path: Path, in_workers: bool) -> None:
    """Built in one batch here, or in two batches in the workers (one table per batch,
    split by run), the pieces put together are load_runs' table."""
    with Workers(2, warm_up=False) as workers:
        tables = TableCache(tmp_path / "tables", workers=workers if in_workers else None)
        first = tables.load(GOLDEN_RAW)
    pd.testing.assert_frame_equal(first, load_runs(GOLDEN_RAW))
    assert (tables.built, tables.reused) == (2, 0)
    again = TableCache(tmp_path / "tables")
    pd.testing.assert_frame_equal(again.load(GOLDEN_RAW), first)
    assert (again.built, again.reused) == (0, 2)


def test_run_downloads_come_from_the_table_cache(tree: Path) -> None:
    """A run's CSV and JSON lines are written once, with its table, and linked into docs/
    by every build that reuses the table."""
    build(tree)
    exported = {p.stat().st_ino for p in (tree / CACHE_NAME / "tables").glob("*.exports/*")}
    data = tree / "docs/results/data" / SUBJECT
    assert {(data / n).stat().st_ino for n in ("results.csv", "results.jsonl")} <= exported
    (tree / "docs/results/errors.md").unlink()  # regenerate docs/, reuse every table
    assert build(tree)["tables_reused"] == 2
    assert {(data / n).stat().st_ino for n in ("results.csv", "results.jsonl")} <= exported


def test_parse_cache_is_keyed_by_bytes_and_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(GOLDEN_RAW / SUBJECT, raw / SUBJECT)
    plain = load_runs(raw)
    cache = ParseCache(tmp_path / "parse")
    assert load_runs(raw, cache=cache).equals(plain)
    # 15 ok cells with a wrk output, two of them byte for byte the same: parsed once.
    assert (cache.hits, cache.misses) == (1, 14)
    cache = ParseCache(tmp_path / "parse")
    assert load_runs(raw, cache=cache).equals(plain)
    assert (cache.hits, cache.misses) == (15, 0)
    # Same bytes, new content for one file: only that file is parsed again.
    out = raw / SUBJECT / "gunicorn/raw/plaintext/c5-r1.txt"
    out.write_text(out.read_text().replace("Requests/sec:   2106.29", "Requests/sec:   2106.30"))
    cache = ParseCache(tmp_path / "parse")
    table = load_runs(raw, cache=cache)
    assert (cache.hits, cache.misses) == (14, 1)
    assert 2106.30 in set(table["requests_per_sec_printed"])
    # Another parser (its source changed): every entry is stale.
    monkeypatch.setattr(parsecache, "parser_version", lambda: "another parser")
    cache = ParseCache(tmp_path / "parse")
    load_runs(raw, cache=cache)
    assert (cache.hits, cache.misses) == (1, 14)
