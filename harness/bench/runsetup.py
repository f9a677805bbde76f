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
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.bench import hostinfo, runner
from harness.bench.localhost import ACTIVE_MARKER
from harness.errors import UserError
from harness.matrix import workloads
from harness.matrix.customservers import AnyServer, CustomServer
from harness.matrix.hosts import redact_argv
from harness.matrix.model import Matrix
from harness.matrix.servers import SERVERS
from harness.matrix.serverspec import check_available
from harness.raw.records import RunMeta
from harness.raw.store import RunStore, find_unfinished, new_run_id, utc_now


class BenchError(UserError):
    """A problem that stops the whole run before measuring (bad --out, no wrk, …)."""


def check_writable(out: Path) -> None:
    """--out exists and takes a file, or a BenchError says why (before anything runs)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise BenchError(f"--out: cannot write to {out}: {e.strerror}") from None


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


def open_run(out: Path, matrix: Matrix, resume: str | bool, fresh: bool) -> tuple[RunStore, Matrix]:
    """Pick the run to write into: an explicit --resume id, a matching unfinished run, or new."""
    run_id: str | None = None
    if isinstance(resume, str) and resume:
        run_id = resume
        if not (out / run_id / "run.json").is_file():
            raise BenchError(f"--resume: no run {run_id!r} in {out}")
    elif not fresh:
        run_id = find_unfinished(out, matrix.profile, matrix.settings())
        if resume and run_id is None:
            raise BenchError(f"--resume: no unfinished run of profile {matrix.profile!r} in {out}")
    if run_id is None:
        return RunStore(out, new_run_id(matrix.profile)), matrix
    store = RunStore(out, run_id)
    meta = store.read_run()
    by_key = {c.key: c for c in matrix.cells}
    planned = meta.cells_planned
    if set(planned) != set(by_key):
        raise BenchError(f"--resume: run {run_id} was planned with other cells; start a new run")
    # Keep the recorded order (and seed) so a resumed shuffled run stays the same run.
    seed = meta.settings.get("seed")
    matrix = replace(matrix, cells=tuple(by_key[k] for k in planned), seed=seed)
    return store, matrix


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
    """Kill what is left of the server group recorded by a killed run; return the PIDs."""
    import psutil

    path = store.root / ACTIVE_MARKER
    if not path.is_file():
        return []
    marker = json.loads(path.read_text())
    pgid, started = int(marker["pgid"]), float(marker["started"])
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
    path.unlink(missing_ok=True)
    return found
