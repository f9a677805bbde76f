"""`invoke build-site --compare RUN_A:RUN_B` keeps a chosen comparison in every build."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Context

import tasks
from harness.pages.comparepage import compare_page
from harness.paths import REPO_ROOT as REPO
from harness.perf.probe import hand_written_docs
from tests.test_compare import A, B, _edit, make_runs

pytestmark = pytest.mark.site  # builds the real site: not in `invoke test --fast`


def run_invoke(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "invoke", *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("value", ["nocolon", "a:", ":b", "a:b:c"])
def test_a_bad_pair_is_one_clear_line(value: str) -> None:
    done = run_invoke("build-site", "--compare", f"{A}:{B}", "--compare", value)
    assert done.returncode == 2  # tasks._fail: a usage error
    assert f"--compare: expected RUN_A:RUN_B, got {value!r}" in done.stderr


@pytest.mark.slow
def test_a_pair_given_is_compared_besides_the_newest_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = make_runs(tmp_path)
    c = "20261128T000000Z-fixture"  # a third run: the newest two are now B and C
    shutil.copytree(raw / B, raw / c)
    _edit(raw / c / "run.json", lambda d: d.update(run_id=c, started_at="2026-11-28T00:00:00Z"))
    for sidecar in (raw / c).glob("*/*/*/c*-r?.json"):
        _edit(sidecar, lambda d: d.update(run_id=c))
    monkeypatch.setattr(tasks, "DOCS", hand_written_docs(tmp_path / "docs"))
    monkeypatch.setattr(tasks, "SITE", tmp_path / "site")
    tasks.build_site.body(Context(), raw=str(raw), compare=[f"{A}:{B}"])
    built = [compare_page(A, B), compare_page(B, c)]
    for page in built:
        assert (tmp_path / "site" / page.replace(".md", ".html")).is_file(), page
