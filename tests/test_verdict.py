"""The verdict (harness/tables/verdict.py): ranks, ties, labels, sentences, notices.

Crafted tables say what must happen in each case (a clear win, a tie, one repeat, a
server that answered nothing, a client-bound leader); the committed example run says
what a stakeholder reads on the home page of a real run.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from harness.paths import RAW_DIR
from harness.tables import verdict as v
from harness.tables.dataset import load_runs
from harness.tables.runfacts import (
    cpus_text,
    one_machine,
    pinning_text,
    project_roots,
    recorded_prose,
    relative_to,
)

EXAMPLE = "20261207T185928Z-quick"  # 8 servers × raw, flask × c=10, 100; 3 repeats
RUN: dict[str, Any] = {
    "run_id": "r",
    "profile": "seed",
    "settings": {
        "workloads": ["plaintext"],
        "duration_s": 180,
        "server_cpus": [0],
        "client_cpus": [1],
        "workers": 2,
        "server_threads": 4,
    },
    "host": {"cores": 2},
    "hosts": {"server": {"spec": "a@s"}, "clients": [{"spec": "b@c"}]},
}


def table(cells: dict[tuple[str, str, int], list[float | None]], **extra: Any) -> pd.DataFrame:
    """One row per repeat: (server, app, connections) -> req/s of each repeat (None:
    failed; 0: no response). p99 is 1000 / req/s ms; the server used one CPU."""
    rows = []
    for (server, app, conns), values in cells.items():
        for k, rps in enumerate(values, 1):
            ok = rps is not None
            rows.append(
                {
                    "run_id": "r", "server": server, "app": app, "workload": "plaintext",
                    "connections": conns, "repeat": k, "status": "ok" if ok else "failed",
                    "reason": None if ok else "server exited with code 3",
                    "requests": (rps or 0) * 10 if ok else None, "requests_per_sec": rps,
                    "latency_avg_ms": 1000 / rps if rps else None,
                    "latency_p50_ms": 1000 / rps if rps else None,
                    "latency_p99_ms": 1000 / rps if rps else None,
                    "latency_max_ms": 1000 / rps if rps else None,
                    "samples_n": 10 if ok else 0, "server_cpu_pct_mean": 100.0,
                    "server_cpu_pct_max": 100.0, "server_rss_mb_max": 30.0,
                    "wrk_cpu_pct_mean": 50.0, "wrk_cpu_pct_max": 60.0,
                    "flags": extra.get("flags", {}).get((server, app, conns), ""),
                }
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_a_clear_win_is_said_as_one() -> None:
    df = table(
        {
            ("fast", "raw", 100): [1000.0, 1010.0, 990.0],
            ("slow", "raw", 100): [100.0, 101.0, 99.0],
            ("fast", "raw", 10): [900.0, 910.0, 890.0],
            ("slow", "raw", 10): [90.0, 91.0, 89.0],
        }
    )
    verdict = v.run_verdict(df, RUN)
    assert verdict.connections == 100 and "highest connection count" in verdict.why_connections
    (a,) = verdict.apps
    assert (a.title, a.leaders, a.clear_win) == ("no framework", ("fast",), True)
    fast, slow = a.rows
    assert (fast.place, fast.confidence, slow.place, slow.confidence) == (1, v.CLEAR, 2, v.CLEAR)
    assert fast.share_of_best == 1.0 and slow.share_of_best == pytest.approx(0.1)
    assert fast.requests_per_cpu_s == pytest.approx(1000.0)  # one CPU busy
    assert fast.ci_low is not None and fast.ci_low < 1000 < (fast.ci_high or 0)
    assert a.sentences == (
        "With no framework, fast is the fastest at c=100: 1,000 req/s, 10.0× the next, slow, "
        "beyond the noise of the repeats.",
        "The slowest, slow, is 10.0× slower than the fastest.",
    )
    assert a.by_level == ((10, ("fast",)), (100, ("fast",)))
    assert verdict.indicative == ()  # 3 minutes, two machines, 3 repeats: decision-grade


def test_servers_within_noise_share_a_place_and_are_tied() -> None:
    df = table(
        {
            ("a", "flask", 100): [500.0, 700.0, 600.0],
            ("b", "flask", 100): [550.0, 650.0, 580.0],
            ("c", "flask", 100): [100.0, 101.0, 99.0],
            ("d", "flask", 100): [None, None, None],
        }
    )
    (a,) = v.run_verdict(df, RUN).apps
    places = {r.server: (r.place, r.confidence, r.tied_with) for r in a.rows}
    assert places == {
        "a": (1, v.TIED, ("b",)),
        "b": (1, v.TIED, ("a",)),
        "c": (3, v.CLEAR, ()),
        "d": (None, v.FAILED, ()),
    }
    assert a.leaders == ("a", "b") and a.clear_win is False
    assert a.sentences[0] == (
        "With Flask, a and b are within noise of each other at c=100 (593–600 req/s): "
        "their 95 % intervals overlap."
    )
    assert a.sentences[1] == "The slowest, c, is 6.0× slower than the fastest; d failed."
    assert [r.server for r in a.rows][-1] == "d" and a.rows[-1].reason.startswith("server exited")


def test_one_repeat_leaves_the_order_unknown() -> None:
    df = table({("a", "raw", 10): [500.0], ("b", "raw", 10): [400.0, 410.0]})
    verdict = v.run_verdict(df, {**RUN, "settings": {**RUN["settings"], "duration_s": 5}})
    (a,) = verdict.apps
    assert [r.confidence for r in a.rows] == [v.NOISE_UNKNOWN, v.NOISE_UNKNOWN]
    assert a.clear_win is None and "measured once" in a.sentences[0]
    ids = [n.id for n in verdict.indicative]
    assert ids == ["quick", "one_repeat"]
    assert "1 of 2 cells has one ok repeat" in verdict.indicative[1].text


def test_a_server_that_answered_nothing_takes_no_place() -> None:
    df = table({("a", "raw", 10): [500.0, 510.0], ("mute", "raw", 10): [0.0, 0.0]})
    (a,) = v.run_verdict(df, RUN).apps
    mute = a.rows[-1]
    assert (mute.place, mute.confidence, mute.requests_per_sec) == (None, v.FAILED, None)
    assert mute.reason == "no response in any repeat"
    assert a.sentences == (
        "With no framework, only a was measured at c=10 (505 req/s); mute failed.",
    )


def test_a_client_bound_leader_says_its_lead_may_be_larger() -> None:
    flags = {("a", "raw", 100): "client_saturated"}
    df = table(
        {("a", "raw", 100): [1000.0, 1001.0], ("b", "raw", 100): [500.0, 501.0]}, flags=flags
    )
    local = {k: val for k, val in RUN.items() if k != "hosts"}
    verdict = v.run_verdict(df, local)
    (a,) = verdict.apps
    assert a.rows[0].confidence == v.CLIENT_BOUND and a.clear_win is True
    assert a.sentences[0].endswith(
        "and wrk was near its own limit, so its real lead may be larger."
    )
    notices = {n.id: n.text for n in verdict.indicative}
    assert set(notices) == {"one_machine", "client_bound"}
    assert (
        "server on CPU 0, wrk on CPU 1 of 2, same machine, over loopback" in notices["one_machine"]
    )
    assert notices["client_bound"].startswith("a (no framework) at c=100 came near")


def test_no_framework_first_then_frameworks() -> None:
    cells = {(s, app, 10): [100.0, 101.0] for s in ("x", "y") for app in ("flask", "raw", "bottle")}
    verdict = v.run_verdict(table(cells), RUN)
    assert [a.app for a in verdict.apps] == ["raw", "bottle", "flask"]
    assert [a.title for a in verdict.apps] == ["no framework", "Bottle", "Flask"]
    assert verdict.lines()[0] == "Verdict of run r (plaintext, c=10):"


def test_the_example_run_has_a_verdict_for_each_framework() -> None:
    """What the home page of the committed example run says (checked by eye on the site)."""
    run = json.loads((RAW_DIR / EXAMPLE / "run.json").read_text())
    verdict = v.run_verdict(load_runs(RAW_DIR / EXAMPLE), run)
    assert verdict.connections == 100
    raw, flask = verdict.apps
    assert raw.rows[0].server == "bjoern" and raw.rows[0].confidence == v.CLIENT_BOUND
    assert raw.clear_win is True and raw.leaders == ("bjoern",)
    assert flask.clear_win is False and {"granian", "bjoern", "meinheld"} <= set(flask.leaders)
    assert {r.server for r in flask.rows if r.place == 7} == {"gunicorn", "gunicorn-gthread"}
    gunicorn = next(r for r in flask.rows if r.server == "gunicorn")
    assert "closes_connections" in gunicorn.flags  # Connection: close, beside its numbers
    assert [n.id for n in verdict.indicative] == ["quick", "one_machine", "client_bound"]
    assert all(r.requests_per_cpu_s for a in verdict.apps for r in a.rows)


def test_pinning_and_machines_in_words() -> None:
    assert cpus_text([0]) == "CPU 0" and cpus_text([3, 0, 1, 2, 6]) == "CPUs 0–3, 6"
    local = {"settings": {"server_cpus": [0], "client_cpus": [1]}, "host": {"cores": 2}}
    assert pinning_text(local) == "server on CPU 0, wrk on CPU 1 of 2, same machine, over loopback"
    assert pinning_text({"settings": {}, "host": {"cores": 4}}) == (
        "server and wrk not pinned, sharing the machine's 4 CPUs, over loopback"
    )
    assert (
        pinning_text(RUN) == "server on its own machine, wrk on 1 other machine, over the network"
    )
    assert one_machine(local) and not one_machine(RUN) and not one_machine({"imported": True})


def test_recorded_paths_and_placeholders_are_shown_for_readers() -> None:
    run = {
        "versions": {"python": "CPython 3.11.7 (/home/ci/wsgi/.venv/bin/python)"},
        "argv": ["/home/ci/wsgi/.venv/bin/invoke", "bench"],
        "settings": {"workers": 2, "server_threads": 4},
    }
    cells = [{"server_env": {"PYTHONPATH": "/srv/other/apps"}}]
    assert project_roots(run, cells) == ["/home/ci/wsgi", "/srv/other"]
    assert relative_to("/home/ci/wsgi/.venv/bin/python -m x", ["/home/ci/wsgi"]) == (
        ".venv/bin/python -m x"
    )
    old = (
        "pre-fork: a master and Budget.workers sync worker processes; the rest starved "
        "(FIELD-NOTES); /home/ci/wsgi/harness/serving/launchers/_prefork.py binds and, for "
        "Budget.workers > 1, forks that many processes with Budget.threads threads"
    )
    assert recorded_prose(old, run) == (
        "pre-fork: a master and the run's worker count (2) sync worker processes; the rest "
        "starved (measured while building this tool); the harness's pre-fork launcher binds "
        "and, for more than one worker, forks one process per worker with the run's thread "
        "count (4) threads"
    )
