"""Bench side: the run as a whole — checks before measuring, which run to write into,
what run.json records, and recovery from a run that was killed.

Takes the matrix and the output directory; returns the run store and its metadata.
The per-cell sequence lives in harness/bench/cell.py.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.bench import hostinfo, runner
from harness.bench.localhost import ACTIVE_MARKER
from harness.bench.schedule import adaptive_extra
from harness.errors import UserError
from harness.matrix import workloads
from harness.matrix.customservers import AnyServer, CustomServer
from harness.matrix.hosts import redact_argv
from harness.matrix.model import Matrix
from harness.matrix.servers import SERVERS
from harness.matrix.serverspec import check_available
from harness.raw.records import RunMeta
from harness.raw.runlock import FolderLock, RunLocked, boot_id
from harness.raw.store import (
    OutputError,
    RunStore,
    new_run_id,
    unfinished_runs,
    utc_now,
)
from harness.raw.store import check_writable as check_out

# How long a second bench waits for --out while another one opens its run there
# (harness/raw/runlock.py FolderLock): opening takes well under a second.
OPENING_WAIT_S = 60.0


class BenchError(UserError):
    """A problem that stops the whole run before measuring (bad --raw, no wrk, …)."""


def check_writable(out: Path) -> None:
    """--raw exists and takes a file, or a BenchError says why (before anything runs)."""
    try:
        check_out(out, "--raw")
    except OutputError as e:
        raise BenchError(str(e)) from None


def preflight_environment(out: Path, matrix: Matrix) -> str:
    """Check what every cell needs before measuring anything; return wrk's path."""
    wrk = hostinfo.wrk_path()
    if wrk is None:
        raise BenchError("wrk: not found on PATH (install it: apt-get install wrk)")
    check_writable(out)
    try:
        runner.check_nofile(matrix.nofile_limit)
    except runner.LaunchError as e:
        raise BenchError(str(e)) from None
    return wrk


def registry(custom: dict[str, CustomServer]) -> dict[str, AnyServer]:
    """Built-in servers plus the profile file's custom ones (which may not shadow them)."""
    return {**SERVERS, **{k: v for k, v in custom.items() if k not in SERVERS}}


def unavailable_reasons(matrix: Matrix, servers: dict[str, AnyServer]) -> dict[str, str]:
    """Servers and apps that cannot run here, with why (recorded, never skipped silently)."""
    reasons: dict[str, str] = {}
    for sid in matrix.servers:
        spec = servers[sid]
        reason = spec.unavailable() if isinstance(spec, CustomServer) else check_available(spec)
        if reason:
            reasons[sid] = reason
    for aid in matrix.apps:
        dist = workloads.app_for(aid).framework_package
        if dist and hostinfo.package_version(dist) is None:
            reasons[aid] = f"framework package {dist!r} is not installed"
    return reasons


def run_metadata(
    matrix: Matrix, run_id: str, unavailable: dict[str, str], servers: dict[str, AnyServer]
) -> RunMeta:
    versions: dict[str, Any] = {
        "python": hostinfo.python_version(),
        "wrk": hostinfo.wrk_version(),
    }
    if matrix.rates:
        # The open-loop client is wrk (above) driving this script: its digest says which.
        from harness.bench.openloop import script_sha256

        versions["openloop.lua"] = "sha256:" + script_sha256()
    for sid in matrix.servers:
        versions[sid] = hostinfo.package_version(servers[sid].package)
    for aid in matrix.apps:
        dist = workloads.app_for(aid).framework_package
        if dist and not workloads.is_instrumented(aid):
            versions[aid] = hostinfo.package_version(dist)
    return RunMeta(
        run_id=run_id,
        profile=matrix.profile,
        status="running",
        started_at=utc_now(),
        settings=matrix.settings(),
        cells_planned=tuple(c.key for c in matrix.cells),
        host=hostinfo.host_facts(),
        versions=versions,
        servers={
            sid: {
                "worker_model": servers[sid].worker_model,
                "settings": servers[sid].settings,
                "custom": isinstance(servers[sid], CustomServer),
            }
            for sid in matrix.servers
        },
        git=hostinfo.git_state(),
        argv=redact_argv(sys.argv),  # no key file's path
        unavailable=unavailable,
    )


def open_run(
    out: Path,
    matrix: Matrix,
    resume: str | bool,
    fresh: bool,
    note: Callable[[str], None] | None = None,
    name: str | None = None,
) -> tuple[RunStore, Matrix]:
    """Pick the run to write into — an explicit --resume id, the newest unfinished run
    with the same settings (and `name`, if given), or a new one, named `<time>-<name>`
    (default: the profile) — and become its only writer.

    Returns the store holding the run's lock (harness/raw/runlock.py; the caller
    releases it with `store.unlock()`): a run another live process writes is refused
    with a `RunLocked` naming it, one left by a killed process is taken over (`note`
    says so). A run resumed must have been started with every setting the same.
    """
    note = note or (lambda m: print(m, file=sys.stderr))
    # Held until the chosen run's run.json exists (RunStore.write_run): a second bench
    # started meanwhile waits, then finds that run and its lock.
    opening = FolderLock(out, OPENING_WAIT_S)
    try:
        store, matrix = _choose_run(out, matrix, resume, fresh, note, name)
    except BaseException:
        opening.release()
        raise
    store.release_when_written(opening)
    return store, matrix


