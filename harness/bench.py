"""Bench orchestration: walk a `Matrix`, measure each cell, write `raw/<run-id>/`.

Takes a validated matrix and an output directory; returns the run id. Every cell
ends as a sidecar, `ok` or `failed` with its reason, so nothing measured is lost and
no failure hides. A run that stops early (Ctrl-C, SIGTERM, SIGKILL) is continued by
running the same command again or with `--resume`.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import hostinfo, runner, workloads
from harness.apps import AppSpec
from harness.customservers import CustomServer
from harness.matrix import WORKLOADS, Cell, Matrix
from harness.preflight import blocking, preflight
from harness.rawstore import RunStore, find_unfinished, new_run_id, utc_now, write_atomic
from harness.sampler import Sampler, child_named, write_samples
from harness.servers import SERVERS, Budget, ServerSpec, check_available

if TYPE_CHECKING:  # remotecell imports this module; only the type is needed here
    from harness.remotecell import RemoteBench

AnyServer = ServerSpec | CustomServer

HOST = "127.0.0.1"
PORT_ATTEMPTS = 3


class BenchError(RuntimeError):
    """A problem that stops the whole run before measuring (bad --out, no wrk, …)."""


@dataclass(frozen=True)
class CellOutcome:
    cell: Cell
    status: str
    reason: str | None
    requests_per_sec: str | None = None


def preflight_environment(out: Path, matrix: Matrix) -> str:
    """Check what every cell needs before measuring anything; return wrk's path."""
    wrk = hostinfo.wrk_path()
    if wrk is None:
        raise BenchError("wrk: not found on PATH (install it: apt-get install wrk)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise BenchError(f"--out: cannot write to {out}: {e.strerror}") from None
    try:
        runner.check_nofile(runner.nofile_needed(max(matrix.connections)))
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
) -> dict[str, Any]:
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
    return {
        "run_id": run_id,
        "profile": matrix.profile,
        "status": "running",
        "started_at": utc_now(),
        "ended_at": None,
        "settings": matrix.settings(),
        "cells_planned": [c.key for c in matrix.cells],
        "host": hostinfo.host_facts(),
        "versions": versions,
        "servers": {
            sid: {
                "worker_model": servers[sid].worker_model,
                "settings": servers[sid].settings,
                "custom": isinstance(servers[sid], CustomServer),
            }
            for sid in matrix.servers
        },
        "git": hostinfo.git_state(),
        "argv": sys.argv,
        "unavailable": unavailable,
    }


def wrk_argv(
    wrk: str, matrix: Matrix, cell: Cell, url: str, seconds: float, measured: bool
) -> list[str]:
    threads = min(matrix.threads, cell.connections)
    argv = [wrk, f"-t{threads}", f"-c{cell.connections}", f"-d{int(seconds)}s"]
    argv += [f"--timeout={int(matrix.timeout_s)}s"]
    # The workload's script runs in the warm-up too (the session mix warms the store);
    # only the measured run is given a report path, so only it writes figures.
    argv += ["-s", str(workloads.lua_script(cell.workload))]
    if measured:
        argv += ["--latency"]
    return argv + [url]


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C so servers are stopped and the run marked interrupted."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def measure_cell(
    store: RunStore,
    matrix: Matrix,
    cell: Cell,
    wrk: str,
    unavailable: dict[str, str],
    servers: dict[str, AnyServer],
    remote: RemoteBench | None = None,
) -> CellOutcome:
    """Measure one cell and write its files; the sidecar is written last.

    With `remote` (server or clients on other hosts) the same sequence runs through
    harness/remotecell.py; the sidecar gets the same fields plus the hosts'.
    """
    spec, app = servers[cell.server], workloads.app_for(cell.app)
    files = store.cell_files(cell)
    base: dict[str, Any] = {
        "run_id": store.run_id,
        "server": cell.server,
        "app": cell.app,
        "workload": cell.workload,
        "connections": cell.connections,
        "repeat": cell.repeat,
        "threads": min(matrix.threads, cell.connections),
        "duration_s": matrix.duration_s,
        "warmup_s": matrix.warmup_s,
        "timeout_s": matrix.timeout_s,
        "server_cpus": list(matrix.server_cpus) if matrix.server_cpus else None,
        "client_cpus": list(matrix.client_cpus) if matrix.client_cpus else None,
        "nofile_limit": runner.nofile_needed(cell.connections),
        "started_at": utc_now(),
    }
    for what in (cell.server, cell.app):
        if what in unavailable:
            return _finish(store, cell, base, "failed", f"{what} unavailable: {unavailable[what]}")
    try:
        if remote is not None:
            return remote.measure(store, matrix, cell, spec, app, files, base)
        return _measure(store, matrix, cell, wrk, spec, app, files, base)
    except KeyboardInterrupt:
        # The servers are already stopped (finally blocks); record the cell as failed so
        # an interrupted run that is never resumed still shows it. --resume measures it
        # again (RunStore.is_finished does not count interrupted cells).
        reason = "interrupted (Ctrl-C or SIGTERM) during the cell; --resume measures it again"
        _finish(store, cell, {**base, "interrupted": True}, "failed", reason)
        raise


