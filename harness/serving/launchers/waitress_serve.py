"""Launcher: waitress (asyncore-style I/O loop + thread pool) on a socket we bind.

Settings the ``waitress-serve`` command line would need too, plus two it cannot give:
- ``threads``: from the budget (waitress's default is 4).
- ``connection_limit`` = backlog: the default of 100 stops accepting beyond 100 open
  connections, which starves the rest of the load generator's connections unseen.
- ``asyncore_use_poll``: the default ``select()`` fails above file descriptor 1024.
- the ``waitress.queue`` logger silenced: it warns on stderr about the task queue depth
  for every request that finds all threads busy, i.e. every request under load.
- a socket bound before the fork, for several workers (``_prefork``).
waitress writes no access log.
"""

import logging
import socket
import sys

import _prefork


def main() -> int:
    p = _prefork.parser(__doc__ or "")
    p.add_argument("--threads", type=int, required=True)
    args = p.parse_args()
    app = _prefork.load_app(args.app)

    import waitress

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    sock = _prefork.listen(args.host, args.port, args.backlog)

    def serve(s: socket.socket) -> None:
        waitress.serve(
            app,
            sockets=[s],
            threads=args.threads,
            backlog=args.backlog,
            connection_limit=args.backlog,
            asyncore_use_poll=True,
        )

    return _prefork.run(sock, serve, args.workers)


if __name__ == "__main__":
    sys.exit(main())
