"""Server-side latency, serving stage: the app named by WSGI_BASELINE_APP, instrumented.

Servers load `harness.serving.instrumented:app` instead of the app itself when the bench runs
with server metrics. The environment names what to wrap and how:

- `WSGI_BASELINE_APP` (required): the app as `module:callable`, e.g. `raw_app:app`
  (import path as the server would use it; `apps/` must be on `PYTHONPATH`).
- `PROMETHEUS_MULTIPROC_DIR`: a fresh directory per server start, for servers with
  several worker processes (see `harness.serving.metrics.multiproc_env`).
- `WSGI_BASELINE_METRICS_BUCKETS` (optional): comma-separated upper bounds in seconds.

Importing this module imports the app; errors name the variable to fix.
"""

from __future__ import annotations

import importlib
import os

from harness.serving.metrics import DEFAULT_BUCKETS, ServerTiming, WSGIApp, parse_buckets

APP_ENV = "WSGI_BASELINE_APP"
BUCKETS_ENV = "WSGI_BASELINE_METRICS_BUCKETS"


def load_app(target: str) -> WSGIApp:
    """`module:callable` -> the callable (the form every server's command line takes)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise RuntimeError(f"{APP_ENV}: expected module:callable, got {target!r}")
    module = importlib.import_module(module_name)
    try:
        app = getattr(module, attr)
    except AttributeError:
        raise RuntimeError(f"{APP_ENV}: module {module_name!r} has no {attr!r}") from None
    if not callable(app):
        raise RuntimeError(f"{APP_ENV}: {target} is not callable")
    return app


def build() -> ServerTiming:
    target = os.environ.get(APP_ENV, "")
    if not target:
        raise RuntimeError(f"{APP_ENV} is not set: name the app to instrument (module:callable)")
    buckets_text = os.environ.get(BUCKETS_ENV, "")
    buckets = parse_buckets(buckets_text) if buckets_text else DEFAULT_BUCKETS
    return ServerTiming(load_app(target), buckets)


app = build()
