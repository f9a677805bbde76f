"""`invoke bench` end to end: real servers, real wrk, real processes, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.bench.runner import group_alive

ROOT = Path(__file__).resolve().parent.parent
PROFILES = """
[tiny]
servers = ["gunicorn"]
apps = ["raw"]
connections = [2, 4, 6]
duration = "2s"
warmup = "0s"
repeats = 1
threads = 1
workers = 1
server_threads = 2

[broken]
servers = ["crashes-at-once", "gunicorn"]
apps = ["raw"]
connections = [2]
duration = "1s"
warmup = "0s"
repeats = 1
threads = 1

[custom_servers.crashes-at-once]
argv = ["{python}", "-c", "import sys; sys.stderr.write('boom: no such socket\\\\n'); sys.exit(3)"]
worker_model = "exits at once (test double for a broken server)"
"""


def invoke(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(PROFILES)
    return path


def sidecars(out: Path) -> dict[str, dict]:
    return {
        str(p.relative_to(out)): json.loads(p.read_text())
        for p in sorted(out.glob("*/*/*/*/c*-r*.json"))
        if p.name.count(".") == 1  # c2-r1.json, not c2-r1.lua.json / .samples.json
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--servers", "nope"], "error: --servers: unknown server 'nope'"),
        (
            ["--connections", "1", "--threads", "2"],
            "error: --connections: 1 is fewer than --threads 2",
        ),
        (["--duration", "-5"], "error: --duration: duration must not be negative, got '-5'"),
        (["--apps", "django"], "error: --apps: unknown app 'django'"),
        (["--profile", "nope"], "error: --profile: unknown profile 'nope'"),
    ],
)
def test_bad_options_give_one_clear_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = invoke("bench", "--out", str(tmp_path / "raw"), *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message)
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())


def test_unwritable_out_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = invoke("bench", "--profile", "smoke", "--out", str(blocker / "raw"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: --raw: cannot write to {blocker / 'raw'}: Not a directory"
    ]


@pytest.mark.slow
def test_failing_server_is_recorded_and_the_run_goes_on(tmp_path: Path, profiles: Path) -> None:
    out = tmp_path / "raw"
    result = invoke(
        "bench", "--profile", "broken", "--profile-file", str(profiles), "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    cells = sidecars(out)
    run_id = next(iter(out.iterdir())).name
    broken = cells[f"{run_id}/crashes-at-once/raw/plaintext/c2-r1.json"]
    assert broken["status"] == "failed"
    assert "exited with code 3" in broken["reason"]
    assert "boom: no such socket" in broken["server_stderr_tail"]
    good = cells[f"{run_id}/gunicorn/raw/plaintext/c2-r1.json"]
    assert good["status"] == "ok", good
    # Measured, then killed at once (no graceful stop to wait for); the crash stopped itself.
    assert good["server_stop"] == "sigkill-after-measurement" and good["server_exit_code"] == -9
    assert "server_stop" not in broken and broken["server_exit_code"] == 3
    # The cause is in the server's own words, in the reason too (not only "exited").
    assert broken["reason"].endswith("; it said: boom: no such socket")
    text = (out / run_id / "gunicorn/raw/plaintext/c2-r1.txt").read_text()
    assert " requests in " in text and "Socket errors" not in text
    run = json.loads((out / run_id / "run.json").read_text())
    assert run["status"] == "complete"
    assert "failed crashes-at-once/raw/plaintext/c2-r1" in result.stderr


def wait_for(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_keeps_finished_cells(tmp_path: Path, profiles: Path) -> None:
    out = tmp_path / "raw"
    args = ["bench", "--profile", "tiny", "--profile-file", str(profiles), "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # Kill while the second cell's server is running: one cell done, one in flight.
        def second_cell_running() -> bool:
            markers = list(out.glob("*/.active-server.json"))
            return len(sidecars(out)) == 1 and bool(markers)

        wait_for(second_cell_running, 60, "the second cell to start")
        marker = json.loads(next(out.glob("*/.active-server.json")).read_text())
        before = {p: p.read_bytes() for p in out.rglob("c2-r1*") if p.is_file()}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # The server dies with the harness (PR_SET_PDEATHSIG), workers follow their master.
    wait_for(lambda: not group_alive(marker["pgid"]), 15, "the killed run's server to exit")
    run_id = next(iter(out.iterdir())).name
    assert json.loads((out / run_id / "run.json").read_text())["status"] == "running"

    result = invoke(*args)
    assert result.returncode == 0, result.stderr
    assert f"resuming run {run_id}" in result.stderr
    # The killed bench's lock is stale (the kernel dropped it): taken over, and said.
    said = " ".join(result.stderr.split())
    assert f"run {run_id}: taking over the lock left by pid {proc.pid} on host" in said
    assert f"(pid {proc.pid} is gone)" in said
    for path, data in before.items():
        assert path.read_bytes() == data, f"{path} changed on resume"
    cells = sidecars(out)
    assert sorted(cells) == [f"{run_id}/gunicorn/raw/plaintext/c{n}-r1.json" for n in (2, 4, 6)]
    assert all(c["status"] == "ok" for c in cells.values())
    assert json.loads((out / run_id / "run.json").read_text())["status"] == "complete"
    assert not list(out.rglob(".*.part")) and not list(out.glob("*/.active-server.json"))


@pytest.mark.slow
def test_sigterm_mid_cell_records_it_failed_then_resume_measures_it(
    tmp_path: Path, profiles: Path
) -> None:
    out = tmp_path / "raw"
    args = ["bench", "--profile", "tiny", "--profile-file", str(profiles), "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: bool(list(out.glob("*/.active-server.json"))), 60, "a server")
        marker = json.loads(next(out.glob("*/.active-server.json")).read_text())
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130
    assert "interrupted; run the same command again to resume" in err
    # The cell cut short is not counted as measured, nor are the cells never started.
    assert "interrupted, 0 cell(s) measured in" in " ".join(err.split())
    assert not group_alive(marker["pgid"])
    run_id = next(iter(out.iterdir())).name
    assert json.loads((out / run_id / "run.json").read_text())["status"] == "interrupted"
    cell = out / run_id / "gunicorn/raw/plaintext/c2-r1.json"
    recorded = json.loads(cell.read_text())
    assert recorded["status"] == "failed" and recorded["interrupted"] is True
    assert "--resume measures it again" in recorded["reason"]

    result = invoke(*args, "--resume")
    assert result.returncode == 0, result.stderr
    again = json.loads(cell.read_text())
    assert again["status"] == "ok" and "interrupted" not in again
    assert json.loads((out / run_id / "run.json").read_text())["status"] == "complete"


@pytest.mark.slow
def test_a_second_bench_on_a_running_run_is_refused(tmp_path: Path, profiles: Path) -> None:
    """Two `invoke bench` at once on one --out: the second exits with the lock's holder
    and touches nothing; the first completes with every cell measured."""
    out = tmp_path / "raw"
    args = ["bench", "--profile", "tiny", "--profile-file", str(profiles), "--out", str(out)]
    first = subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: bool(list(out.glob("*/.active-server.json"))), 60, "a server")
        run_id = next(out.glob("*/run.json")).parent.name
        second = invoke(*args)
        files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert lines[0].startswith(
        f"error: run {run_id} is being written by pid {first.pid} on host {socket.gethostname()}"
        " since 20"
    )
    assert lines[0].endswith(f"; wait until it ends or stop it (lock: {out / run_id / '.lock'})")
    assert first.returncode == 0, err
    assert "left by the killed run" not in err
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == [run_id]
    cells = sidecars(out)
    assert len(cells) == 3 and all(c["status"] == "ok" for c in cells.values()), cells
    for path, data in files.items():  # what the first had written then is as it wrote it
        if path.name not in ("run.json", ".lock", ".active-server.json"):
            assert path.read_bytes() == data, f"{path} changed"
    run = json.loads((out / run_id / "run.json").read_text())
    assert run["status"] == "complete" and "resumed_at" not in run


def installed_servers() -> list[str]:
    from harness.matrix.servers import SERVERS
    from harness.matrix.serverspec import check_available

    return [sid for sid, spec in SERVERS.items() if check_available(spec) is None]


@pytest.mark.slow
def test_every_server_starts_at_4096_connections(tmp_path: Path) -> None:
    """The backlog asked for by c=4096 (8192) is above net.core.somaxconn (4096 on this
    kernel): every server is given at most somaxconn, and both are recorded."""
    limit = int(Path("/proc/sys/net/core/somaxconn").read_text())
    servers = installed_servers()
    out = tmp_path / "raw"
    result = invoke(
        "bench", "--servers", ",".join(servers), "--apps", "raw", "--connections", "4096",
        "--duration", "1", "--warmup", "0", "--repeats", "1", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    cells = {c["server"]: c for c in sidecars(out).values()}
    assert sorted(cells) == sorted(servers)
    for server, cell in cells.items():
        assert cell["status"] == "ok", (server, cell["reason"], cell.get("server_stderr_tail"))
        assert cell["backlog_requested"] == 8192
        assert cell["backlog"] == min(8192, limit)
    if limit < 8192 and "uwsgi" in cells:
        assert cells["uwsgi"]["server_argv"][
            cells["uwsgi"]["server_argv"].index("--listen") + 1
        ] == (str(limit))


UWSGI_OVER_LIMIT = """
[over]
servers = ["uwsgi-over-limit"]
apps = ["raw"]
connections = [2]
duration = "1s"
warmup = "0s"
repeats = 1
threads = 1

