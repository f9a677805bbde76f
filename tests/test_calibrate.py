"""harness.bench.calibrate: wrk against Debian's nginx, started and stopped by us."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from harness.bench.calibrate import CalibrationError, calibrate
from harness.matrix.build import default_pinning
from harness.parse.wrk import parse_wrk


def test_missing_nginx_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"nginx: /nonexistent/nginx not found \(install"):
        calibrate(tmp_path / "calibration.json", 10, 1, 1, None, None, nginx="/nonexistent/nginx")
    assert not (tmp_path / "calibration.json").exists()


@pytest.mark.slow
def test_calibration_record(tmp_path: Path) -> None:
    server_cpus, client_cpus = default_pinning()
    out = tmp_path / "raw" / "20260101T000000Z-quick" / "calibration.json"
    record = calibrate(out, 20, 1, 1, client_cpus, server_cpus)
    assert json.loads(out.read_text()) == record
    assert record["kind"] == "calibration" and record["status"] == "ok", record["reason"]
    assert record["preflight"] == {"ok": True, "reason": None}
    assert record["nginx_version"].startswith("nginx/")
    assert record["wrk_argv"][:5] == ["wrk", "-t1", "-c20", "-d1s", "--latency"]
    assert record["requests_per_sec"] > 1000
    assert record["wrk_cpu_pct_mean"] is not None and record["nginx_cpu_pct_mean"] is not None
    assert record["errors"] == dict.fromkeys(
        ("connect", "read", "write", "timeout", "non_2xx_3xx"), 0
    )
    # wrk's stdout is kept verbatim beside the record, with the exact Lua figures.
    stdout = out.with_name(record["files"]["stdout"]).read_text()
    assert parse_wrk(stdout).requests_per_sec == record["requests_per_sec"]
    assert json.loads(out.with_name(record["files"]["lua_json"]).read_text())["requests"] > 0
    # nginx is gone, and so is its temporary directory.
    conf_dir = record["nginx_argv"][2]
    assert not Path(conf_dir).exists()
    assert not [
        p for p in psutil.process_iter(["cmdline"]) if conf_dir in (p.info["cmdline"] or [])
    ]
