"""Shared part of the launchers for servers that are one process on their own.

bjoern, meinheld (standalone), cheroot and waitress serve from a single process. To give
them the same process budget as gunicorn, uWSGI and granian, the launcher binds and
listens once, then (with more than one worker) forks that many children which all
accept on the inherited socket: the pre-fork model of gunicorn and uWSGI. The parent
then only supervises: it forwards SIGTERM/SIGINT to the children, never respawns one
(a dead worker must show, not be hidden), and exits when they have all gone.

With one worker there is no fork and no supervisor: the server runs in the launcher's
own process, exactly as its own command line would run it.

Stop: SIGTERM. A single-process server is left with the default action for SIGTERM (the
kernel ends it at once: nothing to flush, access logging is off). Python-level handlers
would not run while bjoern's or meinheld's C loop waits in epoll.

Run as a script (``python harness/serving/launchers/<server>_serve.py ...``); this module is
imported from the script's directory. Standard library only.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

WSGIApp = Callable[..., Any]

_PR_SET_PDEATHSIG = 1


def parser(description: str) -> argparse.ArgumentParser:
    """The options every launcher takes; launchers add their own."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("app", help="module:callable, importable from PYTHONPATH")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backlog", type=int, required=True, help="listen() backlog")
    p.add_argument("--workers", type=int, default=1, help="processes accepting on the socket")
    return p


def load_app(target: str) -> WSGIApp:
    module_name, _, attr = target.partition(":")
    app: WSGIApp = getattr(importlib.import_module(module_name), attr or "app")
    return app


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """Bind and listen; non-blocking, as the event-loop servers require."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # SO_REUSEADDR as every server here sets it: a restart on the same port must not
    # wait out TIME_WAIT. Not SO_REUSEPORT: a second bind must fail (EADDRINUSE).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # TCP_NODELAY, as cheroot's and waitress's own bind set it (accepted sockets inherit
    # it on Linux): without it, Nagle + delayed ACK add ~40 ms to responses written in
    # two sends, and cheroot fell from thousands of requests/s to ~230.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def run(sock: socket.socket, serve: Callable[[socket.socket], object], workers: int) -> int:
    """Serve on `sock` in this process (1 worker) or in `workers` forked children."""
    if workers < 1:
        raise SystemExit(f"--workers must be at least 1, not {workers}")
    if workers == 1:
        serve(sock)
        return 0
    return _supervise(sock, serve, workers)


def _supervise(sock: socket.socket, serve: Callable[[socket.socket], object], workers: int) -> int:
    children: set[int] = set()
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    # Installed before forking so that a signal arriving mid-fork is not lost; each child
    # puts the defaults back at once.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    parent = os.getpid()
    for _ in range(workers):
        if stopping:
            break
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            _die_with_parent(parent)
            code = 0
            try:
                serve(sock)
            except KeyboardInterrupt:
                pass
            except BaseException as e:  # report, then leave without running parent code
                print(f"worker {os.getpid()}: {e!r}", file=sys.stderr, flush=True)
                code = 1
            os._exit(code)
        children.add(pid)
    sock.close()
    if stopping:
        stop(signal.SIGTERM, None)

    code = 0
    while children:
        pid, status = os.wait()  # retried after a signal handler runs (PEP 475)
        children.discard(pid)
        if not stopping:
            # A worker died on its own: no respawn, stop the others so it is noticed.
            print(
                f"worker {pid} exited unexpectedly ({_describe(status)}); stopping",
                file=sys.stderr,
                flush=True,
            )
            code = 1
            stop(signal.SIGTERM, None)
    return code


def _die_with_parent(parent: int) -> None:
    # If the supervisor is SIGKILLed its children must not serve on as orphans.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
