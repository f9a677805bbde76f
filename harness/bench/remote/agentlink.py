"""Bench side, on a server or client host: the agent's end of its link to the controller.

`emit(**event)` writes one JSON event line to stdout (the heartbeat thread writes too,
hence the lock); `Controller` reads command lines from stdin and tells when the
controller is gone — stdin closed, or silent (not even a `ping`) past the silence
limit — while it sends `alive` events meanwhile (harness/bench/remote/limits.py is the
controller's side of the same bounds). Standard library only: a client's plain python3
runs it.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from typing import Any

_emit_lock = threading.Lock()  # the heartbeat thread writes events too


def emit(**event: Any) -> None:
    with _emit_lock:
        try:
            sys.stdout.write(json.dumps(event) + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the controller is gone; the caller's cleanup still runs


class Controller:
    """The controller as this agent hears it: command lines from stdin (its `ping`s
    only prove it is there), "" once it is gone — stdin closed, or silent past
    `silence_s` — and an `alive` event to it every `heartbeat_s` meanwhile. Threads do
    the reading and the heartbeat, so that a long step (waiting for the server to
    answer) neither misses a ping nor stays silent itself."""

    def __init__(self, heartbeat_s: float, silence_s: float) -> None:
        self.heartbeat_s, self.silence_s = heartbeat_s, silence_s
        self.heard = time.monotonic()
        self.gone = ""  # why the controller is gone, once it is
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, name="stdin", daemon=True).start()
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(0, 4096)  # only this thread reads stdin
            except OSError:
                chunk = b""
            if not chunk:
                self.gone = self.gone or "stdin closed"
                self._lines.put(None)
                return
            self.heard = time.monotonic()
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace").strip()
                if text != "ping":
                    self._lines.put(text)

    def _beat(self) -> None:
        while not self.gone:
            time.sleep(self.heartbeat_s)
            emit(event="alive")
            silent = time.monotonic() - self.heard
            if self.silence_s and silent > self.silence_s:
                self.gone = f"no word from the controller for {silent:.0f} s"
                self._lines.put(None)

    def next(self, timeout_s: float | None = None) -> str | None:
        """The next command, "" once the controller is gone, None after `timeout_s`."""
        if self.gone and self._lines.empty():
            return ""
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            return None
        return "" if line is None else line
