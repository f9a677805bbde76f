"""harness/raw/records.py: the run and cell records, their versions and their checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.parse.records import RawFormatError
from harness.raw.documents import FORMAT_VERSION
from harness.raw.records import CellSidecar, RunMeta, read_cell, read_run

FIXTURES = Path(__file__).parent / "fixtures"
V1_CELL = FIXTURES / "bench_raw/20261126T152540Z-smoke/uwsgi/raw/plaintext/c1-r1.json"
V1_RUN = FIXTURES / "bench_raw/20261126T152540Z-smoke/run.json"


def test_version_1_is_read_under_the_new_names() -> None:
    doc = json.loads(V1_CELL.read_text())
    assert doc["format_version"] == 1 and "duration_s" in doc
    cell = read_cell(V1_CELL)
    assert cell.duration_configured_s == doc["duration_s"]
    assert cell.warmup_configured_s == doc["warmup_s"]
    assert cell.timeout_configured_s == doc["timeout_s"]
    written = cell.to_json()
    assert written["format_version"] == FORMAT_VERSION == 2
    assert "duration_s" not in written and written["duration_configured_s"] == doc["duration_s"]


def test_a_record_survives_writing_and_reading_with_nothing_lost(tmp_path: Path) -> None:
    cell = read_cell(V1_CELL)
    path = tmp_path / "c1-r1.json"
    path.write_text(json.dumps({**cell.to_json(), "from_a_newer_tool": [1, 2]}))
    again = read_cell(path)
    assert again.extra == {"from_a_newer_tool": [1, 2]}
    assert again == CellSidecar(**{**again.__dict__, "extra": {}}).__class__(**{**again.__dict__})
    assert read_cell(path).to_json()["from_a_newer_tool"] == [1, 2]
    run = read_run(V1_RUN)
    (tmp_path / "run.json").write_text(json.dumps(run.to_json()))
    assert read_run(tmp_path / "run.json") == run


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"connections": "ten"}, "connections: expected int, found 'ten'"),
        ({"server_cpus": [0, "one"]}, "server_cpus: expected a list of CPUs, found [0, 'one']"),
        ({"preflight": {"checks": [["x", "yes", "?"]]}}, "preflight.checks: expected"),
        ({"files": {"stdout": 3}}, "files: expected an object of file names"),
        ({"format_version": 3}, "unknown format_version 3 (this code reads 1, 2)"),
        ({"kind": "run"}, "expected kind 'cell', found 'run'"),
    ],
)
def test_a_bad_field_is_named_with_its_file(tmp_path: Path, change: dict, message: str) -> None:
    path = tmp_path / "c1-r1.json"
    path.write_text(json.dumps({**json.loads(V1_CELL.read_text()), **change}))
    with pytest.raises(RawFormatError) as info:
        read_cell(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_a_run_needs_its_id_and_string_versions(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"format_version": 2, "kind": "run"}))
    with pytest.raises(RawFormatError, match="missing field 'run_id'"):
        read_run(path)
    path.write_text(
        json.dumps({"format_version": 2, "kind": "run", "run_id": "r", "versions": {"a": 1}})
    )
    with pytest.raises(RawFormatError, match="versions: expected strings"):
        read_run(path)
    assert RunMeta(run_id="r").to_json()["format_version"] == 2