def _measure(
    store: RunStore,
    matrix: Matrix,
    cell: Cell,
    wrk: str,
    spec: AnyServer,
    app: AppSpec,
    files: dict[str, Path],
    base: dict[str, Any],
) -> CellOutcome:
    metrics = workloads.MetricsDir(cell.app)
    server = None
    try:
        started = _start_server(store, matrix, cell, spec, app, metrics, base)
        if isinstance(started, str):
            return _finish(store, cell, base, "failed", started)
        server, port = started
        url = f"http://{HOST}:{port}{WORKLOADS[cell.workload]}"
        base["url"] = url
        refused = _preflight(matrix, cell, port, base)
        if refused:
            return _finish(store, cell, base, "failed", refused)
        run = _load(store, matrix, cell, wrk, url, files, base, metrics, server, port)
        crashed = server.proc.poll()
        base["server_exit_code"] = runner.stop_server(server)
        base["server_stderr_tail"] = server.stderr_tail()
        server = None
        reason = _wrk_failure(run, crashed)
        return _finish(store, cell, base, "failed" if reason else "ok", reason, run.stdout)
    finally:
        if server is not None:
            runner.stop_server(server)
        mark_active(store, None)
        metrics.cleanup()


def _start_server(
    store: RunStore,
    matrix: Matrix,
    cell: Cell,
    spec: AnyServer,
    app: AppSpec,
    metrics: workloads.MetricsDir,
    base: dict[str, Any],
) -> tuple[runner.ServerProcess, int] | str:
    """Start the server on a free port and wait until it answers; or say why it did not."""
    budget = Budget(workers=matrix.workers, threads=matrix.server_threads)
    backlog = max(1024, 2 * max(matrix.connections))
    log_path = store.cell_base(cell).with_suffix(".server.log")
    for attempt in range(PORT_ATTEMPTS):
        port = runner.free_port(HOST)
        argv = spec.argv(sys.executable, app, HOST, port, budget, backlog)
        env = metrics.server_env(cell.app, spec.env())
        base.update(server_argv=argv, server_env=env, backlog=backlog)
        server = runner.start_server(
            argv, env, hostinfo.REPO_ROOT, log_path, spec.stop_signal,
            matrix.server_cpus, base["nofile_limit"],
        )  # fmt: skip
        mark_active(store, server)
        try:
            base["server_ready_s"] = round(runner.wait_ready(server, f"http://{HOST}:{port}/"), 3)
            return server, port
        except runner.LaunchError as e:
            tail = server.stderr_tail()
            base["server_exit_code"] = runner.stop_server(server)
            base["server_stderr_tail"] = tail
            if "Address already in use" not in tail or attempt + 1 == PORT_ATTEMPTS:
                return f"server did not start: {e}"
        except BaseException:
            runner.stop_server(server)  # interrupted while waiting: not yet the caller's
            raise
    return "server did not start"


