"""harness.perf.together: the harness and a hand-run wrk measured at the same time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.pages.perfpage import perf_context
from harness.pages.render import render_pages
from harness.perf.fidelity import fidelity_matrix
from harness.perf.targets import judge
from harness.perf.together import BenchEnded, _follow, measure_together


def test_following_a_bench_that_ended_says_so_instead_of_waiting() -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"], text=True)
    ended.wait()
    with pytest.raises(BenchEnded, match="exited"):
        _follow(ended, measured=True)


@pytest.mark.slow
def test_both_cells_run_at_once_and_share_the_machine(tmp_path: Path) -> None:
    """Two simultaneous pairs against the real fidelity cell (granian, wrk). Run at once,
    the two servers share the server's CPU: were the hand's wrk not started with the
    harness's, one side would run alone for most of its cell and read about twice the
    other (and a ratio of 2 or 0.5 leaves this band)."""
    doc = measure_together(tmp_path, fidelity_matrix(), pairs=2)
    assert doc["pairs"] == 2 and len(doc["rows"]) == 2
    for row in doc["rows"]:
        assert row["harness"] > 0 and row["hand"] > 0
        assert 0.8 < row["ratio"] < 1.25, row
    assert doc["ratio_ci_low"] <= doc["ratio_mean"] <= doc["ratio_ci_high"]
    # The perf page judges it beside the one-after-the-other pairs.
    sequential = {"ratio_mean": 0.95, "ratio_ci_low": 0.9, "ratio_ci_high": 1.0, "pairs": 2,
                  "ratio_min": 0.9, "ratio_max": 1.0, "together": doc}  # fmt: skip
    rows = [r for r in judge([], None, sequential, None, {}) if "hand-run" in r["what"]]
    assert [r["met"] for r in rows][0] == "no"
    assert "2 simultaneous pairs" in rows[1]["measured"]
    assert rows[1]["met"] == ("yes" if 0.98 <= doc["ratio_mean"] <= 1.02 else "no")
    # and shows both designs, with what the harness process used meanwhile.
    host = {"hostname": "h", "cpu_model": "c", "cores": 2, "python": "3"}
    fidelity = {**sequential, "cell": "granian/raw/plaintext/c100"}
    context = perf_context({"fidelity": fidelity, "targets": rows, "host": host})
    page = render_pages({"p.md": ("perf.md.j2", context)})["p.md"]
    assert "| One after the other (interleaved, every other pair hand first) | 2 | 0.95 |" in page
    assert f"| Both at once, on the same CPUs | 2 | {doc['ratio_mean']} |" in page
    assert f"at most {doc['harness_cpu_share_max'] * 100:,.1f} % of a CPU" in page
