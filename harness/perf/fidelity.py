"""Perf stage: does measuring change what is measured? And what does precision cost?

`measure_fidelity` sets the harness against a hand-run wrk: the same server (argv,
environment, CPU pinning, open-files limit, a fresh start each time), the same wrk
settings (threads, connections, warm-up, duration, timeout), but no harness around
it: no preflight, no sampler, no Lua reporter, no sidecar. Pairs are interleaved and
every other pair starts with the hand run, so an order effect or the machine's drift
falls on both alike; the ratio harness ÷ hand is reported per pair and as a mean with
its 95 % interval. harness/perf/together.py runs the two at the same time instead, which
takes the machine's drift between two cells out of the ratio.

`measure_time_to_answer` runs a seed-like subset twice: with fixed long cells (the
study's way) and with `--precision` (short cells, repeated until each interval is within
the target), and reports the wall-time ratio and whether each adaptive interval
contains the fixed run's mean.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.bench import runner
from harness.matrix import workloads
from harness.matrix.build import build_matrix
from harness.matrix.model import Cell, Matrix
from harness.matrix.precision import interval
from harness.matrix.servers import SERVERS
from harness.matrix.serverspec import Budget
from harness.parse.wrk import parse_wrk
from harness.paths import REPO_ROOT
from harness.raw.store import RunStore
from harness.tables.dataset import load_runs

FIDELITY_SERVER, FIDELITY_APP, FIDELITY_CONNECTIONS = "granian", "raw", 100
FIDELITY_SECONDS, FIDELITY_WARMUP_S = 5, 1
FIDELITY_PAIRS = 12
HOST = "127.0.0.1"


def bench_argv(out: Path, *args: str) -> list[str]:
    """`invoke bench` as a user runs it, into `out`."""
    return [sys.executable, "-m", "invoke", "bench", "--out", str(out), "--new", *args]


def _bench(out: Path, *args: str) -> str:
    """One `invoke bench`; its run id."""
    argv = bench_argv(out, *args)
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"invoke bench failed: {done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def fidelity_matrix() -> Matrix:
    overrides = {
        "servers": FIDELITY_SERVER, "apps": FIDELITY_APP,
        "connections": str(FIDELITY_CONNECTIONS), "duration": f"{FIDELITY_SECONDS}s",
        "warmup": f"{FIDELITY_WARMUP_S}s", "repeats": "1", "calibrate": False,
    }  # fmt: skip
    return build_matrix("quick", overrides, list(SERVERS), [FIDELITY_APP])


# The fidelity cell as `invoke bench` options.
HARNESS_ARGS = (
    "--servers", FIDELITY_SERVER, "--apps", FIDELITY_APP,
    "--connections", str(FIDELITY_CONNECTIONS), "--duration", f"{FIDELITY_SECONDS}s",
    "--warmup", f"{FIDELITY_WARMUP_S}s", "--repeats", "1", "--no-calibrate",
)  # fmt: skip


def harness_rps(work: Path, run_id: str, matrix: Matrix) -> float:
    """What the harness measured in its fidelity cell: its exact req/s (Lua report)."""
    rps = RunStore(work, run_id).requests_per_sec(matrix.cells[0])
    if rps is None:
        raise RuntimeError(f"the harness cell of run {run_id} failed")
    return rps


def harness_cell(work: Path, matrix: Matrix) -> float:
    """One cell measured by `invoke bench`: its exact req/s."""
    return harness_rps(work, _bench(work, *HARNESS_ARGS), matrix)


@contextmanager
def hand_server(matrix: Matrix) -> Iterator[str]:
    """The fidelity cell's server started as the bench starts it (argv, environment,
    CPUs, open-files limit), ready; yields its URL."""
    cell: Cell = matrix.cells[0]
    spec, app = SERVERS[cell.server], workloads.app_for(cell.app)
    port = runner.free_port(HOST)
    argv = spec.argv(sys.executable, app, HOST, port, Budget(matrix.workers,
                     matrix.server_threads), matrix.backlog)  # fmt: skip
    log = Path(f"/tmp/wsgi-baseline-hand-{port}.log")
    server = runner.start_server(
        argv, spec.env(), REPO_ROOT, log, spec.stop_signal, matrix.server_cpus, cell.nofile_limit
    )
    try:
        runner.wait_ready(server, f"http://{HOST}:{port}/")
        yield f"http://{HOST}:{port}/"
    finally:
        # As the bench ends a measured server (SIGKILL to its whole group at once), so
        # that the cell after a hand run starts from the same state as after a harness one.
        runner.end_server(server)
        log.unlink(missing_ok=True)


def hand_wrk(matrix: Matrix, url: str, measured: bool, wrk: str = "wrk") -> float:
    """Bare wrk against `url` with the cell's settings: the warm-up, or the measured run
    (with --latency, as the bench's); its req/s as wrk printed it."""
    cell: Cell = matrix.cells[0]
    seconds = matrix.duration_s if measured else matrix.warmup_s
    argv = [wrk, f"-t{matrix.threads}", f"-c{cell.connections}"]
    argv += [f"--timeout={int(matrix.timeout_s)}s", f"-d{int(seconds)}s"]
    argv += ["--latency", url] if measured else [url]
    run = runner.run_wrk(argv, {}, matrix.client_cpus, cell.nofile_limit,
                         matrix.wrk_limit_s(seconds))  # fmt: skip
    return parse_wrk(run.stdout.decode("utf-8", "replace")).requests_per_sec


def hand_cell(matrix: Matrix, wrk: str = "wrk") -> float:
    """The same cell by hand: server started as the bench starts it, wrk run bare."""
    with hand_server(matrix) as url:
        hand_wrk(matrix, url, False, wrk)
        return hand_wrk(matrix, url, True, wrk)


def measure_fidelity(work: Path, pairs: int = FIDELITY_PAIRS) -> dict[str, Any]:
    """Harness ÷ hand-run req/s over interleaved pairs, with its 95 % interval."""
    matrix = fidelity_matrix()
    rows: list[dict[str, Any]] = []
    for i in range(pairs):
        order = ("harness", "hand") if i % 2 == 0 else ("hand", "harness")
        got: dict[str, float] = {}
        for who in order:
            got[who] = harness_cell(work, matrix) if who == "harness" else hand_cell(matrix)
        rows.append({"pair": i + 1, "first": order[0], **got,
                     "ratio": round(got["harness"] / got["hand"], 4)})  # fmt: skip
    return {
        "cell": f"{FIDELITY_SERVER}/{FIDELITY_APP}/plaintext/c{FIDELITY_CONNECTIONS}, "
        f"{FIDELITY_WARMUP_S} s warm-up + {FIDELITY_SECONDS} s",
        **ratio_summary(rows),
    }


def ratio_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Pairs' harness ÷ hand ratios: their mean with its 95 % interval, and their range."""
    ratios = interval([r["ratio"] for r in rows])
    return {
        "pairs": len(rows),
        "ratio_mean": round(ratios.mean or 0, 4),
        "ratio_ci_low": None if ratios.low is None else round(ratios.low, 4),
        "ratio_ci_high": None if ratios.high is None else round(ratios.high, 4),
        "ratio_min": min(r["ratio"] for r in rows),
        "ratio_max": max(r["ratio"] for r in rows),
        "rows": rows,
    }


# A seed-like subset: 3 servers x raw x 3 connection levels.
ANSWER_SERVERS, ANSWER_LEVELS = "gunicorn,uwsgi,cheroot", "10,100,500"
FIXED = ("--repeats", "3", "--duration", "60s", "--warmup", "5s")
ADAPTIVE = ("--repeats", "3", "--duration", "20s", "--warmup", "5s", "--precision", "2%",
            "--max-repeats", "6")  # fmt: skip


def measure_time_to_answer(work: Path) -> dict[str, Any]:
    """Fixed 3 × 60 s cells against --precision 2 % with 20 s cells, on one subset."""
    common = ("--profile", "quick", "--servers", ANSWER_SERVERS, "--apps", "raw",
              "--connections", ANSWER_LEVELS, "--no-calibrate")  # fmt: skip
    walls, runs = {}, {}
    for name, extra in (("fixed", FIXED), ("adaptive", ADAPTIVE)):
        start = time.monotonic()
        runs[name] = _bench(work, *common, *extra)
        walls[name] = round(time.monotonic() - start, 1)
    table = load_runs(work)
    cells: list[dict[str, Any]] = []
    keys = ["server", "app", "workload", "connections"]
    for key, rows in table.groupby(keys):
        fixed = rows[rows["run_id"] == runs["fixed"]]
        adaptive = rows[rows["run_id"] == runs["adaptive"]]
        f_mean = float(fixed["requests_per_sec"].mean())
        a = adaptive.iloc[0]
        low, high = a["requests_per_sec_ci_low"], a["requests_per_sec_ci_high"]
        cells.append({
            "cell": "/".join(map(str, key)),
            "fixed_mean": round(f_mean, 1),
            "adaptive_mean": round(float(adaptive["requests_per_sec"].mean()), 1),
            "adaptive_ci": [None if low != low else round(float(low), 1),
                            None if high != high else round(float(high), 1)],
            "adaptive_repeats": int(a["repeats_ok"]),
            "adaptive_precision": None if a["requests_per_sec_ci_rel"] != a[
                "requests_per_sec_ci_rel"] else round(float(a["requests_per_sec_ci_rel"]), 4),
            "contains_fixed_mean": bool(low <= f_mean <= high) if low == low else None,
        })  # fmt: skip
    contained = [c["contains_fixed_mean"] for c in cells if c["contains_fixed_mean"] is not None]
    return {
        "subset": f"{ANSWER_SERVERS} × raw × c={ANSWER_LEVELS}",
        "fixed": " ".join(FIXED),
        "adaptive": " ".join(ADAPTIVE),
        "fixed_wall_s": walls["fixed"],
        "adaptive_wall_s": walls["adaptive"],
        "wall_ratio": round(walls["adaptive"] / walls["fixed"], 3),
        "intervals_containing_fixed_mean": f"{sum(contained)} of {len(contained)}",
        "cells": cells,
    }


def write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
