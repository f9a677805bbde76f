"""Bench side: what a cell asks of the server beyond "serve the app" — the workload's wrk
script and environment, and the server-metrics app variant with its scrapes.

Takes ids from the matrix; returns app specs, Lua scripts, environments and the
Prometheus text to store. Keeps these decisions out of the per-cell sequence.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path
from types import ModuleType

from harness.matrix.apps import APPS, AppSpec
from harness.matrix.model import METRICS_SUFFIX, Matrix
from harness.paths import APPS_DIR, LUA_DIR

SCRIPTS = {"session": LUA_DIR / "session.lua"}
DEFAULT_SCRIPT = LUA_DIR / "report.lua"


def base_app_id(app_id: str) -> str:
    return app_id.removesuffix(METRICS_SUFFIX)


def is_instrumented(app_id: str) -> bool:
    return app_id.endswith(METRICS_SUFFIX)


def app_for(app_id: str) -> AppSpec:
    """The app to serve; `<id>+metrics` is `<id>` wrapped in harness.serving.instrumented."""
    base = APPS[base_app_id(app_id)]
    if not is_instrumented(app_id):
        return base
    return replace(
        base,
        id=app_id,
        module="harness.serving.instrumented",
        callable="app",
        description=base.description + ", timed by the Prometheus middleware",
    )


def _contract() -> ModuleType:
    # apps/ is not a package (servers import its modules by name); load the contract by path.
    spec = importlib.util.spec_from_file_location("app_contract", APPS_DIR / "app_contract.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_response(workload: str) -> tuple[str, bytes, str]:
    """(path, body, content type) the preflight checks before a cell of this workload.

    The session workload's store starts empty, so its preflight checks GET / instead.
    """
    c = _contract()
    if workload == "json":
        return "/json", c.json_body(), c.JSON_TYPE
    return "/", c.HELLO_BODY, c.TEXT_TYPE


def lua_script(workload: str) -> Path:
    return SCRIPTS.get(workload, DEFAULT_SCRIPT)


def wrk_env(matrix: Matrix, workload: str) -> dict[str, str]:
    """Settings the workload's Lua script reads (recorded in the sidecar as `wrk_env`)."""
    if workload != "session":
        return {}
    return {
        "WSGI_BASELINE_MIX": matrix.session_mix,
        "WSGI_BASELINE_KEYS": str(matrix.session_keys),
        "WSGI_BASELINE_SEED": str(matrix.session_seed),
    }


PROMETHEUS_DIST = "prometheus-client"  # what --server-metrics needs where the server runs


def instrumented_env(app_id: str, env: dict[str, str], root: str, directory: str) -> dict[str, str]:
    """The server's environment for `<app>+metrics`: harness/ (at `root`, this machine's
    or a server host's) importable, the app to wrap, the multiprocess `directory`."""
    from harness.serving.metrics import MULTIPROC_ENV

    pythonpath = f"{env.get('PYTHONPATH', '')}:{root}".lstrip(":")
    return {
        **env,
        "PYTHONPATH": pythonpath,
        "WSGI_BASELINE_APP": APPS[base_app_id(app_id)].target,
        MULTIPROC_ENV: directory,
    }
