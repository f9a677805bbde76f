"""harness.raw.importlogs: a directory of plain wrk outputs becomes a raw run that loads.

Real captures come from tests/fixtures/wrk; the two study-like texts below are crafted
from the study's published figures (CherryPy at c=500; connect errors at c=2000).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.raw.importlogs import ImportLogsError, import_logs
from harness.tables.dataset import load_runs
from harness.tables.flags import add_flags

ROOT = Path(__file__).resolve().parents[1]
WRK = Path(__file__).parent / "fixtures" / "wrk"
PATTERN = "{server}.{connections}.log"
# The study's CherryPy at c=500: 1988.79 req/s at 4.62 ms -> ~9 requests in flight.
CRAFTED_STUDY_CHERRYPY_C500 = """\
Running 3m test @ http://10.0.0.2:8080/
  1 threads and 500 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.62ms    1.01ms  31.20ms   90.00%
    Req/Sec     2.00k   150.00     2.50k    70.00%
  357982 requests in 3.00m, 43.70MB read
Requests/sec:   1988.79
Transfer/sec:    248.60KB
"""
# c=2000 with wrk's open-files limit of 1024 and 4 threads: 1017 connections opened.
CRAFTED_STUDY_C2000_CONNECT_ERRORS = """\
Running 3m test @ http://10.0.0.2:8080/
  4 threads and 2000 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   406.80ms   20.00ms 600.00ms   90.00%
    Req/Sec   625.00     50.00   700.00     70.00%
  450000 requests in 3.00m, 54.93MB read
  Socket errors: connect 983, read 0, write 0, timeout 0
