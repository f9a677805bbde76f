"""Bench side, remote hosts: connections, commands, files and agents on one machine.

`open_host(spec, ssh)` returns a `Host`: `SshHost` (fabric/paramiko, key auth, host keys
checked against known_hosts unless the plan relaxes it) or `LocalHost` (plain
subprocesses), with the same methods: `run` a short shell command, `read`/`put` a file,
`start` an agent (harness/bench/remote/agent.py; its controller end is
harness/bench/remote/link.py).
A dropped connection surfaces as `HostLost`, whatever call noticed it; so does a
transfer or command past its deadline (harness/bench/remote/limits.py), after a line
every few seconds saying what it waits for.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko
from fabric import Connection
from paramiko.ssh_exception import NoValidConnectionsError

from harness.bench.remote.bounded import T, bounded, os_error, refused
from harness.bench.remote.limits import LIMITS, Limits, say_stderr
from harness.bench.remote.link import (
    Agent,
    HostError,
    HostLost,
    LocalAgent,
    SshAgent,
    agent_command,
)
from harness.matrix.hosts import HostSpec, SshOptions

__all__ = ["Host", "HostError", "HostLost", "LocalHost", "SshHost", "open_host"]


class LocalHost:
    """This machine: the repository as it is, the harness's own interpreter."""

    def __init__(
        self, spec: HostSpec, limits: Limits = LIMITS, say: Callable[[str], None] = say_stderr
    ) -> None:
        self.spec, self.limits, self.say = spec, limits, say
        self.host_key: str | None = None

    def ensure(self) -> None:
        pass

    def connected(self) -> bool:
        return True

    def peer_address(self) -> str:
        return "127.0.0.1"

    def run(self, command: str, timeout_s: float = 120.0) -> tuple[int, str, str]:
        try:
            done = subprocess.run(
                ["sh", "-c", command], capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            raise HostError(f"local: {command[:60]}… took over {timeout_s:.0f} s") from None
        return done.returncode, done.stdout, done.stderr

    def read(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def put(self, local: str, remote: str) -> None:
        raise HostError("local host: nothing to upload")  # LocalHost runs the repo in place

    def start(self, root: str, python: str, args: list[str], label: str) -> Agent:
        proc = subprocess.Popen(
            agent_command(python, args),
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            bufsize=0,
        )
        return LocalAgent(label, proc, self.limits, self.say)

    def close(self) -> None:
        pass


class _AcceptPolicy(paramiko.MissingHostKeyPolicy):
    """--insecure-host-keys: accept any key (`ensure` still records its fingerprint)."""

    def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
        return None


class SshHost:
    """A machine reached over SSH with fabric; reconnects on `ensure()` after a drop."""

    def __init__(
        self,
        spec: HostSpec,
        ssh: SshOptions,
        limits: Limits = LIMITS,
        say: Callable[[str], None] = say_stderr,
    ) -> None:
        self.spec, self.ssh, self.limits, self.say = spec, ssh, limits, say
        self.host_key: str | None = None
        self.conn: Connection | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def connected(self) -> bool:
        return bool(
            self.conn is not None and self.conn.transport and self.conn.transport.is_active()
        )

    def ensure(self) -> None:
        """Connect (again) if not connected; HostError with the cause if we cannot."""
        if self.connected():
            return
        self.close()
        kwargs = self.ssh.connect_kwargs()
        conn = Connection(
            self.spec.host,
            user=self.spec.user,
            port=self.spec.port,
            connect_timeout=15,
            connect_kwargs={**kwargs, "banner_timeout": 15, "auth_timeout": 15},
        )
        if self.ssh.insecure_host_keys:
            conn.client.set_missing_host_key_policy(_AcceptPolicy())
        else:
            known = str(Path(self.ssh.known_hosts).expanduser())
            try:
                conn.client.load_host_keys(known)
            except OSError as e:
                raise HostError(f"--known-hosts: cannot read {known}: {e.strerror}") from None
            conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            conn.open()
        except paramiko.BadHostKeyException:
            raise HostError(
                f"{self.spec}: host key does not match {self.ssh.known_hosts}: refusing to "
                "connect (check the host; update known_hosts only if the change is expected)"
            ) from None
        except paramiko.AuthenticationException as e:
            if self.ssh.key_file:  # never its path: it may be published with the message
                fix = "check that the public half of the --ssh-key key is in the remote "
                fix += "user's ~/.ssh/authorized_keys"
            else:
                fix = "load the key into ssh-agent or pass --ssh-key PATH"
            raise HostError(f"{self.spec}: key authentication failed ({e}); {fix}") from None
        except paramiko.SSHException as e:
            if "known_hosts" in str(e):
                raise HostError(
                    f"{self.spec}: host key not in {self.ssh.known_hosts}; verify its "
                    "fingerprint and add it (ssh-keyscan), or pass --insecure-host-keys"
                ) from None
            raise HostError(f"{self.spec}: SSH failed: {e}") from None
        except NoValidConnectionsError as e:  # str(e) starts "[Errno None]"
            raise HostError(f"{self.spec}: cannot connect: {refused(e)}") from None
        except (OSError, EOFError) as e:
            raise HostError(f"{self.spec}: cannot connect: {os_error(e)}") from None
        assert conn.transport is not None
        conn.transport.set_keepalive(5)  # notice a silently dead peer within seconds
        key = conn.transport.get_remote_server_key()
        self.host_key = f"{key.get_name()} {key.fingerprint}"
        self.conn = conn

    def _conn(self) -> Connection:
        if self.conn is None or not (self.conn.transport and self.conn.transport.is_active()):
            raise HostLost(f"{self.spec}: connection lost")
        return self.conn

    def peer_address(self) -> str:
        """The address we reached the host at: what its server binds and wrk targets."""
        transport = self._conn().transport
        assert transport is not None
        return str(transport.getpeername()[0])

    def _drop(self) -> None:
        """Let go of a link presumed dead, so that the next call fails at once and
        `ensure()` connects anew; a call still blocked on it ends."""
        self.close()

    def _bounded(self, what: str, deadline_s: float, call: Callable[[], T], every: float) -> T:
        """`call()` waited for at most `deadline_s` (harness/bench/remote/bounded.py)."""
        where, limits = str(self.spec), self.limits
        return bounded(call, where, what, deadline_s, every, limits, self.say, self._drop)

    def run(self, command: str, timeout_s: float = 120.0) -> tuple[int, str, str]:
        """(exit code, output, "") of a short command; stderr is merged into the output.

        A plain channel rather than fabric's runner: Ctrl-C must not be forwarded and
        waited for (a pip install could hold the run for minutes), it must stop us.
        """

        def call() -> tuple[int, str, str]:
            out = b""
            try:
                transport = self._conn().client.get_transport()
                channel = transport.open_session(timeout=self.limits.silence_s)
                with channel:
                    channel.set_combine_stderr(True)  # one stream: an unread one cannot stall
                    channel.settimeout(timeout_s)
                    channel.exec_command(command)
                    while chunk := channel.recv(65536):
                        out += chunk
                    code = channel.recv_exit_status()
            except TimeoutError:
                raise HostError(
                    f"{self.spec}: {command[:60]}… took over {timeout_s:.0f} s"
                ) from None
            except (OSError, EOFError, paramiko.SSHException) as e:
                raise HostLost(f"{self.spec}: connection lost ({os_error(e)})") from None
            return code, out.decode("utf-8", "replace"), ""

        # The command's own time, and the link's silence limit on top of it.
        what = f"`{command.split(' && ')[-1][:50]}`"
        return self._bounded(what, timeout_s + self.limits.silence_s, call, every=15.0)

    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._sftp = self._conn().client.open_sftp()
        return self._sftp

    def read(self, path: str) -> bytes | None:
        def call() -> bytes | None:
            try:
                with self.sftp().open(path, "rb") as f:
                    return bytes(f.read())
            except FileNotFoundError:
                return None
            except (EOFError, paramiko.SSHException, OSError) as e:
                raise HostLost(f"{self.spec}: reading {path}: {os_error(e)}") from None

        name = path.rsplit("/", 1)[-1]
        return self._bounded(f"fetching {name}", self.limits.transfer_s, call, every=5.0)

    def put(self, local: str, remote: str) -> None:
        def call() -> None:
            try:
                self.sftp().put(local, remote)
            except (EOFError, paramiko.SSHException, OSError) as e:
                raise HostError(f"{self.spec}: uploading to {remote}: {os_error(e)}") from None

        name = remote.rsplit("/", 1)[-1]
        self._bounded(f"uploading {name}", self.limits.transfer_s, call, every=5.0)

    def start(self, root: str, python: str, args: list[str], label: str) -> Agent:
        command = f"cd {shlex.quote(root)} && PYTHONPATH={shlex.quote(root)} exec " + " ".join(
            map(shlex.quote, agent_command(python, args))
        )
        try:
            transport = self._conn().client.get_transport()
            channel = transport.open_session(timeout=self.limits.silence_s)
            channel.set_combine_stderr(True)  # an unread stderr window would stall the agent
            channel.exec_command(command)
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise HostLost(f"{self.spec}: cannot start the agent: {os_error(e)}") from None
        return SshAgent(label, channel, self.limits, self.say)

    def close(self) -> None:
        if self._sftp is not None:
            try:
                self._sftp.close()
            except (OSError, EOFError, paramiko.SSHException):
                pass
        self._sftp = None
        if self.conn is not None:
            self.conn.close()
        self.conn = None


Host = LocalHost | SshHost


def open_host(
    spec: HostSpec,
    ssh: SshOptions,
    limits: Limits = LIMITS,
    say: Callable[[str], None] = say_stderr,
) -> Host:
    host: Host = LocalHost(spec, limits, say) if spec.is_local else SshHost(spec, ssh, limits, say)
    host.ensure()
    return host


def local_address_towards(peer: str) -> str:
    """The local address the kernel would use to reach `peer` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in peer else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((peer, 9))
        return str(s.getsockname()[0])
