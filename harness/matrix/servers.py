"""Bench stage: server definitions, i.e. how to start each WSGI server under test.

Takes an app (:class:`harness.matrix.apps.AppSpec`), an address, a :class:`Budget` and a listen
backlog; returns the exact argv and extra environment to start the server with, and the
signal that stops it. Nothing here starts a server: ``harness.bench.runner`` does.

Every deliberate setting is in :attr:`ServerSpec.settings` with the reason, so that a
run records what was chosen and why. The rules, for every server:

- keep-alive on wherever the server has it (gunicorn's sync worker cannot keep a
  connection open at all; that is its model, and it is recorded);
- no access log, and no per-request line on stderr of any kind;
- the listen backlog and every per-process connection cap at least ``backlog`` (the
  runner passes more than the connections it opens), so no server refuses or starves
  a connection that wrk opened;
- ``Budget.workers`` processes and ``Budget.threads`` threads per process where the
  server has threads. Servers that run as one process (bjoern, meinheld standalone,
  cheroot, waitress) get their processes from the pre-fork launcher in
  ``harness/serving/launchers/``.

The argv is absolute-pathed (python, launchers, ``apps/`` via ``PYTHONPATH``), so it runs
from any working directory; the runner uses the repository root.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata

from harness.matrix.apps import AppSpec
from harness.paths import APPS_DIR, LAUNCHERS_DIR

# Idle keep-alive timeout where the server lets us choose: far longer than any pause
# inside a cell, so no connection is closed by the server while wrk holds it.
KEEPALIVE_S = 30

_CHECK_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Budget:
    """The same CPU/worker budget for every server in a profile."""

    workers: int = 1  # processes
    threads: int = 1  # threads per worker where the model has threads

    def __post_init__(self) -> None:
        if self.workers < 1 or self.threads < 1:
            raise ValueError(f"budget needs workers >= 1 and threads >= 1, got {self}")


ArgvBuilder = Callable[[str, AppSpec, str, int, Budget, int], list[str]]


@dataclass(frozen=True)
class ServerSpec:
    """One server under test: what it is, how it is configured and why, how to stop it."""

    id: str
    package: str  # pip distribution name, for the version
    worker_model: str
    settings: dict[str, str]  # each deliberate setting -> why
    stop_signal: int  # sent to the main PID only
    build_argv: ArgvBuilder = field(repr=False, compare=False)
    # Modules that must import (with the server's python) for the server to run.
    modules: tuple[str, ...] = ()
    # Other distributions it needs whose versions matter too (meinheld's greenlet, ...).
    also_packages: tuple[str, ...] = ()
    # A program installed beside python that the argv runs instead of python (uwsgi).
    executable: str | None = None

    def argv(
        self, python: str, app: AppSpec, host: str, port: int, budget: Budget, backlog: int
    ) -> list[str]:
        """The exact command line; `python` is the interpreter of the server's virtualenv."""
        if backlog < 1:
            raise ValueError(f"backlog must be positive, got {backlog}")
        return self.build_argv(python, app, host, port, budget, backlog)

    def env(self) -> dict[str, str]:
        """Extra environment, only what we set: the apps directory on the import path."""
        return {"PYTHONPATH": str(APPS_DIR)}


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _beside(python: str, program: str) -> str:
    # Not resolved: a virtualenv's bin/python is a symlink to the base interpreter, and
    # the program we want is the one in the virtualenv.
    return os.path.join(os.path.dirname(python), program)


# --- gunicorn ---------------------------------------------------------------------------

_GUNICORN_COMMON = {
    "--workers": "Budget.workers processes, forked by the gunicorn master.",
    "--backlog": "the runner's backlog (more than the connections it opens).",
    "access log": "off: gunicorn's default (no --access-logfile). The error log stays on "
    "stderr at info level: start and stop lines only.",
    "--no-control-socket": "gunicorn 27 otherwise opens ~/.gunicorn/gunicorn.ctl, one path "
    "shared by every gunicorn on the machine; the benchmark does not use it.",
}


def _gunicorn(worker_args: list[str]) -> ArgvBuilder:
    def build(
        python: str, app: AppSpec, host: str, port: int, budget: Budget, backlog: int
    ) -> list[str]:
        extra = [a.format(threads=budget.threads, backlog=backlog) for a in worker_args]
        return [
            python, "-m", "gunicorn",
            "--bind", _bind(host, port),
            "--workers", str(budget.workers),
            *extra,
            "--backlog", str(backlog),
            "--no-control-socket",
            app.target,
        ]  # fmt: skip

    return build


