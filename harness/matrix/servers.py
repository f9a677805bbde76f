"""Bench stage: server definitions, i.e. how to start each WSGI server under test.

Takes an app (:class:`harness.matrix.apps.AppSpec`), an address, a :class:`Budget` and a listen
backlog; returns the exact argv and extra environment to start the server with, and the
signal that stops it. Nothing here starts a server: ``harness.bench.runner`` does.

Every deliberate setting is in :attr:`ServerSpec.settings` with the reason, so that a
run records what was chosen and why. The rules, for every server:

- keep-alive on wherever the server has it (gunicorn's sync worker cannot keep a
  connection open at all; that is its model, and it is recorded);
- no access log, and no per-request line on stderr of any kind;
- every per-process connection cap at least ``backlog`` (the runner passes more than
  the connections it opens), so no server refuses or starves a connection that wrk
  opened; the listen backlog ``listen``: the same, within the kernel's
  ``net.core.somaxconn`` (uWSGI refuses to start above it; the launchers' ``listen()``
  is cut to it by the kernel);
- ``Budget.workers`` processes and ``Budget.threads`` threads per process where the
  server has threads (the recorded texts say "the run's worker count" and "the run's
  thread count": pages show the numbers beside them). Servers that run as one process
  (bjoern, meinheld standalone, cheroot, waitress) get their processes from the
  pre-fork launcher in ``harness/serving/launchers/``.

The argv is absolute-pathed (python, launchers, ``apps/`` via ``PYTHONPATH``), so it runs
from any working directory; the runner uses the repository root.
"""

from __future__ import annotations

import signal

from harness.matrix.apps import AppSpec
from harness.matrix.launched import BJOERN, CHEROOT, MEINHELD, WAITRESS
from harness.matrix.serverspec import (
    KEEPALIVE_S,
    ArgvBuilder,
    Budget,
    ServerSpec,
    beside,
    bind_address,
)

# --- gunicorn ---------------------------------------------------------------------------

_GUNICORN_COMMON = {
    "--workers": "the run's worker count: processes forked by the gunicorn master.",
    "--backlog": "the runner's listen backlog (more than the connections it opens, within "
    "the kernel's net.core.somaxconn).",
    "access log": "off: gunicorn's default (no --access-logfile). The error log stays on "
    "stderr at info level: start and stop lines only.",
    "--no-control-socket": "gunicorn 27 otherwise opens ~/.gunicorn/gunicorn.ctl, one path "
    "shared by every gunicorn on the machine; the benchmark does not use it.",
}


def _gunicorn(worker_args: list[str]) -> ArgvBuilder:
    def build(
        python: str, app: AppSpec, host: str, port: int, budget: Budget, backlog: int, listen: int
    ) -> list[str]:
        extra = [a.format(threads=budget.threads, backlog=backlog) for a in worker_args]
        return [
            python, "-m", "gunicorn",
            "--bind", bind_address(host, port),
            "--workers", str(budget.workers),
            *extra,
            "--backlog", str(listen),
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
    worker_model="pre-fork: a master and sync worker processes (the run's worker count), each "
    "serving one request at a time and closing the connection after every response",
    settings={
        "--worker-class sync": "gunicorn's default worker. It forces `Connection: close` on "
        "every response (gunicorn's workers/sync.py), so each request opens a new TCP connection; "
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
    worker_model="pre-fork: a master and gthread worker processes (the run's worker count), "
    "each with a poller for kept-alive connections and threads running requests (the run's "
    "thread count)",
    settings={
        "--worker-class gthread": "gunicorn's threaded worker; it keeps connections alive.",
        "--threads": "the run's thread count, per worker process.",
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
    worker_model="pre-fork: a gunicorn master and meinheld worker processes (the run's worker "
    "count), each one thread running a picoev event loop with a greenlet per request",
    settings={
        "--worker-class egg:meinheld#gunicorn_worker": "meinheld's gunicorn worker "
        "(meinheld's gmeinheld.py), the entry point meinheld's documentation names.",
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


# --- uWSGI ----------------------------------------------------------------------------


def _uwsgi(
    python: str, app: AppSpec, host: str, port: int, budget: Budget, backlog: int, listen: int
) -> list[str]:
    return [
        beside(python, "uwsgi"),
        "--strict",
        "--master",
        "--die-on-term",
        "--need-app",
        "--http", bind_address(host, port),
        "--http-keepalive",
        "--listen", str(listen),
        "--processes", str(budget.workers),
        "--threads", str(budget.threads),
        "--disable-logging",
        "--module", app.target,
    ]  # fmt: skip


UWSGI = ServerSpec(
    id="uwsgi",
    package="uwsgi",
    worker_model="pre-fork: a master, one HTTP router process (C, event loop) holding the "
    "client connections, and worker processes (the run's worker count) with threads each "
    "(the run's thread count), fed by the router over the uwsgi protocol (one process more "
    "than the budget)",
    settings={
        "--http + --http-keepalive": "the HTTP router with HTTP/1.1 keep-alive. Without it "
        "(or with --http-socket) uWSGI closes every connection silently and wrk counts a read "
        "error per request; --http11-socket let one process hold a connection forever while "
        "the rest starved (measured while building this tool). Keep-alive needs "
        "Content-Length, which every app sends.",
        "--listen": "the runner's listen backlog, for the router's and the workers' sockets (the "
        "default of 100 caused 1 s SYN-retry stalls at c=500), within the kernel's "
        "net.core.somaxconn: uWSGI refuses to start above it.",
        "--master --die-on-term": "a master supervises the workers, and SIGTERM makes it exit "
        "(uWSGI 2.0 otherwise reloads on SIGTERM).",
        "--processes": "the run's worker count.",
        "--threads": "the run's thread count (also turns on Python thread support, so the GIL is "
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
    python: str, app: AppSpec, host: str, port: int, budget: Budget, backlog: int, listen: int
) -> list[str]:
    return [
        python, "-m", "granian",
        "--interface", "wsgi",
        "--host", host,
        "--port", str(port),
        "--workers", str(budget.workers),
        "--blocking-threads", str(budget.threads),
        "--runtime-threads", "1",
        "--backlog", str(listen),
        "--http", "1",
        "--no-ws",
        "--no-access-log",
        app.target,
    ]  # fmt: skip


GRANIAN = ServerSpec(
    id="granian",
    package="granian",
    worker_model="a main process and worker processes (the run's worker count), each a Rust "
    "(tokio/hyper) I/O runtime on one thread handing requests to Python threads (the run's "
    "thread count)",
    settings={
        "--interface wsgi": "granian's WSGI interface (its default is RSGI).",
        "--blocking-threads": "the run's thread count: the Python threads that run the WSGI app "
        "(granian otherwise picks its own, many).",
        "--runtime-threads 1": "one Rust I/O thread per worker (granian's default, explicit).",
        "--backlog": "the runner's listen backlog, within the kernel's net.core.somaxconn "
        "(granian's default 1024; minimum 128). --backpressure is left at its default, "
        "backlog / workers.",
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
