"""Run-to-run comparison: exact ratios, the noise rule, the metadata diff, the page.

Run B is a copy of the committed fixture run (real wrk output) with figures changed on
purpose in its Lua reports, which the table prefers over wrk's rounded text: gunicorn's
raw app gets twice the requests and twice the p99 in every cell, gunicorn/flask at c=5
1 % more requests in one repeat, and run.json a new gunicorn version and kernel.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.pages.comparepage import compare_page
from harness.paths import GOLDEN_RAW
from harness.paths import REPO_ROOT as REPO
from harness.perf.probe import hand_written_docs
from harness.site.build import build_site, read_runs
from harness.tables import compare
from harness.tables.dataset import load_runs

pytestmark = pytest.mark.site  # builds the real site: not in `invoke test --fast`

A = "20261126T145156Z-fixture"
B = "20261127T000000Z-fixture"


def _edit(path: Path, change: object) -> None:
    doc = json.loads(path.read_text())
    change(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))


def make_runs(root: Path) -> Path:
    raw = root / "raw"
    shutil.copytree(GOLDEN_RAW / A, raw / A)
    shutil.copytree(GOLDEN_RAW / A, raw / B)

    def run_json(doc: dict) -> None:
        doc["run_id"] = B
        doc["started_at"], doc["ended_at"] = "2026-11-27T00:00:00.000Z", "2026-11-27T00:01:00.000Z"
        doc["versions"]["gunicorn"] = "27.0.2"
        doc["host"]["kernel"] = "6.99.0-test"

    _edit(raw / B / "run.json", run_json)
    for sidecar in (raw / B).glob("*/*/*/c*-r?.json"):
        _edit(sidecar, lambda d: d.update(run_id=B))

    def double(doc: dict) -> None:
        doc["requests"] *= 2
        doc["latency_us"]["percentiles"]["99"] *= 2

    for report in (raw / B / "gunicorn/raw/plaintext").glob("*.lua.json"):
        _edit(report, double)
    _edit(
        raw / B / "gunicorn/flask/plaintext/c5-r1.lua.json",
        lambda d: d.update(requests=round(d["requests"] * 1.01)),
    )
    return raw


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_runs(tmp_path_factory.mktemp("compare"))


@pytest.fixture(scope="module")
def cells(raw: Path) -> pd.DataFrame:
    table = load_runs(raw)
    return compare.compare_cells(table[table["run_id"] == A], table[table["run_id"] == B])


def cell(cells: pd.DataFrame, server: str, app: str, connections: int) -> dict:
    sel = cells[
        (cells["server"] == server) & (cells["app"] == app) & (cells["connections"] == connections)
    ]
    assert len(sel) == 1
    return sel.iloc[0].to_dict()


def test_doubled_figures_give_exact_ratios(cells: pd.DataFrame) -> None:
    c10 = cell(cells, "gunicorn", "raw", 10)
    assert c10["requests_per_sec_ratio"] == 2.0 and c10["latency_p99_ms_ratio"] == 2.0
    # Throughput: A's two repeats span 3,325-4,429 req/s, B's twice that. With two
    # repeats a side the 95 % intervals are wide (t = 12.7), so even a doubling is
    # within their noise: no difference is called on two repeats this far apart.
    assert c10["requests_per_sec_verdict"] == "within noise"
    assert (c10["requests_per_sec_n_a"], c10["requests_per_sec_n_b"]) == (2, 2)
    assert c10["requests_per_sec_method"] == "95 % intervals"
    assert c10["requests_per_sec_ci_low_a"] < 3325 < 4429 < c10["requests_per_sec_ci_high_a"]


def test_small_change_within_noise(cells: pd.DataFrame) -> None:
    c5 = cell(cells, "gunicorn", "flask", 5)
    a1, a2 = 1819 / 1.099936, 1555 / 1.100175  # requests / duration of the Lua reports
    b1 = round(1819 * 1.01) / 1.099936
    assert c5["requests_per_sec_ratio"] == pytest.approx((b1 + a2) / (a1 + a2), rel=1e-12)
    assert c5["requests_per_sec_verdict"] == "within noise"
    same = cell(cells, "waitress", "flask", 5)
    assert same["requests_per_sec_ratio"] == 1.0
    assert same["requests_per_sec_verdict"] == same["latency_p99_ms_verdict"] == "within noise"
    # No response in either run: throughput 0 both times, p99 not measured at all.
    silent = cell(cells, "waitress", "raw", 10)
    assert silent["latency_p99_ms_verdict"] == "not comparable"


def test_tally_and_metadata_diff(raw: Path, cells: pd.DataFrame) -> None:
    assert compare.tally(cells) == {
        # The c10 cells with one ok repeat a side: noise unknown, whatever their ratio.
        # Two repeats a side at most: the intervals are too wide to call any change.
        "requests_per_sec": {
            "regression": 0, "improvement": 0, "within noise": 7, "noise unknown": 1,
            "not comparable": 0,
        },
        "latency_p99_ms": {
            "regression": 0, "improvement": 0, "within noise": 5, "noise unknown": 2,
            "not comparable": 1,
        },
    }  # fmt: skip
    runs = {r["run_id"]: r for r in read_runs(raw)}
    assert compare.metadata_diff(runs[A], runs[B]) == [
        {"field": "host.kernel", "a": "6.18.44-fc-v595", "b": "6.99.0-test"},
        {"field": "versions.gunicorn", "a": "27.0.1", "b": "27.0.2"},
    ]
    assert compare.latest_pair(list(runs.values())) == (A, B)


def test_intervals_call_a_difference_only_when_they_part() -> None:
    a = np.array([100.0, 101.0, 99.0, 100.5, 99.5])
    far = compare._verdict(a, a * 1.5, better=1)
    assert far["method"] == "95 % intervals" and far["verdict"] == "improvement"
    assert far["ci_high_a"] < far["ci_low_b"]
    near = compare._verdict(a, a[::-1] + 0.1, better=1)
    assert near["verdict"] == "within noise"
    assert compare._verdict(a, a * 1.5, better=-1)["verdict"] == "regression"  # latency
    three = compare._verdict(np.array([100.0, 101, 99]), np.array([80.0, 81, 82]), better=1)
    assert three["verdict"] == "regression" and (three["n_a"], three["n_b"]) == (3, 3)


def test_rank_test_floor() -> None:
    assert compare.min_rank_p(3, 3) == pytest.approx(0.1)
    assert compare.min_rank_p(2, 2) == pytest.approx(1 / 3)
    assert compare.min_rank_p(5, 5) < 0.05


def test_markdown_for_a_pull_request_is_plain(raw: Path, tmp_path: Path) -> None:
    """`--out` (the old name of `--markdown`): GitHub-flavoured markdown, no HTML entities,
    no mkdocs admonition, no links into a site."""
    out = tmp_path / "cmp.md"
    subprocess.run(
        [sys.executable, "-m", "invoke", "compare", A, B, "--raw", str(raw), "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    text = out.read_text()
    assert text.startswith(f"## `{B}` compared with `{A}`\n")
    assert "| `gunicorn` / `raw` / plaintext, c=10 | 3,877 | 7,754 | 2.000 (+100.0 %) |" in text
    assert "| `versions.gunicorn` | 27.0.1 | 27.0.2 |" in text
    assert "&#" not in text and "<" not in text and "!!!" not in text
    assert "results/" not in text


def test_site_compares_the_newest_two_runs(raw: Path, tmp_path: Path) -> None:
    docs = hand_written_docs(tmp_path / "docs")
    site = build_site(raw, docs, tmp_path / "site", cache_dir=tmp_path / ".harness-cache")
    page = site / compare_page(A, B).replace(".md", ".html")
    assert page.is_file()
    html = unescape(page.read_text())  # what a browser shows
    assert "versions.gunicorn" in html and "within noise" in html
    assert "2.000 (+100.0 %)" in html
    index = (site / "results/compare/index.html").read_text()
    assert compare_page(A, B).rsplit("/", 1)[1].replace(".md", ".html") in index


def test_one_repeat_a_side_calls_nothing() -> None:
    """With one repeat a side there is no spread: no regression, no improvement, the
    ratio still shown (a -0.9 % "regression" was printed before)."""
    one = compare._verdict(np.array([100.0]), np.array([99.1]), better=1)
    assert one["verdict"] == "noise unknown" and one["ratio"] == pytest.approx(0.991)
    # One repeat against three: the one has no interval, so nothing is called either.
    some = compare._verdict(np.array([100.0]), np.array([80.0, 81.0, 82.0]), better=1)
    assert some["verdict"] == "noise unknown" and some["method"] == "too few repeats"
    cells = pd.DataFrame(
        [
            {f"{m}_verdict": v for m in compare.METRICS}
            for v in ("noise unknown", "noise unknown", "regression")
        ]
    )
    assert compare.tally(cells)["requests_per_sec"]["noise unknown"] == 2
