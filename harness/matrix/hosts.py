"""Matrix stage: which machines a run uses and how we may reach them.

Takes the host options of `invoke bench` (or the profile's `server_host`, `client_hosts`,
`remote_dir`, `remote_venv` keys) and returns a `HostPlan`: the server host, one or more
client hosts (each `user@host[:port]` or `local`), and the SSH policy. Nothing here opens
a connection (harness/bench/remote/hosts.py does); a plan of only `local` with one client is
`None`, so the local path of the bench stays exactly as it is. Whether the server and
wrk share a machine decides the default CPU split (`HostPlan.shared_machine`).

Security rules: key-based authentication only (the SSH agent, the default keys, or
`--ssh-key PATH`); host keys are checked against `--known-hosts` (default
~/.ssh/known_hosts) unless `--insecure-host-keys` is given, and that choice is recorded.
No password, passphrase or key material is ever taken, kept or written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.matrix.options import ConfigError

LOCAL = "local"
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
# Relative to the login directory of the remote user; a directory we own (see remoteprep).
DEFAULT_REMOTE_DIR = "wsgi-baseline"

_SPEC = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)"
    r"(?::(?P<port>[0-9]{1,5}))?$"
)


@dataclass(frozen=True)
class HostSpec:
    """One machine: `local`, or an SSH destination `user@host[:port]` (user/port optional)."""

    host: str
    user: str | None = None
    port: int | None = None

    @property
    def is_local(self) -> bool:
        return self.host == LOCAL

    def __str__(self) -> str:
        text = f"{self.user}@{self.host}" if self.user else self.host
        return f"{text}:{self.port}" if self.port else text


def parse_host(text: str, option: str) -> HostSpec:
    """`user@host[:port]`, `host`, `[v6addr]:port` or `local` -> HostSpec; else ConfigError."""
    text = text.strip()
    m = _SPEC.match(text)
    if not m:
        raise ConfigError(f"{option}: {text!r} is not user@host[:port] or 'local'")
    port = int(m["port"]) if m["port"] else None
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"{option}: port {port} is out of range in {text!r}")
    host = m["host"].strip("[]")
    if host == LOCAL and (m["user"] or port):
        raise ConfigError(f"{option}: 'local' takes no user or port, got {text!r}")
    return HostSpec(host, m["user"], port)


@dataclass(frozen=True)
class SshOptions:
    """How to authenticate and which host keys to trust."""

    key_file: str | None = None
    known_hosts: str = DEFAULT_KNOWN_HOSTS
    insecure_host_keys: bool = False

    def connect_kwargs(self) -> dict[str, Any]:
        """paramiko connect() arguments: keys only, never a password or passphrase."""
        if self.key_file:
            # An explicit key is the only file tried; the agent may still offer its keys.
            return {"key_filename": [self.key_file], "look_for_keys": False, "allow_agent": True}
        return {"look_for_keys": True, "allow_agent": True}

    def record(self) -> dict[str, Any]:
        """What run.json says about SSH: the policy, never a key or its path."""
        return {
            "auth": "key file (--ssh-key)" if self.key_file else "ssh agent or default keys",
            "known_hosts": None if self.insecure_host_keys else self.known_hosts,
            "host_key_checking": "off (--insecure-host-keys)"
            if self.insecure_host_keys
            else "strict (known_hosts)",
        }


@dataclass(frozen=True)
class HostPlan:
    server: HostSpec
    clients: tuple[HostSpec, ...]
    ssh: SshOptions
    remote_dir: str = DEFAULT_REMOTE_DIR
    remote_venv: str | None = None

    def record(self) -> dict[str, Any]:
        """The plan as recorded in run.json; a resumed run must use the same one."""
        return {
            "server": str(self.server),
            "clients": [str(c) for c in self.clients],
            "remote_dir": self.remote_dir,
            "remote_venv": self.remote_venv,
        }

    @property
    def shared_machine(self) -> bool:
        """Every client is the server's machine, so CPUs must be split between them."""
        return all(c == self.server for c in self.clients)


def plan_hosts(
    profile: dict[str, Any],
    server_host: str = "",
    client_hosts: list[str] | None = None,
    ssh_key: str = "",
    known_hosts: str = "",
    insecure_host_keys: bool = False,
    remote_dir: str = "",
    remote_venv: str = "",
) -> HostPlan | None:
    """Options over profile keys -> a plan, or None for the plain local run."""
    server = parse_host(server_host or str(profile.get("server_host", LOCAL)), "--server-host")
    given = client_hosts or profile.get("client_hosts") or [LOCAL]
    if isinstance(given, str):
        given = [given]
    clients = tuple(parse_host(str(c), "--client-host") for c in given)
    if server.is_local and len(clients) == 1 and clients[0].is_local:
        return None
    key = ssh_key or str(profile.get("ssh_key", ""))
    if key and not Path(key).expanduser().is_file():
        raise ConfigError(f"--ssh-key: no such file: {key}")
    ssh = SshOptions(
        key_file=str(Path(key).expanduser()) if key else None,
        known_hosts=known_hosts or str(profile.get("known_hosts", DEFAULT_KNOWN_HOSTS)),
        insecure_host_keys=insecure_host_keys or bool(profile.get("insecure_host_keys", False)),
    )
    plan = HostPlan(
        server,
        clients,
        ssh,
        remote_dir=remote_dir or str(profile.get("remote_dir", DEFAULT_REMOTE_DIR)),
        remote_venv=remote_venv or profile.get("remote_venv") or None,
    )
    return plan


KEY_OPTIONS = ("--ssh-key",)
REDACTED = "<key file>"


def redact_argv(argv: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """A command line as run.json and the site may show it: the path of a key file
    (`--ssh-key PATH`, `--ssh-key=PATH`) replaced, since it says where a key lies."""
    out: list[str] = []
    hide = False
    for arg in argv:
        if hide:
            out.append(REDACTED)
            hide = False
        elif arg in KEY_OPTIONS:
            out.append(arg)
            hide = True
        elif arg.startswith(tuple(f"{o}=" for o in KEY_OPTIONS)):
            out.append(f"{arg.split('=', 1)[0]}={REDACTED}")
        else:
            out.append(arg)
    return tuple(out)


def _where(plan: dict[str, Any] | None) -> str:
    return f"server {plan['server']}, clients {', '.join(plan['clients'])}" if plan else "here"


def check_same_hosts(run_id: str, hosts: Mapping[str, Any] | None, plan: HostPlan | None) -> None:
    """A resumed run must go on with the hosts it started on (ConfigError otherwise);
    `hosts` is what the run recorded (run.json's `hosts`, None for a local run)."""
    recorded = (hosts or {}).get("plan")
    current = plan.record() if plan else None
    if recorded != current:
        raise ConfigError(
            f"--resume: run {run_id} was measured on {_where(recorded)}, not "
            f"{_where(current)}; give the same host options, or start a new run with --new"
        )