# {threads} and {backlog} are filled in from the budget and the runner's backlog.
_GTHREAD_ARGS = [
    "--worker-class", "gthread",
    "--threads", "{threads}",
    "--keep-alive", str(KEEPALIVE_S),
    "--worker-connections", "{backlog}",
]  # fmt: skip
_MEINHELD_WORKER_ARGS = [
    "--worker-class", "egg:meinheld#gunicorn_worker",
    "--keep-alive", str(KEEPALIVE_S),
    "--worker-connections", "{backlog}",
]  # fmt: skip


GUNICORN = ServerSpec(
    id="gunicorn",
    package="gunicorn",
    worker_model="pre-fork: a master and Budget.workers sync worker processes, each serving "
    "one request at a time and closing the connection after every response",
    settings={
        "--worker-class sync": "gunicorn's default worker. It forces `Connection: close` on "
        "every response (workers/sync.py), so each request opens a new TCP connection; "
        "wrk reconnects without counting an error. --keep-alive does not apply.",
        "threads": "not applicable: one request at a time per process (passing --threads > 1 "
        "would silently switch gunicorn to the gthread worker).",
        **_GUNICORN_COMMON,
    },
    stop_signal=signal.SIGTERM,  # graceful: workers finish the request in hand; ~0.3 s idle
    build_argv=_gunicorn(["--worker-class", "sync"]),
    modules=("gunicorn",),
)

GUNICORN_GTHREAD = ServerSpec(
    id="gunicorn-gthread",
    package="gunicorn",
    worker_model="pre-fork: a master and Budget.workers gthread worker processes, each with "
    "a poller for kept-alive connections and Budget.threads threads running requests",
    settings={
        "--worker-class gthread": "gunicorn's threaded worker; it keeps connections alive.",
        "--threads": "Budget.threads per worker process.",
        f"--keep-alive {KEEPALIVE_S}": "idle keep-alive timeout in seconds (default 2), longer "
        "than any pause inside a cell.",
        "--worker-connections": "the runner's backlog: gthread accepts at most this many open "
        "connections per worker and keeps at most this many minus --threads alive (default "
        "1000).",
        **_GUNICORN_COMMON,
    },
    stop_signal=signal.SIGTERM,
    build_argv=_gunicorn(_GTHREAD_ARGS),
    modules=("gunicorn",),
)

GUNICORN_MEINHELD = ServerSpec(
    id="gunicorn-meinheld",
    package="meinheld",
    worker_model="pre-fork: a gunicorn master and Budget.workers meinheld worker processes, "
    "each one thread running a picoev event loop with a greenlet per request",
    settings={
        "--worker-class egg:meinheld#gunicorn_worker": "meinheld's gunicorn worker "
        "(meinheld/gmeinheld.py), the entry point meinheld's documentation names.",
        f"--keep-alive {KEEPALIVE_S}": "the worker passes it to meinheld.server.set_keepalive; "
        "keep-alive is on with a 30 s idle timeout.",
        "--worker-connections": "the runner's backlog: the worker makes it picoev's maximum "
        "file descriptor (default 1000); a connection on a higher descriptor is refused.",
        "threads": "not applicable: one thread per process; concurrency comes from greenlets.",
        "meinheld access log": "off: with no gunicorn access log the worker removes meinheld's "
        "own access logger.",
        **_GUNICORN_COMMON,
    },
    stop_signal=signal.SIGTERM,
    build_argv=_gunicorn(_MEINHELD_WORKER_ARGS),
    modules=("gunicorn", "meinheld.server", "meinheld.gmeinheld"),
    also_packages=("gunicorn", "greenlet"),
)


# --- servers run through harness/serving/launchers -----------------------------------------------

_LAUNCHER_COMMON = {
    "launcher": "the server runs as a single process; harness/serving/launchers/_prefork.py binds "
    "and listens once and, for Budget.workers > 1, forks that many processes accepting on "
    "the same socket (pre-fork, like gunicorn and uWSGI) under a supervisor that forwards "
    "SIGTERM and never respawns. One worker: no fork, no supervisor.",
    "--backlog": "listen() backlog: the runner's backlog (more than the connections it opens).",
    "TCP_NODELAY": "set on the listening socket (accepted sockets inherit it), as cheroot's "
    "and waitress's own bind do: without it Nagle + delayed ACK cost ~40 ms per response "
    "written in two sends.",
}


def _launcher(script: str, extra: list[str]) -> ArgvBuilder:
    def build(
        python: str, app: AppSpec, host: str, port: int, budget: Budget, backlog: int
    ) -> list[str]:
        return [
            python, str(LAUNCHERS_DIR / script), app.target,
            "--host", host,
            "--port", str(port),
            "--backlog", str(backlog),
            "--workers", str(budget.workers),
            *[a.format(threads=budget.threads, backlog=backlog) for a in extra],
        ]  # fmt: skip

    return build