def _choose_run(
    out: Path,
    matrix: Matrix,
    resume: str | bool,
    fresh: bool,
    note: Callable[[str], None],
    name: str | None = None,
) -> tuple[RunStore, Matrix]:
    meta: RunMeta | None = None
    if isinstance(resume, str) and resume:
        if not (out / resume / "run.json").is_file():
            raise BenchError(f"--resume: no run {resume!r} in {out}")
        meta = RunStore(out, resume).read_run()
        _check_settings(meta, matrix)
    elif not fresh:
        unfinished = unfinished_runs(out, matrix.profile, name or matrix.profile)
        meta = next((m for m in unfinished if not matrix.differences(m.settings)), None)
        if resume and meta is None:
            if unfinished:
                _check_settings(unfinished[0], matrix)  # says which settings differ
            raise BenchError(f"--resume: no unfinished run of profile {matrix.profile!r} in {out}")
    if meta is None:
        return _new_run(out, matrix, note, name), matrix
    store = RunStore(out, meta.run_id)
    store.lock(note)
    meta = store.read_run()  # as it is now that no one else writes it
    extra = adaptive_extra(matrix, meta.cells_planned)  # repeats added by --precision rounds
    if extra is None:
        store.unlock()
        raise BenchError(
            f"--resume: run {meta.run_id} was planned with other cells; start a new run"
        )
    # Keep the recorded order (and seed) so a resumed shuffled run stays the same run.
    by_key = {c.key: c for c in (*matrix.cells, *extra)}
    seed = meta.settings.get("seed")
    matrix = replace(matrix, cells=tuple(by_key[k] for k in meta.cells_planned), seed=seed)
    return store, matrix


def _check_settings(meta: RunMeta, matrix: Matrix) -> None:
    """A run is continued only with the settings it started with (a cell measured at
    other settings would sit beside its run.json's, which say otherwise)."""
    if meta.profile != matrix.profile:
        raise BenchError(
            f"--resume: run {meta.run_id} is of profile {meta.profile!r}, not "
            f"{matrix.profile!r}; give --profile {meta.profile}, or start a new run with --new"
        )
    differ = matrix.differences(meta.settings)
    if differ:
        raise BenchError(
            f"--resume: run {meta.run_id} was started with other settings ({'; '.join(differ)}); "
            "give the same options to continue it, or start a new run with --new"
        )


def _new_run(
    out: Path, matrix: Matrix, note: Callable[[str], None], name: str | None = None
) -> RunStore:
    """A new run's folder, locked. Its id is the time and the name (the profile's unless
    given); a folder of that name already used (a run started in the same second) gets
    a suffix."""
    base = new_run_id(name or matrix.profile)
    for n in range(1, 100):
        store = RunStore(out, base if n == 1 else f"{base}-{n}")
        if store.run_json.exists():
            continue
        try:
            store.lock(note)
        except RunLocked:
            continue
        if not store.run_json.exists():
            return store
        store.unlock()
    raise BenchError(f"--raw: no free run folder named {base}-<n> in {out}")


def cleanup_partial(store: RunStore) -> None:
    """Remove temp files left by a killed run (they never look complete: dot + .part)."""
    if store.root.is_dir():
        for part in store.root.rglob(".*.part"):
            part.unlink(missing_ok=True)
        for part in store.root.rglob("*.lua.json.part"):
            part.unlink(missing_ok=True)


def elapsed(start: float) -> str:
    s = int(time.monotonic() - start)
    return f"{s // 60}m{s % 60:02d}s"


def ensure_env_path() -> None:
    """Servers are started as `python -m …` or by console scripts beside our interpreter."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def reap_leftovers(store: RunStore) -> list[int]:
    """Kill what is left of the server group recorded by a killed run; return the PIDs.

    Only a dead bench's server: the caller holds the run's lock, so the bench that
    wrote the marker is gone, and a marker naming a live bench (not this one) on this
    boot is left alone whatever it says. Processes the server started in a session of
    their own (setsid) are found by the token in their environment.
    """
    import psutil

    path = store.root / ACTIVE_MARKER
    if not path.is_file():
        return []
    marker = json.loads(path.read_text())
    pgid, started = int(marker["pgid"]), float(marker["started"])
    bench = marker.get("bench_pid")
    if isinstance(bench, int) and bench != os.getpid() and marker.get("boot_id") == boot_id():
        try:  # the same process, not one that got its pid later
            if psutil.Process(bench).create_time() <= started:
                return []  # its bench still runs: not a leftover
        except psutil.Error:
            pass
    found = []
    for proc in psutil.process_iter(["pid", "create_time"]):
        try:
            # Same group and born after our marker's server: ours, not a recycled pgid.
            if os.getpgid(proc.pid) == pgid and proc.info["create_time"] >= started - 5:
                found.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    if found:
        runner.kill_group(pgid)
    token = marker.get("token")
    if isinstance(token, str):
        found += runner.kill_escaped(token, since=started - 5)
    path.unlink(missing_ok=True)
    return found