[custom_servers.uwsgi-over-limit]
argv = ["uwsgi", "--strict", "--http", "{host}:{port}", "--listen", "1000000",
        "--module", "{module}:{callable}"]
worker_model = "uWSGI asked for a listen queue above net.core.somaxconn (test double)"
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("uwsgi", path=str(Path(sys.executable).parent)) is None,
                    reason="uWSGI is not installed")  # fmt: skip
def test_a_server_that_does_not_start_says_why_in_the_reason(tmp_path: Path) -> None:
    """uWSGI refusing its listen queue: its own last line is in the reason and the tail."""
    path = tmp_path / "profiles.toml"
    path.write_text(UWSGI_OVER_LIMIT)
    out = tmp_path / "raw"
    result = invoke("bench", "--profile", "over", "--profile-file", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    (cell,) = sidecars(out).values()
    assert cell["status"] == "failed"
    said = "Listen queue size is greater than the system max net.core.somaxconn"
    assert cell["reason"].startswith(
        "server did not start: server exited with code 1 before answering; it said: "
    )
    assert said in cell["reason"].split("it said: ")[1]
    assert said in cell["server_stderr_tail"]


ESCAPING_SERVER = """
import os, sys, time
# A daemon's double fork: the grandchild leaves the server's session and process group.
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(sys.argv[1] + ".part", "w") as f:
            f.write(str(os.getpid()))
        os.rename(sys.argv[1] + ".part", sys.argv[1])
        while True:
            time.sleep(1)
    os._exit(0)
os.wait()
os.execv(sys.executable, [sys.executable, "-m", "gunicorn", *sys.argv[2:]])
"""


@pytest.mark.slow
def test_a_custom_servers_setsid_child_is_stopped_with_it(tmp_path: Path) -> None:
    import psutil

    script, pidfile = tmp_path / "escaping_server.py", tmp_path / "escaped.pid"
    script.write_text(ESCAPING_SERVER)
    profile = tmp_path / "profiles.toml"
    profile.write_text(f"""
[escape]
servers = ["escapes"]
apps = ["raw"]
connections = [2]
duration = "1s"
warmup = "0s"
repeats = 1
threads = 1

[custom_servers.escapes]
argv = ["{{python}}", "{script}", "{pidfile}", "--bind", "{{host}}:{{port}}",
        "{{module}}:{{callable}}"]
worker_model = "gunicorn sync behind a daemon child that escapes with setsid (test double)"
""")
    out = tmp_path / "raw"
    try:
        result = invoke("bench", "--profile", "escape", "--profile-file", str(profile),
                        "--out", str(out))  # fmt: skip
        assert result.returncode == 0, result.stderr
        escaped = int(pidfile.read_text())
        (cell,) = sidecars(out).values()
        assert cell["status"] == "ok", cell["reason"]
        assert cell["server_escaped"] == [escaped]
        gone = not psutil.pid_exists(escaped)
        assert gone or psutil.Process(escaped).status() == psutil.STATUS_ZOMBIE
    finally:
        if pidfile.is_file():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.slow
def test_a_server_paused_mid_cell_is_flagged_stalled(tmp_path: Path, profiles: Path) -> None:
    """SIGSTOP to the cell's server group for 2 s in the middle of a 6 s measurement,
    then SIGCONT: the cell is still `ok` (wrk got answers) but carries `stalled`."""
    import psutil

    out = tmp_path / "raw"
    args = ["bench", "--profile", "tiny", "--profile-file", str(profiles), "--out", str(out)]
    args += ["--connections", "4", "--duration", "6s", "--no-calibrate"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def wrk_running() -> bool:
        try:
            kids = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return False
        return any(k.name() == "wrk" for k in kids if k.is_running())

    try:
        wait_for(wrk_running, 60, "the measured wrk")
        pgid = json.loads(next(out.glob("*/.active-server.json")).read_text())["pgid"]
        time.sleep(1.5)  # into the measurement
        os.killpg(pgid, signal.SIGSTOP)
        try:
            time.sleep(2.0)  # the pause under test, bounded
        finally:
            os.killpg(pgid, signal.SIGCONT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    from harness import load_runs

    row = load_runs(out).iloc[0]
    assert row["status"] == "ok"
    assert 1.5 <= row["stall_s"] <= 3.0, row["stall_s"]
    assert "stalled" in row["flags"].split(";")
