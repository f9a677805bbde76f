"""Bench side: servers declared by users in the profile file, beside the built-in ones.

A `[custom_servers.<id>]` table gives an argv template and the worker model, e.g.

    [custom_servers.my-gunicorn]
    argv = ["{python}", "-m", "gunicorn", "--bind", "{host}:{port}", "--workers", "{workers}",
            "--chdir", "apps", "{module}:{callable}"]
    worker_model = "gunicorn sync, tuned by us"
    package = "gunicorn"          # optional: the distribution whose version is recorded
    stop_signal = "SIGTERM"       # optional
    settings = { keepalive = "why we chose it" }   # optional

Placeholders: {python} {host} {port} {workers} {threads} {backlog} {module} {callable}
{apps_dir}. The result has the same interface as the built-in `ServerSpec`.
"""

from __future__ import annotations

import shutil
import signal
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.matrix.apps import AppSpec
from harness.matrix.options import ConfigError
from harness.matrix.serverspec import Budget, ServerSpec
from harness.paths import APPS_DIR


@dataclass(frozen=True)
class CustomServer:
    id: str
    argv_template: tuple[str, ...]
    worker_model: str
    package: str | None = None
    stop_signal: int = signal.SIGTERM
    settings: dict[str, str] = field(default_factory=dict)

    def argv(
        self, python: str, app: AppSpec, host: str, port: int, budget: Budget, backlog: int
    ) -> list[str]:
        values = {
            "python": python,
            "host": host,
            "port": port,
            "workers": budget.workers,
            "threads": budget.threads,
            "backlog": backlog,
            "module": app.module,
            "callable": app.callable,
            "apps_dir": str(APPS_DIR),
        }
        return [part.format(**values) for part in self.argv_template]

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(APPS_DIR)}

    def unavailable(self) -> str | None:
        exe = self.argv_template[0]
        if exe == "{python}" or shutil.which(exe):
            return None
        return f"{exe!r} not found on PATH"


def load_custom_servers(path: Path) -> dict[str, CustomServer]:
    try:
        with path.open("rb") as f:
            tables = tomllib.load(f).get("custom_servers", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {}  # load_profile already reported an unreadable file
    return {sid: _one(path, sid, t) for sid, t in tables.items()}


def _one(path: Path, sid: str, table: dict[str, Any]) -> CustomServer:
    where = f"{path}: [custom_servers.{sid}]"
    argv = table.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ConfigError(f"{where}: 'argv' must be a non-empty list of strings")
    if not isinstance(table.get("worker_model"), str):
        raise ConfigError(f"{where}: 'worker_model' must say how the server handles requests")
    sig_name = str(table.get("stop_signal", "SIGTERM"))
    try:
        stop = signal.Signals[sig_name]
    except KeyError:
        raise ConfigError(f"{where}: unknown stop_signal {sig_name!r}") from None
    return CustomServer(
        id=sid,
        argv_template=tuple(argv),
        worker_model=table["worker_model"],
        package=table.get("package"),
        stop_signal=int(stop),
        settings={str(k): str(v) for k, v in table.get("settings", {}).items()},
    )


# A server the bench can start: built in (harness/matrix/servers.py) or declared by a user.
AnyServer = ServerSpec | CustomServer
