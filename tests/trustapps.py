"""Test-only WSGI app for the trust tests (preflight, flags, sampler): not an app under test.

One callable, routed by path, so every scenario runs on one server command line:
`/` answers like the benchmark apps (13-byte body with Content-Length), `/nolength` gives
no length (its body ends at connection close unless the server chunks it), `/slow/<ms>`
sleeps that long (wrk's --timeout takes whole seconds), `/missing` is a 404, `/html` has
the wrong Content-Type.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

BODY = b"Hello, World!"


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/nolength":
        # No Content-Length: over HTTP/1.0-style framing the body ends at connection close.
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"Hello, ", b"World!"])
    if path.startswith("/slow/"):
        time.sleep(int(path[6:]) / 1000)
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
        return [b"not found"]
    ctype = "text/html" if path == "/html" else "text/plain"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(BODY)))])
    return [BODY]
