"""Launcher: meinheld standalone (picoev event loop, greenlets) on a socket we bind.

meinheld's defaults are wrong for a benchmark: keep-alive is off (every response closes
its connection) and every request is logged to stderr. We set ``--keepalive`` seconds and
remove the access logger. ``_prefork`` adds the worker processes.
"""

import sys

import _prefork


def main() -> int:
    p = _prefork.parser(__doc__ or "")
    p.add_argument("--keepalive", type=int, required=True, help="keep-alive timeout, seconds")
    args = p.parse_args()
    app = _prefork.load_app(args.app)

    from meinheld import server

    server.set_keepalive(args.keepalive)
    server.set_access_logger(None)
    sock = _prefork.listen(args.host, args.port, args.backlog)

    def serve(s: object) -> None:
        server.set_listen_socket(s.fileno())  # type: ignore[attr-defined]
        server.run(app)

    return _prefork.run(sock, serve, args.workers)


if __name__ == "__main__":
    sys.exit(main())
