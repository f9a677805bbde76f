"""Remote hosts end to end: our own sshd on 127.0.0.1 plays the server and client hosts.

Real SSH (key-only auth, host key checked against a generated known_hosts), real
gunicorn, real wrk. The sshd is the same machine, so the server host reuses this
virtualenv (--remote-venv); the general path (code upload, a new virtualenv, pip
install) has its own test with a wheel built here, so nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from harness.bench.host import HostError
from harness.bench.merge import ERROR_KEYS, histogram_percentile, merge_histograms
from harness.bench.runner import group_alive
from harness.matrix.apps import APPS
from harness.matrix.build import build_matrix, default_pinning
from harness.matrix.hosts import SshOptions, check_same_hosts, parse_host, plan_hosts
from harness.matrix.options import ConfigError
from harness.matrix.servers import SERVERS
from harness.parse.wrk import parse_wrk_file
from tests.sshd import Sshd, start_sshd

ROOT = Path(__file__).resolve().parent.parent
PROFILES = """
[tiny]
servers = ["gunicorn"]
apps = ["raw"]
connections = [2]
duration = "1s"
warmup = "1s"
repeats = 1
threads = 1

[two]
servers = ["gunicorn"]
apps = ["raw"]
connections = [2, 4]
duration = "3s"
warmup = "0s"
repeats = 1
threads = 1
"""
# What a remote cell's sidecar adds to the local fields (docs/raw-format.md).
REMOTE_CELL_KEYS = {"server_host", "client_hosts", "server_pid", "server_pgid", "wrk_cpu_pct_mean"}


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    daemon = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(PROFILES)
    return path


def bench_args(sshd: Sshd, tmp: Path, profile: str, profiles: Path, clients: int = 1) -> list[str]:
    args = ["bench", "--profile", profile, "--profile-file", str(profiles)]
    args += ["--out", str(tmp / "raw"), "--server-host", sshd.target]
    args += ["--client-host", sshd.target] * clients
    args += ["--ssh-key", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts)]
    return args + ["--remote-dir", str(tmp / "remote"), "--remote-venv", sys.prefix]


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def cell_base(out: Path, key: str) -> Path:
    (run,) = out.iterdir()
    return run / key


def read(path: Path) -> dict:
    return dict(json.loads(path.read_text()))


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # poll interval


def wrk_under(sshd: Sshd) -> list[str]:
    """Command lines of the wrk processes started through our sshd (by client agents)."""
    found = []
    try:
        kids = psutil.Process(sshd.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    for kid in kids:
        try:
            if kid.name() == "wrk":
                found.append(" ".join(kid.cmdline()))
        except psutil.Error:
            continue  # it ended while we looked
    return found


# --- options and policy (fast) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bench@10.0.0.5:2222", ("10.0.0.5", "bench", 2222)),
        ("vm1", ("vm1", None, None)),
        ("root@[::1]:22", ("::1", "root", 22)),
        ("local", ("local", None, None)),
    ],
)
def test_host_specs(text: str, expected: tuple) -> None:
    spec = parse_host(text, "--server-host")
    assert (spec.host, spec.user, spec.port) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a@b@c", "--client-host: 'a@b@c' is not user@host[:port] or 'local'"),
        ("vm:99999", "--client-host: port 99999 is out of range in 'vm:99999'"),
        ("me@local", "--client-host: 'local' takes no user or port, got 'me@local'"),
    ],
)
def test_bad_host_specs_say_why(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_host(text, "--client-host")
    assert str(e.value) == message


def test_plan_is_none_when_everything_is_local_and_cpus_are_not_split_across_machines() -> None:
    assert plan_hosts({}) is None
    plan = plan_hosts({}, server_host="a@vm1", client_hosts=["b@vm2"])
    assert plan is not None and not plan.shared_machine
    assert plan_hosts({"server_host": "vm1", "client_hosts": ["vm1"]}).shared_machine  # type: ignore[union-attr]
    # Separate machines: no default pinning; CPUs given still count.
    apart = build_matrix("quick", {}, list(SERVERS), list(APPS), split_cpus=False)
    assert apart.server_cpus is None and apart.client_cpus is None
    given = build_matrix(
        "quick", {"server_cpus": "0", "client_cpus": "1"}, list(SERVERS), list(APPS),
        split_cpus=False,
    )  # fmt: skip
    assert given.server_cpus == (0,) and given.client_cpus == (1,)
    shared = build_matrix("quick", {}, list(SERVERS), list(APPS))
    assert (shared.server_cpus, shared.client_cpus) == default_pinning()


def test_ssh_record_names_the_policy_never_the_key(tmp_path: Path) -> None:
    key = tmp_path / "id_test"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n")
    record = SshOptions(key_file=str(key)).record()
    assert record["host_key_checking"] == "strict (known_hosts)"
    assert str(key) not in json.dumps(record) and "secret" not in json.dumps(record)
    relaxed = SshOptions(insecure_host_keys=True).record()
    assert relaxed["host_key_checking"] == "off (--insecure-host-keys)"


def test_key_paths_are_redacted_from_command_lines() -> None:
    from harness.matrix.hosts import redact_argv

    argv = ["invoke", "bench", "--ssh-key", "/home/me/.ssh/id_vm", "--ssh-key=/k2", "--new"]
    assert redact_argv(argv) == (
        "invoke", "bench", "--ssh-key", "<key file>", "--ssh-key=<key file>", "--new",
    )  # fmt: skip
    from harness.pages.methodology import methodology_context

    ctx = methodology_context({"run_id": "r", "argv": argv}, [])
    assert "/home/me" not in ctx["bench_argv"] and "/k2" not in ctx["bench_argv"]


def test_resume_refuses_other_hosts() -> None:
    plan = plan_hosts({}, server_host="a@vm1", client_hosts=["vm2"])
    hosts = {"plan": plan.record() if plan else None}
    check_same_hosts("r1", hosts, plan)
    with pytest.raises(ConfigError, match="--resume: run r1 was measured on server a@vm1"):
        check_same_hosts("r1", hosts, None)


# --- real SSH ---------------------------------------------------------------------------


@pytest.mark.slow
def test_host_keys_are_checked_unless_relaxed(sshd: Sshd, tmp_path: Path) -> None:
    from harness.bench.remote.hosts import open_host

    spec = parse_host(sshd.target, "--server-host")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostError, match="host key not in"):
        open_host(spec, SshOptions(str(sshd.client_key), str(empty)))
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    empty.write_text(f"[127.0.0.1]:{sshd.port} {wrong}\n")
    with pytest.raises(HostError, match="host key does not match"):
        open_host(spec, SshOptions(str(sshd.client_key), str(empty)))
    host = open_host(spec, SshOptions(str(sshd.client_key), str(empty), insecure_host_keys=True))
    try:
        assert host.host_key and host.host_key.startswith("ssh-ed25519 SHA256:")
    finally:
        host.close()


@pytest.mark.slow
def test_remote_run_has_the_local_format(sshd: Sshd, tmp_path: Path, profiles: Path) -> None:
    remote = invoke(*bench_args(sshd, tmp_path, "tiny", profiles))
    assert remote.returncode == 0, remote.stderr
    local_out = tmp_path / "local-raw"
    local = invoke(
        "bench", "--profile", "tiny", "--profile-file", str(profiles), "--out", str(local_out)
    )
    assert local.returncode == 0, local.stderr
    (rrun,), (lrun,) = (tmp_path / "raw").iterdir(), local_out.iterdir()

    def files(run: Path) -> list[str]:
        return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())

    # The client ceiling is measured on the run's own hosts, remote or not, as a cell.
    assert files(rrun) == files(lrun)
    ceilings = read(rrun / "run.json")["calibrations"]
    assert [(c["when"], c["status"]) for c in ceilings] == [("start", "ok"), ("end", "ok")]
    start = read(rrun / "calibration.start.json")
    assert start["server_host"] and start["client_hosts"] and start["requests_per_sec"] > 0
    key = "gunicorn/raw/plaintext/c2-r1"
    rcell, lcell = read(rrun / f"{key}.json"), read(lrun / f"{key}.json")
    assert rcell["status"] == "ok", rcell["reason"]
    assert set(rcell) - set(lcell) == REMOTE_CELL_KEYS and set(lcell) <= set(rcell)
    assert rcell["files"] == lcell["files"]
    assert set(read(rrun / f"{key}.lua.json")) == set(read(lrun / f"{key}.lua.json"))
    assert rcell["server_env"] == {"PYTHONPATH": str(tmp_path / "remote" / "apps")}
    assert str(tmp_path / "remote" / "harness" / "bench" / "lua") in " ".join(rcell["wrk_argv"])
    assert not group_alive(rcell["server_pgid"])
    # wrk's CPU from its agent (wait4): what a client host without a sampler reports.
    assert 0 < rcell["wrk_cpu_pct_mean"] <= 100 * rcell["threads"]
    assert rcell["server_stop"] == "sigkill-after-measurement"

    rmeta, lmeta = read(rrun / "run.json"), read(lrun / "run.json")
    assert set(rmeta) - set(lmeta) == {"hosts"} and set(lmeta) <= set(rmeta)
    hosts = rmeta["hosts"]
    for host in (hosts["server"], *hosts["clients"]):
        assert {"cpu_model", "cores", "memory_bytes", "kernel", "nofile_hard"} <= set(host)
        assert host["host_key"].startswith("ssh-ed25519 SHA256:")
        assert host["spec"] == sshd.target
    assert hosts["ssh"]["host_key_checking"] == "strict (known_hosts)"
    assert hosts["server"]["versions"]["gunicorn"] == rmeta["versions"]["gunicorn"]

    from harness import load_runs

    table = load_runs(tmp_path / "raw")
    assert list(table["status"]) == ["ok"] and list(table["figures_from"]) == ["lua.json"]
    assert table["requests_per_sec"].iloc[0] > 0

    # The key's path is not published either: run.json's argv redacts it.
    assert str(sshd.client_key) not in (rrun / "run.json").read_text()
    argv = rmeta["argv"]
    assert argv[argv.index("--ssh-key") + 1] == "<key file>"
    secret = [line for line in sshd.client_key.read_text().splitlines() if "-----" not in line]
    for path in rrun.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "PRIVATE KEY" not in text and not any(s in text for s in secret), path


@pytest.mark.slow
def test_server_metrics_are_scraped_beside_the_remote_server(
    sshd: Sshd, tmp_path: Path, profiles: Path
) -> None:
    """--server-metrics on a server host: its multiprocess directory and both scrapes are
    made there by the agent, the text comes home verbatim, the delta is computed here."""
    from harness.parse.prometheus import parse_histograms

    args = bench_args(sshd, tmp_path, "tiny", profiles)
    result = invoke(*args, "--server-metrics")
    assert result.returncode == 0, result.stderr
    base = cell_base(tmp_path / "raw", "gunicorn/raw+metrics/plaintext/c2-r1")
    cell = read(base.with_suffix(".json"))
    assert cell["status"] == "ok", cell["reason"]
    assert "metrics_errors" not in cell
    assert cell["server_env"]["PROMETHEUS_MULTIPROC_DIR"].startswith(str(tmp_path / "remote"))
    for name in ("metrics_before", "metrics_after", "metrics"):
        assert (base.parent / cell["files"][name]).is_file(), name
    [series] = parse_histograms((base.parent / cell["files"]["metrics"]).read_text())
    requests = read(base.with_suffix(".lua.json"))["requests"]
    # The server timed what wrk sent in the measured run, give or take the 2 in flight.
    assert abs(series.total - requests) <= 2 + 1
    from harness import load_runs

    table = load_runs(tmp_path / "raw")
    assert table.set_index("app")["has_server_metrics"].to_dict() == {
        "raw": False,
        "raw+metrics": True,
    }


@pytest.mark.slow
def test_two_clients_are_merged_from_their_raw_outputs(
    sshd: Sshd, tmp_path: Path, profiles: Path
) -> None:
    args = bench_args(sshd, tmp_path, "tiny", profiles, clients=2)
    result = invoke(*args, "--connections", "4", "--warmup", "0")
    assert result.returncode == 0, result.stderr
    base = cell_base(tmp_path / "raw", "gunicorn/raw/plaintext/c4-r1")
    cell = read(base.with_suffix(".json"))
    assert cell["status"] == "ok", cell["reason"]
    assert [c["connections"] for c in cell["clients"]] == [2, 2]  # c4 is the total load
    cpus = [c["wrk_cpu_pct_mean"] for c in cell["clients"]]
    assert all(0 < c <= 100 for c in cpus) and cell["wrk_cpu_pct_mean"] == max(cpus)
    assert "stdout" not in cell["files"]  # no wrk printed the merged figures
    assert cell["files"]["lua_json"] == "c4-r1.lua.json"
    assert not base.with_suffix(".txt").exists()
    reports = [read(base.with_suffix(f".client{i}.lua.json")) for i in (1, 2)]
    printed = [parse_wrk_file(base.with_suffix(f".client{i}.txt")) for i in (1, 2)]
    assert [c["files"]["stdout"] for c in cell["clients"]] == [
        "c4-r1.client1.txt",
        "c4-r1.client2.txt",
    ]
    merged = read(base.with_suffix(".lua.json"))
    assert (
        merged["requests"]
        == sum(r["requests"] for r in reports)
        == sum(p.requests for p in printed)
    )
    assert merged["bytes"] == sum(r["bytes"] for r in reports)
    for k in ERROR_KEYS:
        assert merged["errors"][k] == sum(r["errors"][k] for r in reports)
    assert merged["duration_us"] == max(r["duration_us"] for r in reports)
    hist = merge_histograms([r["latency_histogram_us"] for r in reports])
    assert merged["latency_histogram_us"] == hist
    assert merged["latency_us"]["percentiles"]["99"] == max(
        histogram_percentile(hist, 99) or 0, merged["latency_us"]["min"]
    )
    # The loader takes the merged report as the cell's figures (there is no stdout).
    from harness import load_runs

    row = load_runs(tmp_path / "raw").iloc[0]
    assert row["requests"] == merged["requests"]
    assert row["figures_from"] == "lua.json (merged clients)"
    assert row["errors_read"] == merged["errors"]["read"]


@pytest.mark.slow
def test_lost_connection_fails_the_cell_ctrl_c_stops_and_resume_goes_on(
    sshd: Sshd, tmp_path: Path, profiles: Path
) -> None:
    args = bench_args(sshd, tmp_path, "two", profiles)
    out = tmp_path / "raw"
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:

        def running(connections: int) -> int | None:
            """The server group of cell c<connections> once its wrk runs, else None."""
            marker = list(out.glob("*/.active-remote.json"))
            if not marker:
                return None
            try:
                pgid = int(json.loads(marker[0].read_text())["pgid"])
            except (OSError, ValueError):
                return None
            return pgid if any(f" -c{connections} " in w for w in wrk_under(sshd)) else None

        wait_for(lambda: running(2), 60, "the first cell's wrk")
        first = running(2)
        assert first and sshd.cut_connections() > 0
        wait_for(lambda: not group_alive(first), 20, "the first server group to be gone")
        wait_for(lambda: running(4), 60, "the second cell's wrk")
        second = running(4)
        os.kill(proc.pid, signal.SIGTERM)  # what Ctrl-C does, without a terminal
        _, err = proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert "interrupted" in err.decode()
        wait_for(lambda: second and not group_alive(second), 20, "the second server group")
        wait_for(lambda: not wrk_under(sshd), 20, "wrk to be gone")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    run = next(out.iterdir())
    failed = read(run / "gunicorn/raw/plaintext/c2-r1.json")
    assert failed["status"] == "failed"
    assert failed["reason"].startswith("lost the connection during the cell"), failed["reason"]
    assert failed["server_pgid"] == first
    # Not a result: the infrastructure's failure, measured again on resume.
    assert failed["infrastructure"] is True
    assert f"reconnecting to {sshd.target} (attempt 1 of 5)" in err.decode()
    # Ctrl-C: recorded as failed (shown if never resumed) and measured again on resume.
    stopped = read(run / "gunicorn/raw/plaintext/c4-r1.json")
    assert stopped["status"] == "failed" and stopped["interrupted"] is True
    assert read(run / "run.json")["status"] == "interrupted"

    resumed = invoke(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert read(run / "gunicorn/raw/plaintext/c4-r1.json")["status"] == "ok"
    again = read(run / "gunicorn/raw/plaintext/c2-r1.json")
    assert again["status"] == "ok" and "infrastructure" not in again
    assert "2 cell(s) measured" in resumed.stderr
    assert read(run / "run.json")["status"] == "complete"


def build_wheel(wheelhouse: Path, name: str, version: str) -> None:
    """A minimal pure-Python wheel, so pip installs something without any index."""
    wheelhouse.mkdir(exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }

    def digest(text: str) -> str:
        raw = hashlib.sha256(text.encode()).digest()
        return "sha256=" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    record = "".join(f"{p},{digest(t)},{len(t.encode())}\n" for p, t in files.items())
    files[f"{dist}/RECORD"] = record + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(wheelhouse / f"{name}-{version}-py3-none-any.whl", "w") as whl:
        for path, text in files.items():
            whl.writestr(path, text)


@pytest.mark.slow
def test_server_host_gets_the_code_and_its_own_virtualenv(sshd: Sshd, tmp_path: Path) -> None:
    from harness.bench.remote.hosts import open_host
    from harness.bench.remote.prepare import MARKER, prepare, upload_code

    build_wheel(tmp_path / "wheels", "probe_pkg", "1.0")
    # psutil (the sampler's) compiles and there is no index here: a stand-in wheel of the
    # pinned version shows pip was asked for exactly that pin.
    build_wheel(tmp_path / "wheels", "psutil", "7.2.2")
    host = open_host(
        parse_host(sshd.target, "--server-host"),
        SshOptions(str(sshd.client_key), str(sshd.known_hosts)),
    )
    try:
        remote = tmp_path / "remote"
        pip_env = f"PIP_NO_INDEX=1 PIP_FIND_LINKS={tmp_path / 'wheels'}"
        # probe-pkg stands in for gunicorn's distribution: installed from the wheelhouse.
        needs = {"gunicorn": ["probe-pkg"]}
        p = prepare(
            host, "server", str(remote), None, ["gunicorn"], ["raw"], needs, pip_env=pip_env
        )
        assert p.python == f"{remote}/venv/bin/python"
        assert (remote / MARKER).exists() and (remote / "apps" / "raw_app.py").is_file()
        assert (remote / "harness" / "bench" / "lua" / "report.lua").is_file()
        code, out, _ = host.run(f"{p.python} -c 'import probe_pkg; print(probe_pkg.VERSION)'")
        assert (code, out.strip()) == (0, "1.0")
        assert p.info["unavailable"]["gunicorn"].startswith("gunicorn is not installed")
        assert p.info["facts"]["cores"] == os.cpu_count()
        assert p.info["psutil"] == "7.2.2"

        foreign = tmp_path / "someone-else"
        foreign.mkdir()
        (foreign / "keep.txt").write_text("mine")
        with pytest.raises(HostError, match="is not empty and was not made by wsgi-baseline"):
            upload_code(host, str(foreign))
        assert (foreign / "keep.txt").read_text() == "mine"
    finally:
        host.close()


@pytest.mark.slow
def test_a_silent_link_is_bounded_printed_and_its_cell_measured_again(
    sshd: Sshd, tmp_path: Path, profiles: Path
) -> None:
    """The link goes silent mid-cell (the sshd connections stopped: TCP stays up, nothing
    flows, as with a network outage): the controller prints that it waits, gives up after
    the silence limit (not TCP's 15 minutes), records the cell as the infrastructure's;
    the server host's agent stops the server by itself meanwhile; once the link is back,
    the host is reconnected and the cell measured again."""
    from harness.bench.cell import measure_cell
    from harness.bench.remote.cell import ACTIVE_MARKER, RemoteCellHost
    from harness.bench.remote.limits import Limits
    from harness.bench.remote.session import RemoteSession
    from harness.matrix.build import load_profile
    from harness.raw.store import RunStore

    limits = Limits(heartbeat_s=0.5, silence_s=3.0, progress_s=1.0, cleanup_s=3.0)
    said: list[str] = []
    plan = plan_hosts(
        {}, sshd.target, [sshd.target], str(sshd.client_key), str(sshd.known_hosts),
        remote_dir=str(tmp_path / "remote"), remote_venv=sys.prefix,
    )  # fmt: skip
    assert plan is not None
    profile = load_profile("tiny", profiles)
    matrix = build_matrix(
        "tiny", {"duration": "8s", "warmup": "0"}, ["gunicorn"], ["raw"], profiles,
        split_cpus=False,
    )  # fmt: skip
    assert profile and matrix.duration_s == 8.0
    session = RemoteSession.open(plan, matrix, said.append, limits)
    try:
        assert session.run_metadata(matrix)["hosts"]["limits"] == limits.record()
        store = RunStore(tmp_path / "raw", "20261207T000000Z-tiny")
        host = RemoteCellHost(session, store, matrix, dict(SERVERS))
        cell = matrix.cells[0]
        seen: dict[str, object] = {}

        def outage() -> None:
            wait_for(lambda: wrk_under(sshd), 30, "wrk")
            seen["pgid"] = json.loads((store.root / ACTIVE_MARKER).read_text())["pgid"]
            time.sleep(1.0)  # into the measurement
            paused = sshd.pause_connections()
            seen["paused_at"] = time.monotonic()
            try:
                # The agent's watchdog: no ping for 3 s, so it stops the server itself,
                # while the controller cannot reach the host.
                deadline = time.monotonic() + 8.0
                while group_alive(int(seen["pgid"])) and time.monotonic() < deadline:  # type: ignore[call-overload]
                    time.sleep(0.1)  # poll interval
                seen["server_gone_while_silent"] = not group_alive(int(seen["pgid"]))  # type: ignore[call-overload]
                # Both sides give up after the same silence: keep the link silent until
                # the controller has too, so that it is its own limit that is tested.
                gave_up.wait(15.0)
            finally:
                sshd.resume(paused)

        import threading

        gave_up = threading.Event()
        watcher = threading.Thread(target=outage)
        watcher.start()
        try:
            outcome = measure_cell(host, store, matrix, cell)
        finally:
            gave_up.set()
        returned = time.monotonic()
        watcher.join(30)
        rec = read(store.cell_files(cell)["sidecar"])
        assert rec["status"] == "failed" and rec["infrastructure"] is True, rec["reason"]
        assert outcome.infrastructure and "no word for" in rec["reason"], rec["reason"]
        # Bounded: the silence limit, a heartbeat, the quick clean-up; never TCP's minutes.
        assert returned - float(seen["paused_at"]) < 3.0 + 0.5 + 3.0 + 4.0  # type: ignore[arg-type]
        assert any(m.startswith("waiting for wrk on") and "without a word" in m for m in said)
        assert seen["server_gone_while_silent"] is True
        assert not store.is_finished(cell)

        session.reconnect()  # the link is back: one attempt, printed
        assert f"reconnecting to {sshd.target} (attempt 1 of 5)" in said
        again = measure_cell(host, store, replace(matrix, duration_s=1.0), cell)
        assert again.status == "ok", again.reason
        assert store.is_finished(cell)
    finally:
        session.close()


def test_reconnects_are_bounded_with_growing_pauses_each_printed() -> None:
    from harness.bench.remote.limits import Limits
    from harness.bench.remote.session import RemoteSession
    from harness.bench.runsetup import BenchError

    class Down:
        tries = 0

        def connected(self) -> bool:
            return False

        def ensure(self) -> None:
            Down.tries += 1
            raise HostError("vm1: cannot connect: Connection refused")

    limits = Limits(reconnect_attempts=3, reconnect_backoff_s=(1.0, 2.0))
    session = RemoteSession.__new__(RemoteSession)
    said: list[str] = []
    slept: list[float] = []
    session.hosts = {parse_host("vm1", "--server-host"): Down()}  # type: ignore[dict-item]
    session.limits, session.say, session.sleep = limits, said.append, slept.append
    with pytest.raises(BenchError, match="still unreachable after 3 attempts"):
        session.reconnect()
    assert Down.tries == 3 and slept == [1.0, 2.0]
    assert [m for m in said if m.startswith("reconnecting")] == [
        f"reconnecting to vm1 (attempt {i} of 3)" for i in (1, 2, 3)
    ]


@pytest.mark.slow
def test_connection_errors_say_what_happened_in_words(sshd: Sshd, tmp_path: Path) -> None:
    from harness.bench.remote.hosts import open_host

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(HostError) as refused:
        open_host(
            parse_host(f"me@127.0.0.1:{port}", "--server-host"),
            SshOptions(None, str(sshd.known_hosts)),
        )
    assert "[Errno" not in str(refused.value)
    assert str(refused.value).startswith(f"me@127.0.0.1:{port}: cannot connect: Connection refused")
    assert "is sshd running?" in str(refused.value)

    other = tmp_path / "not_authorised"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    spec = parse_host(sshd.target, "--server-host")
    with pytest.raises(HostError) as wrong:
        open_host(spec, SshOptions(str(other), str(sshd.known_hosts)))
    message = str(wrong.value)
    assert "key authentication failed" in message and "authorized_keys" in message
    assert "pass --ssh-key" not in message and str(other) not in message


@pytest.mark.slow
def test_a_package_that_cannot_be_installed_fails_only_its_servers_cells(
    sshd: Sshd, tmp_path: Path
) -> None:
    """A wheelhouse that lacks one server's package: that server is unavailable with
    pip's reason (its cells fail with it), the others are installed and run."""
    from harness.bench.cell import measure_cell
    from harness.bench.remote.hosts import open_host
    from harness.bench.remote.prepare import prepare
    from harness.matrix.model import Cell, Matrix
    from harness.raw.store import RunStore

    build_wheel(tmp_path / "wheels", "probe_pkg", "1.0")
    build_wheel(tmp_path / "wheels", "psutil", "7.2.2")
    host = open_host(
        parse_host(sshd.target, "--server-host"),
        SshOptions(str(sshd.client_key), str(sshd.known_hosts)),
    )
    try:
        pip_env = f"PIP_NO_INDEX=1 PIP_FIND_LINKS={tmp_path / 'wheels'}"
        # probe-pkg stands in for gunicorn's distribution, absent-pkg for uWSGI's.
        needs = {"gunicorn": ["probe-pkg"], "uwsgi": ["absent-pkg"]}
        p = prepare(
            host, "server", str(tmp_path / "remote"), None, ["gunicorn", "uwsgi"], ["raw"],
            needs, pip_env=pip_env,
        )  # fmt: skip
        code, out, _ = host.run(f"{p.python} -c 'import probe_pkg; print(probe_pkg.VERSION)'")
        assert (code, out.strip()) == (0, "1.0")  # installed although uwsgi's failed
        why = p.info["unavailable"]["uwsgi"]
        assert why.startswith("could not be installed on the server host: ")
        assert "pip install absent-pkg failed" in why and "absent-pkg" in why
        assert "could not be installed" not in p.info["unavailable"]["gunicorn"]
    finally:
        host.close()
    # Its cells fail with the reason; the host is never asked to run them.
    matrix = Matrix(
        profile="p", servers=("uwsgi",), apps=("raw",), workloads=("plaintext",),
        connections=(2,), repeats=1, duration_s=1.0, warmup_s=0.0, threads=1, timeout_s=2.0,
        workers=1, server_threads=1,
    )  # fmt: skip
    store = RunStore(tmp_path / "raw", "r")
    cell = Cell("uwsgi", "raw", "plaintext", 2, 1)
    from tests.test_cell_sequence import FakeHost

    never = FakeHost()
    outcome = measure_cell(never, store, matrix, cell, p.info["unavailable"])
    assert never.calls == []
    assert outcome.status == "failed" and outcome.reason == f"uwsgi unavailable: {why}"
    assert not outcome.infrastructure and store.is_finished(cell)


def test_pages_name_every_host_and_how_clients_were_merged() -> None:
    from harness.pages.context import measured
    from harness.pages.methodology import ceiling_context, methodology_context

    facts = {"hostname": "vm", "cpu_model": "Xeon", "cores": 2, "kernel": "6.1",
             "nofile_soft": 1024, "nofile_hard": 4096, "python": "CPython 3.11.2 (x)"}  # fmt: skip
    run = {
        "run_id": "r",
        "hosts": {
            "server": {**facts, "spec": "b@10.0.0.5", "hostname": "srv", "wrk": None},
            "clients": [
                {**facts, "spec": f"b@10.0.0.{i}", "wrk": "wrk debian/4.1.0"} for i in (6, 7)
            ],
            "limits": {
                "heartbeat_s": 2.0,
                "silence_s": 15.0,
                "transfer_s": 120.0,
                "reconnect_attempts": 5,
                "reconnect_backoff_s": [2.0, 4.0],
            },  # fmt: skip
        },
    }
    hosts = measured(run, "results/methodology.md")["hosts"]
    assert [(h["role"], h["spec"]) for h in hosts] == [
        ("server", "b@10.0.0.5"), ("client 1", "b@10.0.0.6"), ("client 2", "b@10.0.0.7"),
    ]  # fmt: skip
    assert hosts[0]["wrk"] == "—" and hosts[1]["wrk"] == "debian/4.1.0"
    assert hosts[1]["nofile"] == "1024 / 4096"
    ctx = methodology_context(run, [])
    assert ctx["merging"] and "merged latency histograms (never averaged)" in ctx["merging"]
    assert ("Silence limit (a host is lost; agents stop their processes)", "15 s") in ctx["limits"]
    assert ceiling_context({}, run)["command"] is None  # no local calibrate for a remote run
    assert measured({"run_id": "r"}, "index.md")["hosts"] is None
