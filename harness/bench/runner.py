"""Bench stage 2: processes. Start a server, wait until it answers, run wrk, stop it.

Every process we start gets its own session (so its whole process group can be
signalled and checked empty afterwards), the CPUs it is pinned to, an open-files
limit above the connection count, and PR_SET_PDEATHSIG so that it dies with us even
when we are killed with SIGKILL. Nothing here decides what to measure.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


class LaunchError(RuntimeError):
    """A process could not be started or did not become ready; message says why."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out; callers retry on EADDRINUSE."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_nofile(needed: int) -> None:
    """Fail with a clear line if the hard open-files limit cannot cover `needed`."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise LaunchError(
            f"open-files limit: need {needed} descriptors but the hard limit is {hard}; "
            "raise it (ulimit -Hn, /etc/security/limits.conf) or use fewer connections"
        )


def child_setup(cpus: Sequence[int] | None, nofile: int) -> Callable[[], None]:
    def setup() -> None:
        # Die with the harness even on SIGKILL, so no server outlives a killed bench.
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if cpus:
            os.sched_setaffinity(0, cpus)
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = nofile if hard == resource.RLIM_INFINITY else min(nofile, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))

    return setup


def tail_lines(data: bytes, lines: int = 40) -> str:
    """The last lines of a process's output, as the sidecar keeps them."""
    text = data[-16384:].decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


# Every server started gets a token of its own in this variable; its processes inherit
# it, also those that leave its process group (setsid), which `kill_escaped` finds by it.
TOKEN_ENV = "WSGI_BASELINE_SERVER_TOKEN"


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    argv: list[str]
    stderr_path: Path
    stop_signal: int
    token: str = ""
    started: float = 0.0  # time.time() just before it was started
    escaped: tuple[int, ...] = ()  # processes that had left its group, killed at its stop

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the leader's pid is the group id

    def stderr_tail(self, lines: int = 40) -> str:
        try:
            return tail_lines(self.stderr_path.read_bytes(), lines)
        except OSError:
            return ""


def _adopt_orphans() -> None:
    """Make this process the reaper of its descendants' orphans (PR_SET_CHILD_SUBREAPER).

    When a server's group is killed at once, its workers may outlive the master by a
    moment and are then reparented: to init, whose reaping can lag (seen here: 2 s, with
    a VM's own init), or, with this, to us, so kill_group reaps them straight away.
    """
    _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def start_server(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    stderr_path: Path,
    stop_signal: int,
    cpus: Sequence[int] | None,
    nofile: int,
) -> ServerProcess:
    stderr_path.parent.mkdir(parents=True, exist_ok=True)
    _adopt_orphans()
    token, started = secrets.token_hex(8), time.time()
    with stderr_path.open("wb") as err:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env={**os.environ, **env, TOKEN_ENV: token},
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=child_setup(cpus, nofile),
            )
        except OSError as e:
            raise LaunchError(f"cannot start {argv[0]}: {e.strerror}") from None
    return ServerProcess(proc, argv, stderr_path, stop_signal, token, started)


def wait_ready(server: ServerProcess, url: str, timeout_s: float = 30.0) -> float:
    """Poll `url` until it answers 200; return seconds taken. Raises LaunchError."""
    start = time.monotonic()
    deadline = start + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        code = server.proc.poll()
        if code is not None:
            raise LaunchError(f"server exited with code {code} before answering")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                resp.read()
                if resp.status == 200:
                    return time.monotonic() - start
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
        except (OSError, urllib.error.URLError) as e:
            last = str(getattr(e, "reason", e))
        # Poll interval, not synchronisation: the loop checks readiness. Short, because
        # every cell waits for a fresh server: 5 ms costs ~2.5 ms of a cell on average.
        time.sleep(0.005)
    raise LaunchError(f"server did not answer 200 at {url} within {timeout_s:.0f} s ({last})")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_server(server: ServerProcess, grace_s: float = 10.0) -> int | None:
    """Ask the main process to stop, then make sure the whole group is gone."""
    proc = server.proc
    if proc.poll() is None:
        try:
            os.kill(proc.pid, server.stop_signal)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass  # kill_group below kills it and reaps it
    kill_group(server.pgid, proc)
    server.escaped = tuple(kill_escaped(server.token, server.started))
    return proc.returncode


