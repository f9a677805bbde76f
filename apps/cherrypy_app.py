"""CherryPy app under test, used as a WSGI framework (not as a server).

As FIELD-NOTES prescribes: the ``embedded`` environment, autoreload and the config
checker off, and ``cherrypy.engine`` never started; the WSGI callable is the mounted
``Application``. CherryPy's object dispatcher does the routing.

CherryPy needs more care than the other frameworks to meet ``app_contract`` byte for
byte: its responses start with ``Server`` and ``Date`` headers (the server under test
sends its own), its error pages are HTML padded to 513 bytes for old Internet Explorer,
it maps ``/index`` and ``/json/`` to the same handlers as ``/`` and ``/json``, and it
parses request bodies itself. So handlers take any trailing path, check the exact path, and set
status and body themselves instead of raising ``HTTPError``.

CherryPy formats an access-log line for every request even when no log handler is
configured (``_cprequest.Request.run``); nothing is written, but the formatting is part
of the framework's cost and is left in.
"""

from typing import Any

import app_contract as c
import cherrypy

cherrypy.config.update(
    {
        "environment": "embedded",
        "engine.autoreload.on": False,
        "checker.on": False,
        "log.screen": False,
        "log.access_file": "",
        "log.error_file": "",
    }
)

_STORE: dict[str, bytes] = {}


def _reply(status: str, body: bytes, content_type: str = c.TEXT_TYPE) -> bytes:
    response = cherrypy.serving.response
    response.status = status
    headers = response.headers
    # The server under test sends its own Date and Server headers.
    headers.pop("Server", None)
    headers.pop("Date", None)
    headers["Content-Type"] = content_type
    return body


def _not_allowed(allow: str) -> bytes:
    cherrypy.serving.response.headers["Allow"] = allow
    return _reply(c.METHOD_NOT_ALLOWED, c.METHOD_NOT_ALLOWED_BODY)


def _not_found() -> bytes:
    return _reply(c.NOT_FOUND, c.NOT_FOUND_BODY)


def _path_is(path: str) -> bool:
    return bool(cherrypy.serving.request.path_info == path)


class Root:
    @cherrypy.expose
    def index(self, *_vpath: str, **_params: Any) -> bytes:
        if not _path_is("/"):
            return _not_found()
        if cherrypy.serving.request.method != "GET":
            return _not_allowed(c.ALLOW_READ)
        return _reply(c.OK, c.HELLO_BODY)

    @cherrypy.expose
    def json(self, *_vpath: str, **_params: Any) -> bytes:
        if not _path_is("/json"):
            return _not_found()
        if cherrypy.serving.request.method != "GET":
            return _not_allowed(c.ALLOW_READ)
        return _reply(c.OK, c.json_body(), c.JSON_TYPE)

    @cherrypy.expose
    def kv(self, *vpath: str, **_params: Any) -> bytes:
        request = cherrypy.serving.request
        if len(vpath) != 1 or not _path_is(c.KV_PREFIX + vpath[0]):
            return _not_found()
        key = vpath[0]
        method = request.method
        if method == "GET":
            value = _STORE.get(key)
            if value is None:
                return _not_found()
            return _reply(c.OK, value, c.BINARY_TYPE)
        if method == "POST":
            # With body processing off, CherryPy's docs say to read exactly
            # Content-Length bytes from rfile.
            length = int(request.headers.get("Content-Length") or 0)
            _STORE[key] = request.rfile.read(length) if length > 0 else b""
            return _reply(c.CREATED, c.CREATED_BODY)
        if method == "DELETE":
            if _STORE.pop(key, None) is None:
                return _not_found()
            return _reply(c.OK, c.DELETED_BODY)
        return _not_allowed(c.ALLOW_KV)

    @cherrypy.expose
    def default(self, *_vpath: str, **_params: Any) -> bytes:
        return _not_found()


# trailing_slash off: no redirects. encode off: it would rewrite the Content-Type of
# text responses ("text/plain;charset=utf-8") and re-encode bytes that are final.
# process_request_body off: CherryPy would parse form bodies into parameters (the store
# keeps the raw bytes) and answer 411 to a PUT or PATCH without Content-Length.
_CONFIG = {
    "/": {
        "tools.trailing_slash.on": False,
        "tools.encode.on": False,
        "request.process_request_body": False,
    }
}
app = cherrypy.tree.mount(Root(), "", _CONFIG)
