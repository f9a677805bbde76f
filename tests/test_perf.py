"""`invoke perf` runs end to end on a tiny synthetic tree and writes its figures.

The targets are benchmark targets, judged in perf.json, not asserted here: this only
checks that every figure is measured and that the page renders from the file.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.pages.perfpage import perf_context
from harness.pages.render import render_pages
from harness.paths import REPO_ROOT as REPO
from harness.perf import synth
from harness.tables.dataset import load_runs

pytestmark = pytest.mark.site  # builds the real site: not in `invoke test --fast`

KEYS = (
    "parse_files_per_s",
    "table_s",
    "build_cold_s",
    "build_nochange_s",
    "mkdocs_floor_s",
    "peak_rss_mb",
    "harness_overhead_ratio",
)
ENGINE_KEYS = ("build_cold_s", "floor_cold_s", "build_nochange_s", "floor_s")


def test_synthetic_tree_is_a_valid_raw_tree(tmp_path: Path) -> None:
    runs = synth.write_tree(tmp_path / "raw", synth.RUN_CELLS + 10)
    table = load_runs(tmp_path / "raw")
    assert len(runs) == 2 and len(table) == synth.RUN_CELLS + 10
    full = table[table["run_id"] == runs[1]]
    assert full["requests_per_sec"].nunique() > 100  # figures vary per cell
    assert set(table["status"]) == {"ok", "failed"}
    assert (table["figures_from"] == "lua.json").any() and (table["figures_from"] == "stdout").any()


def test_perf_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "perf.json"
    argv = [sys.executable, "-m", "invoke", "perf", "--size", "12", "--no-bench"]
    argv += ["--repeats", "1", "--out", str(out)]
    subprocess.run(argv, cwd=REPO, check=True, capture_output=True, timeout=120)
    doc = json.loads(out.read_text())
    for key in KEYS:
        assert key in doc, key
    assert doc["cells"] == 12 and doc["harness_overhead_ratio"] is None  # --no-bench
    size = doc["sizes"][0]
    assert size["parsed_files"] >= 10_000  # the same files parsed again up to 10,000
    assert size["charts_drawn_nochange"] == 0 and size["nochange_generated"] is False
    assert all(v > 0 for k, v in size.items() if k.endswith("_s") and isinstance(v, float))
    assert {t["met"] for t in doc["targets"]} <= {"yes", "no", "not measured"}
    # Both engines, cold and with nothing changed, each beside its floor (issue 16).
    if importlib.util.find_spec("zensical") is not None:
        for key in ENGINE_KEYS:
            assert size[f"zensical_{key}"] > 0, key
        assert size["zensical_nochange_generated"] is False
    assert size["table_new_run_s"] > 0  # its one run built again, as if new
    assert size["table_read_s"] > 0 and size["table_build_cold_s"] > 0
    page = render_pages({"p.md": ("perf.md.j2", perf_context(doc))})["p.md"]
    assert "Not measured yet" not in page and "| 12 | 1 |" in page
    assert "| 12 | mkdocs |" in page
    if importlib.util.find_spec("zensical") is not None:
        assert "| 12 | Zensical |" in page


def test_perf_page_without_figures() -> None:
    page = render_pages({"p.md": ("perf.md.j2", perf_context(None))})["p.md"]
    assert "Not measured yet" in page and "invoke perf" in page


def test_perf_carries_over_what_it_did_not_measure(tmp_path: Path) -> None:
    """A size-only run keeps the earlier fidelity and time-to-answer sections, says when
    they were measured (on the page and in the target rows), and --fresh drops them."""
    from harness.perf.run import FORMAT_VERSION, carry_over
    from harness.perf.targets import judge

    fidelity = {"ratio_mean": 1.004, "ratio_ci_low": 0.99, "ratio_ci_high": 1.02,
                "pairs": 24, "ratio_min": 0.95, "ratio_max": 1.05, "rows": []}  # fmt: skip
    answer = {"wall_ratio": 0.8, "intervals_containing_fixed_mean": "9 of 9",
              "fixed_wall_s": 100.0, "adaptive_wall_s": 80.0}  # fmt: skip
    out = tmp_path / "perf.json"
    earlier = {"format_version": FORMAT_VERSION, "measured_at": "2026-12-01T10:00:00Z",
               "fidelity": fidelity, "time_to_answer": answer, "open_loop": None,
               "carried_over": {"time_to_answer": "2026-11-30T09:00:00Z"}}  # fmt: skip
    out.write_text(json.dumps(earlier))
    sections: dict[str, object] = {"fidelity": None, "time_to_answer": None,
                                   "open_loop": None, "harness": {"now": 1}}  # fmt: skip
    carried = carry_over(out, sections)
    # Measured now beats carried; a section carried twice keeps its first date.
    assert carried == {"fidelity": "2026-12-01T10:00:00Z", "time_to_answer": "2026-11-30T09:00:00Z"}
    assert sections["fidelity"] == fidelity and sections["harness"] == {"now": 1}
    assert sections["open_loop"] is None
    rows = {r["what"][:12]: r for r in judge([], None, fidelity, answer, carried)}
    assert "measured 2026-12-01 10:00:00Z, before this run" in rows["harness ÷ ha"]["measured"]
    assert rows["harness ÷ ha"]["met"] == "yes"
    doc = {
        **earlier,
        "host": {"hostname": "vm", "cpu_model": "cpu", "cores": 2, "python": "3.11"},
        "carried_over": carried,
        "targets": judge([], None, fidelity, answer, carried),
    }
    page = render_pages({"p.md": ("perf.md.j2", perf_context(doc))})["p.md"]
    lines = [line for line in page.splitlines() if "**Carried over**" in line]
    assert len(lines) == 2 and "2026-12-01 10:00:00Z" in lines[0]
    assert "time&#95;to&#95;answer" in lines[1] and "2026-11-30 09:00:00Z" in lines[1]
    # Nothing to carry from a file of another format, or from none.
    out.write_text(json.dumps({**earlier, "format_version": FORMAT_VERSION + 1}))
    assert carry_over(out, {"fidelity": None}) == {}
    assert carry_over(tmp_path / "none.json", {"fidelity": None}) == {}
