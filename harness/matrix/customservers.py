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
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.matrix.apps import AppSpec
from harness.matrix.options import ConfigError
from harness.matrix.schema import check_custom_server
from harness.matrix.serverspec import Budget, ServerSpec
from harness.paths import APPS_DIR

PLACEHOLDERS = (
    "python", "host", "port", "workers", "threads", "backlog", "module", "callable", "apps_dir",
)  # fmt: skip


@dataclass(frozen=True)
class CustomServer:
    id: str
    argv_template: tuple[str, ...]
    worker_model: str
    package: str | None = None
    stop_signal: int = signal.SIGTERM
    settings: dict[str, str] = field(default_factory=dict)

    def argv(
        self,
        python: str,
        app: AppSpec,
        host: str,
        port: int,
        budget: Budget,
        backlog: int,
        listen: int | None = None,
    ) -> list[str]:
        """`{backlog}` is the listen backlog within the host's limit (`listen`)."""
        backlog = backlog if listen is None else listen
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
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: custom_servers: expected tables [custom_servers.<id>]")
    return {sid: _one(path, sid, t) for sid, t in tables.items()}


def _one(path: Path, sid: str, table: dict[str, Any]) -> CustomServer:
    check_custom_server(path, sid, table)  # keys and their types
    for part in table["argv"]:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(part) if name is not None}
        except ValueError as e:
            raise ConfigError(f"{path}: [custom_servers.{sid}]: argv: {part!r}: {e}") from None
        unknown = sorted(names - set(PLACEHOLDERS))
        if unknown:
            raise ConfigError(
                f"{path}: [custom_servers.{sid}]: argv: unknown placeholder {{{unknown[0]}}} "
                f"(known: {' '.join('{' + p + '}' for p in PLACEHOLDERS)})"
            )
    sig_name = table.get("stop_signal", "SIGTERM")
    try:
        stop = signal.Signals[sig_name]
    except KeyError:
        where = f"{path}: [custom_servers.{sid}]"
        raise ConfigError(f"{where}: stop_signal: unknown signal {sig_name!r}") from None
    return CustomServer(
        id=sid,
        argv_template=tuple(table["argv"]),
        worker_model=table["worker_model"],
        package=table.get("package"),
        stop_signal=int(stop),
        settings=dict(table.get("settings", {})),
    )


# A server the bench can start: built in (harness/matrix/servers.py) or declared by a user.
AnyServer = ServerSpec | CustomServer
