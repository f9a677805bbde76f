"""Table and export stages: a raw/ tree -> the tidy table -> results.csv / results.jsonl.

tests/fixtures/raw_tree/ holds one run whose wrk outputs are the real captures from
tests/fixtures/wrk/ (one with its real Lua report) and one failed cell. Corruption
tests copy it to a temporary directory and break one file. tests/fixtures/bench_raw/ is
a real bench run with samples, server metrics, the session workload and a calibration;
imported runs are made in the test from real captures.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest

from harness import RawFormatError, load_runs
from harness.raw.documents import FORMAT_VERSION
from harness.tables.ceilings import load_calibrations
from harness.tables.export import export_table
from harness.tables.flags import details_of
from harness.tables.schema import COLUMNS, DTYPES, EXACT, SORT_KEYS

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TREE = FIXTURES / "raw_tree"
RUN = "20261126T140000Z-fixture"
# A real `invoke bench --profile smoke --servers uwsgi --server-metrics --workloads
# plaintext,session --connections 1,4 --session-keys 50` run, then `invoke calibrate`.
BENCH = FIXTURES / "bench_raw"
BENCH_RUN = "20261126T152540Z-smoke"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "schema.md"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(TREE, tmp_path / "raw")
    return tmp_path / "raw"


def cell(tree: Path, app: str, name: str) -> Path:
    return tree / RUN / "wsgiref" / app / "plaintext" / name


def row(df: pd.DataFrame, app: str, connections: int, repeat: int) -> pd.Series:
    match = df[(df.app == app) & (df.connections == connections) & (df.repeat == repeat)]
    assert len(match) == 1
    return match.iloc[0]


def test_shape_columns_dtypes_and_order() -> None:
    df = load_runs(TREE)
    assert list(df.columns) == COLUMNS
    assert {c: str(df[c].dtype) for c in COLUMNS} == DTYPES
    keys = list(df[SORT_KEYS].itertuples(index=False, name=None))
    assert keys == sorted(keys) and len(keys) == 6
    assert [(a, c, r) for _, _, a, _, c, _, _, r in keys] == [
        ("missing", 10, 1),
        ("nolength", 10, 1),
        ("raw", 8, 1),
        ("raw", 10, 1),
        ("raw", 10, 2),
        ("raw", 50, 1),
    ]
    assert df.attrs["skipped"] == []
    # Real captures: a 404 path, a body ended by close, a failed cell, two repeats 23 %
    # apart; every ok cell measured once has no interval: its noise is unknown.
    unknown = "noise_unknown"
    assert df["status"][2] == "failed"
    assert df["flags"].tolist() == [
        f"{unknown};non_2xx",
        f"eof_read_errors;{unknown}",
        "",
        "noisy",
        "noisy",
        unknown,
    ]
    assert details_of(df["flag_details"][1])["eof_read_errors"] == (
        "2230 read errors for 2230 requests: bodies end at connection close"
    )


def test_lua_report_wins_and_printed_figures_are_kept() -> None:
    r = row(load_runs(TREE), "raw", 10, 1)
    assert r.figures_from == "lua.json"
    assert (r.requests, r.requests_printed) == (1455, 1455)
    assert (r.duration_s, r.duration_s_printed) == (1.002687, 1.0)
    assert r.requests_per_sec == 1455 / 1.002687 and r.requests_per_sec_printed == 1451.10
    assert (r.bytes_read, r.bytes_read_printed) == (224070, 218.82 * 1024)
    assert r.transfer_per_sec_bytes == 224070 / 1.002687
    assert (r.latency_avg_ms, r.latency_avg_ms_printed) == (6.822605815, 6.82)
    assert (r.latency_stdev_ms, r.latency_stdev_ms_printed) == (2.507132794, 2.51)
    assert (r.latency_min_ms, r.latency_max_ms, r.latency_max_ms_printed) == (2.483, 17.005, 17.0)
    assert (r.latency_p50_ms, r.latency_p50_ms_printed) == (6.41, 6.41)
    assert (r.latency_p99_ms, r.latency_p99_ms_printed) == (14.502, 14.5)
    assert r.latency_p99_9_ms == 16.018 and math.isnan(r.latency_p99_9_ms_printed)
    assert r.latency_p99_99_ms == 17.005 and math.isnan(r.latency_p100_ms)
    assert (r.thread_requests_per_sec_avg, r.thread_requests_per_sec_avg_printed) == (1463.6, 1460)
    assert r.thread_requests_per_sec_within_stdev_pct == 90.0
    assert r.lua_json_file == f"{RUN}/wsgiref/raw/plaintext/c10-r1.lua.json"


def test_without_lua_report_figures_are_the_printed_ones() -> None:
    r = row(load_runs(TREE), "raw", 10, 2)
    assert r.figures_from == "stdout" and pd.isna(r.lua_json_file)
    for name in EXACT:
        assert r[name] == r[f"{name}_printed"] or (
            pd.isna(r[name]) and pd.isna(r[f"{name}_printed"])
        )
    assert (r.requests, r.requests_per_sec, r.latency_stdev_ms) == (4203, 2001.61, 0.84539)
    assert pd.isna(r.latency_min_ms) and pd.isna(r.latency_p50_ms)


def test_errors_and_non_2xx() -> None:
    df = load_runs(TREE)
    assert row(df, "raw", 50, 1).errors_connect == 22
    assert row(df, "nolength", 10, 1).errors_read == 2230
    assert row(df, "missing", 10, 1).non_2xx_3xx == 1413
    assert row(df, "raw", 10, 2)[["errors_connect", "errors_read", "non_2xx_3xx"]].tolist() == [
        0,
        0,
        0,
    ]


def test_failed_cell_is_a_row_with_empty_figures_not_zeros() -> None:
    r = row(load_runs(TREE), "raw", 8, 1)
    assert (r.status, r.reason) == ("failed", "wrk did not finish in time and was killed")
    figures = [*EXACT, *(f"{n}_printed" for n in EXACT), "errors_read", "non_2xx_3xx", "tool"]
    assert all(pd.isna(r[c]) for c in figures)
    assert pd.isna(r.figures_from) and pd.isna(r.stdout_file)
    assert (r.threads, r.connections_effective, r.duration_configured_s) == (1, 8, 1.0)


def test_metadata_columns() -> None:
    r = row(load_runs(TREE), "missing", 10, 1)
    assert (r.run_id, r.profile, r.run_status) == (RUN, "fixture", "complete")
    assert (r.run_started_at, r.run_ended_at) == (
        "2026-11-26T14:00:00.000Z",
        "2026-11-26T14:01:00.000Z",
    )
    assert (r.started_at, r.ended_at, r.server_ready_s) == (
        "2026-11-26T14:00:01.000Z",
        "2026-11-26T14:00:03.000Z",
        0.052,
    )
    assert (r.wrk_version, r.python_version, r.server_version) == ("4.1.0", "3.11.2", "3.11.2")
    assert pd.isna(r.framework_version)
    assert (r.host, r.cores, r.kernel, r.git_dirty) == ("fixture-host", 2, "6.1.0-fixture", True)
    assert (r.threads, r.connections_effective, r.test_duration_s) == (1, 10, 1.0)
    assert (r.warmup_configured_s, r.timeout_configured_s, r.nofile_limit) == (0.0, 2.0, 1124)
    assert (r.tool, r.url) == ("wrk", "http://127.0.0.1:58953/missing")
    assert r.stdout_file == f"{RUN}/wsgiref/missing/plaintext/c10-r1.txt"


def test_one_run_directory_loads_like_the_tree() -> None:
    pd.testing.assert_frame_equal(load_runs(TREE / RUN), load_runs(TREE))


def test_empty_raw_dir_gives_an_empty_typed_table(tmp_path: Path) -> None:
    df = load_runs(tmp_path)
    assert df.empty and list(df.columns) == COLUMNS
    assert {c: str(df[c].dtype) for c in COLUMNS} == DTYPES


def test_corrupt_wrk_output_stops_the_load_with_path_and_line(tree: Path) -> None:
    bad = cell(tree, "raw", "c10-r2.txt")
    lines = bad.read_text().split("\n")
    bad.write_text("\n".join(lines[:5] + lines[6:]))  # drop the requests line
    expected = (
        f"{bad}:6: expected '<N> requests in <time>, <size> read', found 'Requests/sec:   2001.61'"
    )
    with pytest.raises(RawFormatError) as info:
        load_runs(tree)
    assert str(info.value) == expected
    df = load_runs(tree, skip_bad=True)
    assert len(df) == 5 and not ((df.app == "raw") & (df.repeat == 2)).any()
    assert df.attrs["skipped"] == [{"path": str(bad), "error": expected}]


def test_unknown_format_version_names_the_sidecar(tree: Path) -> None:
    sidecar = cell(tree, "nolength", "c10-r1.json")
    doc = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**doc, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(RawFormatError) as info:
        load_runs(tree)
    assert str(info.value) == f"{sidecar}: unknown format_version 3 (this code reads 1, 2)"


def test_invalid_json_sidecar_names_file_and_line(tree: Path) -> None:
    sidecar = cell(tree, "missing", "c10-r1.json")
    sidecar.write_text('{\n  "format_version": 1,\n  "kind": "cell",\n  oops\n}\n')
    with pytest.raises(RawFormatError) as info:
        load_runs(tree)
    found = "expecting property name enclosed in double quotes (column 3)"
    assert str(info.value) == f"{sidecar}:4: expected JSON, found {found}"


def test_bad_run_json_skips_the_whole_run(tree: Path) -> None:
    run_json = tree / RUN / "run.json"
    run_json.write_text(json.dumps({"format_version": 1, "kind": "cell"}))
    with pytest.raises(
        RawFormatError, match=re.escape(f"{run_json}: expected kind 'run', found 'cell'")
    ):
        load_runs(tree)
    df = load_runs(tree, skip_bad=True)
    assert df.empty and [s["path"] for s in df.attrs["skipped"]] == [str(run_json)]


@pytest.mark.parametrize(
    ("app", "name", "change", "message"),
    [
        (
            "raw",
            "c10-r1.json",
            {"connections": 20},
            "{stdout}: wrk printed 1 threads and 10 connections, the sidecar says 1 and 20",
        ),
        (
            "raw",
            "c10-r1.json",
            {"status": "maybe"},
            "{path}: status: expected 'ok' or 'failed', found 'maybe'",
        ),
        ("raw", "c10-r1.json", {"repeat": "one"}, "{path}: repeat: expected int, found 'one'"),
        ("raw", "c10-r1.json", {"server": None}, "{path}: missing field 'server'"),
        (
            "raw",
            "c10-r1.json",
            {"run_id": "other"},
            f"{{path}}: run_id 'other' is not this run's '{RUN}'",
        ),
        ("raw", "c10-r1.json", {"files": {}}, "{path}: status 'ok' but files has no 'stdout'"),
        (
            "raw",
            "c10-r1.lua.json",
            {"requests": "many"},
            "{path}: requests: expected a number, found 'many'",
        ),
        (
            "raw",
            "c10-r1.lua.json",
            {"latency_us": {"mean": True}},
            "{path}: latency_us.mean: expected a number, found True",
        ),
    ],
)
def test_inconsistent_files_are_errors(
    tree: Path, app: str, name: str, change: dict[str, object], message: str
) -> None:
    path = cell(tree, app, name)
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(RawFormatError) as info:
        load_runs(tree)
    assert str(info.value) == message.format(path=path, stdout=cell(tree, app, "c10-r1.txt"))


def test_missing_stdout_file_is_an_error(tree: Path) -> None:
    stdout = cell(tree, "missing", "c10-r1.txt")
    stdout.unlink()
    with pytest.raises(RawFormatError) as info:
        load_runs(tree)
    assert str(info.value) == f"{stdout}: cannot read: No such file or directory"


def test_export_writes_csv_and_json_lines_deterministically(tmp_path: Path) -> None:
    df = load_runs(TREE)
    paths = export_table(df, tmp_path / "a")
    assert [p.name for p in paths] == ["results.csv", "results.jsonl"]
    again = export_table(load_runs(TREE), tmp_path / "b")
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]
    csv = pd.read_csv(paths[0])
    assert list(csv.columns) == COLUMNS and len(csv) == 6
    assert csv.requests_per_sec.fillna(-1).tolist() == df.requests_per_sec.fillna(-1).tolist()
    records = [json.loads(line) for line in paths[1].read_text().splitlines()]
    assert [list(r) for r in records] == [COLUMNS] * 6
    failed = records[2]
    assert (
        failed["status"] == "failed"
        and failed["requests"] is None
        and failed["latency_avg_ms"] is None
    )
    assert records[3]["requests"] == 1455 and records[3]["git_dirty"] is True
    assert not list(tmp_path.glob("a/.*"))  # no temporary files left behind


def test_csv_quotes_text_a_spreadsheet_would_evaluate(tmp_path: Path) -> None:
    df = load_runs(TREE)
    df.loc[0, "server"] = "=1+2"
    df.loc[1, "reason"] = "-2+3"
    df.loc[2, "url"] = "@SUM(A1:A9)"
    df.loc[3, "flags"] = "+cmd|' /C calc'!A0"
    df.loc[4, "reason"] = "\t=1+2"
    df.loc[0, "latency_avg_ms"] = -1.5  # a number: stays a number
    csv_path, jsonl_path = export_table(df, tmp_path)
    rows = list(csv.DictReader(csv_path.open(newline="")))
    assert [rows[0]["server"], rows[1]["reason"], rows[2]["url"]] == [
        "'=1+2", "'-2+3", "'@SUM(A1:A9)"
    ]  # fmt: skip
    assert (rows[3]["flags"], rows[4]["reason"]) == ("'+cmd|' /C calc'!A0", "'\t=1+2")
    assert rows[0]["latency_avg_ms"] == "-1.5" and rows[1]["server"] == df.loc[1, "server"]
    assert not any(
        v.startswith(("=", "+", "-", "@", "\t", "\r"))
        for row in rows
        for k, v in row.items()
        if DTYPES[k] == "str"
    )
    # JSON lines are for scripts: every value exactly as in the table.
    records = [json.loads(line) for line in jsonl_path.read_text().splitlines()]
    assert (records[0]["server"], records[1]["reason"], records[4]["reason"]) == (
        "=1+2", "-2+3", "\t=1+2"
    )  # fmt: skip
    assert records[0]["latency_avg_ms"] == -1.5
    # Nothing to quote: the CSV is what pandas writes.
    plain = load_runs(TREE)
    export_table(plain, tmp_path / "plain")
    expected = plain.to_csv(index=False, lineterminator="\n", na_rep="")
    assert (tmp_path / "plain" / "results.csv").read_text() == expected


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_written_files_get_the_users_umask(tmp_path: Path, umask: int) -> None:
    from harness.raw.store import write_atomic, write_json

    old = os.umask(umask)
    try:
        written = export_table(load_runs(TREE), tmp_path / "export")
        write_atomic(tmp_path / "raw" / "c1-r1.txt", b"wrk output")
        write_json(tmp_path / "raw" / "c1-r1.json", {"kind": "cell"})
        write_atomic(tmp_path / "raw" / "c1-r1.txt", b"replaced")  # a rewrite, too
    finally:
        os.umask(old)
    files = [*written, tmp_path / "raw" / "c1-r1.txt", tmp_path / "raw" / "c1-r1.json"]
    assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {
        f.name: 0o666 & ~umask for f in files
    }
    assert not list(tmp_path.rglob(".*.part"))


def test_cli_export(tmp_path: Path) -> None:
    from harness.__main__ import main

    assert main(["export", str(TREE), str(tmp_path)]) == 0
    assert (tmp_path / "results.csv").read_text().startswith("run_id,server,app,workload,")


def test_schema_page_documents_every_column_in_order() -> None:
    documented = re.findall(r"^\| `([a-z0-9_]+)` \| (\w+) \|", DOCS.read_text(), re.MULTILINE)
    assert documented == [(c, DTYPES[c]) for c in COLUMNS]


def bench_row(df: pd.DataFrame, app: str, workload: str, connections: int) -> pd.Series:
    match = df[(df.app == app) & (df.workload == workload) & (df.connections == connections)]
    assert len(match) == 1
    return match.iloc[0]


def test_bench_run_samples_pinning_preflight_and_metrics_columns() -> None:
    df = load_runs(BENCH)
    assert len(df) == 8 and (df["status"] == "ok").all()
    assert {c: str(df[c].dtype) for c in COLUMNS} == DTYPES
    r = bench_row(df, "raw+metrics", "plaintext", 4)
    # The sampler ran a few times a second during the 1 s load.
    assert 3 <= r.samples_n <= 8 and 0 < r.server_cpu_pct_mean <= r.server_cpu_pct_max
    assert 0 < r.wrk_cpu_pct_mean <= r.wrk_cpu_pct_max and r.server_rss_mb_max > 10
    assert (r.established_min, r.established_median, r.accept_queue_median) == (4, 4.0, 0.0)
    assert not r.server_pids_changed
    assert (r.client_cpus_n, r.server_cpus_n) == (1, 1)
    assert (r.preflight_ok, r.preflight_ignored) == (True, False) and pd.isna(r.preflight_reason)
    base = f"{BENCH_RUN}/uwsgi/raw+metrics/plaintext/c4-r1"
    assert (r.has_server_metrics, r.metrics_file) == (True, f"{base}.metrics.prom")
    assert r.samples_file == f"{base}.samples.json" and not r.imported
    plain = bench_row(df, "raw", "plaintext", 4)
    assert not plain.has_server_metrics
    assert pd.isna(plain.metrics_file) and pd.isna(plain.session_get)


def test_session_counts_and_expected_404s_raise_no_flag() -> None:
    df = load_runs(BENCH)
    exact = bench_row(df, "raw", "session", 1)
    issued = [exact.session_get, exact.session_post, exact.session_delete]
    assert issued == [2239, 417, 132] and sum(issued) == exact.requests
    replies = ["value", "created", "deleted", "not_found", "other"]
    assert [exact[f"session_{k}"] for k in replies] == [1568, 417, 93, 710, 0]
    assert (exact.session_exact, exact.session_mismatches) == (True, 0)
    # wrk counts the 404 misses as non-2xx; they are the answers the mix expects.
    assert exact.non_2xx_3xx == exact.session_not_found == 710
    shared = bench_row(df, "raw", "session", 4)  # 4 connections on 1 thread: not matched
    assert (shared.session_exact, shared.session_not_found) == (False, 2037)
    assert pd.isna(shared.session_mismatches)
    assert (df["flags"] == "noise_unknown").all()  # the smoke run has one repeat per cell


def test_session_error_statuses_beyond_404_are_flagged(tmp_path: Path) -> None:
    shutil.copytree(BENCH, tmp_path / "raw")
    report = tmp_path / "raw" / BENCH_RUN / "uwsgi" / "raw" / "session" / "c4-r1.lua.json"
    doc = json.loads(report.read_text())
    doc["session"]["replies"]["not_found"] -= 37  # as if 37 of wrk's non-2xx were 500s
    doc["session"]["replies"]["other"] = 37
    report.write_text(json.dumps(doc))
    r = bench_row(load_runs(tmp_path / "raw"), "raw", "session", 4)
    assert (r["flags"], r.session_other) == ("noise_unknown;non_2xx", 37)
    assert details_of(r.flag_details)["non_2xx"] == (
        "37 of 8589 responses (0%) had a status of 400 or more other than 404"
    )


def test_calibrations_are_read_per_run() -> None:
    found = load_calibrations(BENCH)
    assert list(found) == [BENCH_RUN]
    cal = found[BENCH_RUN]
    assert (cal["kind"], cal["status"], cal["path"]) == (
        "calibration", "ok", f"{BENCH_RUN}/calibration.json"
    )  # fmt: skip
    assert cal["requests_per_sec"] == 52428.45 and cal["nginx_version"] == "nginx/1.22.1"
    assert load_calibrations(BENCH / BENCH_RUN) == found
    assert load_calibrations(TREE) == {}


def test_unknown_calibration_format_names_the_file(tmp_path: Path) -> None:
    shutil.copytree(BENCH, tmp_path / "raw")
    path = tmp_path / "raw" / BENCH_RUN / "calibration.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 9}))
    with pytest.raises(RawFormatError) as info:
        load_calibrations(tmp_path / "raw")
    assert str(info.value) == f"{path}: unknown format_version 9 (this code reads 1)"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 2}, "unknown format_version 2 (this code reads 1)"),
        ({"columns": ["t_s"]}, "expected columns "),
        ({"samples": [[0.0, [1], None]]}, "expected one row of sample values per sample"),
    ],
)
def test_unreadable_samples_name_the_file(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    shutil.copytree(BENCH, tmp_path / "raw")
    path = tmp_path / "raw" / BENCH_RUN / "uwsgi" / "raw" / "plaintext" / "c1-r1.samples.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(RawFormatError) as info:
        load_runs(tmp_path / "raw")
    assert str(info.value).startswith(f"{path}: {message}")
    df = load_runs(tmp_path / "raw", skip_bad=True)
    assert len(df) == 7 and [s["path"] for s in df.attrs["skipped"]] == [str(path)]


def test_imported_logs_load_with_flags(tmp_path: Path) -> None:
    from harness.raw.importlogs import import_logs

    src = tmp_path / "logs"
    src.mkdir()
    for name, capture in [
        ("uwsgi.10.log", "wrk410-read-errors-no-content-length.txt"),
        ("waitress.20.log", "wrk410-ok-latency-t2-c20.txt"),
    ]:
        shutil.copy(FIXTURES / "wrk" / capture, src / name)
    run_id = import_logs(src, "{server}.{connections}.log", tmp_path / "raw")
    df = load_runs(tmp_path / "raw")
    assert df[["server", "flags"]].values.tolist() == [
        ["uwsgi", "eof_read_errors;noise_unknown"], ["waitress", "noise_unknown"]
    ]  # fmt: skip
    r = df.iloc[0]
    assert details_of(r.flag_details)["eof_read_errors"] == (
        "2230 read errors for 2230 requests: bodies end at connection close"
    )
    assert (r.run_id, r.app, r.profile, r.imported) == (run_id, "unknown", "imported", True)
    # What the logs cannot tell stays empty.
    unknown = ["samples_n", "client_cpus_n", "preflight_ok", "nofile_limit", "python_version"]
    assert all(pd.isna(r[c]) for c in unknown) and not r.has_server_metrics


def test_imported_metrics_cell_loads_beside_a_bench_run(tmp_path: Path) -> None:
    from harness.raw.metricsimport import import_metrics

    shutil.copytree(BENCH, tmp_path / "raw")
    wrk_file = FIXTURES / "wrk" / "wrk410-ok-latency-t2-c20.txt"
    prom = FIXTURES / "prometheus" / "study-kask.prom"
    # The study's dump counts the service's whole life, not this wrk run: not checked.
    unchecked = {"server": "kask", "app": "store", "check_counts": False}
    import_metrics([prom], wrk_file, tmp_path / "raw" / BENCH_RUN, **unchecked)  # type: ignore[arg-type]
    fresh = tmp_path / "raw" / "20181108T200500Z-kask"  # a run of imported cells only
    import_metrics([prom], wrk_file, fresh, **unchecked)  # type: ignore[arg-type]
    df = load_runs(tmp_path / "raw")
    kask = df[df.server == "kask"]
    assert kask[["run_id", "workload", "imported", "has_server_metrics"]].values.tolist() == [
        ["20181108T200500Z-kask", "imported", True, True],
        [BENCH_RUN, "imported", True, True],
    ]
    assert kask.iloc[1].metrics_file == f"{BENCH_RUN}/kask/store/imported/c20-r1.metrics.prom"
    assert not df[df.server == "uwsgi"]["imported"].any()
    assert pd.isna(kask.iloc[0].host) and pd.isna(kask.iloc[0].samples_n)


@pytest.mark.slow
def test_a_real_bench_run_loads_with_samples_and_flags(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "raw"
    argv = [sys.executable, "-m", "invoke", "bench", "--profile", "smoke", "--out", str(out)]
    argv += ["--server-metrics", "--workloads", "plaintext,session"]
    done = subprocess.run(argv, cwd=DOCS.parents[1], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    df = load_runs(out)
    assert len(df) == 4 and (df["status"] == "ok").all()  # gunicorn × raw(+metrics) × 2
    assert (df["samples_n"] > 0).all() and df["server_cpu_pct_mean"].notna().all()
    assert df["wrk_cpu_pct_mean"].notna().all() and df["established_median"].notna().all()
    # gunicorn's sync worker closes every connection: a preflight failure that does not block.
    assert (df["preflight_ok"] == False).all() and not df["preflight_ignored"].any()  # noqa: E712
    assert df["preflight_reason"].str.startswith("keep_alive: server sent Connection: close").all()
    assert df["has_server_metrics"].tolist() == [False, False, True, True]
    session = df[df.workload == "session"]
    assert (session["session_get"] > 0).all()
    assert not df["flags"].str.contains("non_2xx").any()
    # Flags are computed from the new columns: each detail names its flag.
    for flags, details in zip(df["flags"], df["flag_details"], strict=True):
        assert [d.split(":")[0] for d in details.split(" | ") if d] == flags.split(";") * bool(
            flags
        )


def test_wrk_cpu_from_a_client_hosts_agent_fills_in_when_no_sample_saw_wrk(tree: Path) -> None:
    """wrk on another host: the sidecar's wrk_cpu_pct_mean (wait4 at exit) is the column."""
    sidecar = cell(tree, "nolength", "c10-r1.json")
    doc = json.loads(sidecar.read_text())
    assert "samples" not in doc["files"]  # no sampler here: the column would be empty
    sidecar.write_text(json.dumps({**doc, "wrk_cpu_pct_mean": 87.5}))
    df = load_runs(tree)
    assert row(df, "nolength", 10, 1)["wrk_cpu_pct_mean"] == 87.5
    assert pd.isna(row(df, "raw", 10, 1)["wrk_cpu_pct_mean"])
    sidecar.write_text(json.dumps({**doc, "wrk_cpu_pct_mean": "busy"}))
    with pytest.raises(RawFormatError) as info:
        load_runs(tree)
    assert str(info.value) == f"{sidecar}: wrk_cpu_pct_mean: expected a number, found 'busy'"
