"""Launcher: bjoern (libev, one thread, C HTTP parser) on a socket we bind.

``bjoern.run`` takes no worker count, no keep-alive switch (bjoern keeps HTTP/1.1
connections open) and writes no access log; ``_prefork`` adds the worker processes.
"""

import sys

import _prefork


def main() -> int:
    args = _prefork.parser(__doc__ or "").parse_args()
    app = _prefork.load_app(args.app)

    import bjoern

    sock = _prefork.listen(args.host, args.port, args.backlog)
    return _prefork.run(sock, lambda s: bjoern.server_run(s, app), args.workers)


if __name__ == "__main__":
    sys.exit(main())
