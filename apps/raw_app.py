"""Raw WSGI app under test: the ``app_contract`` responses with no framework at all.

This is the baseline every framework app is compared with: routing is a few string
comparisons and the response is built by hand.
"""

from collections.abc import Callable, Iterable
from typing import Any

import app_contract as c

StartResponse = Callable[..., Any]

_STORE: dict[str, bytes] = {}


def _reply(
    start_response: StartResponse,
    status: str,
    body: bytes,
    content_type: str = c.TEXT_TYPE,
    allow: str | None = None,
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    if allow is not None:
        headers.append(("Allow", allow))
    start_response(status, headers)
    return [body]


def _not_allowed(start_response: StartResponse, allow: str) -> list[bytes]:
    return _reply(start_response, c.METHOD_NOT_ALLOWED, c.METHOD_NOT_ALLOWED_BODY, allow=allow)


def _kv(environ: dict[str, Any], start_response: StartResponse, key: str) -> list[bytes]:
    method = environ["REQUEST_METHOD"]
    if method == "GET":
        value = _STORE.get(key)
        if value is None:
            return _reply(start_response, c.NOT_FOUND, c.NOT_FOUND_BODY)
        return _reply(start_response, c.OK, value, c.BINARY_TYPE)
    if method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        _STORE[key] = environ["wsgi.input"].read(length) if length > 0 else b""
        return _reply(start_response, c.CREATED, c.CREATED_BODY)
    if method == "DELETE":
        if _STORE.pop(key, None) is None:
            return _reply(start_response, c.NOT_FOUND, c.NOT_FOUND_BODY)
        return _reply(start_response, c.OK, c.DELETED_BODY)
    return _not_allowed(start_response, c.ALLOW_KV)


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI callable."""
    path = environ.get("PATH_INFO") or "/"
    if path == "/":
        if environ["REQUEST_METHOD"] != "GET":
            return _not_allowed(start_response, c.ALLOW_READ)
        return _reply(start_response, c.OK, c.HELLO_BODY)
    if path == "/json":
        if environ["REQUEST_METHOD"] != "GET":
            return _not_allowed(start_response, c.ALLOW_READ)
        return _reply(start_response, c.OK, c.json_body(), c.JSON_TYPE)
    if path.startswith(c.KV_PREFIX):
        key = path[len(c.KV_PREFIX) :]
        if key and "/" not in key:
            return _kv(environ, start_response, key)
    return _reply(start_response, c.NOT_FOUND, c.NOT_FOUND_BODY)
