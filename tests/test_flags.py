"""harness.tables.flags: each validity flag from a real server and wrk where one can provoke it,
and from crafted rows (the study's own numbers among them) where not.

Real cases (slow): uWSGI --http-socket + an app without Content-Length -> eof_read_errors;
wrk with a soft open-files limit of 64 and -c100 -> fd_limit; -t4 -c10 ->
effective_connections; a 1.2 s handler with wrk
--timeout 1s -> timeout_truncated; a 404 path -> non_2xx; uWSGI --http11-socket (one
connection served, the rest queued) -> littles_law + starved_connections; cheroot with
two threads and its default listen backlog of 5 at c=100 -> starved_connections.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.bench.sampler import Sampler, child_named
from harness.raw.samples import Sample, stall, summarize
from harness.tables.flags import FLAGS, add_flags, details_of, row_flags
from tests import trustkit as kit

IDS = {
    "littles_law", "effective_connections", "fd_limit", "eof_read_errors", "timeout_truncated",
    "non_2xx", "noisy", "client_saturated", "server_crashed", "starved_connections",
    "noise_unknown", "imprecise", "stalled", "preflight", "rate_not_achieved",
    "closes_connections",
}  # fmt: skip


def good(**changes: Any) -> dict[str, Any]:
    """A sound cell: 100 connections, 10k req/s at 10 ms -> 100 in flight."""
    row = {
        "run_id": "r", "server": "s", "app": "raw", "workload": "plaintext", "connections": 100,
        "repeat": 1, "status": "ok", "reason": None, "threads": 2, "connections_effective": 100,
        "requests": 100_000, "requests_per_sec": 10_000.0, "latency_avg_ms": 10.0,
        "latency_max_ms": 40.0, "timeout_configured_s": 2.0, "errors_connect": 0,
        "errors_read": 0, "errors_write": 0, "errors_timeout": 0, "non_2xx_3xx": 0,
        "nofile_limit": 356,
    }  # fmt: skip
    row.update(changes)
    return row


def test_flag_ids_and_explanations() -> None:
    assert set(FLAGS) == IDS
    for flag_id, info in FLAGS.items():
        assert info.id == flag_id and info.title and len(info.explanation) > 40


def test_sound_cell_has_no_flags() -> None:
    assert row_flags(good()) == {}
    assert row_flags(good(preflight_ok=True, preflight_reason=None)) == {}


def test_a_failed_preflight_check_marks_the_numbers_it_affects() -> None:
    """gunicorn's sync worker fails keep-alive by design and is measured: its numbers say so."""
    close = "keep_alive: server sent Connection: close: every request would need a new connection"
    found = row_flags(good(preflight_ok=False, preflight_ignored=False, preflight_reason=close))
    # Named for what it is (the badge reads "Closes every connection"), not as a failure.
    assert set(found) == {"closes_connections"}
    assert "new one for each request" in found["closes_connections"]
    assert FLAGS["closes_connections"].title == "Closes every connection"
    ignored = row_flags(
        good(preflight_ok=False, preflight_ignored=True, preflight_reason="body: 12 bytes")
    )
    assert ignored["preflight"] == "measured despite a failed check: body: 12 bytes"
    assert "preflight" not in row_flags(good(preflight_ok=None, preflight_reason=close))
    assert "closes_connections" not in row_flags(good(preflight_ok=None, preflight_reason=close))
    # Another failed check beside it is still a failed check.
    both = row_flags(good(preflight_ok=False, preflight_reason=f"{close}; body: 12 bytes"))
    assert set(both) == {"closes_connections", "preflight"}
    assert both["preflight"].endswith("body: 12 bytes")


def test_littles_law_from_the_study_cherrypy_c500() -> None:
    row = good(
        connections=500, connections_effective=500, requests_per_sec=1988.79, latency_avg_ms=4.62
    )
    detail = row_flags(row)["littles_law"]
    assert detail == (
        "1988.79 req/s × 4.62 ms = 9.2 requests in flight for 500 open connections (ratio 0.02)"
    )
    # Within the band measured on sound cells (coordinated-omission correction: up to ~2.2).
    assert "littles_law" not in row_flags(good(latency_avg_ms=22.0))
    assert "littles_law" in row_flags(good(latency_avg_ms=31.0))


def test_effective_connections() -> None:
    row = good(connections=10, threads=4, connections_effective=8, requests_per_sec=800.0)
    assert row_flags(row)["effective_connections"] == (
        "wrk opened 8 connections, not 10: 2 for each of 4 threads"
    )


def test_fd_limit_from_the_study_and_from_the_recorded_limit() -> None:
    # The study: c=2000, wrk with 4 threads under the usual 1024 limit -> 1017 opened.
    study = good(connections=2000, connections_effective=2000, threads=4, errors_connect=983,
                 nofile_limit=None, requests_per_sec=1017 * 100.0)  # fmt: skip
    assert row_flags(study)["fd_limit"] == (
        "983 connect errors: 1017 connections opened, about the open-files limit 1024"
        " minus 7 descriptors wrk keeps for itself"
    )
    # Connect errors far from any limit: a server refusing, not wrk's descriptors.
    assert "fd_limit" not in row_flags(good(errors_connect=30, nofile_limit=None))


