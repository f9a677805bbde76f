"""The command line (issue 18): help on every task, one vocabulary, the user's defaults,
the list of runs, compare for programs and pull requests, the tasks' defaults."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Context

import tasks
from harness.cli.invoketask import SHORT, CliTask
from harness.paths import GOLDEN_RAW
from harness.paths import REPO_ROOT as REPO
from tests.test_compare import A, B, _edit

FIXTURE_RUNS = [A, "20261126T145233Z-fixture"]


def invoke(
    *args: str, cwd: Path = REPO, config: str | None = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`invoke ARGS` from `cwd` with this checkout's tasks.py; `config`: the value of
    $WSGI_BASELINE_CONFIG (empty: no user config; None: the usual search)."""
    env = {k: v for k, v in os.environ.items() if k != "WSGI_BASELINE_CONFIG"}
    if config is not None:
        env["WSGI_BASELINE_CONFIG"] = config
    argv = [sys.executable, "-m", "invoke", "--search-root", str(REPO), *args]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def task_names() -> list[str]:
    listed = invoke("--list").stdout.splitlines()
    return [line.split()[0] for line in listed if line.startswith("  ") and line[2] != " "]


def _tree(root: Path) -> set[str]:
    """Every path of the checkout but its tools' own folders (git, the virtualenv, caches
    of Python and the linters)."""
    skip = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
    out = set()
    for path in root.rglob("*"):
        if not skip & set(path.relative_to(root).parts):
            out.add(path.relative_to(root).as_posix())
    return out


def test_every_task_answers_help_and_creates_nothing(tmp_path: Path) -> None:
    names = task_names()
    assert {"bench", "compare", "publish", "import-metrics", "runs", "summary"} <= set(names)
    before = _tree(REPO)
    asks = [[name, "--help"] for name in names] + [[name, "-h"] for name in names]
    # A positional argument given or not: `--help` is never taken for its value.
    asks += [["publish", "somewhere", "--help"], ["compare", A, "--help"],
             ["compare", A, B, "--help"], ["import-logs", "old-study", "-h"],
             ["import-metrics", "--wrk", "w.txt", "--help"]]  # fmt: skip
    for argv in asks:
        done = invoke(*argv, cwd=tmp_path)
        assert done.returncode == 0, (argv, done.stderr)
        assert done.stdout.startswith("Usage: ") and f" {argv[0]} " in done.stdout, argv
        assert "Options:" in done.stdout and done.stderr == "", argv
    assert list(tmp_path.iterdir()) == []  # no `./--help` folder (publish) or anything else
    assert _tree(REPO) == before


def test_one_vocabulary() -> None:
    """One short letter per meaning in every task (-r the raw directory, -o an output,
    -p the profile; test's own -k, -m, -f); the raw directory is --raw wherever a task
    reads or writes runs, with bench's and import-logs' old --out kept."""
    letters: dict[str, set[str]] = {}
    raw_tasks = set()
    for t in vars(tasks).values():
        if not isinstance(t, CliTask):
            continue
        for arg in t.get_arguments():
            main = arg.names[0]
            for name in arg.names:
                if len(name) == 1:
                    letters.setdefault(name, set()).add(main)
            if main == "raw":
                raw_tasks.add(t.dashed_name)
                assert "r" in arg.names, t.name
    assert letters == {**{k: {v} for v, k in SHORT.items()}, "k": {"k"}, "m": {"m"}, "f": {"fast"}}
    assert raw_tasks == {
        "bench", "build-site", "calibrate", "compare", "export", "import-logs",
        "import-metrics", "runs", "serve-site", "summary",
    }  # fmt: skip
    for t in (tasks.bench, tasks.import_logs):
        [raw] = [a for a in t.get_arguments() if a.name == "raw"]
        assert "out" in raw.names
    readme = (REPO / "README.md").read_text()
    assert "| the raw directory | `-r`, `--raw DIR`" in readme
    assert "| durations | `180`, `180s`, `3m`" in readme
    assert "invoke --print-completion-script bash" in readme


def test_durations_are_durations_in_calibrate_too(tmp_path: Path) -> None:
    done = invoke("calibrate", "--duration", "2x", "-r", str(tmp_path))
    assert (done.returncode, done.stderr) == (
        2,
        "error: --duration: '2x' is not a duration (use e.g. 180, 180s, 3m, 500ms)\n",
    )
    done = invoke("calibrate", "--duration", "1500ms", "-r", str(tmp_path))
    assert done.returncode == 2 and "wrk takes whole seconds" in done.stderr
    # A run must be one of --raw's; none is taken unless named.
    done = invoke("calibrate", "--run", "nope", "--duration", "2s", "-r", str(GOLDEN_RAW))
    assert done.returncode == 2
    assert done.stderr == (
        f"error: --run: no run 'nope' in {GOLDEN_RAW}; runs there: "
        f"{FIXTURE_RUNS[1]}, {FIXTURE_RUNS[0]}\n"
    )


