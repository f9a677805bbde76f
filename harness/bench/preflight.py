"""Bench side: verify a server before measuring it (TechEmpower's `verify()`).

`preflight(host, port, path, expected_body, expected_type) -> PreflightResult` sends the
request wrk sends (`GET <path> HTTP/1.1` + Host, nothing else) over a raw socket, so that
what the server wrote is seen as it is, framing included (urllib would hide it), and
checks: HTTP version, status 200, Content-Type, framing (Content-Length or chunked),
the exact body, and that a second request on the same connection is answered
(keep-alive). Every socket operation is bounded by one overall deadline.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from harness.raw.preflight import ANNOUNCED_CLOSE, EOF_FRAMING, PreflightResult, preflight_result

MAX_HEAD, MAX_BODY = 64 * 1024, 1024 * 1024  # a plaintext answer is tiny; never read forever


class _Closed(Exception):
    """The server closed the connection (or the deadline passed) before a full answer."""


@dataclass
class _Response:
    version: str
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    framing: str  # "length", "chunked" or "eof"


class _Conn:
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline, self.buf = sock, deadline, b""

    def _fill(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Closed("no complete answer before the deadline")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise _Closed("no complete answer before the deadline") from None
        except OSError as e:
            raise _Closed(f"connection error: {e.strerror or e}") from None
        if not data:
            raise _Closed("connection closed by the server")
        self.buf += data

    def until(self, marker: bytes, limit: int) -> bytes:
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise _Closed(f"no {marker!r} within {limit} bytes")
            self._fill()
        head, self.buf = self.buf.split(marker, 1)
        return head

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def rest(self) -> bytes:
        try:
            while len(self.buf) <= MAX_BODY:
                self._fill()
        except _Closed:
            pass
        data, self.buf = self.buf, b""
        return data

    def response(self) -> _Response:
        head = self.until(b"\r\n\r\n", MAX_HEAD).decode("latin-1")
        status_line, *lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise _Closed(f"not an HTTP status line: {status_line[:80]!r}")
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        coding = headers.get("transfer-encoding", "").lower()
        if coding.split(",")[-1].strip() == "chunked":
            return _Response(parts[0], int(parts[1]), headers, self._chunked(), "chunked")
        if "content-length" in headers:
            length = int(headers["content-length"].split(",")[0])
            return _Response(parts[0], int(parts[1]), headers, self.exactly(length), "length")
        return _Response(parts[0], int(parts[1]), headers, self.rest(), "eof")

    def _chunked(self) -> bytes:
        body = b""
        while True:
            size = int(self.until(b"\r\n", 1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.until(b"\r\n", MAX_HEAD):  # trailers, up to the blank line
                    pass
                return body
            body += self.exactly(size)
            self.exactly(2)  # the CRLF after each chunk


def _media_type(value: str, with_parameters: bool) -> str:
    """`Text/Plain; charset=UTF-8` -> `text/plain;charset=utf-8`, or `text/plain` alone."""
    value = "".join(value.lower().split())
    return value if with_parameters else value.split(";")[0]


def preflight(
    host: str,
    port: int,
    path: str,
    expected_body: bytes,
    expected_type: str,
    timeout_s: float = 5.0,
) -> PreflightResult:
    """Check what the server at host:port answers to wrk's request for `path`."""
    checks: list[tuple[str, bool, str]] = []
    deadline = time.monotonic() + timeout_s
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    try:
        sock = socket.create_connection((host, port), timeout=min(timeout_s, 2.0))
    except OSError as e:
        checks.append(("connect", False, f"cannot connect to {host}:{port}: {e.strerror or e}"))
        return preflight_result(checks)
    with sock:
        conn = _Conn(sock, deadline)
        try:
            sock.sendall(request)
            first = conn.response()
        except (_Closed, OSError, ValueError) as e:
            checks.append(("response", False, f"no valid HTTP response: {e}"))
            return preflight_result(checks)
        # Parameters (charset) are compared only when the expected type names them.
        params = ";" in expected_type
        got_type = first.headers.get("content-type", "")
        same_type = _media_type(got_type, params) == _media_type(expected_type, params)
        shown = f"{len(first.body)} bytes {first.body[:40]!r}"
        checks += [
            _check("http_version", first.version == "HTTP/1.1", first.version, "HTTP/1.1"),
            _check("status", first.status == 200, str(first.status), "200"),
            _check("content_type", same_type, got_type or "none", expected_type),
            _check("body", first.body == expected_body, shown, repr(expected_body[:40])),
        ]
        framed = f"framed by {first.framing}"
        checks.insert(
            3,
            ("framing", first.framing != "eof", framed if first.framing != "eof" else EOF_FRAMING),
        )
        checks.append(("keep_alive", *_second(conn, sock, request, first, expected_body)))
    return preflight_result(checks)


def _check(name: str, passed: bool, found: str, expected: str) -> tuple[str, bool, str]:
    return name, passed, found if passed else f"{found}, expected {expected}"


def _second(
    conn: _Conn, sock: socket.socket, request: bytes, first: _Response, body: bytes
) -> tuple[bool, str]:
    if first.framing == "eof":
        return False, "the connection ended with the first body, so it cannot be reused"
    if "close" in first.headers.get("connection", "").lower():
        return False, ANNOUNCED_CLOSE
    try:
        sock.sendall(request)
        second = conn.response()
    except (_Closed, OSError, ValueError) as e:
        return False, f"second request on the same connection got no answer: {e}"
    if second.status != 200 or second.body != body:
        return False, f"second request on the same connection: status {second.status}, wrong body"
    return True, "two requests answered on one connection"