MEINHELD = ServerSpec(
    id="meinheld",
    package="meinheld",
    worker_model="Budget.workers processes (pre-fork launcher), each one thread running "
    "meinheld's picoev event loop with a greenlet per request",
    settings={
        f"--keepalive {KEEPALIVE_S}": "meinheld.server.set_keepalive: the default 0 closes the "
        "connection after every response.",
        "access log": "off: set_access_logger(None); meinheld's default logs every request to "
        "stderr.",
        "threads": "not applicable: one thread per process; concurrency comes from greenlets.",
        "picoev max fd": "meinheld's default 4096: descriptors above it are refused, far above "
        "the connections a cell opens.",
        **_LAUNCHER_COMMON,
    },
    # meinheld stops its loop on SIGTERM and exits 0.
    stop_signal=signal.SIGTERM,
    build_argv=_launcher("meinheld_serve.py", ["--keepalive", str(KEEPALIVE_S)]),
    modules=("meinheld.server",),
    also_packages=("greenlet",),
)

BJOERN = ServerSpec(
    id="bjoern",
    package="bjoern",
    worker_model="Budget.workers processes (pre-fork launcher), each one thread running a "
    "libev event loop with bjoern's C HTTP parser; requests run one at a time",
    settings={
        "keep-alive": "bjoern's own: HTTP/1.1 connections stay open; bjoern has no setting.",
        "access log": "none: bjoern has no access log.",
        "threads": "not applicable: one thread per process.",
        **_LAUNCHER_COMMON,
    },
    # SIGTERM's default action ends the process at once (bjoern only handles SIGINT).
    stop_signal=signal.SIGTERM,
    build_argv=_launcher("bjoern_serve.py", []),
    modules=("bjoern",),
)

CHEROOT = ServerSpec(
    id="cheroot",
    package="cheroot",
    worker_model="Budget.workers processes (pre-fork launcher), each a selector thread for "
    "kept-alive connections and a fixed pool of Budget.threads request threads",
    settings={
        "numthreads = max = Budget.threads": "a fixed pool, set deliberately: cheroot's default "
        "of 10 threads showed 1 s+ tails at c >= 100 (FIELD-NOTES).",
        "keep_alive_conn_limit = None": "no limit: cheroot's default of 10 answers with "
        "`Connection: close` once 10 connections are open, so at c > 10 most requests would "
        "pay a reconnect. The cheroot command line cannot set it.",
        "request_queue_size": "the runner's backlog, passed to listen().",
        "timeout": "cheroot's default 10 s idle timeout for kept-alive connections.",
        "access log": "none: cheroot's WSGI server has no access log.",
        **_LAUNCHER_COMMON,
    },
    # Default action: the kernel ends the process at once (no Python handler runs).
    stop_signal=signal.SIGTERM,
    build_argv=_launcher("cheroot_serve.py", ["--threads", "{threads}"]),
    modules=("cheroot.wsgi",),
)

WAITRESS = ServerSpec(
    id="waitress",
    package="waitress",
    worker_model="Budget.workers processes (pre-fork launcher), each an asyncore-style I/O "
    "thread that buffers whole requests and responses and a pool of Budget.threads threads "
    "running the app",
    settings={
        "threads": "Budget.threads (waitress's default is 4).",
        "connection_limit": "the runner's backlog: the default of 100 stops accepting beyond "
        "100 open connections, which starves the rest unseen.",
        "asyncore_use_poll = True": "poll() instead of select(), which fails above file "
        "descriptor 1024.",
        "waitress.queue logger at ERROR": "it otherwise writes `Task queue depth is N` to "
        "stderr for nearly every request once all threads are busy. waitress has no access "
        "log.",
        "channel_timeout": "waitress's default 120 s idle timeout.",
        **_LAUNCHER_COMMON,
    },
    stop_signal=signal.SIGTERM,
    build_argv=_launcher("waitress_serve.py", ["--threads", "{threads}"]),
    modules=("waitress",),
)


# --- uWSGI ----------------------------------------------------------------------------


def _uwsgi(
    python: str, app: AppSpec, host: str, port: int, budget: Budget, backlog: int
) -> list[str]:
    return [
        _beside(python, "uwsgi"),
        "--strict",
        "--master",
        "--die-on-term",
        "--need-app",
        "--http", _bind(host, port),
        "--http-keepalive",
        "--listen", str(backlog),
        "--processes", str(budget.workers),
        "--threads", str(budget.threads),
        "--disable-logging",
        "--module", app.target,
    ]  # fmt: skip


