"""Bottle app under test: the ``app_contract`` responses through Bottle's router and
its thread-local ``response``.

Routes accept every contract method and answer 405 themselves, and the 404 handler
returns the contract body, so no Bottle HTML error page reaches the client.
"""

import app_contract as c
from bottle import Bottle, HTTPError, HTTPResponse, request, response

app = Bottle()
# JSON plugin off: the JSON body is serialised by app_contract, as in every other app.
app.config["json.enable"] = False

_STORE: dict[str, bytes] = {}
_METHODS = list(c.METHODS)


def _not_allowed(allow: str) -> HTTPResponse:
    return HTTPResponse(
        c.METHOD_NOT_ALLOWED_BODY,
        c.METHOD_NOT_ALLOWED,
        {"Content-Type": c.TEXT_TYPE, "Allow": allow},
    )


def _not_found() -> HTTPResponse:
    return HTTPResponse(c.NOT_FOUND_BODY, c.NOT_FOUND, {"Content-Type": c.TEXT_TYPE})


@app.route("/", method=_METHODS)
def hello() -> bytes | HTTPResponse:
    if request.method != "GET":
        return _not_allowed(c.ALLOW_READ)
    response.content_type = c.TEXT_TYPE
    return c.HELLO_BODY


@app.route("/json", method=_METHODS)
def json() -> bytes | HTTPResponse:
    if request.method != "GET":
        return _not_allowed(c.ALLOW_READ)
    response.content_type = c.JSON_TYPE
    return c.json_body()


@app.route("/kv/<key>", method=_METHODS)
def kv(key: str) -> bytes | HTTPResponse:
    method = request.method
    response.content_type = c.TEXT_TYPE
    if method == "GET":
        value = _STORE.get(key)
        if value is None:
            return _not_found()
        response.content_type = c.BINARY_TYPE
        return value
    if method == "POST":
        _STORE[key] = request.body.read()
        response.status = c.CREATED
        return c.CREATED_BODY
    if method == "DELETE":
        if _STORE.pop(key, None) is None:
            return _not_found()
        return c.DELETED_BODY
    return _not_allowed(c.ALLOW_KV)


@app.error(404)
def not_found(_error: HTTPError) -> HTTPResponse:
    return _not_found()
