"""Bench side, remote hosts: the controller's end of an agent (harness/bench/remote/agent.py).

An `Agent` is one agent process on some host, reached through an SSH channel
(`SshAgent`) or a local pipe (`LocalAgent`): `event()` returns its next JSON event,
`send()` writes a command line (`stop`, `go`), `close()` closes its stdin, which makes
the agent's watchdog kill its process group. A dropped connection is `HostLost`.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from typing import Any

import paramiko

from harness.bench.host import HostError, HostLost


class Agent:
    """One agent process: JSON events in, command lines out; raw I/O in the subclasses."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._buf = b""
        self.noise: list[str] = []  # anything it printed that is not an event (tracebacks)

    def _recv(self, timeout_s: float) -> bytes | None:  # b"" at EOF, None on timeout
        raise NotImplementedError

    def _lost(self) -> bool:
        raise NotImplementedError

    def send(self, line: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def event(self, timeout_s: float) -> dict[str, Any]:
        """The next event; HostLost if the connection went, HostError on silence or EOF."""
        deadline = time.monotonic() + timeout_s
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace").strip()
                if text.startswith("{"):
                    return dict(json.loads(text))
                if text:
                    self.noise.append(text)
            chunk = self._recv(max(0.0, deadline - time.monotonic()))
            if chunk is None:
                raise HostError(f"{self.label}: agent silent for {timeout_s:.0f} s")
            if not chunk:
                if self._lost():
                    raise HostLost(f"{self.label}: connection lost")
                said = "; ".join(self.noise[-3:]) or "nothing"
                raise HostError(f"{self.label}: agent ended unexpectedly (it said: {said})")
            self._buf += chunk


class SshAgent(Agent):
    def __init__(self, label: str, channel: paramiko.Channel) -> None:
        super().__init__(label)
        self.channel = channel

    def _recv(self, timeout_s: float) -> bytes | None:
        self.channel.settimeout(timeout_s)
        try:
            return bytes(self.channel.recv(65536))
        except TimeoutError:
            return None
        except (OSError, EOFError, paramiko.SSHException):
            return b""

    def _lost(self) -> bool:
        transport = self.channel.get_transport()
        return transport is None or not transport.is_active()

    def send(self, line: str) -> None:
        try:
            self.channel.sendall((line + "\n").encode())
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise HostLost(f"{self.label}: connection lost ({e})") from None

    def close(self) -> None:
        # Closing the channel closes the agent's stdin: its watchdog kills the group.
        self.channel.close()


class LocalAgent(Agent):
    def __init__(self, label: str, proc: subprocess.Popen[bytes]) -> None:
        super().__init__(label)
        self.proc = proc

    def _recv(self, timeout_s: float) -> bytes | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout_s)
        return os.read(fd, 65536) if ready else None

    def _lost(self) -> bool:
        return False

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise HostError(f"{self.label}: agent ended unexpectedly") from None

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def agent_command(python: str, args: list[str]) -> list[str]:
    return [python, "-m", "harness.bench.remote.agent", *args]
