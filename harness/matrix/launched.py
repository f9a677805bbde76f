"""Matrix stage: the built-in servers that run as one process, started by our launcher.

meinheld, bjoern, cheroot and waitress serve from a single process; the pre-fork
launcher in harness/serving/launchers/ gives them `Budget.workers` processes on one
listening socket, as gunicorn and uWSGI have. Registered in harness/matrix/servers.py.
"""

from __future__ import annotations

import signal

from harness.matrix.apps import AppSpec
from harness.matrix.serverspec import KEEPALIVE_S, ArgvBuilder, Budget, ServerSpec
from harness.paths import LAUNCHERS_DIR

# --- servers run through harness/serving/launchers -----------------------------------------------

_LAUNCHER_COMMON = {
    "launcher": "the server runs as a single process; the harness's pre-fork launcher binds "
    "and listens once and, for more than one worker, forks one process per worker accepting "
    "on the same socket (pre-fork, like gunicorn and uWSGI) under a supervisor that forwards "
    "SIGTERM and never respawns. One worker: no fork, no supervisor.",
    "--backlog": "listen() backlog: the runner's backlog (more than the connections it opens).",
    "TCP_NODELAY": "set on the listening socket (accepted sockets inherit it), as cheroot's "
    "and waitress's own bind do: without it Nagle + delayed ACK cost ~40 ms per response "
    "written in two sends.",
}


def _launcher(script: str, extra: list[str]) -> ArgvBuilder:
    def build(
        python: str, app: AppSpec, host: str, port: int, budget: Budget, backlog: int, listen: int
    ) -> list[str]:
        # `backlog`, not `listen`: waitress also takes it as its connection cap, and the
        # kernel cuts listen() to net.core.somaxconn silently.
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
    worker_model="worker processes (the run's worker count; pre-fork launcher), each one "
    "thread running meinheld's picoev event loop with a greenlet per request",
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
    worker_model="worker processes (the run's worker count; pre-fork launcher), each one "
    "thread running a libev event loop with bjoern's C HTTP parser; requests run one at a time",
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
    worker_model="worker processes (the run's worker count; pre-fork launcher), each a "
    "selector thread for kept-alive connections and a fixed pool of request threads (the run's "
    "thread count)",
    settings={
        "numthreads = max": "the run's thread count, a fixed pool, set deliberately: cheroot's "
        "default of 10 threads showed 1 s+ tails at c >= 100 (measured while building this "
        "tool).",
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
    worker_model="worker processes (the run's worker count; pre-fork launcher), each an "
    "asyncore-style I/O thread that buffers whole requests and responses and a pool of threads "
    "running the app (the run's thread count)",
    settings={
        "threads": "the run's thread count (waitress's default is 4).",
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


# Not a server under test: the reference of the client ceiling (harness/bench/calibrations.py),
# measured by the same cell sequence as the servers, so on any host they run on.
NGINX_REFERENCE = ServerSpec(
    id="nginx",
    package="",  # Debian's nginx, not a Python distribution: its version is `nginx -v`'s
    worker_model="nginx, one process (no master), answering the apps' plaintext body itself",
    settings={
        "body": "return 200 with the apps' exact body and Content-Type, from nginx's own memory.",
        "keep-alive": "keepalive_timeout 75s, keepalive_requests without limit.",
        "access log": "off.",
        "backlog": "the run's listen backlog, as every server under test gets.",
    },
    stop_signal=signal.SIGTERM,
    build_argv=_launcher("nginx_serve.py", []),
)
