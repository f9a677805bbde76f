"""harness.bench.calibrate: wrk against Debian's nginx, started and stopped by us."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from harness.bench.calibrate import CalibrationError, calibrate
from harness.matrix.build import default_pinning
from harness.parse.wrk import parse_wrk
from harness.paths import REPO_ROOT
from harness.tables.dataset import load_runs


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
    assert record["when"] == "on request"
    assert record["preflight"] == {"ok": True, "reason": None}  # nginx answers like the apps
    assert record["nginx_version"].startswith("nginx/")
    assert record["wrk_argv"][:5] == ["wrk", "-t1", "-c20", "-d1s", "--timeout=2s"]
    assert record["requests_per_sec"] > 1000
    assert record["wrk_cpu_pct_mean"] is not None and record["nginx_cpu_pct_mean"] is not None
    assert record["errors"] == dict.fromkeys(
        ("connect", "read", "write", "timeout", "non_2xx_3xx"), 0
    )
    # The ceiling is a cell of the same sequence as the servers': wrk's stdout kept
    # verbatim, the exact Lua figures the record's.
    run = out.parent
    stdout = parse_wrk((run / record["files"]["stdout"]).read_text())
    report = json.loads((run / record["files"]["lua_json"]).read_text())
    assert record["requests"] == report["requests"] and stdout.requests_per_sec > 1000
    assert record["files"]["sidecar"] == "calibration/request/nginx/raw/plaintext/c20-r1.json"
    # nginx is gone: nothing we started is left (other test runs may have their own).
    assert not [p.name() for p in psutil.Process().children(recursive=True) if p.is_running()
                and p.status() != psutil.STATUS_ZOMBIE and p.name() == "nginx"]  # fmt: skip


# A "server under test" as fast as the ceiling itself: nginx answering like the raw app.
NGINX_AS_APP = '''
import os, sys
port, backlog, tmp = sys.argv[1], sys.argv[2], f"{sys.argv[3]}/{sys.argv[1]}"
os.makedirs(tmp, exist_ok=True)
conf = f"""daemon off; master_process off; worker_processes 1; pid {tmp}/pid;
error_log {tmp}/error.log warn; events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {tmp}/b; proxy_temp_path {tmp}/p;
fastcgi_temp_path {tmp}/f; uwsgi_temp_path {tmp}/u; scgi_temp_path {tmp}/s;
keepalive_requests 100000000;
server {{ listen 127.0.0.1:{port} backlog={backlog};
location / {{ default_type "text/plain; charset=utf-8"; return 200 "Hello, World!"; }} }} }}"""
open(f"{tmp}/nginx.conf", "w").write(conf)
argv = ["nginx", "-p", tmp, "-c", f"{tmp}/nginx.conf", "-e", f"{tmp}/error.log"]
os.execv("/usr/sbin/nginx", argv)
'''


@pytest.mark.slow
def test_every_run_measures_its_ceiling_and_a_cell_at_it_is_client_saturated(
    tmp_path: Path,
) -> None:
    """A real run whose server is as fast as nginx: the ceiling measured at the run's
    start and end is recorded, and the cell, at that ceiling, is flagged."""
    launcher = tmp_path / "nginx_as_app.py"
    launcher.write_text(NGINX_AS_APP)
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(f"""
[fast]
servers = ["nginx-as-app"]
apps = ["raw"]
connections = [20]
duration = "2s"
warmup = "0s"
repeats = 1
threads = 1

[custom_servers.nginx-as-app]
argv = ["{{python}}", "{launcher}", "{{port}}", "{{backlog}}", "{tmp_path}"]
worker_model = "nginx, one process: a test double as fast as the client ceiling"
""")
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "bench", "--profile", "fast", "--profile-file",
         str(profiles), "--out", str(tmp_path / "raw")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run_dir,) = (tmp_path / "raw").iterdir()
    run = json.loads((run_dir / "run.json").read_text())
    whens = [c["when"] for c in run["calibrations"]]
    assert whens == ["start", "end"] and {c["status"] for c in run["calibrations"]} == {"ok"}
    for c in run["calibrations"]:
        record = json.loads((run_dir / c["file"]).read_text())
        assert record["when"] == c["when"] and record["requests_per_sec"] > 1000
        assert (run_dir / record["files"]["stdout"]).is_file()
    assert "client ceiling (start): wrk drives" in done.stderr
    row = load_runs(tmp_path / "raw").iloc[0]
    assert row["status"] == "ok" and row["client_ceiling_rps"] == min(
        c["requests_per_sec"] for c in run["calibrations"]
    )
    assert "client_saturated" in row["flags"].split(";")
    assert "of the client ceiling measured in this run" in row["flag_details"]


@pytest.mark.slow
def test_no_calibrate_is_recorded(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "bench", "--profile", "smoke", "--no-calibrate",
         "--out", str(tmp_path / "raw")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run_dir,) = (tmp_path / "raw").iterdir()
    run = json.loads((run_dir / "run.json").read_text())
    assert run["settings"]["calibrate"] is False
    assert [(c["when"], c["status"], c["reason"]) for c in run["calibrations"]] == [
        ("start", "skipped", "--no-calibrate"), ("end", "skipped", "--no-calibrate")
    ]  # fmt: skip
    assert not list(run_dir.glob("calibration*"))