def test_runs_lists_every_run() -> None:
    done = invoke("runs", "-r", str(GOLDEN_RAW))
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        "run id                    profile  status       cells  host  started (UTC)",
        f"{A}  fixture  complete     16/16  vm    2026-11-26 14:51:56",
        "20261126T145233Z-fixture  fixture  interrupted  3/16   vm    2026-11-26 14:52:33",
    ]
    listed = json.loads(invoke("runs", "--raw", str(GOLDEN_RAW), "--json").stdout)
    assert [(r["run_id"], r["cells_done"], r["cells_planned"]) for r in listed] == [
        (A, 16, 16),
        ("20261126T145233Z-fixture", 3, 16),
    ]


def _user_dir(tmp_path: Path, config: str, name: str = "wsgi-baseline.toml") -> Path:
    shutil.copytree(GOLDEN_RAW, tmp_path / "mine")
    (tmp_path / name).write_text(config)
    return tmp_path


def test_user_defaults_from_wsgi_baseline_toml(tmp_path: Path) -> None:
    home = _user_dir(tmp_path, 'raw = "elsewhere"\n[runs]\nraw = "mine"\n')
    done = invoke("runs", cwd=home, config=None)
    assert done.returncode == 0 and A in done.stdout  # the task's table wins, relative to it
    other = tmp_path / "other"
    other.mkdir()
    done = invoke("runs", "-r", str(other), cwd=home, config=None)  # the command line wins
    assert done.stdout == f"no runs in {other}\n"


def test_user_defaults_from_pyproject_or_a_named_file(tmp_path: Path) -> None:
    home = _user_dir(tmp_path, '[project]\nname = "mine"\n[tool.wsgi-baseline]\nraw = "mine"\n',
                     name="pyproject.toml")  # fmt: skip
    assert A in invoke("runs", cwd=home, config=None).stdout
    named = tmp_path / "named.toml"
    named.write_text(f"raw = {str(tmp_path / 'mine')!r}\n")
    assert A in invoke("runs", config=str(named)).stdout


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('rwa = "raw"\n', "rwa: no such option"),
        ("[bench]\nrepeats = true\n", "[bench] repeats: expected a string or a number, got True"),
        ("[benhc]\nrepeats = 3\n", "[benhc]: no such task (tasks: bench, build-site,"),
        ("[runs]\njson = 1\n", "[runs] json: expected true or false, got 1"),
        ("raw = \n", "not valid TOML"),
    ],
)
def test_a_bad_user_config_is_one_line(tmp_path: Path, config: str, message: str) -> None:
    (tmp_path / "wsgi-baseline.toml").write_text(config)
    done = invoke("runs", cwd=tmp_path, config=None)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"error: {tmp_path / 'wsgi-baseline.toml'}: ")
    assert message in done.stderr and done.stderr.count("\n") == 1


def test_a_run_name_is_a_plain_name() -> None:
    done = invoke("bench", "--name", "../up", "--dry-run")
    assert done.returncode == 2
    assert done.stderr.startswith("error: --name: '../up' is not a plain name")


def test_a_named_run_is_continued_by_its_name_only(tmp_path: Path) -> None:
    from harness.raw.records import RunMeta
    from harness.raw.store import RunStore, unfinished_runs

    for run_id in ("20260101T000000Z-quick", "20260102T000000Z-mine",
                   "20260102T000000Z-mine-2", "20260103T000000Z-mine2"):  # fmt: skip
        RunStore(tmp_path, run_id).write_run(RunMeta(run_id, "quick", "interrupted"))
    named = [m.run_id for m in unfinished_runs(tmp_path, "quick", "mine")]
    assert named == ["20260102T000000Z-mine-2", "20260102T000000Z-mine"]
    assert [m.run_id for m in unfinished_runs(tmp_path, "quick", "quick")] == [
        "20260101T000000Z-quick"
    ]
    assert len(unfinished_runs(tmp_path, "quick")) == 4
    done = invoke("summary", "-r", str(tmp_path / "none"))
    assert done.stderr == f"error: --run: {tmp_path / 'none'} holds no runs\n"


def regressed_runs(root: Path) -> Path:
    """Runs A and B of the fixture, with gunicorn's raw app at c=5 measured twice at
    2,400 req/s in A and twice at 1,200 in B: tight repeats, half the throughput."""
    raw = root / "raw"
    shutil.copytree(GOLDEN_RAW / A, raw / A)
    shutil.copytree(GOLDEN_RAW / A, raw / B)
    _edit(raw / B / "run.json", lambda d: d.update(run_id=B, started_at="2026-11-27T00:00:00Z"))
    for sidecar in (raw / B).glob("*/*/*/c*-r?.json"):
        _edit(sidecar, lambda d: d.update(run_id=B))
    for run, rates in ((A, (2400, 2410)), (B, (1200, 1205))):
        for repeat, rate in enumerate(rates, 1):
            report = raw / run / f"gunicorn/raw/plaintext/c5-r{repeat}.lua.json"
            _edit(report, lambda d, r=rate: d.update(requests=round(r * d["duration_us"] / 1e6)))
    return raw


