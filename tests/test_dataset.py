"""Table and export stages: a raw/ tree -> the tidy table -> results.csv / results.jsonl.

tests/fixtures/raw_tree/ holds one run whose wrk outputs are the real captures from
tests/fixtures/wrk/ (one with its real Lua report) and one failed cell. Corruption
tests copy it to a temporary directory and break one file.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness import RawFormatError, load_runs
from harness.dataset import FORMAT_VERSION
from harness.export import export_table
from harness.schema import COLUMNS, DTYPES, EXACT, SORT_KEYS

TREE = Path(__file__).resolve().parent / "fixtures" / "raw_tree"
RUN = "20261126T140000Z-fixture"
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
    assert [(a, c, r) for _, _, a, _, c, r in keys] == [
        ("missing", 10, 1),
        ("nolength", 10, 1),
        ("raw", 8, 1),
        ("raw", 10, 1),
        ("raw", 10, 2),
        ("raw", 50, 1),
    ]
    assert df.attrs["skipped"] == []
    assert (df["flags"] == "").all()


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
    assert str(info.value) == f"{sidecar}: unknown format_version 2 (this code reads 1)"


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


def test_cli_export(tmp_path: Path) -> None:
    from harness.__main__ import main

    assert main(["export", str(TREE), str(tmp_path)]) == 0
    assert (tmp_path / "results.csv").read_text().startswith("run_id,server,app,workload,")


def test_schema_page_documents_every_column_in_order() -> None:
    documented = re.findall(r"^\| `([a-z0-9_]+)` \| (\w+) \|", DOCS.read_text(), re.MULTILINE)
    assert documented == [(c, DTYPES[c]) for c in COLUMNS]
