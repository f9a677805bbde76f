"""harness.raw.importlogs: a directory of plain wrk outputs becomes a raw run that loads.

Real captures come from tests/fixtures/wrk; the two study-like texts below are crafted
from the study's published figures (CherryPy at c=500; connect errors at c=2000).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.raw.importlogs import ImportLogsError, import_logs
from harness.tables.dataset import load_runs
from harness.tables.flags import add_flags

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
        ("cherrypy", 500, 1): ("ok", "littles_law"),
        ("cherrypy", 500, 2): ("failed", ""),
        ("meinheld", 2000, 1): ("ok", "fd_limit"),
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


def test_non_matching_files_are_listed(tmp_path: Path) -> None:
    ok = fixture("wrk410-ok-t1-c10.txt")
    src = logs(tmp_path, {"uwsgi.10.log": ok, "notes.md": "x", "misc/uwsgi.10.log": ok})
    with pytest.raises(ImportLogsError) as e:
        import_logs(src, PATTERN, tmp_path / "raw")
    assert str(e.value) == (
        f"{src}: cannot import:\n"
        "  file names that do not match the pattern: misc/uwsgi.10.log, notes.md"
    )


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