def _load(
    store: RunStore,
    matrix: Matrix,
    cell: Cell,
    wrk: str,
    url: str,
    files: dict[str, Path],
    base: dict[str, Any],
    metrics: workloads.MetricsDir,
    server: runner.ServerProcess,
    port: int,
) -> runner.WrkRun:
    """Warm up, then the measured wrk run (scraping server metrics around it if asked)."""
    nofile = base["nofile_limit"]
    limit = matrix.duration_s + matrix.timeout_s + 30
    env = workloads.wrk_env(matrix, cell.workload)
    base["wrk_env"] = env
    if matrix.warmup_s > 0:
        warm = runner.run_wrk(
            wrk_argv(wrk, matrix, cell, url, matrix.warmup_s, measured=False),
            env, matrix.client_cpus, nofile, matrix.warmup_s + limit,
        )  # fmt: skip
        write_atomic(files["warmup"], warm.stdout)
    metrics_url = "/".join(url.split("/", 3)[:3]) + "/metrics"
    before = _scrape(metrics, metrics_url, files["metrics_before"], base)
    files["lua_json"].unlink(missing_ok=True)
    argv = wrk_argv(wrk, matrix, cell, url, matrix.duration_s, measured=True)
    report_env = {**env, "WSGI_BASELINE_REPORT": str(files["lua_json"])}
    with Sampler(server.pgid, child_named(Path(wrk).name), port) as sampler:
        run = runner.run_wrk(argv, report_env, matrix.client_cpus, nofile, limit)
    write_samples(files["samples"], sampler)
    base.update(wrk_argv=argv, wrk_exit_code=run.exit_code, wrk_stderr=run.stderr[-4000:])
    if run.stdout:
        write_atomic(files["stdout"], run.stdout)
    after = _scrape(metrics, metrics_url, files["metrics_after"], base)
    if before is not None and after is not None:
        workloads.store_delta(before, after, files["metrics"])
    return run


def _preflight(matrix: Matrix, cell: Cell, port: int, base: dict[str, Any]) -> str | None:
    """Check the answer before measuring it; the reason to refuse, or None to go on."""
    path, body, ctype = workloads.expected_response(cell.workload)
    check = preflight(HOST, port, path, body, ctype)
    why = blocking(check)
    base["preflight"] = {
        "ok": check.ok,
        "blocking": why,
        "ignored": bool(why and matrix.ignore_preflight),
        "checks": [list(c) for c in check.checks],
    }
    if why and not matrix.ignore_preflight:
        return f"preflight: {why}"
    return None


def _scrape(
    metrics: workloads.MetricsDir, url: str, path: Path, base: dict[str, Any]
) -> str | None:
    """A failed scrape is recorded in the sidecar; it does not fail the wrk measurement."""
    if metrics.path is None:
        return None
    try:
        return workloads.scrape_to(url, path)
    except Exception as e:  # noqa: BLE001 - any scrape failure is data, not a crash
        base.setdefault("metrics_errors", []).append(f"{path.name}: {e}")
        return None


def _wrk_failure(run: runner.WrkRun, server_exit: int | None) -> str | None:
    if server_exit is not None:
        return f"server exited with code {server_exit} during the measurement"
    if run.timed_out:
        return "wrk did not finish in time and was killed"
    if run.exit_code != 0:
        said = run.stderr.strip() or run.stdout.decode("utf-8", "replace").strip()
        detail = said.splitlines()[:1] or ["no message"]
        return f"wrk exited with code {run.exit_code}: {detail[0]}"
    if b" requests in " not in run.stdout:
        return "wrk printed no summary"
    return None


def _finish(
    store: RunStore,
    cell: Cell,
    base: dict[str, Any],
    status: str,
    reason: str | None,
    stdout: bytes = b"",
) -> CellOutcome:
    store.write_cell(cell, {**base, "status": status, "reason": reason, "ended_at": utc_now()})
    rps = None
    for line in stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("Requests/sec:"):
            rps = line.split(":", 1)[1].strip()
    return CellOutcome(cell, status, reason, rps)


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
    planned = meta.get("cells_planned", [])
    if set(planned) != set(by_key):
        raise BenchError(f"--resume: run {run_id} was planned with other cells; start a new run")
    # Keep the recorded order (and seed) so a resumed shuffled run stays the same run.
    from dataclasses import replace

    settings = meta.get("settings", {})
    matrix = replace(matrix, cells=tuple(by_key[k] for k in planned), seed=settings.get("seed"))
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


ACTIVE_MARKER = ".active-server.json"


def mark_active(store: RunStore, server: runner.ServerProcess | None) -> None:
    """Record the running server's group so a run killed with SIGKILL can be cleaned up."""
    path = store.root / ACTIVE_MARKER
    if server is None:
        path.unlink(missing_ok=True)
        return
    import json

    write_atomic(path, json.dumps({"pgid": server.pgid, "started": time.time()}).encode())


def reap_leftovers(store: RunStore) -> list[int]:
    """Kill what is left of the server group recorded by a killed run; return the PIDs."""
    import json

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