UWSGI = ServerSpec(
    id="uwsgi",
    package="uwsgi",
    worker_model="pre-fork: a master, one HTTP router process (C, event loop) holding the "
    "client connections, and Budget.workers worker processes with Budget.threads threads "
    "each, fed by the router over the uwsgi protocol (one process more than the budget)",
    settings={
        "--http + --http-keepalive": "the HTTP router with HTTP/1.1 keep-alive. Without it "
        "(or with --http-socket) uWSGI closes every connection silently and wrk counts a read "
        "error per request; --http11-socket let one process hold a connection forever while "
        "the rest starved (FIELD-NOTES). Keep-alive needs Content-Length, which every app "
        "sends.",
        "--listen": "the runner's backlog, for the router's and the workers' sockets (the "
        "default of 100 caused 1 s SYN-retry stalls at c=500).",
        "--master --die-on-term": "a master supervises the workers, and SIGTERM makes it exit "
        "(uWSGI 2.0 otherwise reloads on SIGTERM).",
        "--processes": "Budget.workers.",
        "--threads": "Budget.threads (also turns on Python thread support, so the GIL is "
        "released around I/O, as in the other servers).",
        "--disable-logging": "no request log.",
        "--need-app": "exit if the app does not import, instead of answering 500s.",
        "--strict": "an unknown option is an error, not silently ignored.",
        "binary": "the uwsgi beside the given python, i.e. in the same virtualenv (uWSGI "
        "finds that virtualenv's site-packages by itself).",
    },
    stop_signal=signal.SIGTERM,
    build_argv=_uwsgi,
    executable="uwsgi",
)


# --- granian ----------------------------------------------------------------------------


def _granian(
    python: str, app: AppSpec, host: str, port: int, budget: Budget, backlog: int
) -> list[str]:
    return [
        python, "-m", "granian",
        "--interface", "wsgi",
        "--host", host,
        "--port", str(port),
        "--workers", str(budget.workers),
        "--blocking-threads", str(budget.threads),
        "--runtime-threads", "1",
        "--backlog", str(backlog),
        "--http", "1",
        "--no-ws",
        "--no-access-log",
        app.target,
    ]  # fmt: skip


GRANIAN = ServerSpec(
    id="granian",
    package="granian",
    worker_model="a main process and Budget.workers worker processes, each a Rust (tokio/"
    "hyper) I/O runtime on one thread handing requests to Budget.threads Python threads",
    settings={
        "--interface wsgi": "granian's WSGI interface (its default is RSGI).",
        "--blocking-threads": "Budget.threads: the Python threads that run the WSGI app "
        "(granian otherwise picks its own, many).",
        "--runtime-threads 1": "one Rust I/O thread per worker (granian's default, explicit).",
        "--backlog": "the runner's backlog (granian's default 1024; minimum 128). "
        "--backpressure is left at its default, backlog / workers.",
        "--http 1": "HTTP/1.1 only, like every other server here (default: auto-detect).",
        "--no-ws": "no websocket support: not WSGI.",
        "--no-access-log": "off (granian's default, explicit).",
    },
    # SIGTERM to the main PID only: SIGINT to the whole group hung > 10 s (FIELD-NOTES).
    stop_signal=signal.SIGTERM,
    build_argv=_granian,
    modules=("granian",),
)


SERVERS: dict[str, ServerSpec] = {
    spec.id: spec
    for spec in (
        GUNICORN,
        GUNICORN_GTHREAD,
        GUNICORN_MEINHELD,
        MEINHELD,
        UWSGI,
        CHEROOT,
        WAITRESS,
        BJOERN,
        GRANIAN,
    )
}


def server_version(spec: ServerSpec) -> str | None:
    """The installed version of the server's distribution, or None if not installed."""
    return _version(spec.package)


def package_versions(spec: ServerSpec) -> dict[str, str | None]:
    """Versions of every distribution the server needs (server first)."""
    return {dist: _version(dist) for dist in (spec.package, *spec.also_packages)}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def check_available(spec: ServerSpec, python: str = sys.executable) -> str | None:
    """Why `spec` cannot run with `python` on this machine, or None if it can.

    Imports run in a child interpreter (the server's own), so a failing C extension
    cannot take the harness down and the answer is about the interpreter that will run.
    """
    for dist, version in package_versions(spec).items():
        if version is None:
            return f"{dist} is not installed (pip install {dist})"
    if spec.executable is not None:
        program = _beside(python, spec.executable)
        if not os.access(program, os.X_OK):
            return f"{program} not found or not executable (pip install {spec.package})"
        failure = _runs([program, "--version"], f"{program} --version")
        if failure:
            return failure
    if spec.modules:
        statement = "; ".join(f"import {m}" for m in spec.modules)
        failure = _runs([python, "-c", statement], statement)
        if failure:
            return failure
    return None


def _runs(argv: list[str], what: str) -> str | None:
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_CHECK_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{what}: {e}"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"{what} failed: {lines[-1] if lines else f'exit code {done.returncode}'}"
    return None
