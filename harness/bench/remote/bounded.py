"""Bench side, remote hosts: a blocking call on a link waited for at most a deadline.

`bounded(call, …)` runs `call()` in a worker thread and waits for it, printing what it
waits for once that takes `limits.progress_s`; past the deadline it drops the link
(which ends the call) and raises `HostLost`. `os_error` and `refused` put a network
error in words (paramiko's refusals read "[Errno None] Unable to connect …").
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from paramiko.ssh_exception import NoValidConnectionsError

from harness.bench.host import HostLost
from harness.bench.remote.limits import Limits

T = TypeVar("T")


def bounded(
    call: Callable[[], T],
    where: str,
    what: str,
    deadline_s: float,
    every: float,
    limits: Limits,
    say: Callable[[str], None],
    drop: Callable[[], None],
) -> T:
    """`call()` waited for at most `deadline_s`: past it, `drop()` lets go of the link
    (which ends the call) and HostLost is raised. A line says what we wait for once it
    takes `limits.progress_s`, then every `every` seconds."""
    done: list[T] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            done.append(call())
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            failed.append(e)

    worker = threading.Thread(target=work, name=f"{where}: {what}", daemon=True)
    start = time.monotonic()
    worker.start()
    told = 0.0
    while True:
        waited = time.monotonic() - start
        worker.join(max(0.0, min(deadline_s - waited, limits.progress_s)))
        if not worker.is_alive():
            break
        waited = time.monotonic() - start
        if waited >= deadline_s:
            drop()
            worker.join(limits.cleanup_s)
            raise HostLost(f"{where}: {what} took over {deadline_s:.0f} s; connection dropped")
        if waited >= limits.progress_s and waited - told >= every:
            told = waited
            say(f"waiting for {where}: {what} … {waited:.0f} s (gives up at {deadline_s:.0f} s)")
    if failed:
        raise failed[0]
    return done[0]


def os_error(e: BaseException) -> str:
    """An error's words without Python's `[Errno None]` for errors that have no number."""
    if isinstance(e, OSError) and e.errno is None and e.strerror is None:
        return str(e.args[0]) if e.args else type(e).__name__
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def refused(e: NoValidConnectionsError) -> str:
    """paramiko's "[Errno None] Unable to connect to port 22 on 10.0.0.5" as words."""
    causes = sorted({os_error.strerror or str(os_error) for os_error in e.errors.values()})
    ports = sorted({str(addr[1]) for addr in e.errors})
    said = ", ".join(causes) or "refused"
    if any(err.errno == errno.ECONNREFUSED for err in e.errors.values()):
        said += f" (nothing listens on port {', '.join(ports)} there: is sshd running?)"
    return said
