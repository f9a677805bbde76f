"""Test double for the open-loop tests: an HTTP/1.1 keep-alive server that stalls.

Every PERIOD seconds it stops answering for STALL seconds (time.sleep in its only
thread), as a stop-the-world pause would; otherwise it answers every request at once
with `Hello, World!` (text/plain; charset=utf-8, Content-Length), so it passes the
plaintext preflight.

    python tests/stallserver.py PORT [STALL_S=0.2] [PERIOD_S=1.0]
"""

from __future__ import annotations

import selectors
import socket
import sys
import time

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n"
    b"\r\nHello, World!"
)


def serve(port: int, stall_s: float, period_s: float) -> None:
    sel = selectors.DefaultSelector()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, None)
    pending: dict[socket.socket, bytes] = {}
    next_stall = time.monotonic() + period_s
    while True:
        if time.monotonic() >= next_stall:
            time.sleep(stall_s)
            next_stall += period_s
        for key, _ in sel.select(timeout=max(0.0, next_stall - time.monotonic())):
            if key.data is None:
                conn, _ = listener.accept()
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sel.register(conn, selectors.EVENT_READ, b"")
                pending[conn] = b""
                continue
            conn = key.fileobj  # type: ignore[assignment]
            try:
                data = conn.recv(65536)
            except ConnectionError:
                data = b""
            if not data:
                sel.unregister(conn)
                pending.pop(conn, None)
                conn.close()
                continue
            buf = pending[conn] + data
            complete = buf.count(b"\r\n\r\n")  # GETs without bodies: one per header end
            pending[conn] = buf[buf.rfind(b"\r\n\r\n") + 4 :] if complete else buf
            if complete:
                conn.sendall(RESPONSE * complete)


if __name__ == "__main__":
    args = sys.argv[1:]
    serve(int(args[0]), float(args[1]) if len(args) > 1 else 0.2,
          float(args[2]) if len(args) > 2 else 1.0)  # fmt: skip
