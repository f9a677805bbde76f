"""The session workload (harness/bench/lua/session.lua) against every app on a real gunicorn.

With one connection per wrk thread the script knows each key's history exactly; the
test then reads every key back and checks the store holds what the script's report
says it must (allowing for the one request per connection still in flight when wrk
stopped). report.lua shares its writer (reportlib.lua), so its output is checked too.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from harness.matrix.apps import APPS
from harness.paths import APPS_DIR
from tests.latency_live import LUA, ROOT, WRK, gunicorn, wrk

KEYS = 8  # per thread: small, so every key sees many POSTs, DELETEs and GETs
# The fixture was captured before reportlib.lua named how it read the latency values.
REPORT_KEYS = {
    *json.loads((ROOT / "tests/fixtures/wrk/wrk410-with-report-lua.lua.json").read_text()),
    "latency_values_read_from",
}


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def run_session(url: str, tmp: Path, threads: int, connections: int, keys: int) -> dict[str, Any]:
    report = tmp / f"session-c{connections}.lua.json"
    env = {
        "WSGI_BASELINE_REPORT": str(report),
        "WSGI_BASELINE_MIX": "60,30,10",  # more writes than the default: more to check
        "WSGI_BASELINE_KEYS": str(keys),
        "WSGI_BASELINE_SEED": "7",
    }
    run = wrk(url + "/kv/", threads, connections, "session.lua", env)
    assert b" requests in " in run.stdout
    data: dict[str, Any] = json.loads(report.read_text())
    return data


def expected_final(entry: dict[str, Any]) -> list[tuple[int, bytes | None]]:
    """What a final GET may return: the model's state, or the in-flight op's result."""
    state = entry["state"]
    options: dict[str, list[tuple[int, bytes | None]]] = {
        "present": [(200, (entry["value"] or "").encode())],
        "absent": [(404, None)],
        "unknown": [(200, None), (404, None)],
    }
    known = options[state]
    if entry["pending"] == "POST":
        return known + [(200, entry["pending_value"].encode())]
    if entry["pending"] == "DELETE":
        return known + [(404, None)]
    return known


@pytest.mark.slow
@pytest.mark.parametrize("app", sorted(APPS))
def test_store_matches_what_the_script_reports(app: str, tmp_path: Path) -> None:
    with gunicorn(APPS[app].target, tmp_path / "server.log") as url:
        report = run_session(url, tmp_path, threads=2, connections=2, keys=KEYS)
        finals = {
            f"t{t}-k{n}": get(f"{url}/kv/t{t}-k{n}") for t in (1, 2) for n in range(1, KEYS + 1)
        }
    s = report["session"]
    assert {k for k in report if k != "session"} == set(REPORT_KEYS)
    assert s["exact"] is True
    assert (s["mix"], s["seed"], s["keys_per_thread"]) == (
        {"GET": 60, "POST": 30, "DELETE": 10},
        7,
        KEYS,
    )
    requests = report["requests"]
    assert requests > 100
    assert report["errors"] == {
        "connect": 0,
        "read": 0,
        "write": 0,
        "status": report["errors"]["status"],
        "timeout": 0,
    }
    # Every response was matched to its request and agreed with the model of the store.
    assert s["checks"]["mismatches"] == 0, s["checks"]["examples"]
    assert s["checks"]["checked"] + s["checks"]["unknown"] == requests
    assert sum(s["status"].values()) == requests
    assert sum(s["issued"].values()) == requests + s["in_flight_at_end"]
    assert s["in_flight_at_end"] <= 2
    for method, issued in s["issued"].items():
        answered = sum(s["by_method"][method].values())
        assert issued - answered in (0, 1, 2)
    assert s["by_method"]["POST"] == {"201": s["replies"]["created"]}
    assert report["errors"]["status"] == s["status"].get("404", 0)
    # The store's final state is what the script says it must be, key by key.
    for key, got in finals.items():
        entry = s["keys"].get(key, {"state": "absent", "value": None, "pending": None})
        allowed = expected_final(entry)
        assert any(got[0] == st and (body is None or got[1] == body) for st, body in allowed), (
            key,
            got,
            entry,
        )
    assert sum(e["state"] == "present" for e in s["keys"].values()) > 0


@pytest.mark.slow
def test_many_connections_per_thread_counts_without_matching(tmp_path: Path) -> None:
    with gunicorn(APPS["raw"].target, tmp_path / "server.log") as url:
        report = run_session(url, tmp_path, threads=2, connections=8, keys=1000)
    s = report["session"]
    assert s["exact"] is False and s["keys"] is None and s["checks"] is None
    assert sum(s["status"].values()) == report["requests"]
    assert sum(s["replies"].values()) == report["requests"]
    assert 0 <= sum(s["issued"].values()) - report["requests"] <= 8


@pytest.mark.slow
def test_report_lua_finds_its_library_from_another_directory(tmp_path: Path) -> None:
    """report.lua loads reportlib.lua beside itself, even by a relative path from elsewhere."""
    report = tmp_path / "plain.lua.json"
    script = os.path.relpath(LUA / "report.lua", tmp_path)
    with gunicorn(APPS["raw"].target, tmp_path / "server.log") as url:
        subprocess.run(
            [WRK, "-t1", "-c2", "-d1s", "-s", script, url + "/"],
            cwd=tmp_path,
            env={**os.environ, "WSGI_BASELINE_REPORT": str(report)},
            capture_output=True,
            timeout=30,
            check=True,
        )
    data = json.loads(report.read_text())
    assert set(data) == set(REPORT_KEYS)
    assert data["requests"] > 0 and data["errors"]["status"] == 0


LOSSY_APP = '''
import itertools
import raw_app

_calls = itertools.count()


def app(environ, start_response):
    """raw_app, except that every other DELETE answers "Deleted" and keeps the key."""
    if environ["REQUEST_METHOD"] == "DELETE" and next(_calls) % 2:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "7")])
        return [b"Deleted"]
    return raw_app.app(environ, start_response)
'''


@pytest.mark.slow
def test_a_store_that_loses_deletes_is_caught(tmp_path: Path) -> None:
    (tmp_path / "lossy_app.py").write_text(LOSSY_APP)
    path = {"PYTHONPATH": f"{tmp_path}:{APPS_DIR}:{ROOT}"}
    with gunicorn("lossy_app:app", tmp_path / "server.log", env=path) as url:
        report = run_session(url, tmp_path, threads=2, connections=2, keys=KEYS)
    checks = report["session"]["checks"]
    assert checks["mismatches"] > 0
    assert checks["examples"] and "model: absent" in " ".join(checks["examples"])