def test_eof_timeouts_non_2xx() -> None:
    assert "eof_read_errors" in row_flags(good(errors_read=100_000))
    assert "eof_read_errors" not in row_flags(good(errors_read=3))
    assert row_flags(good(errors_timeout=16))["timeout_truncated"] == (
        "16 timeouts left out of the latency figures"
    )
    assert "timeout_truncated" in row_flags(good(latency_max_ms=1990.0))
    assert row_flags(good(non_2xx_3xx=25_000))["non_2xx"] == (
        "25000 of 100000 responses (25%) had a status of 400 or more"
    )


def test_session_404_misses_are_not_non_2xx() -> None:
    # The session mix asks for keys that may be absent: its 404s are right answers.
    session = good(workload="session", non_2xx_3xx=25_000, session_not_found=25_000)
    assert "non_2xx" not in row_flags(session)
    assert row_flags({**session, "session_not_found": 24_000})["non_2xx"] == (
        "1000 of 100000 responses (1%) had a status of 400 or more other than 404"
    )
    # Without the Lua report's counts, misses and errors cannot be told apart.
    assert "non_2xx" not in row_flags({**session, "session_not_found": None})


def test_client_saturated_needs_both_cpu_columns() -> None:
    row = good(threads=1, client_cpus_n=1, server_cpus_n=1, wrk_cpu_pct_mean=97.0,
               server_cpu_pct_mean=55.0)  # fmt: skip
    assert row_flags(row)["client_saturated"] == "wrk used 97 % of 1 CPU(s), the server 55 % of 1"
    assert "client_saturated" not in row_flags({**row, "server_cpu_pct_mean": 99.0})
    assert "client_saturated" not in row_flags({**row, "server_cpu_pct_mean": None})


def test_server_crashed_from_reason_or_pids() -> None:
    failed = good(status="failed", reason="server exited with code -9 during the measurement")
    assert set(row_flags(failed)) == {"server_crashed"}
    assert "server_crashed" in row_flags(good(server_pids_changed=True))
    assert row_flags(good(status="failed", reason="server did not start: boom")) == {}


def test_starved_connections_from_samples() -> None:
    assert "starved_connections" in row_flags(good(established_median=16.0))
    queued = good(accept_queue_median=99.0, established_median=100.0, latency_avg_ms=0.1)
    assert row_flags(queued)["starved_connections"] == (
        "median 99 connections in the accept queue, 1.0 requests in flight"
    )
    # A sync server's queue is normal when every queued request is answered in turn.
    assert "starved_connections" not in row_flags(good(accept_queue_median=99.0))
    # A server that announces Connection: close has wrk reconnecting: fewer established
    # connections is its model (gunicorn sync), not starvation.
    closing = good(
        established_median=3.0,
        preflight_reason="keep_alive: server sent Connection: close: every request would "
        "need a new connection",
    )
    assert "starved_connections" not in row_flags(closing)


def test_missing_or_empty_columns_mean_cannot_tell() -> None:
    bare = {"connections": 100, "status": "ok"}
    assert row_flags(bare) == {}
    assert row_flags(good(requests_per_sec=float("nan"), latency_avg_ms=None)) == {}
    df = pd.DataFrame([good(errors_read=pd.NA)]).astype({"errors_read": "Int64"})
    assert add_flags(df)["flags"].tolist() == [""]


def test_noisy_and_the_flags_columns() -> None:
    rows = [good(repeat=1, requests_per_sec=10_000.0), good(repeat=2, requests_per_sec=8_000.0),
            good(connections=10, connections_effective=10, requests_per_sec=1000.0,
                 latency_avg_ms=10.0, requests=1000, errors_read=1000)]  # fmt: skip
    out = add_flags(pd.DataFrame(rows))
    assert out["flags"].tolist() == ["noisy", "noisy", "eof_read_errors"]
    assert details_of(out["flag_details"][0]) == {
        "noisy": "2 repeats: mean 9000 req/s, stdev 16% of it"
    }
    several = add_flags(pd.DataFrame([good(errors_timeout=1, non_2xx_3xx=5)]))
    assert several["flags"][0] == "non_2xx;timeout_truncated"
    assert list(details_of(several["flag_details"][0])) == ["non_2xx", "timeout_truncated"]


@pytest.mark.slow
def test_real_fd_limit_non_2xx_split_connections_timeouts(tmp_path: Path) -> None:
    with kit.serving(lambda p: kit.cheroot(p, 8), tmp_path) as (_server, port):
        capped = kit.wrk(port, c=100, nofile=64)
        flags = row_flags(kit.row(capped, nofile_limit=64))
        # 64 descriptors - stdio - one epoll = 60 connections; 40 connect errors.
        assert flags["fd_limit"].startswith("40 connect errors: 60 connections opened")
        assert "non_2xx" in row_flags(kit.row(kit.wrk(port, "/missing")))
        split = kit.row(kit.wrk(port, c=10, t=4))  # wrk: 10 // 4 = 2 per thread
        assert split["requests"] > 0 and "effective_connections" in row_flags(split)
        slow = kit.wrk(port, "/slow/1200", c=4, d=2, timeout="1s")
        assert "timeout_truncated" in row_flags(kit.row(slow, timeout_configured_s=1.0))


