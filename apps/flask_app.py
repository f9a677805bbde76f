"""Flask app under test: the ``app_contract`` responses through Flask's routing and
``Response`` objects.

Routes accept every contract method and answer 405 themselves, and the 404 handler
returns the contract body, so no Werkzeug HTML error page reaches the client.
"""

import app_contract as c
from flask import Flask, Response, request

app = Flask(__name__)

_STORE: dict[str, bytes] = {}


def _not_allowed(allow: str) -> Response:
    response = Response(c.METHOD_NOT_ALLOWED_BODY, c.METHOD_NOT_ALLOWED, content_type=c.TEXT_TYPE)
    response.headers["Allow"] = allow
    return response


def _not_found() -> Response:
    return Response(c.NOT_FOUND_BODY, c.NOT_FOUND, content_type=c.TEXT_TYPE)


@app.route("/", methods=c.METHODS)
def hello() -> Response:
    if request.method != "GET":
        return _not_allowed(c.ALLOW_READ)
    return Response(c.HELLO_BODY, c.OK, content_type=c.TEXT_TYPE)


@app.route("/json", methods=c.METHODS)
def json() -> Response:
    if request.method != "GET":
        return _not_allowed(c.ALLOW_READ)
    return Response(c.json_body(), c.OK, content_type=c.JSON_TYPE)


@app.route("/kv/<key>", methods=c.METHODS)
def kv(key: str) -> Response:
    method = request.method
    if method == "GET":
        value = _STORE.get(key)
        if value is None:
            return _not_found()
        return Response(value, c.OK, content_type=c.BINARY_TYPE)
    if method == "POST":
        _STORE[key] = request.get_data()
        return Response(c.CREATED_BODY, c.CREATED, content_type=c.TEXT_TYPE)
    if method == "DELETE":
        if _STORE.pop(key, None) is None:
            return _not_found()
        return Response(c.DELETED_BODY, c.OK, content_type=c.TEXT_TYPE)
    return _not_allowed(c.ALLOW_KV)


@app.errorhandler(404)
def not_found(_error: Exception) -> Response:
    return _not_found()
