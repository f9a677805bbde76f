"""Falcon app under test: the ``app_contract`` responses through Falcon's router and
resource classes.

Every resource answers every contract method (405 from the contract, not Falcon's
serialised error), and the 404 handler returns the contract body. Falcon keeps
header names lower-case (``content-type``): HTTP field names are case-insensitive and
the byte count on the wire is the same.
"""

import app_contract as c
import falcon


def _not_allowed(resp: falcon.Response, allow: str) -> None:
    resp.status = c.METHOD_NOT_ALLOWED
    resp.content_type = c.TEXT_TYPE
    resp.set_header("Allow", allow)
    resp.data = c.METHOD_NOT_ALLOWED_BODY


def _not_found(resp: falcon.Response) -> None:
    resp.status = c.NOT_FOUND
    resp.content_type = c.TEXT_TYPE
    resp.data = c.NOT_FOUND_BODY


class _ReadOnly:
    """A GET-only resource: every other contract method gets the contract's 405."""

    def _other(self, req: falcon.Request, resp: falcon.Response, **_params: str) -> None:
        _not_allowed(resp, c.ALLOW_READ)

    on_post = on_put = on_delete = on_patch = _other


class Hello(_ReadOnly):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = c.TEXT_TYPE
        resp.data = c.HELLO_BODY


class Json(_ReadOnly):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = c.JSON_TYPE
        resp.data = c.json_body()


class KeyValue:
    def __init__(self) -> None:
        self.store: dict[str, bytes] = {}

    def on_get(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        value = self.store.get(key)
        if value is None:
            _not_found(resp)
            return
        resp.content_type = c.BINARY_TYPE
        resp.data = value

    def on_post(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        self.store[key] = req.bounded_stream.read()
        resp.status = c.CREATED
        resp.content_type = c.TEXT_TYPE
        resp.data = c.CREATED_BODY

    def on_delete(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        if self.store.pop(key, None) is None:
            _not_found(resp)
            return
        resp.content_type = c.TEXT_TYPE
        resp.data = c.DELETED_BODY

    def _other(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        _not_allowed(resp, c.ALLOW_KV)

    on_put = on_patch = _other


def _not_found_handler(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, str]
) -> None:
    _not_found(resp)


app = falcon.App()
app.add_route("/", Hello())
app.add_route("/json", Json())
app.add_route("/kv/{key}", KeyValue())
app.add_error_handler(falcon.HTTPNotFound, _not_found_handler)
