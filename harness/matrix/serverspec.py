"""Matrix stage: what a server under test is — `ServerSpec` — and whether it can run here.

A `ServerSpec` turns an app, an address, a `Budget` and a backlog into the exact
argv and environment that start the server, and names the signal that stops it; every
deliberate setting is in its `settings` with the reason. The built-in servers are
declared in harness/matrix/servers.py and harness/matrix/launched.py, users' own in a
profile file (harness/matrix/customservers.py). Nothing here starts a server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata

from harness.matrix.apps import AppSpec
from harness.paths import APPS_DIR

# Idle keep-alive timeout where the server lets us choose: far longer than any pause
# inside a cell, so no connection is closed by the server while wrk holds it.
KEEPALIVE_S = 30

_CHECK_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Budget:
    """The same CPU/worker budget for every server in a profile."""

    workers: int = 1  # processes
    threads: int = 1  # threads per worker where the model has threads

    def __post_init__(self) -> None:
        if self.workers < 1 or self.threads < 1:
            raise ValueError(f"budget needs workers >= 1 and threads >= 1, got {self}")


# (python, app, host, port, budget, backlog, listen): `backlog` is what the connections
# ask for (more than a cell opens: per-process connection caps take it), `listen` the
# listen queue within the kernel's limit (net.core.somaxconn; uWSGI refuses more).
ArgvBuilder = Callable[[str, AppSpec, str, int, Budget, int, int], list[str]]


@dataclass(frozen=True)
class ServerSpec:
    """One server under test: what it is, how it is configured and why, how to stop it."""

    id: str
    package: str  # pip distribution name, for the version
    worker_model: str
    settings: dict[str, str]  # each deliberate setting -> why
    stop_signal: int  # sent to the main PID only
    build_argv: ArgvBuilder = field(repr=False, compare=False)
    # Modules that must import (with the server's python) for the server to run.
    modules: tuple[str, ...] = ()
    # Other distributions it needs whose versions matter too (meinheld's greenlet, ...).
    also_packages: tuple[str, ...] = ()
    # A program installed beside python that the argv runs instead of python (uwsgi).
    executable: str | None = None

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
        """The exact command line; `python` is the interpreter of the server's virtualenv.
        `listen`: the listen backlog within the host's limit (default: `backlog`)."""
        listen = backlog if listen is None else listen
        if backlog < 1 or listen < 1:
            raise ValueError(f"backlog must be positive, got {backlog} (listen {listen})")
        return self.build_argv(python, app, host, port, budget, backlog, listen)

    def env(self) -> dict[str, str]:
        """Extra environment, only what we set: the apps directory on the import path."""
        return {"PYTHONPATH": str(APPS_DIR)}


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def beside(python: str, program: str) -> str:
    # Not resolved: a virtualenv's bin/python is a symlink to the base interpreter, and
    # the program we want is the one in the virtualenv.
    return os.path.join(os.path.dirname(python), program)


def server_version(spec: ServerSpec) -> str | None:
    """The installed version of the server's distribution, or None if not installed."""
    return _version(spec.package)


def package_versions(spec: ServerSpec) -> dict[str, str | None]:
    """Versions of every distribution the server needs (server first)."""
    return {dist: _version(dist) for dist in (spec.package, *spec.also_packages)}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def check_available(spec: ServerSpec, python: str = sys.executable) -> str | None:
    """Why `spec` cannot run with `python` on this machine, or None if it can.

    Imports run in a child interpreter (the server's own), so a failing C extension
    cannot take the harness down and the answer is about the interpreter that will run.
    """
    for dist, version in package_versions(spec).items():
        if version is None:
            return f"{dist} is not installed (pip install {dist})"
    if spec.executable is not None:
        program = beside(python, spec.executable)
        if not os.access(program, os.X_OK):
            return f"{program} not found or not executable (pip install {spec.package})"
        failure = _runs([program, "--version"], f"{program} --version")
        if failure:
            return failure
    if spec.modules:
        statement = "; ".join(f"import {m}" for m in spec.modules)
        failure = _runs([python, "-c", statement], statement)
        if failure:
            return failure
    return None


def _runs(argv: list[str], what: str) -> str | None:
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_CHECK_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{what}: {e}"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"{what} failed: {lines[-1] if lines else f'exit code {done.returncode}'}"
    return None
