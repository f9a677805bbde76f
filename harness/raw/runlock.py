"""Raw stage: one writer per run — the lock of `raw/<run-id>/`.

`RunLock.take(folder)` holds an exclusive `flock` on `<folder>/.lock` for as long as the
writer runs and records in the file who holds it (pid, host, boot, start time). A
second writer is refused with a `RunLocked` error naming the holder. The kernel drops
a flock when its process dies however it dies, so a run killed with SIGKILL leaves a
lock that the next writer can take: the holder recorded in the file is then reported
as gone (pid gone, another boot, another host) and taken over. A writer that ends
normally empties the file, so a recorded holder always means a killed one.

The file stays (a dotfile: never listed, published or zipped); emptying it instead of
deleting it means no second writer can lock a file that was replaced under it. On a
file system without locks the recorded holder is checked instead (pid alive on this
host since this boot). Standard library only.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from harness.errors import UserError

LOCK_NAME = ".lock"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


class RunLocked(UserError):
    """Another live process writes the run; the message names it."""


def boot_id() -> str | None:
    """This boot of this machine (a pid from another boot is someone else)."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return None


def holder_record() -> dict[str, Any]:
    """What the lock file says about the process holding it."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "boot_id": boot_id(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "argv": sys.argv[:12],
    }


def describe(holder: Mapping[str, Any]) -> str:
    """`pid 123 on host vm since 2026-…Z` from a holder record."""
    return (
        f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
        f"since {holder.get('started_at', '?')}"
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def why_gone(holder: Mapping[str, Any]) -> str | None:
    """Why the recorded holder cannot be running now, or None if it may be."""
    if holder.get("host") != socket.gethostname():
        return f"it ran on host {holder.get('host')}"
    if holder.get("boot_id") and boot_id() and holder["boot_id"] != boot_id():
        return "it ran before this machine's last boot"
    pid = holder.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return f"pid {pid} is gone"
    return None


def _read(f: IO[bytes]) -> dict[str, Any] | None:
    f.seek(0)
    data = f.read()
    if not data.strip():
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return {"pid": "?", "host": "?", "started_at": "?"}
    return doc if isinstance(doc, dict) else None


class RunLock:
    """A held lock on one folder; `release()` (or the process ending) drops it."""

    def __init__(self, path: Path, f: IO[bytes]) -> None:
        self.path, self._file = path, f

    @classmethod
    def take(
        cls,
        folder: Path,
        note: Callable[[str], None] | None = None,
        wait_s: float = 0.0,
        name: str = LOCK_NAME,
        what: str | None = None,
    ) -> RunLock:
        """Lock `folder` (made if missing), waiting up to `wait_s` for another holder.

        Raises RunLocked naming the holder. A holder recorded by a process that is gone
        is taken over, and `note` says so.
        """
        what = what or f"run {folder.name}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        f = os.fdopen(fd, "r+b")
        try:
            flocked = _flock(f.fileno(), wait_s)
            previous = _read(f)
        except _Busy:
            holder = _read(f)
            f.close()
            raise RunLocked(_busy(what, holder, path)) from None
        except BaseException:
            f.close()
            raise
        if not flocked and previous is not None and why_gone(previous) is None:
            f.close()
            raise RunLocked(_busy(what, previous, path))
        if previous is not None and note is not None:
            why = why_gone(previous) or "it no longer holds the lock"
            note(f"{what}: taking over the lock left by {describe(previous)} ({why})")
        f.seek(0)
        f.truncate()
        f.write((json.dumps(holder_record()) + "\n").encode())
        f.flush()
        os.fsync(f.fileno())
        return cls(path, f)

    @property
    def held(self) -> bool:
        return not self._file.closed

    def release(self) -> None:
        """Say the run is no longer written (an empty file), then drop the lock."""
        if self._file.closed:
            return
        try:
            self._file.seek(0)
            self._file.truncate()
            self._file.flush()
        finally:
            self._file.close()  # closing the descriptor drops the flock


class FolderLock:
    """A flock on a folder itself (no file is made in it): held while a bench chooses and
    opens its run in `--out`, so that the next one then finds it. Holder unrecorded."""

    def __init__(self, folder: Path, wait_s: float) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _flock(self._fd, wait_s)
        except _Busy:
            self.release()
            raise RunLocked(
                f"{folder}: another bench has been opening a run there for {wait_s:.0f} s; "
                "is it stuck?"
            ) from None
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    __del__ = release


class _Busy(Exception):
    """Another process holds the flock."""


def _busy(what: str, holder: Mapping[str, Any] | None, path: Path) -> str:
    who = describe(holder) if holder else "another process"
    return f"{what} is being written by {who}; wait until it ends or stop it (lock: {path})"


def _flock(fd: int, wait_s: float) -> bool:
    """Take the flock (True), or False when the file system has no locks. Raises
    _Busy when another process still holds it after `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise _Busy from None
            # Polling, not synchronisation: the holder opens a run in well under 1 s.
            time.sleep(0.05)
        except OSError as e:
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return False
            raise
