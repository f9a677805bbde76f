"""reportlib.lua reads wrk's latency values in one linear pass, and only when it can trust it.

wrk 4.1's API (`latency(i)`) walks the counts array from the minimum on every call, so
reading every distinct value through it is quadratic; reportlib.lua reads the array
through LuaJIT's FFI instead, after checking it against the API's own figures. These
tests run the real wrk against a real gunicorn with WSGI_BASELINE_REPORT_CHECK=1, which
makes the script read the values both ways and fail (no report) if they differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.matrix.apps import APPS
from tests.latency_live import gunicorn, wrk


def report(url: str, tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    path = tmp / "report.lua.json"
    path.unlink(missing_ok=True)
    wrk(url + "/", 2, 8, "report.lua", {"WSGI_BASELINE_REPORT": str(path), **env})
    assert path.is_file(), "report.lua wrote no report (a failed check fails done())"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def histogram_total(data: dict[str, Any]) -> int:
    return sum(int(n) for _, n in data["latency_histogram_us"])


@pytest.mark.slow
def test_the_array_is_read_and_agrees_with_the_api(tmp_path: Path) -> None:
    with gunicorn(APPS["raw"].target, tmp_path / "server.log") as url:
        data = report(url, tmp_path, {"WSGI_BASELINE_REPORT_CHECK": "1"})
        forced = report(url, tmp_path, {"WSGI_BASELINE_LATENCY_READ": "api"})
    assert data["latency_values_read_from"] == "stats-array"
    assert data["requests"] > 100
    # Every completed request recorded one latency (more only by wrk's correction).
    assert histogram_total(data) >= data["requests"]
    lows = [lower for lower, _ in data["latency_histogram_us"]]
    assert lows == sorted(lows) and lows[0] <= data["latency_us"]["min"]
    assert forced["latency_values_read_from"] == "api"
    assert histogram_total(forced) >= forced["requests"] > 100
