"""One writer per run and resuming only what was started the same way
(harness/raw/runlock.py, harness/bench/runsetup.py): no server or wrk is started."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from harness.bench import runsetup
from harness.bench.runsetup import BenchError, open_run
from harness.matrix.build import build_matrix
from harness.matrix.model import Matrix
from harness.raw import runlock
from harness.raw.records import RunMeta
from harness.raw.runlock import FolderLock, RunLock, RunLocked
from harness.raw.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
PROFILES = """
[p]
servers = ["gunicorn", "uwsgi"]
apps = ["raw"]
connections = [10, 100]
duration = "3s"
warmup = "0s"
repeats = 1
threads = 1
server_cpus = "none"
client_cpus = "none"
"""
HOLD = """
import sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from harness.raw.runlock import RunLock
lock = RunLock.take(Path({folder!r}))
print("held", flush=True)
time.sleep(60)
"""


def matrix(tmp_path: Path, **overrides: object) -> Matrix:
    path = tmp_path / "profiles.toml"
    path.write_text(PROFILES)
    return build_matrix("p", dict(overrides), ["gunicorn", "uwsgi"], ["raw"], path)


def started(tmp_path: Path, m: Matrix, status: str = "running") -> str:
    """A run of `m` as a bench leaves it in raw/ (run.json only), unlocked."""
    store, _ = open_run(tmp_path / "raw", m, False, False, note=lambda _m: None)
    meta = RunMeta(
        run_id=store.run_id, profile=m.profile, status=status, settings=m.settings(),
        cells_planned=tuple(c.key for c in m.cells),
    )  # fmt: skip
    store.write_run(meta)
    store.unlock()
    return store.run_id


def hold_lock(folder: Path) -> subprocess.Popen[str]:
    """Another process holding the lock of `folder` until killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD.format(root=str(ROOT), folder=str(folder))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


# --- the lock -------------------------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    holder = hold_lock(folder)
    try:
        with pytest.raises(RunLocked) as err:
            RunLock.take(folder)
    finally:
        holder.kill()
        holder.wait()
    message = str(err.value)
    assert message.startswith(
        f"run run is being written by pid {holder.pid} on host {socket.gethostname()} since 20"
    )
    assert message.endswith(f"; wait until it ends or stop it (lock: {folder / '.lock'})")


def test_a_killed_writers_lock_is_taken_over_and_said(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    holder = hold_lock(folder)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    notes: list[str] = []
    lock = RunLock.take(folder, notes.append)
    assert len(notes) == 1
    assert notes[0].startswith(f"run run: taking over the lock left by pid {holder.pid} on host ")
    assert notes[0].endswith(f"(pid {holder.pid} is gone)")
    assert json.loads((folder / ".lock").read_text())["pid"] == os.getpid()
    lock.release()
    assert (folder / ".lock").read_text() == ""  # released: nothing to take over
    notes.clear()
    RunLock.take(folder, notes.append).release()
    assert notes == []


def test_a_lock_from_another_boot_is_stale(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    record = {**runlock.holder_record(), "pid": os.getppid(), "boot_id": "an-earlier-boot"}
    (folder / ".lock").write_text(json.dumps(record))
    notes: list[str] = []
    RunLock.take(folder, notes.append).release()
    assert notes[0].endswith("(it ran before this machine's last boot)")


def test_without_file_locks_a_live_recorded_holder_still_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runlock, "_flock", lambda f, wait_s: False)  # e.g. an old NFS
    folder = tmp_path / "run"
    folder.mkdir()
    alive = {**runlock.holder_record(), "pid": os.getppid()}
    (folder / ".lock").write_text(json.dumps(alive))
    with pytest.raises(RunLocked, match=f"being written by pid {os.getppid()} on host"):
        RunLock.take(folder)
    (folder / ".lock").write_text(json.dumps({**alive, "pid": 2**22 + 1}))  # no such pid
    notes: list[str] = []
    RunLock.take(folder, notes.append).release()
    assert notes[0].endswith(f"(pid {2**22 + 1} is gone)")


def test_a_run_another_process_writes_is_not_resumed(tmp_path: Path) -> None:
    m = matrix(tmp_path)
    run_id = started(tmp_path, m)
    holder = hold_lock(tmp_path / "raw" / run_id)
    try:
        for resume in (run_id, True, False):  # explicit id, plain --resume, the same command
            with pytest.raises(RunLocked, match=f"^run {run_id} is being written by pid"):
                open_run(tmp_path / "raw", m, resume, False)
    finally:
        holder.kill()
        holder.wait()
    store, _ = open_run(tmp_path / "raw", m, run_id, False, note=lambda _m: None)
    store.unlock()


def test_the_opening_lock_is_held_until_run_json_exists(tmp_path: Path) -> None:
    """A second bench started while the first opens its run waits, then finds it."""
    m = matrix(tmp_path)
    out = tmp_path / "raw"
    store, _ = open_run(out, m, False, False)
    with pytest.raises(RunLocked, match=f"^{out}: another bench has been opening a run there"):
        FolderLock(out, wait_s=0.2)
    store.write_run(RunMeta(run_id=store.run_id, profile="p", settings=m.settings()))
    FolderLock(out, wait_s=0).release()  # free once run.json exists
    store.unlock()
    assert [p.name for p in out.iterdir()] == [store.run_id]  # no lock file in raw/


def test_a_new_run_never_reuses_a_folder_of_the_same_second(tmp_path: Path) -> None:
    m = matrix(tmp_path)
    first = started(tmp_path, m, status="complete")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runsetup, "new_run_id", lambda profile: first)
        store, _ = open_run(tmp_path / "raw", m, False, True)
    assert store.run_id == f"{first}-2"
    store.unlock()