def end_server(server: ServerProcess) -> int | None:
    """Stop a server whose measurement is over: SIGKILL to its whole group at once.

    Nothing is measured any more, and a graceful stop only costs time that is not the
    server's to spend: gunicorn's arbiter polls its workers every 0.1 s while stopping
    (~0.27 s idle), which alone was 2.7 % of a 10 s cell. The caller has already checked
    that the server was still running and has scraped its metrics.
    """
    kill_group(server.pgid, server.proc)
    server.escaped = tuple(kill_escaped(server.token, server.started))
    return server.proc.returncode


def kill_escaped(token: str, since: float, timeout_s: float = 5.0) -> list[int]:
    """Kill the processes a server started that left its process group (a daemon's
    setsid double fork), found by the server's token in their environment; their PIDs.

    Only processes born since the server was started are looked at (one stat each).
    Orphans among them were reparented to us (`_adopt_orphans`), so waiting for them
    reaps them. A process that also cleared its environment is not found.
    """
    try:
        import psutil
    except ImportError:  # a remote host's agent without it: the group kill alone
        return []
    if not token:
        return []
    found = []
    for proc in psutil.process_iter(["create_time"]):
        try:
            if proc.info["create_time"] < since - 1 or proc.pid == os.getpid():
                continue
            if proc.environ().get(TOKEN_ENV) == token:
                proc.kill()
                found.append(proc)
        except psutil.Error:  # gone meanwhile, a zombie, or not ours to read
            continue
    _gone, alive = psutil.wait_procs(found, timeout=timeout_s)
    if alive:
        raise LaunchError(f"processes {[p.pid for p in alive]} survived SIGKILL")
    return sorted(p.pid for p in found)


def _reap_adopted(pgid: int) -> None:
    """Reap the group's exited members that are our children: orphans we adopted."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return  # none of them is our child
        if pid == 0:
            return


def kill_group(
    pgid: int, leader: subprocess.Popen[Any] | None = None, timeout_s: float = 5.0
) -> None:
    """SIGKILL what is left of a process group and wait until it is empty.

    `leader`: our Popen of the group's first process. It is reaped through Popen (so its
    exit code is kept) before any other member is reaped here: a zombie still counts as
    a member of its group, and orphans of the group are reparented to us (see
    `_adopt_orphans`), not left for init.
    """
    deadline = time.monotonic() + timeout_s
    if leader is not None and leader.poll() is None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        leader.wait(timeout=timeout_s)
    while True:
        if leader is not None:
            _reap_adopted(pgid)
        if not group_alive(pgid):
            return
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except PermissionError as e:
            if e.errno == errno.EPERM:
                return
        if time.monotonic() > deadline:
            raise LaunchError(f"process group {pgid} survived SIGKILL")
        time.sleep(0.01)


@dataclass(frozen=True)
class WrkRun:
    argv: list[str]
    stdout: bytes
    stderr: str
    exit_code: int | None
    timed_out: bool


def run_wrk(
    argv: list[str],
    env: dict[str, str],
    cpus: Sequence[int] | None,
    nofile: int,
    limit_s: float,
) -> WrkRun:
    """Run wrk to completion (bounded by `limit_s`), keeping its stdout byte for byte."""
    proc = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=child_setup(cpus, nofile),
    )
    try:
        out, err = proc.communicate(timeout=limit_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        kill_group(proc.pid, proc)
        out, err = proc.communicate()
        timed_out = True
    except BaseException:
        kill_group(proc.pid, proc)
        proc.wait()
        raise
    return WrkRun(argv, out, err.decode("utf-8", "replace"), proc.returncode, timed_out)
