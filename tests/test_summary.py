"""The summary `invoke bench` ends with (issue 18): the site's ranking, hyperfine's
sentence, flags per cell, no wrapping when piped; and `--dry-run`'s estimate against
the wall time of a real tiny run."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from harness.bench.schedule import CELL_SPARE_S
from harness.cli.console import console_for
from harness.cli.summary import RunSummary, summarize
from harness.cli.summaryout import render, to_json, to_markdown
from harness.paths import REPO_ROOT as REPO
from harness.tables.dataset import load_runs
from harness.tables.ranking import rank_servers
from harness.tables.summary import cell_stats
from tests.test_cli import regressed_runs
from tests.test_compare import A


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture run, with gunicorn's raw app at c=5 at 2,400 and 2,410 req/s."""
    return regressed_runs(tmp_path_factory.mktemp("summary")) / A


@pytest.fixture(scope="module")
def summary(run_dir: Path) -> RunSummary:
    return summarize(load_runs(run_dir))


def group(summary: RunSummary, app: str, connections: int):  # type: ignore[no-untyped-def]
    [found] = [g for g in summary.groups if (g.app, g.connections) == (app, connections)]
    return found


def test_the_ranking_is_the_sites(run_dir: Path, summary: RunSummary) -> None:
    ranking = rank_servers(cell_stats(load_runs(run_dir)))
    for g in summary.groups:
        site = ranking[(ranking["app"] == g.app) & (ranking["connections"] == g.connections)]
        assert [s.server for s in g.servers] == list(site["server"])
        assert [s.verdict for s in g.servers] == list(site["verdict"])
    assert [(g.app, g.workload, g.connections) for g in summary.groups] == [
        ("flask", "plaintext", 5), ("flask", "plaintext", 10),
        ("raw", "plaintext", 5), ("raw", "plaintext", 10),
    ]  # fmt: skip


def test_each_server_with_its_interval_repeats_and_flags(summary: RunSummary) -> None:
    raw5 = group(summary, "raw", 5)
    gunicorn, waitress = raw5.servers
    assert (gunicorn.server, gunicorn.rank, gunicorn.verdict) == ("gunicorn", 1, "fastest")
    assert gunicorn.requests_per_sec == pytest.approx(2405, abs=1)
    assert gunicorn.plus_minus == pytest.approx(12.706 * 5, rel=0.05)  # t(1) × sd / √2
    assert (gunicorn.repeats_ok, gunicorn.repeats, gunicorn.flags) == (2, 2, ())
    # waitress's two repeats (1,560 and 255 req/s) are far apart: its interval reaches
    # the leader's, so it is tied with it, and its line says why to distrust it.
    assert (waitress.rank, waitress.verdict) == (2, "tied with the fastest")
    assert waitress.flags == ("littles_law", "noisy")
    flask10 = group(summary, "flask", 10)
    assert flask10.servers[0].flags == ("noise_unknown",)
    assert (flask10.servers[0].repeats_ok, flask10.servers[0].repeats) == (1, 2)
    assert summary.flagged == ["littles_law", "noisy", "noise_unknown"]


def test_hyperfine_sentences(summary: RunSummary) -> None:
    [lead, tied] = group(summary, "raw", 5).sentences()
    assert lead == "gunicorn ran"
    assert tied.startswith("2.6") and tied.endswith(
        "× faster than waitress (not significant: tied)"
    )
    assert " ± " in tied
    assert group(summary, "flask", 10).sentences() == [
        "gunicorn ran",
        "10.24 × faster than waitress (noise unknown)",
    ]


