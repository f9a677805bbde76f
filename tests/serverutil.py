"""Test helpers: start a server from its ServerSpec, wait for HTTP 200, run wrk, stop it.

Small on purpose, for tests/test_servers.py; ``harness.bench.runner`` does the same for the
bench (with CPU pinning and limits) and the tests may move to it. Every process gets a
new session so its whole process group can be signalled and checked empty afterwards.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.matrix.apps import AppSpec
from harness.matrix.serverspec import Budget, ServerSpec

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
PORT_ATTEMPTS = 3


@dataclass
class Started:
    spec: ServerSpec
    proc: subprocess.Popen[bytes]
    port: int
    argv: list[str]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    """A port the kernel just handed out; start() retries on EADDRINUSE."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start(
    spec: ServerSpec,
    app: AppSpec,
    budget: Budget,
    log_path: Path,
    backlog: int = 1024,
    python: str = sys.executable,
) -> Started:
    """Start `spec` serving `app` and return once it answers HTTP 200 on ``/``."""
    for attempt in range(PORT_ATTEMPTS):
        port = free_port()
        argv = spec.argv(python, app, HOST, port, budget, backlog)
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                argv,
                cwd=REPO,
                env={**os.environ, **spec.env()},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = Started(spec, proc, port, argv, log_path)
        try:
            wait_ready(started)
            return started
        except RuntimeError:
            stop(started)
            if "Address already in use" in started.log() and attempt + 1 < PORT_ATTEMPTS:
                continue
            raise
    raise AssertionError("unreachable")


def wait_ready(started: Started, timeout_s: float = READY_TIMEOUT_S) -> float:
    """Poll ``/`` until HTTP 200; servers accept TCP before they can answer."""
    t0 = time.monotonic()
    last = "no answer"
    while time.monotonic() - t0 < timeout_s:
        if started.proc.poll() is not None:
            raise RuntimeError(
                f"{started.spec.id} exited with {started.proc.returncode} before answering:\n"
                + started.log()[-3000:]
            )
        try:
            status, _headers, _body = get(started.url + "/", timeout_s=1.0)
            if status == 200:
                return time.monotonic() - t0
            last = f"HTTP {status}"
        except OSError as e:
            last = repr(e)
        time.sleep(0.02)  # poll interval; readiness is decided by the answer above
    raise RuntimeError(f"{started.spec.id} did not answer 200 within {timeout_s} s ({last})")


def get(url: str, timeout_s: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One GET on a fresh connection: status, headers (lower-cased names), body."""
    return request("GET", url, timeout_s=timeout_s)


def request(
    method: str, url: str, body: bytes | None = None, timeout_s: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: status, headers (lower-cased names), body."""
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    try:
        conn.request(method, "/" + path, body=body)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def run_wrk(url: str, connections: int = 10, duration_s: int = 2, threads: int = 1) -> str:
    """Run the real wrk, bounded in time; return its stdout."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--timeout=2s", url]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration_s + 30, start_new_session=True
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr}"
    return done.stdout


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass(frozen=True)
class Stopped:
    exit_code: int | None
    group_emptied: bool  # False: something survived the stop signal and was SIGKILLed
    seconds: float


def stop(started: Started, grace_s: float = 15.0, reap_s: float = 10.0) -> Stopped:
    """Send the spec's stop signal to the main PID; SIGKILL the group as a fallback.

    Orphaned children are reaped by PID 1, which can take a moment here, so the group is
    polled until empty rather than checked once.
    """
    proc = started.proc
    pgid = proc.pid  # start_new_session: the leader's PID is the group ID
    t0 = time.monotonic()
    if proc.poll() is None:
        os.kill(proc.pid, started.spec.stop_signal)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + reap_s
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    emptied = not group_alive(pgid)
    seconds = time.monotonic() - t0
    if not emptied:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)
    return Stopped(proc.returncode, emptied, seconds)


def closed_after_response(url: str, connections: int, rounds: int = 2) -> int:
    """Open `connections` connections at once, make `rounds` requests on each, and count
    the connections the server closed (a `Connection: close` answer or a dropped socket).

    All connections are open together, so per-server caps on kept-alive connections
    (cheroot's default of 10, waitress's connection limit) show up here.
    """
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    conns = [http.client.HTTPConnection(host, int(port), timeout=5.0) for _ in range(connections)]
    closed: set[int] = set()
    try:
        for c in conns:
            c.connect()
        for _ in range(rounds):
            for i, c in enumerate(conns):
                if i in closed:
                    continue
                sock = c.sock
                try:
                    c.request("GET", "/" + path)
                    resp = c.getresponse()
                    resp.read()
                except (http.client.RemoteDisconnected, ConnectionError):
                    closed.add(i)  # closed silently after the previous response
                    continue
                if resp.status != 200:
                    raise AssertionError(f"HTTP {resp.status} from {url}")
                # http.client drops its socket after `Connection: close`.
                if c.sock is None or c.sock is not sock:
                    closed.add(i)
    finally:
        for c in conns:
            c.close()
    return len(closed)