Requests/sec:   2500.00
Transfer/sec:    312.50KB
"""


def logs(tmp_path: Path, files: dict[str, bytes | str]) -> Path:
    src = tmp_path / "logs"
    for name, data in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return src


def fixture(name: str) -> bytes:
    return (WRK / name).read_bytes()


def test_imported_logs_load_with_their_flags(tmp_path: Path) -> None:
    src = logs(tmp_path, {
        "r1/uwsgi.10.log": fixture("wrk410-read-errors-no-content-length.txt"),
        "r1/cherrypy.500.log": CRAFTED_STUDY_CHERRYPY_C500,
        "r1/meinheld.2000.log": CRAFTED_STUDY_C2000_CONNECT_ERRORS,
        "run2/uwsgi.10.log": fixture("wrk410-ok-t1-c10.txt"),
        "run2/cherrypy.500.log": "wrk: connection refused\n",
    })  # fmt: skip
    out = tmp_path / "raw"
    run_id = import_logs(src, PATTERN, out)
    assert run_id.endswith("-imported")
    df = add_flags(load_runs(out))
    got = {(r.server, r.connections, r.repeat): (r.status, r.flags) for r in df.itertuples()}
    assert got == {
        # One ok repeat of the two: the noise of these cells is unknown.
        ("cherrypy", 500, 1): ("ok", "littles_law;noise_unknown"),
        ("cherrypy", 500, 2): ("failed", ""),
        ("meinheld", 2000, 1): ("ok", "fd_limit;noise_unknown"),
        ("uwsgi", 10, 1): ("ok", "eof_read_errors;noisy"),  # 1061.63 vs 2001.61 req/s
        ("uwsgi", 10, 2): ("ok", "noisy"),
    }
    assert set(df["app"]) == {"unknown"} and set(df["profile"]) == {"imported"}
    assert df["cpu_model"].isna().all() and df["server_version"].isna().all()
    failed = df[df["status"] == "failed"].iloc[0]
    assert failed["reason"].startswith("no wrk summary in cherrypy.500.log: 1: expected")
    # Texts are copied byte for byte; the sidecar names its source and checksum.
    run = out / run_id
    for rel in ("r1/uwsgi.10.log", "run2/cherrypy.500.log"):
        server, conns = Path(rel).name.split(".")[:2]
        repeat = 1 if rel.startswith("r1") else 2
        base = run / server / "unknown" / "unknown" / f"c{conns}-r{repeat}"
        assert base.with_suffix(".txt").read_bytes() == (src / rel).read_bytes()
        assert json.loads(base.with_suffix(".json").read_text())["source"]["path"] == rel
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "complete" and meta["settings"]["repeats"] == 2
    assert set(meta["host"].values()) == {None} and meta["versions"]["python"] is None


def test_repeat_field_and_dotted_server_names(tmp_path: Path) -> None:
    ok = fixture("wrk410-ok-t1-c10.txt")
    src = logs(
        tmp_path, {"gunicorn.gthread-10-raw-r1.txt": ok, "gunicorn.gthread-10-raw-r2.txt": ok}
    )
    run_id = import_logs(src, "{server}-{connections}-{app}-r{repeat}.txt", tmp_path / "raw")
    df = load_runs(tmp_path / "raw" / run_id)
    assert df[["server", "app", "repeat"]].values.tolist() == [
        ["gunicorn.gthread", "raw", 1], ["gunicorn.gthread", "raw", 2]
    ]  # fmt: skip


def test_pattern_matching_no_file(tmp_path: Path) -> None:
    src = logs(tmp_path, {"a.txt": "x", "b.txt": "y"})
    with pytest.raises(ImportLogsError) as e:
        import_logs(src, PATTERN, tmp_path / "raw")
    assert str(e.value) == (
        f"pattern '{PATTERN}' matches none of the 2 files in {src}: a.txt, b.txt"
    )
    assert not (tmp_path / "raw").exists()


def test_non_matching_files_are_skipped_listed_and_recorded(tmp_path: Path) -> None:
    ok = fixture("wrk410-ok-t1-c10.txt")
    src = logs(tmp_path, {
        "uwsgi.10.log": ok,
        "results.csv": "server,connections,rps\nuwsgi,10,2001.61\n",  # the study's stray CSV
        "notes.md": "x",
        "misc/uwsgi.10.log": ok,
        "r2/uwsgi.10.log": ok,
        "r2/old/uwsgi.10.log": ok,
        ".hidden.10.log": ok,  # hidden files are ignored, not recorded
    })  # fmt: skip
    notes: list[str] = []
    run_id = import_logs(src, PATTERN, tmp_path / "raw", note=notes.append)
    df = load_runs(tmp_path / "raw")
    assert sorted(zip(df["server"], df["repeat"], strict=True)) == [("uwsgi", 1), ("uwsgi", 2)]
    meta = json.loads((tmp_path / "raw" / run_id / "run.json").read_text())
    no_match = f"name does not match the pattern '{PATTERN}'"
    assert meta["import_skipped"] == [
        {"path": "misc/uwsgi.10.log", "why": "in a directory that is not a repeat directory"
         " (r1, run2, repeat3 or 4)"},
        {"path": "notes.md", "why": no_match},
        {"path": "r2/old/uwsgi.10.log", "why": "below a repeat directory"},
        {"path": "results.csv", "why": no_match},
    ]  # fmt: skip
    assert notes == [f"skipped {src / s['path']}: {s['why']}" for s in meta["import_skipped"]]


def test_one_stray_csv_does_not_stop_the_import(tmp_path: Path) -> None:
    src = logs(tmp_path, {
        "gunicorn.10.log": fixture("wrk410-ok-t1-c10.txt"),
        "uwsgi.10.log": fixture("wrk410-read-errors-no-content-length.txt"),
        "summary.csv": "server,connections\n",
    })  # fmt: skip
    run_id = import_logs(src, PATTERN, tmp_path / "raw")
    assert sorted(load_runs(tmp_path / "raw")["server"]) == ["gunicorn", "uwsgi"]
    meta = json.loads((tmp_path / "raw" / run_id / "run.json").read_text())
    assert meta["import_skipped"] == [
        {"path": "summary.csv", "why": f"name does not match the pattern '{PATTERN}'"}
    ]


def test_strict_refuses_non_matching_files(tmp_path: Path) -> None:
    ok = fixture("wrk410-ok-t1-c10.txt")
    src = logs(tmp_path, {"uwsgi.10.log": ok, "notes.md": "x", "misc/uwsgi.10.log": ok})
    with pytest.raises(ImportLogsError) as e:
        import_logs(src, PATTERN, tmp_path / "raw", strict=True)
    assert str(e.value) == (
        f"{src}: cannot import: files that do not match (--strict): misc/uwsgi.10.log (in a"
        " directory that is not a repeat directory (r1, run2, repeat3 or 4)),"
        f" notes.md (name does not match the pattern '{PATTERN}')"
    )
    assert not (tmp_path / "raw").exists()


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


# File names whose fields are not plain folder names: "..", "." and, for a raw tree that
# is also zipped and opened elsewhere, Windows separators, UNC and drive prefixes.
UNSAFE_NAMES = {
    "x.._.._.._10.log": "server '..', app '..', workload '..'",  # the example
    "x.._a_b_10.log": "server '..'",
    "x._a_.._10.log": "server '.', workload '..'",
    "x..\\..\\etc_a_b_10.log": "server '..\\\\..\\\\etc'",
    "x\\\\host\\share_a_b_10.log": "server '\\\\\\\\host\\\\share'",  # UNC, absolute on Windows
    "xC:_a_b_10.log": "server 'C:'",  # a drive: absolute on Windows
}


@pytest.mark.parametrize("name", sorted(UNSAFE_NAMES))
def test_unsafe_names_are_refused_and_nothing_is_written_outside_out(
    tmp_path: Path, name: str
) -> None:
    src = logs(tmp_path, {name: fixture("wrk410-ok-t1-c10.txt"), "uwsgi_a_b_10.log": "x"})
    out = tmp_path / "a" / "b" / "out"
    out.mkdir(parents=True)
    before = _tree(tmp_path)
    with pytest.raises(ImportLogsError) as e:
        import_logs(src, "x{server}_{app}_{workload}_{connections}.log", out)
    assert str(e.value) == (
        f"{src}: cannot import {name} ({UNSAFE_NAMES[name]}): a name field must be a plain"
        " folder name, not '.', '..', one with a path separator or a drive"
    )
    assert _tree(tmp_path) == before  # nothing written anywhere, inside --out or not


@pytest.mark.parametrize("profile", ["/tmp/abs", "../../up", "..", "a\\b", "C:"])
def test_unsafe_profile_is_refused(tmp_path: Path, profile: str) -> None:
    src = logs(tmp_path, {"uwsgi.10.log": fixture("wrk410-ok-t1-c10.txt")})
    before = _tree(tmp_path)
    with pytest.raises(ImportLogsError, match="not a plain name"):
        import_logs(src, PATTERN, tmp_path / "out", profile=profile)
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("linked", ["", "uwsgi"])
def test_written_paths_are_confined_after_resolving_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linked: str
) -> None:
    # A link already inside --out where the run's folder (or a server's) will be: the
    # paths are resolved before the first write, and refused.
    from harness.raw import importlogs

    src = logs(tmp_path, {"uwsgi.10.log": fixture("wrk410-ok-t1-c10.txt")})
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    real_run_id = importlogs._run_id

    def linked_run_id(out_dir: Path, profile: str) -> str:
        run_id = real_run_id(out_dir, profile)
        if linked:
            (out_dir / run_id).mkdir()
        (out_dir / run_id / linked).symlink_to(outside, target_is_directory=True)
        return run_id

    monkeypatch.setattr(importlogs, "_run_id", linked_run_id)
    source = str(src / "uwsgi.10.log") if linked else "run.json"
    with pytest.raises(ImportLogsError) as e:
        import_logs(src, PATTERN, out)
    assert str(e.value).startswith(f"{source}: would be written to {out}/")
    assert str(e.value).endswith(f", outside {out}; nothing imported")
    assert list(outside.iterdir()) == []


def test_symlinks_are_refused_naming_them(tmp_path: Path) -> None:
    ok = fixture("wrk410-ok-t1-c10.txt")
    secret = tmp_path / "secret.txt"  # a file outside the source directory
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    elsewhere = logs(tmp_path / "elsewhere", {"uwsgi.20.log": ok})
    src = logs(tmp_path, {"uwsgi.10.log": ok, "r1/gunicorn.10.log": ok})
    (src / "passwd.10.log").symlink_to(secret)
    (src / "r2").symlink_to(elsewhere, target_is_directory=True)
    (src / "r1" / "cheroot.10.log").symlink_to(src / "uwsgi.10.log")
    (src / "dangling.10.log").symlink_to(tmp_path / "missing")
    out = tmp_path / "out"
    before = _tree(tmp_path)
    with pytest.raises(ImportLogsError) as e:
        import_logs(src, PATTERN, out)
    assert str(e.value) == (
        f"{src}: symbolic links are not imported (copy the files themselves):"
        " dangling.10.log, passwd.10.log, r1/cheroot.10.log, r2"
    )
    assert _tree(tmp_path) == before and not out.exists()


def test_task_lists_skipped_files_on_stderr_and_strict_refuses(tmp_path: Path) -> None:
    src = logs(tmp_path, {"uwsgi.10.log": fixture("wrk410-ok-t1-c10.txt"), "notes.md": "x"})
    out = tmp_path / "raw"

    def invoke(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "invoke", "import-logs", str(src), "--pattern", PATTERN]
        return subprocess.run(
            [*argv, "--out", str(out), *args],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    strict = invoke("--strict")
    assert strict.returncode == 2 and strict.stdout == "" and not out.exists()
    assert (
        strict.stderr.strip().endswith(f"notes.md (name does not match the pattern '{PATTERN}')")
        and strict.stderr.count("\n") == 1
    )
    done = invoke()
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        f"skipped {src / 'notes.md'}: name does not match the pattern '{PATTERN}'\n"
    )
    assert (out / done.stdout.strip() / "run.json").is_file()


def test_two_files_for_one_cell(tmp_path: Path) -> None:
    ok = fixture("wrk410-ok-t1-c10.txt")
    src = logs(tmp_path, {"uwsgi.10.log": ok, "uwsgi.010.log": ok})
    with pytest.raises(ImportLogsError, match=r"uwsgi\.010\.log and uwsgi\.10\.log: both"):
        import_logs(src, PATTERN, tmp_path / "raw")


def test_header_contradicting_the_file_name(tmp_path: Path) -> None:
    src = logs(tmp_path, {"uwsgi.500.log": fixture("wrk410-ok-t1-c10.txt")})
    with pytest.raises(ImportLogsError, match="the file name says 500 connections, wrk's header"):
        import_logs(src, PATTERN, tmp_path / "raw")


@pytest.mark.parametrize(
    "pattern,message",
    [
        ("{server}.log", "needs {connections}"),
        ("{host}.{server}.{connections}", "unknown field {host}"),
        ("r1/{server}.{connections}", "a file name, not a path"),
        ("{server}.{server}.{connections}", "field {server} appears twice"),
    ],
)
def test_bad_patterns(tmp_path: Path, pattern: str, message: str) -> None:
    src = logs(tmp_path, {"uwsgi.10.log": "x"})
    with pytest.raises(ImportLogsError, match=message.replace("{", r"\{").replace("}", r"\}")):
        import_logs(src, pattern, tmp_path / "raw")


def test_imported_logs_build_a_site_whose_pages_show_the_flags(tmp_path: Path) -> None:
    """An older study's `<server>.<connections>.log` files become pages with their flags."""
    from harness.perf.probe import hand_written_docs
    from harness.site.build import build_site

    wrk = Path(__file__).parent / "fixtures" / "wrk"
    logs = tmp_path / "logs"
    logs.mkdir()
    # Real captures: a clean run, EOF-delimited bodies (read errors), a low fd limit.
    shutil.copy(wrk / "wrk410-ok-t1-c10.txt", logs / "gunicorn.10.log")
    shutil.copy(wrk / "wrk410-read-errors-no-content-length.txt", logs / "uwsgi.10.log")
    shutil.copy(wrk / "wrk410-connect-errors-ulimit.txt", logs / "cheroot.50.log")
    raw = tmp_path / "raw"
    run_id = import_logs(logs, "{server}.{connections}.log", raw)
    site = build_site(raw, hand_written_docs(tmp_path / "docs"), tmp_path / "site", runs=run_id)
    uwsgi = (site / "results/servers/uwsgi.html").read_text()
    assert "flags.html#eof_read_errors" in uwsgi
    legend = (site / "results/flags.html").read_text()
    assert "uwsgi" in legend and "eof_read_errors" in legend
    home = (site / "index.html").read_text()
    assert "imported" in home.lower()


@pytest.mark.parametrize("task", ["import-logs", "export"])
def test_an_out_under_a_file_is_one_line(tmp_path: Path, task: str) -> None:
    src = logs(tmp_path, {"uwsgi.10.log": fixture("wrk410-ok-t1-c10.txt")})
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    tree = ROOT / "tests" / "fixtures" / "raw_tree"
    args = [str(src), "--pattern", PATTERN] if task == "import-logs" else ["--raw", str(tree)]
    done = subprocess.run(
        [sys.executable, "-m", "invoke", task, *args, "--out", str(blocker / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    option = "--raw" if task == "import-logs" else "--out"  # import-logs' --out: --raw's old name
    assert done.stderr == f"error: {option}: cannot write to {blocker / 'out'}: Not a directory\n"