@pytest.mark.slow
def test_real_eof_read_errors(tmp_path: Path) -> None:
    with kit.serving(lambda p: kit.uwsgi(p, "--http-socket"), tmp_path) as (_server, port):
        row = kit.row(kit.wrk(port, "/nolength"))
    assert row["errors_read"] == row["requests"] > 0
    assert "eof_read_errors" in row_flags(row)


@pytest.mark.slow
def test_real_starved_connections_uwsgi_http11(tmp_path: Path) -> None:
    with kit.serving(lambda p: kit.uwsgi(p, "--http11-socket"), tmp_path) as (server, port):
        with Sampler(server.pgid, child_named("wrk"), port, 0.1) as sampler:
            run = kit.wrk(port, c=50, d=2)
    summary = summarize(sampler.samples)
    flags = row_flags(kit.row(run, **summary))
    assert summary["accept_queue_median"] >= 40  # one connection served, the rest queued
    assert {"littles_law", "starved_connections"} <= set(flags)


@pytest.mark.slow
def test_real_starved_connections_cheroot_two_threads(tmp_path: Path) -> None:
    with kit.serving(lambda p: kit.cheroot(p, 2), tmp_path) as (server, port):
        with Sampler(server.pgid, child_named("wrk"), port, 0.1) as sampler:
            run = kit.wrk(port, c=100, d=2)
    summary = summarize(sampler.samples)
    assert summary["established_median"] < 90  # listen backlog 5: SYNs dropped and retried
    assert "starved_connections" in row_flags(kit.row(run, **summary))


def _samples(cpus: list[float | None], wrk: bool = True, step: float = 0.25) -> list[Sample]:
    return [
        Sample(round(i * step, 3), (1,), cpu, 1, wrk, None, 0, None) for i, cpu in enumerate(cpus)
    ]


def test_stall_is_a_quiet_stretch_between_busy_samples() -> None:
    busy, quiet = 90.0, 0.0
    # 0.25 s per sample: 8 quiet samples after a busy one span 2.0 s.
    gap, at = stall(_samples([None, busy, busy, *[quiet] * 8, busy, busy]))
    assert (gap, at) == (2.0, 0.25 * 2)
    assert "stalled" in row_flags(good(stall_s=gap, stall_at_s=at))
    assert row_flags(good(stall_s=gap, stall_at_s=at))["stalled"] == (
        "the server's CPU stayed near zero for 2.0 s from 0.5 s into the measurement "
        "while it was otherwise busy"
    )
    # One second or less is not a stall (a GC pause, a scheduler hiccup).
    assert stall(_samples([None, busy, *[quiet] * 4, busy]))[0] == 1.0
    assert "stalled" not in row_flags(good(stall_s=1.0, stall_at_s=0.0))


def test_idle_edges_and_idle_servers_are_not_stalls() -> None:
    # Quiet before the load and after it: edges, not a stall.
    assert stall(_samples([None, *[0.0] * 6, 90.0, 90.0, 90.0, *[0.0] * 6])) == (0.0, None)
    # Outside wrk's run (wrk seen on this host): not counted.
    samples = _samples([None, 90.0, 90.0, 90.0, 90.0])
    samples += [replace(s, t_s=s.t_s + 1.25, wrk_running=False) for s in _samples([0.0] * 8)]
    assert stall(samples) == (0.0, None)
    # A server too idle to judge (median below 20 % of a CPU), or too few samples.
    assert stall(_samples([None, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0])) == (None, None)
    assert stall(_samples([None, 90.0, 0.0])) == (None, None)
    # No column, no flag: an absent measurement is never evidence.
    assert "stalled" not in row_flags(good())


@pytest.mark.slow
def test_real_stalled_server_paused_with_sigstop(tmp_path: Path) -> None:
    """waitress under wrk, its process group stopped for 2 s in the middle of a 5 s run."""
    with kit.serving(lambda p: kit.waitress(p, 4), tmp_path) as (server, port):

        def pause() -> None:
            os.killpg(server.pgid, signal.SIGSTOP)
            try:
                time.sleep(2.0)  # the pause under test, bounded
            finally:
                os.killpg(server.pgid, signal.SIGCONT)

        timer = threading.Timer(1.5, pause)
        with Sampler(server.pgid, child_named("wrk"), port) as sampler:
            timer.start()
            try:
                run = kit.wrk(port, c=10, d=5)
            finally:
                timer.join()
    summary = summarize(sampler.samples)
    assert summary["stall_s"] is not None and 1.5 <= summary["stall_s"] <= 3.0, summary
    assert "stalled" in row_flags(kit.row(run, **summary))
