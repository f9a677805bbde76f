"""The apps under test answer byte for byte alike: pure WSGI calls, no server, no sockets.

Every app is called in-process through ``wsgiref.validate`` (which also checks WSGI
compliance) and must give the same status line, body and app-set headers as the raw app,
which itself must give exactly the contract of ``apps/app_contract.py``. Header names
are compared case-insensitively: Falcon sends them lower-case.
"""

from __future__ import annotations

import importlib
import io
import sys
from collections.abc import Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

from harness.matrix.apps import APPS
from harness.paths import APPS_DIR

Response = tuple[str, list[tuple[str, str]], bytes]

TEXT = "text/plain; charset=utf-8"


@pytest.fixture(scope="module", autouse=True)
def _apps_on_path() -> Iterator[None]:
    sys.path.insert(0, str(APPS_DIR))
    yield
    sys.path.remove(str(APPS_DIR))


def call(
    app_id: str,
    method: str,
    path: str,
    body: bytes = b"",
    content_type: str | None = None,
    query: str = "",
) -> Response:
    """One request through the app; headers as sorted (lower-case name, value) pairs."""
    spec = APPS[app_id]
    app = getattr(importlib.import_module(spec.module), spec.callable)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(body),
    }
    if body or method == "POST":
        environ["CONTENT_LENGTH"] = str(len(body))
    if content_type:
        environ["CONTENT_TYPE"] = content_type
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, headers
        return lambda data: None

    result: Any = validator(app)(environ, start_response)
    try:
        out = b"".join(result)
    finally:
        result.close()  # the validator insists, as WSGI servers must
    headers = sorted((k.lower(), v) for k, v in seen["headers"])
    return seen["status"], headers, out


def expected(
    status: str, body: bytes, content_type: str = TEXT, allow: str | None = None
) -> Response:
    headers = [("content-length", str(len(body))), ("content-type", content_type)]
    if allow:
        headers.append(("allow", allow))
    return status, sorted(headers), body


NOT_FOUND = expected("404 Not Found", b"Not Found")
ALLOW_GET = expected("405 Method Not Allowed", b"Method Not Allowed", allow="GET")
ALLOW_KV = expected("405 Method Not Allowed", b"Method Not Allowed", allow="DELETE, GET, POST")

# (method, path, query) -> what the raw app, and so every app, must answer.
STATELESS = {
    ("GET", "/", ""): expected("200 OK", b"Hello, World!"),
    ("GET", "/", "x=1&y=2"): expected("200 OK", b"Hello, World!"),
    ("GET", "/json", ""): expected("200 OK", b'{"message":"Hello, World!"}', "application/json"),
    ("GET", "/nope", ""): NOT_FOUND,
    ("POST", "/nope", ""): NOT_FOUND,
    ("GET", "/json/", ""): NOT_FOUND,
    ("GET", "/json/extra", ""): NOT_FOUND,
    ("GET", "/index", ""): NOT_FOUND,
    ("GET", "/default", ""): NOT_FOUND,
    ("GET", "/kv", ""): NOT_FOUND,
    ("GET", "/kv/", ""): NOT_FOUND,
    ("GET", "/kv/a/b", ""): NOT_FOUND,
    ("POST", "/", ""): ALLOW_GET,
    ("DELETE", "/", ""): ALLOW_GET,
    ("PUT", "/json", ""): ALLOW_GET,
    ("PATCH", "/json", ""): ALLOW_GET,
}


@pytest.mark.parametrize("request_", list(STATELESS), ids=lambda r: f"{r[0]} {r[1]}?{r[2]}")
@pytest.mark.parametrize("app_id", sorted(APPS))
def test_stateless_routes(app_id: str, request_: tuple[str, str, str]) -> None:
    method, path, query = request_
    assert call(app_id, method, path, query=query) == STATELESS[request_]


@pytest.mark.parametrize("app_id", sorted(APPS))
def test_kv_store_session(app_id: str) -> None:
    key = f"/kv/session-{app_id}"
    value = bytes(range(256))  # every byte value, not UTF-8
    form = b"a=1&b=2"  # would be parsed as a form by some frameworks: must stay raw
    binary = "application/octet-stream"
    created = expected("201 Created", b"Created")
    steps = [
        (("GET", key, b"", None), NOT_FOUND),
        (("POST", key, value, binary), created),
        (("GET", key, b"", None), expected("200 OK", value, binary)),
        (("POST", key, form, "application/x-www-form-urlencoded"), created),
        (("GET", key, b"", None), expected("200 OK", form, binary)),
        (("POST", key, b"", None), created),
        (("GET", key, b"", None), expected("200 OK", b"", binary)),
        (("PUT", key, b"x", binary), ALLOW_KV),
        (("PATCH", key, b"x", binary), ALLOW_KV),
        (("DELETE", key, b"", None), expected("200 OK", b"Deleted")),
        (("DELETE", key, b"", None), NOT_FOUND),
        (("GET", key, b"", None), NOT_FOUND),
    ]
    for (method, path, body, ctype), want in steps:
        assert call(app_id, method, path, body, ctype) == want, f"{method} {path}"


def test_keys_are_per_app_and_per_key() -> None:
    for app_id in sorted(APPS):
        call(app_id, "POST", "/kv/one", b"1")
        assert call(app_id, "GET", "/kv/two")[0] == "404 Not Found"
        assert call(app_id, "GET", "/kv/one")[2] == b"1"
        call(app_id, "DELETE", "/kv/one")


def test_json_is_serialised_per_request() -> None:
    import app_contract

    assert app_contract.json_body() == b'{"message":"Hello, World!"}'
    assert app_contract.json_body() is not app_contract.json_body()


def test_registry_points_at_importable_callables() -> None:
    assert sorted(APPS) == ["bottle", "cherrypy", "falcon", "flask", "raw"]
    for spec in APPS.values():
        module = importlib.import_module(spec.module)
        assert callable(getattr(module, spec.callable)), spec.id
        assert spec.target == f"{spec.module}:{spec.callable}"
        assert (spec.framework_package is None) == (spec.id == "raw")
