"""The site's evidence pages: flags, resources, preflight, client ceiling, client vs server.

Built from tests/fixtures/site_raw_evidence/ (a real `invoke bench --server-metrics` run
of gunicorn and uWSGI, raw and raw+metrics, plaintext and session, with a real
`invoke calibrate`), from the golden fixture with one file added, and from the study's
Kask histogram imported with harness/raw/metricsimport.py.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_site import SUBJECT, page_text

from harness.pages.context import FLAGS_PAGE
from harness.pages.flagview import cell_flags
from harness.pages.render import escape
from harness.paths import GOLDEN_RAW
from harness.paths import REPO_ROOT as REPO
from harness.perf.probe import hand_written_docs
from harness.raw.metricsimport import import_metrics
from harness.site.build import build_site, golden_pages
from harness.tables import evidence, summary
from harness.tables.dataset import load_runs
from harness.tables.flaginfo import FLAGS

pytestmark = pytest.mark.site  # builds the real site: not in `invoke test --fast`

EVIDENCE_RAW = REPO / "tests" / "fixtures" / "site_raw_evidence"
EVIDENCE = "20261126T152655Z-smoke"
STUDY = REPO / "tests" / "fixtures" / "prometheus" / "study-kask.prom"
WRK = REPO / "tests" / "fixtures" / "wrk" / "wrk410-ok-latency-t2-c20.txt"


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return load_runs(EVIDENCE_RAW)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evidence")
    return build_site(EVIDENCE_RAW, hand_written_docs(root / "docs"), root / "site")


@pytest.fixture(scope="module")
def kask(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Issue 6's check: the study's text, imported beside a real wrk capture, built."""
    root = tmp_path_factory.mktemp("kask")
    run = root / "raw" / "20181108T200500Z-kask"
    import_metrics(
        [STUDY], WRK, run, server="kask", app="unknown", note="the study's dump",
        check_counts=False,  # the dump counts the service's whole life, not this wrk run
    )  # fmt: skip
    return build_site(root / "raw", hand_written_docs(root / "docs"), root / "site")


def one(frame: pd.DataFrame, **where: object) -> dict[str, Any]:
    """The single row of `frame` whose columns have the given values."""
    sel = frame
    for column, value in where.items():
        sel = sel[sel[column] == value]
    assert len(sel) == 1, where
    return {str(k): v for k, v in sel.iloc[0].items()}


def text(path: Path) -> str:
    return " ".join("".join(page_text(path).text).split())


def test_legend_is_generated_from_flaginfo(tmp_path: Path) -> None:
    pages = golden_pages(GOLDEN_RAW, tmp_path)
    legend = pages[FLAGS_PAGE]
    anchors = re.findall(r"^## .* \{ #(\w+) \}$", legend, flags=re.M)
    assert anchors == list(FLAGS)  # every flag, in FLAGS order, and nothing else
    for info in FLAGS.values():
        assert f"{escape(info.explanation)}\n" in legend


def test_flagged_cells_get_badges_and_details(tmp_path: Path) -> None:
    df = load_runs(GOLDEN_RAW)
    flags = cell_flags(df[df["run_id"] == SUBJECT])
    noisy = [k for k, v in flags.items() if any(f.id == "noisy" for f in v)]
    assert ("waitress", "raw", "plaintext", 5) in noisy
    pages = golden_pages(GOLDEN_RAW, tmp_path)
    waitress = pages["results/servers/waitress.md"]
    badge = "[Repeats disagree](../flags.md#noisy){ .flag }"
    row = [line for line in waitress.splitlines() if line.startswith("| raw | 5 |")][0]
    assert badge in row
    # The admonition lists the flagged cell with each repeat's detail.
    assert re.search(r"raw / plaintext / c=5 — \[Repeats disagree\].*: r1, r2: 2 repeats", waitress)
    assert badge.replace("../", "results/") in pages["index.md"]  # headline cells too


def test_ceiling_not_measured_says_how(tmp_path: Path) -> None:
    methodology = golden_pages(GOLDEN_RAW, tmp_path)["results/methodology.md"]
    assert "Client ceiling not measured" in methodology
    assert f"<code>invoke calibrate --run {SUBJECT}</code>" in methodology


