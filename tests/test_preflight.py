"""harness.bench.preflight: what a server sends, checked over a raw socket.

Fast tests answer with canned bytes from a socket in this process (every framing case,
exactly); slow tests ask real servers: cheroot (sound), uWSGI --http-socket (no
keep-alive) with an app that omits Content-Length (the study's read errors).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.bench.preflight import preflight
from harness.raw.preflight import EOF_FRAMING, blocking
from tests import trustkit as kit

BODY = b"Hello, World!"
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n7\r\nHello, \r\n6;ext=1\r\nWorld!\r\n0\r\n\r\n"
)
NO_LENGTH = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nHello, World!"


@contextmanager
def canned(answers: list[bytes], close_after: bool = False) -> Iterator[int]:
    """A one-connection server: one canned answer per request received, then EOF or hang."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            for answer in answers:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                conn.sendall(answer)
            if not close_after:
                stop.wait(10)  # keep the connection open and silent

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def names(result: object) -> dict[str, bool]:
    return {name: passed for name, passed, _ in result.checks}  # type: ignore[attr-defined]


def test_content_length_and_keep_alive_pass() -> None:
    with canned([OK, OK]) as port:
        r = preflight("127.0.0.1", port, "/", BODY, "text/plain")
    assert r.ok and r.reason is None
    assert list(names(r)) == [
        "http_version", "status", "content_type", "framing", "body", "keep_alive"
    ]  # fmt: skip


def test_chunked_body_is_decoded_and_type_parameters_ignored() -> None:
    with canned([CHUNKED, CHUNKED]) as port:
        r = preflight("127.0.0.1", port, "/", BODY, "text/plain")
    assert r.ok, r.reason
    assert ("framing", True, "framed by chunked") in r.checks


def test_charset_is_compared_only_when_expected() -> None:
    with canned([CHUNKED, CHUNKED]) as port:
        assert preflight("127.0.0.1", port, "/", BODY, "Text/Plain;charset=UTF-8").ok
    with canned([OK, OK]) as port:
        r = preflight("127.0.0.1", port, "/", BODY, "text/plain; charset=utf-8")
    assert r.reason == "content_type: text/plain, expected text/plain; charset=utf-8"


def test_missing_content_length_is_rejected_with_the_reason() -> None:
    with canned([NO_LENGTH], close_after=True) as port:
        r = preflight("127.0.0.1", port, "/", BODY, "text/plain")
    assert not r.ok
    assert ("framing", False, EOF_FRAMING) in r.checks
    assert r.reason is not None
    assert "no Content-Length and not chunked" in r.reason
    assert "wrk would count every response as a read error" in r.reason
    assert names(r)["body"]  # the body itself was right: only its framing is wrong
    assert not names(r)["keep_alive"]
    assert blocking(r) == r.reason


def test_connection_close_fails_keep_alive() -> None:
    close = OK.replace(b"Content-Length", b"Connection: close\r\nContent-Length")
    with canned([close], close_after=True) as port:
        r = preflight("127.0.0.1", port, "/", BODY, "text/plain")
    assert r.reason == (
        "keep_alive: server sent Connection: close: every request would need a new connection"
    )
    assert blocking(r) is None  # wrk honours an announced close: measurable, not an error


def test_silent_close_after_first_answer_fails_keep_alive() -> None:
    with canned([OK], close_after=True) as port:
        r = preflight("127.0.0.1", port, "/", BODY, "text/plain")
    assert r.reason is not None
    assert r.reason.startswith("keep_alive: second request on the same connection got no answer")


def test_http10_wrong_status_type_and_body_are_each_reported() -> None:
    bad = b"HTTP/1.0 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 3\r\n\r\nnop"
    with canned([bad, bad]) as port:
        r = preflight("127.0.0.1", port, "/", BODY, "text/plain")
    failed = {name: detail for name, passed, detail in r.checks if not passed}
    assert failed["http_version"] == "HTTP/1.0, expected HTTP/1.1"
    assert failed["status"] == "404, expected 200"
    assert failed["content_type"] == "text/html, expected text/plain"
    assert failed["body"] == "3 bytes b'nop', expected b'Hello, World!'"


def test_silent_server_is_bounded_by_the_timeout() -> None:
    with canned([]) as port:
        start = time.monotonic()
        r = preflight("127.0.0.1", port, "/", BODY, "text/plain", timeout_s=0.5)
    assert time.monotonic() - start < 2
    assert r.reason == "response: no valid HTTP response: no complete answer before the deadline"


def test_nothing_listening() -> None:
    port = kit.runner.free_port()
    r = preflight("127.0.0.1", port, "/", BODY, "text/plain")
    assert not r.ok and r.checks[0][0] == "connect"
    assert r.reason is not None and r.reason.startswith(
        f"connect: cannot connect to 127.0.0.1:{port}"
    )


@pytest.mark.slow
def test_real_servers(tmp_path: Path) -> None:
    with kit.serving(lambda p: kit.cheroot(p, 2), tmp_path) as (_server, port):
        assert preflight("127.0.0.1", port, "/", BODY, "text/plain").ok
        assert not preflight("127.0.0.1", port, "/html", BODY, "text/plain").ok
        # cheroot adds chunked framing when the app gives no length: sound.
        chunked = preflight("127.0.0.1", port, "/nolength", BODY, "text/plain")
        assert chunked.ok and ("framing", True, "framed by chunked") in chunked.checks
    with kit.serving(lambda p: kit.uwsgi(p, "--http-socket"), tmp_path) as (_server, port):
        no_length = preflight("127.0.0.1", port, "/nolength", BODY, "text/plain")
        assert no_length.reason is not None and EOF_FRAMING in no_length.reason
        # With a length, uWSGI's --http-socket still closes silently after each answer.
        closed = preflight("127.0.0.1", port, "/", BODY, "text/plain")
        assert [n for n, passed, _ in closed.checks if not passed] == ["keep_alive"]
    # The benchmark's own raw app meets its contract (apps/app_contract.py) under cheroot.
    raw_app = lambda p: kit.cheroot(p, 2, target="raw_app:app")  # noqa: E731
    with kit.serving(raw_app, tmp_path) as (_server, port):
        r = preflight("127.0.0.1", port, "/", BODY, "text/plain; charset=utf-8")
        assert r.ok, r.reason
