"""Launcher: cheroot's WSGI server (thread pool, keep-alive) on a socket we bind.

The ``cheroot`` command line cannot set the two limits that matter under load:
``keep_alive_conn_limit`` (default 10: once 10 connections are open, every response
carries ``Connection: close``, so at c > 10 most requests would pay a reconnect) and,
with several workers, adopting a socket bound before the fork. Threads: ``--threads``
sets both minimum and maximum, a fixed pool (cheroot's default of 10 showed 1 s+ tails
at c >= 100, see FIELD-NOTES). cheroot writes no access log. ``_prefork`` adds the
worker processes.
"""

import socket
import sys

import _prefork


def main() -> int:
    p = _prefork.parser(__doc__ or "")
    p.add_argument("--threads", type=int, required=True, help="fixed thread-pool size")
    args = p.parse_args()
    app = _prefork.load_app(args.app)

    from cheroot import wsgi

    sock = _prefork.listen(args.host, args.port, args.backlog)

    class _Server(wsgi.Server):
        def bind(self, family: int, type: int, proto: int = 0) -> None:
            # prepare() would bind a new socket; every worker takes the inherited one.
            self.socket = sock

    def serve(_sock: socket.socket) -> None:
        server = _Server(
            (args.host, args.port),
            app,
            numthreads=args.threads,
            max=args.threads,
            request_queue_size=args.backlog,
        )
        # None: no limit on kept-alive connections (see the module docstring). cheroot
        # documents None; its stub says int.
        server.keep_alive_conn_limit = None  # type: ignore[assignment]
        try:
            server.safe_start()
        finally:
            server.stop()

    return _prefork.run(sock, serve, args.workers)


if __name__ == "__main__":
    sys.exit(main())