# --- resuming with the settings the run started with ------------------------------------


def test_resume_by_id_refuses_other_settings_naming_them(tmp_path: Path) -> None:
    run_id = started(tmp_path, matrix(tmp_path))
    other = matrix(tmp_path, duration="1", warmup="1s")
    with pytest.raises(BenchError) as err:
        open_run(tmp_path / "raw", other, run_id, False)
    assert str(err.value) == (
        f"--resume: run {run_id} was started with other settings (--duration: 3 s in the "
        "run, 1 s given; --warmup: 0 s in the run, 1 s given); give the same options to "
        "continue it, or start a new run with --new"
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"timeout": "5s"}, "--timeout: 2 s in the run, 5 s given"),
        ({"server_threads": "4"}, "--server-threads: 1 in the run, 4 given"),
        ({"shuffle": True, "seed": 7}, "--shuffle: no in the run, yes given; --seed: none"),
        ({"ignore_preflight": True}, "--ignore-preflight: no in the run, yes given"),
        ({"session_keys": "10"}, "--session-keys: 1000 in the run, 10 given"),
        ({"workers": "2"}, "--workers: 1 in the run, 2 given"),
    ],
)
def test_every_setting_is_compared(tmp_path: Path, change: dict[str, object], named: str) -> None:
    run_id = started(tmp_path, matrix(tmp_path))
    with pytest.raises(BenchError, match="was started with other settings") as err:
        open_run(tmp_path / "raw", matrix(tmp_path, **change), run_id, False)
    assert named in str(err.value)


def test_plain_resume_says_the_settings_differ(tmp_path: Path) -> None:
    run_id = started(tmp_path, matrix(tmp_path))
    with pytest.raises(BenchError) as err:
        open_run(tmp_path / "raw", matrix(tmp_path, duration="1"), True, False)
    assert str(err.value).startswith(
        f"--resume: run {run_id} was started with other settings (--duration: 3 s in the run,"
    )


def test_the_same_settings_resume_and_a_drawn_seed_is_no_setting(tmp_path: Path) -> None:
    shuffled = matrix(tmp_path, shuffle=True)
    run_id = started(tmp_path, shuffled)
    again = matrix(tmp_path, shuffle=True)  # draws another seed
    assert again.seed_drawn
    for resume in (run_id, True, False):
        store, resumed = open_run(tmp_path / "raw", again, resume, False)
        assert store.run_id == run_id and resumed.seed == shuffled.seed
        assert [c.key for c in resumed.cells] == [c.key for c in shuffled.cells]
        store.unlock()
    with pytest.raises(BenchError, match="--seed: .* in the run, 3 given"):
        open_run(tmp_path / "raw", matrix(tmp_path, shuffle=True, seed=3), run_id, False)


def test_without_resume_other_settings_start_a_new_run(tmp_path: Path) -> None:
    run_id = started(tmp_path, matrix(tmp_path))
    store, _ = open_run(tmp_path / "raw", matrix(tmp_path, duration="1"), False, False)
    assert store.run_id != run_id
    store.unlock()


def test_a_resumed_run_must_be_of_the_same_profile(tmp_path: Path) -> None:
    m = matrix(tmp_path)
    run_id = started(tmp_path, replace(m, profile="other"))
    with pytest.raises(BenchError, match="is of profile 'other', not 'p'; give --profile other"):
        open_run(tmp_path / "raw", m, run_id, False)


def test_reap_leaves_a_live_benchs_server_alone(tmp_path: Path) -> None:
    """The marker of a server whose bench still runs is not a leftover."""
    store = RunStore(tmp_path, "r")
    store.root.mkdir()
    victim = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    # Reaped as soon as it dies, as a killed bench's server is (by init), not by us.
    reaper = threading.Thread(target=victim.wait)
    reaper.start()
    try:
        marker = textwrap.dedent(f"""
            {{"pgid": {victim.pid}, "started": {victim_started(victim.pid)},
              "bench_pid": {os.getppid()}, "boot_id": "{runlock.boot_id()}"}}
        """)
        (store.root / ".active-server.json").write_text(marker)
        assert runsetup.reap_leftovers(store) == []
        assert victim.poll() is None
        dead = json.loads(marker) | {"bench_pid": 2**22 + 1}
        (store.root / ".active-server.json").write_text(json.dumps(dead))
        assert runsetup.reap_leftovers(store) == [victim.pid]
        reaper.join(timeout=10)
        assert victim.returncode == -signal.SIGKILL
    finally:
        if victim.returncode is None:
            victim.kill()
        reaper.join()


def victim_started(pid: int) -> float:
    import psutil

    return psutil.Process(pid).create_time()


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_run_files_get_the_users_umask(tmp_path: Path, umask: int) -> None:
    """run.json, a sidecar and the lock are created as `open()` would (not mkstemp's 0600)."""
    from harness.bench.cell import planned_record

    old = os.umask(umask)
    try:
        m = matrix(tmp_path)
        store, m = open_run(tmp_path / "raw", m, False, False)
        store.write_run(RunMeta(run_id=store.run_id, profile="p", settings=m.settings()))
        sidecar = store.write_cell(planned_record(store, m, m.cells[0]))
        store.unlock()
    finally:
        os.umask(old)
    for path in (store.run_json, sidecar, store.root / ".lock"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
