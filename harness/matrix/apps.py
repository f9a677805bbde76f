"""Bench stage: the registry of apps under test (what each server is asked to serve).

Takes nothing, returns :data:`APPS`: app id -> :class:`AppSpec`. The apps themselves
live in ``apps/`` (one module per app, each exposing a WSGI callable ``app`` and all
implementing ``apps/app_contract.py`` byte for byte); servers import them with
``apps/`` on ``PYTHONPATH`` (see ``harness.paths.APPS_DIR``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AppSpec:
    """One app under test."""

    id: str
    module: str  # importable with APPS_DIR on sys.path, e.g. "raw_app"
    callable: str  # the WSGI callable in that module
    framework_package: str | None  # pip distribution to report the version of; None for raw
    description: str
    title: str = ""  # how pages and sentences name it ("Flask", "no framework")

    @property
    def target(self) -> str:
        """``module:callable``, the form every server's command line takes."""
        return f"{self.module}:{self.callable}"


APPS: dict[str, AppSpec] = {
    spec.id: spec
    for spec in (
        AppSpec(
            "raw",
            "raw_app",
            "app",
            None,
            "plain WSGI callable, routing by string comparison: the baseline",
            "no framework",
        ),
        AppSpec(
            "flask",
            "flask_app",
            "app",
            "flask",
            "Flask routes returning Response objects",
            "Flask",
        ),
        AppSpec(
            "cherrypy",
            "cherrypy_app",
            "app",
            "cherrypy",
            "CherryPy Application (embedded environment, engine not started), object dispatch",
            "CherryPy",
        ),
        AppSpec(
            "falcon",
            "falcon_app",
            "app",
            "falcon",
            "Falcon App with resource classes",
            "Falcon",
        ),
        AppSpec(
            "bottle",
            "bottle_app",
            "app",
            "bottle",
            "Bottle routes with the thread-local response",
            "Bottle",
        ),
    )
}


METRICS_SUFFIX = "+metrics"  # the same app timed inside the server (`--server-metrics`)


def app_title(app: str) -> str:
    """How a page names an app id: 'no framework', 'Flask', 'Flask timed by the server';
    an id this registry does not know (imported, custom) as it is."""
    base = app.removesuffix(METRICS_SUFFIX)
    spec = APPS.get(base)
    title = spec.title if spec is not None and spec.title else base
    return f"{title} timed by the server" if app.endswith(METRICS_SUFFIX) else title
