"""Bench side, remote hosts: the bounds of every remote operation, in one place.

A network that goes silent gives no error: TCP retries for about 15 minutes before a
socket fails. So nothing remote waits on the network alone. Agents and the controller
speak every `heartbeat_s` (`alive` events one way, `ping` lines the other); either side
that hears nothing for `silence_s` gives up: the controller fails the step as a lost
host (`HostLost`, an infrastructure failure the run measures again on resume), the
agent stops its processes (its watchdog). Each file transfer has a deadline, every
wait prints a line after `progress_s` without a word, and a lost connection is tried
again `reconnect_attempts` times with growing pauses. The values are recorded in
run.json (`hosts.limits`), so a reader knows how long an outage could last unseen.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    heartbeat_s: float = 2.0  # how often agents and controller say they are there
    silence_s: float = 15.0  # no word for this long: the other side is gone
    progress_s: float = 5.0  # a "waiting for …" line after this long without a word
    transfer_s: float = 120.0  # one SFTP transfer (a cell's outputs, the code upload)
    cleanup_s: float = 15.0  # stopping what ran after a failure: best effort, quick
    reconnect_attempts: int = 5
    reconnect_backoff_s: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 32.0)

    def pause(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (from 1)."""
        return self.reconnect_backoff_s[min(attempt, len(self.reconnect_backoff_s)) - 1]

    def agent_args(self) -> list[str]:
        """The agent's side of the bounds (harness/bench/remote/agent.py)."""
        return ["--heartbeat", str(self.heartbeat_s), "--silence-limit", str(self.silence_s)]

    def record(self) -> dict[str, Any]:
        """As run.json's `hosts.limits` keeps them."""
        return {**asdict(self), "reconnect_backoff_s": list(self.reconnect_backoff_s)}


LIMITS = Limits()


def say_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
