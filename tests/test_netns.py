"""Two VMs as the study ran them, stood in for by two network namespaces (tests/netns.py):
the server on one, wrk on the other, each reached over its own sshd; the controller runs
on the client's side. Nothing is sent before the routes are checked, and load goes only
from the client namespace (no default route) to the server namespace's address.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests import netns

ROOT = Path(__file__).resolve().parent.parent
WHY = netns.available()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(WHY is not None, reason=WHY or "")]
PROFILES = """
[tiny]
servers = ["gunicorn"]
apps = ["raw"]
connections = [2, 4]
duration = "2s"
warmup = "1s"
repeats = 1
threads = 1
"""


@pytest.fixture(scope="module")
def vms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[netns.Hosts]:
    hosts = netns.two_hosts(tmp_path_factory.mktemp("vms"))
    try:
        yield hosts
    finally:
        hosts.close()


def bench_argv(vms: netns.Hosts, tmp: Path, *extra: str) -> list[str]:
    profiles = tmp / "profiles.toml"
    profiles.write_text(PROFILES)
    args = ["bench", "--profile", "tiny", "--profile-file", str(profiles)]
    args += ["--out", str(tmp / "raw"), "--server-host", vms.server, "--client-host", vms.client]
    args += ["--ssh-key", str(vms.client_key), "--known-hosts", str(vms.known_hosts)]
    args += ["--remote-dir", str(tmp / "remote"), "--remote-venv", sys.prefix, *extra]
    return vms.controller([sys.executable, "-m", "invoke", *args])


def read(path: Path) -> dict:
    return dict(json.loads(path.read_text()))


def test_server_on_one_vm_wrk_on_the_other_and_the_site_names_both(
    vms: netns.Hosts, tmp_path: Path
) -> None:
    result = subprocess.run(
        bench_argv(vms, tmp_path), cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "raw").iterdir()
    for n in (2, 4):
        cell = read(run / f"gunicorn/raw/plaintext/c{n}-r1.json")
        assert cell["status"] == "ok", cell["reason"]
        # Served at the server VM's address, loaded from the client VM.
        assert cell["url"].startswith(f"http://{vms.server_addr}:")
        assert (cell["server_host"], cell["client_hosts"]) == (vms.server, [vms.client])
    hosts = read(run / "run.json")["hosts"]
    assert hosts["server"]["spec"] == vms.server and hosts["server"]["address"] == vms.server_addr
    assert [c["spec"] for c in hosts["clients"]] == [vms.client]
    assert hosts["clients"][0]["wrk"] and hosts["limits"]["silence_s"] > 0

    from harness import load_runs
    from harness.site.build import golden_pages

    table = load_runs(tmp_path / "raw")
    assert set(table["server_host"]) == {vms.server}
    assert set(table["client_hosts"]) == {vms.client} and set(table["clients_n"]) == {1}
    pages = golden_pages(tmp_path / "raw", tmp_path / "docs")
    methodology = pages["results/methodology.md"]
    run_page = next(t for p, t in pages.items() if p.startswith("results/runs/") and run.name in p)
    for page in (methodology, run_page):
        assert f"**Server host:** <code>{vms.server}</code>" in page
        assert f"**wrk on client host:** <code>{vms.client}</code>" in page
    assert "## Hosts" in methodology and "invoke calibrate --run" not in methodology
    assert str(vms.client_key) not in methodology


def test_link_down_mid_cell_short_is_flagged_long_is_lost_bounded_and_measured_again(
    vms: netns.Hosts, tmp_path: Path
) -> None:
    """The server VM's link taken down inside a cell: for 5 s the cell completes and is
    flagged `stalled`; for 25 s (past the 15 s silence limit) the controller prints that
    it waits, gives up within the bound, records the cell as the infrastructure's,
    reconnects once the link is back and goes on; the same command measures it again."""
    argv = bench_argv(vms, tmp_path, "--duration", "10s", "--warmup", "0", "--connections", "2,4,6")
    out = tmp_path / "raw"
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr or []), daemon=True)
    reader.start()
    times: dict[str, float] = {}

    def outage(seconds: float) -> None:
        vms.link(up=False)
        try:
            time.sleep(seconds)  # the outage under test, bounded
        finally:
            vms.link(up=True)

    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*/.active-remote.json")):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(err)
            time.sleep(0.1)  # poll interval
        time.sleep(4.0)  # ready, preflight, into the 10 s measurement of c2
        outage(5.0)
        deadline = time.monotonic() + 120
        while "gunicorn/raw/plaintext/c2-r1:" not in "".join(err):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(err)
            time.sleep(0.1)  # poll interval
        deadline = time.monotonic() + 120
        while not list(out.glob("*/.active-remote.json")):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(err)
            time.sleep(0.1)  # poll interval
        time.sleep(4.0)  # into the measurement of c4
        times["down"] = time.time()
        outage(25.0)
        assert proc.wait(timeout=240) == 0, "".join(err)
        reader.join(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    said = " ".join("".join(err).split())  # rich wraps long lines
    (run,) = out.iterdir()
    short = read(run / "gunicorn/raw/plaintext/c2-r1.json")
    assert short["status"] == "ok", short["reason"]
    from harness import load_runs

    row = load_runs(out).set_index("connections").loc[2]
    assert "stalled" in row["flags"].split(";") and row["stall_s"] >= 4.0, row["stall_s"]

    lost = read(run / "gunicorn/raw/plaintext/c4-r1.json")
    assert lost["status"] == "failed" and lost["infrastructure"] is True, lost["reason"]
    assert "no word for" in lost["reason"]
    # Bounded: given up within the silence limit (15 s), a heartbeat and the clean-up.
    ended = datetime.fromisoformat(lost["ended_at"].replace("Z", "+00:00")).timestamp()
    assert ended - times["down"] < 15 + 2 + 15 + 5, ended - times["down"]
    assert read(run / "gunicorn/raw/plaintext/c6-r1.json")["status"] == "ok"
    assert "without a word (gives up at 15 s)" in said
    assert f"reconnecting to {vms.server} (attempt 1 of 5)" in said, said
    assert "1 lost to a host or link" in said and ": incomplete," in said
    assert read(run / "run.json")["status"] == "incomplete"

    again = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"resuming run {run.name}" in again.stderr
    assert "1 cell(s) measured" in again.stderr
    assert read(run / "gunicorn/raw/plaintext/c4-r1.json")["status"] == "ok"
    assert read(run / "gunicorn/raw/plaintext/c2-r1.json") == short
    assert read(run / "run.json")["status"] == "complete"
