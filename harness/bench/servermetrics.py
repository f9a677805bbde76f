"""Bench stage: the server-side timing of `--server-metrics` around one cell.

A fresh Prometheus multiprocess directory per server start (`MetricsDir`), the
`/metrics` scrapes before and after the measured run kept verbatim (`scrape_to`), and
their delta stored as the cell's `.metrics.prom` (`store_delta`). Which apps are
instrumented and with what environment is decided in harness/matrix/workloads.py.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
from pathlib import Path

from harness.matrix.workloads import instrumented_env, is_instrumented
from harness.paths import REPO_ROOT
from harness.raw.store import write_atomic


class MetricsDir:
    """A fresh prometheus multiprocess directory per server start (removed afterwards)."""

    def __init__(self, app_id: str) -> None:
        self.path: Path | None = None
        if is_instrumented(app_id):
            self.path = Path(tempfile.mkdtemp(prefix="wsgi-baseline-metrics-"))

    def server_env(self, app_id: str, env: dict[str, str]) -> dict[str, str]:
        if self.path is None:
            return env
        from harness.serving.metrics import multiproc_env

        multiproc_env(self.path)  # fresh: files of an earlier start would count twice
        return instrumented_env(app_id, env, str(REPO_ROOT), str(self.path))

    def cleanup(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)


def scrape(url: str, timeout_s: float = 5.0) -> str:
    """GET a `/metrics` endpoint and return its text."""
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return bytes(resp.read()).decode("utf-8")


def scrape_to(url: str, path: Path) -> str:
    """Scrape `/metrics` and keep the text verbatim beside the cell's wrk output."""
    text = scrape(url)
    write_atomic(path, text.encode())
    return text


def store_delta(before: str, after: str, path: Path) -> None:
    """What happened between two scrapes, as Prometheus text (`.metrics.prom`)."""
    # Imported here: prometheus-client is installed where servers run, not on clients.
    from harness.parse.prometheus import histogram_delta

    write_atomic(path, histogram_delta(before, after).encode())
