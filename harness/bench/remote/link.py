"""Bench side, remote hosts: the controller's end of an agent (harness/bench/remote/agent.py).

An `Agent` is one agent process on some host, reached through an SSH channel
(`SshAgent`) or a local pipe (`LocalAgent`): `event()` returns its next JSON event,
`send()` writes a command line (`stop`, `go`), `close()` closes its stdin, which makes
the agent's watchdog kill its process group. A dropped connection, or an agent silent
past the limit (harness/bench/remote/limits.py), is `HostLost`.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import paramiko

from harness.bench.host import HostError, HostLost
from harness.bench.remote.limits import LIMITS, Limits, say_stderr


class Agent:
    """One agent process: JSON events in, command lines out; raw I/O in the subclasses.

    While it lives, a thread sends it `ping` every `limits.heartbeat_s` (its watchdog
    stops its processes when the controller is silent past `limits.silence_s`), and it
    sends `alive` events that `event()` takes as proof the link works: silence past
    `limits.silence_s` is a lost host, with a "waiting for …" line every
    `limits.progress_s` before that.
    """

    def __init__(
        self, label: str, limits: Limits = LIMITS, say: Callable[[str], None] = say_stderr
    ) -> None:
        self.label, self.limits, self.say = label, limits, say
        self._buf = b""
        self.noise: list[str] = []  # anything it printed that is not an event (tracebacks)
        self.heard = time.monotonic()
        self._send_lock = threading.Lock()
        self._closed = threading.Event()

    def _start_pings(self) -> None:
        threading.Thread(target=self._ping, name=f"ping {self.label}", daemon=True).start()

    def _ping(self) -> None:
        while not self._closed.wait(self.limits.heartbeat_s):
            try:
                self.send("ping")
            except HostError:
                return

    def _recv(self, timeout_s: float) -> bytes | None:  # b"" at EOF, None on timeout
        raise NotImplementedError

    def _lost(self) -> bool:
        raise NotImplementedError

    def _drop(self) -> None:
        """The link is presumed dead: let go of it so that nothing waits on it again."""

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def send(self, line: str) -> None:
        with self._send_lock:
            self._write((line + "\n").encode())

    def close(self) -> None:
        self._closed.set()

    def event(self, timeout_s: float) -> dict[str, Any]:
        """The next event; HostLost if the connection went or the agent fell silent past
        the limit, HostError when no answer came within `timeout_s` or on EOF."""
        deadline = time.monotonic() + timeout_s
        told = 0.0  # silence at the last "waiting for" line
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace").strip()
                if text.startswith("{"):
                    event = dict(json.loads(text))
                    if event.get("event") != "alive":
                        return event
                elif text:
                    self.noise.append(text)
            now = time.monotonic()
            if now >= deadline:
                raise HostError(f"{self.label}: no answer within {timeout_s:.0f} s")
            chunk = self._recv(min(deadline - now, self.limits.heartbeat_s))
            now = time.monotonic()
            if chunk is None:
                silent = now - self.heard
                if silent >= self.limits.silence_s:
                    self._drop()
                    raise HostLost(
                        f"{self.label}: no word for {silent:.0f} s (limit "
                        f"{self.limits.silence_s:g} s): the link or the host is down"
                    )
                if silent >= self.limits.progress_s and silent - told >= self.limits.progress_s:
                    told = silent
                    self.say(
                        f"waiting for {self.label} … {silent:.0f} s without a word "
                        f"(gives up at {self.limits.silence_s:g} s)"
                    )
                continue
            if not chunk:
                if self._lost():
                    raise HostLost(f"{self.label}: connection lost")
                said = "; ".join(self.noise[-3:]) or "nothing"
                raise HostError(f"{self.label}: agent ended unexpectedly (it said: {said})")
            self.heard, told = now, 0.0
            self._buf += chunk


class SshAgent(Agent):
    def __init__(
        self,
        label: str,
        channel: paramiko.Channel,
        limits: Limits = LIMITS,
        say: Callable[[str], None] = say_stderr,
    ) -> None:
        super().__init__(label, limits, say)
        self.channel = channel
        self._start_pings()

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

    def _drop(self) -> None:
        # The whole connection: its other channels and SFTP wait on the same dead link.
        transport = self.channel.get_transport()
        if transport is not None:
            transport.close()

    def _write(self, data: bytes) -> None:
        # A silent link fails no send until the channel's window is full (megabytes):
        # a ping or a command never waits; silence is found by event().
        try:
            self.channel.sendall(data)
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise HostLost(f"{self.label}: connection lost ({e or type(e).__name__})") from None

    def close(self) -> None:
        # Closing the channel closes the agent's stdin: its watchdog kills the group.
        super().close()
        self.channel.close()


class LocalAgent(Agent):
    def __init__(
        self,
        label: str,
        proc: subprocess.Popen[bytes],
        limits: Limits = LIMITS,
        say: Callable[[str], None] = say_stderr,
    ) -> None:
        super().__init__(label, limits, say)
        self.proc = proc
        self._start_pings()

    def _recv(self, timeout_s: float) -> bytes | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout_s)
        return os.read(fd, 65536) if ready else None

    def _lost(self) -> bool:
        return False

    def _write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):  # ValueError: closed meanwhile
            raise HostError(f"{self.label}: agent ended unexpectedly") from None

    def close(self) -> None:
        super().close()
        with self._send_lock:  # not while the ping thread writes
            if self.proc.stdin is not None and not self.proc.stdin.closed:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def agent_command(python: str, args: list[str]) -> list[str]:
    return [python, "-m", "harness.bench.remote.agent", *args]