def test_near_the_ceiling_warns(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(GOLDEN_RAW, raw)
    cal = json.loads((EVIDENCE_RAW / EVIDENCE / "calibration.json").read_text())
    cal["requests_per_sec"] = 5000.0  # the fixture's fastest cell: 3,877 req/s (78 %)
    (raw / SUBJECT / "calibration.json").write_text(json.dumps(cal))
    pages = golden_pages(raw, tmp_path / "docs")
    assert "Near the client ceiling" in pages["results/methodology.md"]
    assert "The fastest cell is near the client ceiling" in pages["index.md"]
    df = load_runs(raw)
    found = evidence.client_ceiling(cal, summary.cell_stats(df[df["run_id"] == SUBJECT]), {})
    assert found["client_bound"] and found["share"] == pytest.approx(0.7754, abs=1e-3)


def test_calibration_and_preflight_on_methodology(site: Path) -> None:
    page = text(site / "results/methodology.html")
    cal = json.loads((EVIDENCE_RAW / EVIDENCE / "calibration.json").read_text())
    assert f"wrk against nginx (the ceiling) {cal['requests_per_sec']:,.0f} 100 %" in page
    assert "Measured on 2026-11-26 15:27:28 UTC." in page  # the calibration date
    assert "with 1 wrk thread" in page
    assert "stayed below 70.0 % of the ceiling" in page
    keep_alive = "server sent Connection: close"
    assert f"raw plaintext 2 ok: a non-blocking check failed keep_alive: {keep_alive}" in page
    assert re.search(r"uwsgi raw\+metrics session 2 ok —", page)


def test_resources_and_session_replies(site: Path, table: pd.DataFrame) -> None:
    cell = one(table, server="uwsgi", app="raw", workload="session", connections=50)
    server = text(site / "results/servers/uwsgi.html")
    cpu, rss = cell["server_cpu_pct_mean"], cell["server_rss_mb_max"]
    assert f"raw 50 {cpu:.1f} {cell['server_cpu_pct_max']:.1f} {rss:.1f}" in server
    replies = [int(cell[f"session_{k}"]) for k in ("get", "post", "delete", "value")]
    assert "raw 50 " + " ".join(f"{n:,}" for n in replies) in server
    resources = text(site / "results/resources.html")
    assert '<h2 id="workload-session">' in (site / "results/resources.html").read_text()
    assert f"uwsgi raw 50 {cpu:.1f}" in resources
    assert (site / "results/figures/resources.svg").is_file()


def test_timing_overhead_compares_with_the_same_app(table: pd.DataFrame) -> None:
    assert summary.baseline_of("flask+metrics") == "flask"
    assert summary.baseline_of("flask") == "raw" and summary.baseline_of("raw") is None
    ov = summary.overhead(table)
    row = one(ov, server="uwsgi", app="raw+metrics", workload="plaintext", connections=4)
    ok = table[(table["server"] == "uwsgi") & (table["workload"] == "plaintext")]
    rps = ok[ok["connections"] == 4].set_index("app")["requests_per_sec"]
    assert row["baseline"] == "raw"
    assert row["share"] == pytest.approx(rps["raw+metrics"] / rps["raw"])


def test_client_vs_server_page_per_cell(site: Path, table: pd.DataFrame) -> None:
    page = site / "results/latency" / f"{EVIDENCE}.html"
    timed = table[table["has_server_metrics"].fillna(False)]
    sections = re.findall(r'<h2 id="([^"]+)"', page.read_text())
    assert len(sections) == len(timed) == 8
    shown = page_text(page)
    images = [a["src"] for tag, a in shown.tags if tag == "img" and "latency-" in (a["src"] or "")]
    assert len(images) == 8
    for src in images:
        assert (page.parent / str(src)).resolve().read_bytes().startswith(b"<?xml")
    body = " ".join("".join(shown.text).split())
    assert "Outside the handler:" in body and "Little's law:" in body
    assert "Bucket resolution" in body and "Server-side latency" in body


def test_study_histogram_shows_two_modes(kask: Path) -> None:
    page = kask / "results/latency/20181108T200500Z-kask.html"
    body = text(page)
    assert "Two modes" in body
    assert "dips in 10.0–25.0 ms to below a quarter of both peaks" in body
    assert "p50 ms 13.7 25.0 (bucket 25.0–50.0)" in body  # the quantile and its bucket
    svg = kask / "results/figures/latency-20181108T200500Z-kask-kask-unknown-imported-c20-r1.svg"
    assert svg.read_bytes().startswith(b"<?xml")
    assert 'alt="Server-side bucket densities' in page.read_text()
    index = text(kask / "results/latency/index.html")
    assert "kask / unknown / imported / c=20 / repeat 1" in index and "two" in index
    # An imported run: what was not recorded reads "unknown", never "None" or blank.
    home = text(kask / "index.html")
    assert "host unknown: unknown CPU" in home and "measured outside this harness" in home
    assert "None" not in home