def test_terminal_output_is_not_wrapped_when_piped(summary: RunSummary) -> None:
    out = io.StringIO()
    render(summary, console_for(out))
    text = out.getvalue()
    assert "\x1b[" not in text  # no colour codes in a file
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("raw / plaintext, 5 "))
    assert lines[header + 1].split() == [
        "#", "server", "req/s", "95", "%", "CI", "ok/repeats", "p99", "ms", "verdict", "flags",
    ]  # fmt: skip
    row = lines[header + 3].split()
    assert row[:5] == ["2", "waitress", "908", "±", "8,297"]
    assert row[-2:] == ["littles_law,", "noisy"]  # one line, however long
    assert any(
        line.startswith("1  gunicorn  1,238") and "1 failed: server exited with code 3" in line
        for line in lines
    )
    assert "  noisy: Repeats disagree" in lines


def test_json_and_markdown_exports(summary: RunSummary) -> None:
    doc = json.loads(json.dumps(to_json(summary), allow_nan=False))
    assert (doc["kind"], doc["run_id"], doc["format_version"]) == ("bench-summary", A, 1)
    raw5 = doc["groups"][2]
    assert (raw5["app"], raw5["connections"]) == ("raw", 5)
    assert [s["server"] for s in raw5["servers"]] == ["gunicorn", "waitress"]
    assert raw5["servers"][1]["flags"] == ["littles_law", "noisy"]
    assert raw5["summary"][0] == "gunicorn ran"
    text = to_markdown(summary)
    assert "### raw / plaintext, 5 connections" in text
    assert "| 2 | `waitress` | 908 | ± 8,297 | 2/2 | 35.04 | tied with the fastest |" in text
    assert "&#" not in text and "<" not in text


@pytest.mark.slow
def test_a_tiny_bench_ends_with_its_summary_within_its_estimate(tmp_path: Path) -> None:
    """2 servers × 1 app × 1 level × 2 repeats of 1 s (after 1 s of warm-up): the run
    takes what --dry-run said, within 10 %, and ends with its summary."""
    raw = tmp_path / "raw"
    matrix = ["--profile", "smoke", "--servers", "gunicorn,waitress", "--apps", "raw",
              "--connections", "10", "--duration", "1s", "--warmup", "1s", "--repeats", "2",
              "--no-calibrate"]  # fmt: skip

    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "invoke", *args]
        return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=180)

    dry = invoke("bench", *matrix, "--dry-run")
    estimated = 4 * (1 + 1 + CELL_SPARE_S)  # warm-up, measurement, the measured spare
    said = f"estimated: 4 cells, about 0m{round(estimated):02d}s"
    assert dry.returncode == 0 and said in dry.stdout, dry.stdout
    assert not list(tmp_path.iterdir())  # nothing started
    done = invoke("bench", *matrix, "-r", str(raw), "--name", "tiny",
                  "--export-json", str(tmp_path / "s.json"),
                  "--export-markdown", str(tmp_path / "s.md"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    assert done.stdout == f"{run_id}\n" and run_id.endswith("Z-tiny")
    meta = json.loads((raw / run_id / "run.json").read_text())
    took = (_time(meta["ended_at"]) - _time(meta["started_at"])).total_seconds()
    assert abs(took - estimated) <= 0.1 * took, (took, estimated)
    err = done.stderr.splitlines()
    assert sum(line.startswith("ok     ") for line in err) == 4
    assert f"run {run_id}: complete, 4 cell(s) measured" in done.stderr
    assert any(line.endswith(f"raw output in {raw / run_id}") for line in err)  # unwrapped
    assert f"Summary of run {run_id} (profile smoke, complete)" in err
    assert "raw / plaintext, 10 connections" in err
    doc = json.loads((tmp_path / "s.json").read_text())
    assert {s["server"] for s in doc["groups"][0]["servers"]} == {"gunicorn", "waitress"}
    assert all(s["repeats"] == 2 for s in doc["groups"][0]["servers"])
    assert (tmp_path / "s.md").read_text().startswith(f"## Run `{run_id}`")
    listed = subprocess.run(
        [sys.executable, "-m", "invoke", "runs", "-r", str(raw)],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert listed[1].split()[:4] == [run_id, "smoke", "complete", "4/4"]


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