def test_compare_json_and_its_exit_code(tmp_path: Path) -> None:
    raw = regressed_runs(tmp_path)
    done = invoke("compare", A, B, "-r", str(raw), "--json")
    assert done.returncode == 1
    assert done.stderr == "1 regression(s) beyond ×1.1 outside the noise\n"
    doc = json.loads(done.stdout)
    assert (doc["kind"], doc["a"]["run_id"], doc["b"]["run_id"], doc["factor"]) == (
        "comparison", A, B, 1.1,
    )  # fmt: skip
    [regression] = doc["regressions"]
    assert regression["metric"] == "requests_per_sec"
    assert (regression["server"], regression["app"], regression["connections"]) == (
        "gunicorn", "raw", 5,
    )  # fmt: skip
    assert regression["ratio"] == pytest.approx(0.5, abs=0.002)
    cell = next(c for c in doc["cells"] if (c["server"], c["app"], c["connections"]) ==
                ("gunicorn", "raw", 5))  # fmt: skip
    assert cell["requests_per_sec"]["verdict"] == "regression"
    assert cell["requests_per_sec"]["beyond_factor"] == "regression"
    assert cell["requests_per_sec"]["ci_high_b"] < cell["requests_per_sec"]["ci_low_a"]
    assert doc["improvements"] == [] and doc["only_a"] == doc["only_b"] == []
    # Beyond the noise but not beyond a factor of 2.5: not counted, exit code 0.
    done = invoke("compare", A, B, "-r", str(raw), "--json", "--factor", "2.5")
    assert done.returncode == 0 and json.loads(done.stdout)["regressions"] == []
    # The other way round it is an improvement, which fails nothing.
    done = invoke("compare", B, A, "-r", str(raw), "--json")
    assert done.returncode == 0 and len(json.loads(done.stdout)["improvements"]) == 1
    done = invoke("compare", A, B, "-r", str(raw), "--markdown", "-")
    assert done.returncode == 1
    assert "### Regressions beyond ×1.1\n\n- `gunicorn` / `raw` / plaintext, c=5: throughput" in (
        done.stdout
    )
    done = invoke("compare", A, "nope", "-r", str(raw), "--json")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: RUN_B: no run 'nope' in {raw}; runs there: {B}, {A}\n"
    done = invoke("compare", A, B, "-r", str(raw), "--json", "--factor", "0.9")
    assert done.returncode == 2 and "--factor: expected a number above 1" in done.stderr


def test_import_metrics_names_a_run_and_refuses_a_second_import(tmp_path: Path) -> None:
    fixtures = REPO / "tests" / "fixtures"
    args = ["import-metrics", "--wrk", str(fixtures / "wrk" / "wrk410-ok-latency-t2-c20.txt"),
            "--prom", str(fixtures / "prometheus" / "study-kask.prom"), "--server", "kask",
            "--app", "store"]  # fmt: skip
    done = invoke(*args, "--run", "kask", "-r", str(tmp_path))
    assert done.returncode == 2 and "the histogram counts 17,108,744 requests" in done.stderr
    done = invoke(*args, "--run", "kask", "-r", str(tmp_path), "--ignore-counts")
    assert done.stdout == f"{tmp_path / 'kask/kask/store/imported/c20-r1.json'}\n"
    done = invoke(*args, "--run", "kask", "-r", str(tmp_path), "--ignore-counts")
    assert done.returncode == 2 and "give --repeat 2" in done.stderr
    # The old form, a folder as --run, still works.
    done = invoke(*args, "--run", str(tmp_path / "kask"), "--ignore-counts", "--repeat", "2")
    assert done.stdout == f"{tmp_path / 'kask/kask/store/imported/c20-r2.json'}\n"


def test_perf_measures_no_bench_cells_and_writes_no_tracked_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import harness.perf.run

    asked = {}

    def fake(sizes: list[int], out: Path, **kw: object) -> dict:
        asked.update(kw, out=out)
        return {"targets": [], "sizes": []}

    monkeypatch.setattr(harness.perf.run, "run_perf", fake)
    tasks.perf.body(Context(), size="12")
    assert asked["bench"] is False and asked["out"] == REPO / ".harness-cache" / "perf.json"
    assert "/.harness-cache/" in (REPO / ".gitignore").read_text().splitlines()


def test_serve_site_ends_with_exit_code_0_on_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.site.build

    def interrupted(*args: object, **kw: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.site.build, "serve_site", interrupted)
    tasks.serve_site.body(Context())  # returns: invoke exits 0
