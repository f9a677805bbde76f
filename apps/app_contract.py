"""The response contract every app under test implements, byte for byte.

Each app (raw WSGI, Flask, CherryPy, Falcon, Bottle) imports these constants so that
every app sends the same status line, body bytes and app-set headers; what differs is
only the framework work done to get there. The contract, for any server:

- ``GET /``          200, ``Hello, World!``, ``text/plain; charset=utf-8``
- ``GET /json``      200, ``{"message":"Hello, World!"}`` (serialised per request),
                     ``application/json``
- ``GET /kv/<key>``  200 with the stored bytes (``application/octet-stream``), or 404
- ``POST /kv/<key>`` stores the request body (needs Content-Length), 201 ``Created``
- ``DELETE /kv/<key>`` 200 ``Deleted`` or 404
- any other path     404 ``Not Found``
- a method of :data:`METHODS` a route does not serve: 405 ``Method Not Allowed`` + ``Allow``

Every response carries ``Content-Type`` and ``Content-Length`` and nothing else set by
the app (405 adds ``Allow``). ``<key>`` is one non-empty path segment (no ``/``).
HEAD and OPTIONS are left to each framework and are not part of the contract.

The key-value store lives in each worker process's memory: with several worker
processes a key stored by one is not visible to the others, so the harness refuses the
session workload with more than one worker (harness/matrix.py).
"""

import json

# Status lines with the standard reason phrases (Werkzeug upper-cases them if given
# only a number, so every app passes these strings).
OK = "200 OK"
CREATED = "201 Created"
NOT_FOUND = "404 Not Found"
METHOD_NOT_ALLOWED = "405 Method Not Allowed"

HELLO_BODY = b"Hello, World!"
MESSAGE = {"message": "Hello, World!"}
NOT_FOUND_BODY = b"Not Found"
METHOD_NOT_ALLOWED_BODY = b"Method Not Allowed"
CREATED_BODY = b"Created"
DELETED_BODY = b"Deleted"

TEXT_TYPE = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"

# Methods the contract covers; routes accept all of them and answer 405 themselves so
# that no framework's own error page (each different) ever reaches the client.
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
ALLOW_READ = "GET"
ALLOW_KV = "DELETE, GET, POST"

KV_PREFIX = "/kv/"


def json_body() -> bytes:
    """Serialise the JSON message; called per request so every app does the same work."""
    return json.dumps(MESSAGE, separators=(",", ":")).encode()
