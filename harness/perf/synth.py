"""Perf stage: real captured wrk outputs -> a synthetic raw/ tree of any number of cells.

Takes the committed example run (raw/<run>/: wrk stdout, Lua reports, sidecars) and the
real wrk 4.1 captures in tests/fixtures/wrk/, and writes runs shaped like the study's
matrix (4 servers x 3 apps x 8 connection levels x 3 repeats = 288 cells per run). Each
cell is a real capture with its throughput scaled and its latencies scaled inversely, so
tables, charts and pages have varied figures to work on while every file keeps the exact
layout wrk printed. Used by `invoke perf` only: it writes where it is told (a temp dir),
never into raw/.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness.parse.wrk import parse_wrk
from harness.paths import RAW_DIR, TEST_FIXTURES
from harness.raw.records import CellSidecar, read_cell, read_run

EXAMPLE_RAW = RAW_DIR
WRK_FIXTURES = TEST_FIXTURES / "wrk"
# The study's matrix (the `seed` profile): one synthetic run has this shape, 288 cells.
SERVERS = ("gunicorn", "meinheld", "uwsgi", "cheroot")
APPS = ("raw", "flask", "cherrypy")
LEVELS = (10, 25, 50, 100, 200, 300, 400, 500)
REPEATS = 3
PROFILE = "seed"
RUN_CELLS = len(SERVERS) * len(APPS) * len(LEVELS) * REPEATS
# Real wrk 4.1 captures that parse and describe a normal run (the slow-handler ones print
# seconds of latency and near-zero throughput: real, but not what a study cell looks like).
FIXTURES = (
    "wrk410-ok-t1-c10",
    "wrk410-ok-latency-t2-c20",
    "wrk410-read-errors-no-content-length",
    "wrk410-non2xx-404",
    "wrk410-connect-errors-ulimit",
    "wrk410-lua-prints-before-after",
    "wrk410-with-report-lua",
)
FAIL_EVERY = 97  # one cell in 97 is a failed cell: the failure path is part of the load
FAILURE = "synthetic failure: the server exited before wrk finished"
_THREADS_LINE = re.compile(r"^(\s*)(\d+) threads and \d+ connections$", re.M)
_REQUESTS_LINE = re.compile(r"^(\s*)(\d+) requests in", re.M)
_RPS_LINE = re.compile(r"^Requests/sec:\s+([\d.]+)$", re.M)
_TIMED_LINE = re.compile(r"^\s*(Latency|\d+(?:\.\d+)?%)\s.*$", re.M)
_TIME = re.compile(r"(\d+\.\d+)(us|ms|s)\b")


@dataclass(frozen=True)
class Template:
    """One real capture: wrk's stdout, its Lua report (if any) and a cell sidecar."""

    text: str
    rps: float
    threads: int
    report: dict[str, Any] | None
    sidecar: CellSidecar


def load_templates(
    example_raw: Path = EXAMPLE_RAW, fixtures: Path = WRK_FIXTURES
) -> list[Template]:
    """Every ok cell of the example run(s), then the fixture captures (with a borrowed sidecar)."""
    out: list[Template] = []
    # The oldest example run only: the synthetic tree stays the same when runs are added.
    first = min(p.parent for p in example_raw.glob("*/run.json"))
    for sidecar_path in sorted(first.glob("*/*/*/c*-r*.json")):
        if sidecar_path.name.count(".") != 1:
            continue
        sidecar = read_cell(sidecar_path)
        files = sidecar.files
        if sidecar.status != "ok" or "stdout" not in files:
            continue
        name = files.get("lua_json")
        report = json.loads((sidecar_path.parent / name).read_text()) if name else None
        out.append(_template((sidecar_path.parent / files["stdout"]).read_text(), report, sidecar))
    if not out:
        raise FileNotFoundError(f"no ok cell with a sidecar under {example_raw}")
    for name in FIXTURES:
        lua = fixtures / f"{name}.lua.json"
        report = json.loads(lua.read_text()) if lua.is_file() else None
        out.append(_template((fixtures / f"{name}.txt").read_text(), report, out[0].sidecar))
    return out


def _template(text: str, report: dict[str, Any] | None, sidecar: CellSidecar) -> Template:
    parsed = parse_wrk(text)
    return Template(text, parsed.requests_per_sec, parsed.threads or 1, report, sidecar)


def scale_text(text: str, factor: float, threads: int, connections: int) -> str:
    """wrk's stdout with throughput x factor, latencies / factor and the given -t/-c."""
    text = _THREADS_LINE.sub(
        lambda m: f"{m[1]}{threads} threads and {connections} connections", text
    )
    text = _REQUESTS_LINE.sub(lambda m: f"{m[1]}{round(int(m[2]) * factor)} requests in", text)
    text = _RPS_LINE.sub(lambda m: f"Requests/sec: {float(m[1]) * factor:10.2f}", text)

    def times(line: re.Match[str]) -> str:
        return _TIME.sub(lambda t: f"{float(t[1]) / factor:.2f}{t[2]}", line[0])

    return _TIMED_LINE.sub(times, text)


def scale_report(report: dict[str, Any], factor: float) -> dict[str, Any]:
    """A Lua report with requests and bytes x factor and every latency / factor."""
    out = copy.deepcopy(report)
    for key in ("requests", "bytes"):
        if isinstance(out.get(key), int):
            out[key] = round(out[key] * factor)
    lat = out.get("latency_us") or {}
    for key in ("min", "max", "mean", "stdev"):
        if isinstance(lat.get(key), int | float):
            lat[key] = round(lat[key] / factor, 3)
    pcts = lat.get("percentiles") or {}
    for key, value in pcts.items():
        pcts[key] = round(value / factor)
    return out


def target_rps(server: int, app: int, level: int, repeat: int, run: int) -> float:
    """Throughput a synthetic cell gets: differs by server, app and level, a little by repeat."""
    curve = min(1.0, 0.55 + LEVELS[level] / 400)  # saturates with connections
    noise = 1.0 + 0.03 * ((repeat * 7 + level * 3 + server) % 5 - 2)  # within +-6 %
    return 2500.0 * (1 + server) * (1.0 - 0.3 * app) * curve * noise * (1.0 + 0.01 * (run % 3))


def write_tree(out: Path, cells: int, templates: list[Template] | None = None) -> list[str]:
    """Write `cells` cells as runs of the study's shape under `out`; returns the run ids.

    The oldest run holds the remainder (cells % 288) and is `interrupted`, so the newest
    runs are complete and have the same shape, as after a real series of runs.
    """
    templates = templates or load_templates()
    sizes = [RUN_CELLS] * (cells // RUN_CELLS)
    if cells % RUN_CELLS:
        sizes.insert(0, cells % RUN_CELLS)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    for run, size in enumerate(sizes):
        began = start + timedelta(hours=run)
        ids.append(_write_run(out, run, began, size, size == RUN_CELLS, templates))
    return ids


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _write_run(
    out: Path, run: int, began: datetime, size: int, complete: bool, templates: list[Template]
) -> str:
    run_id = began.strftime("%Y%m%dT%H%M%SZ") + f"-{PROFILE}"
    keys = [
        (s, a, lv, r)
        for s in range(len(SERVERS))
        for a in range(len(APPS))
        for lv in range(len(LEVELS))
        for r in range(1, REPEATS + 1)
    ][:size]
    planned = []
    for n, (s, a, lv, r) in enumerate(keys):
        server, app, conns = SERVERS[s], APPS[a], LEVELS[lv]
        tpl = templates[(s * 13 + a * 5 + lv * 3) % len(templates)]  # spread over all
        factor = target_rps(s, a, lv, r, run) / max(tpl.rps, 1.0)
        name = f"c{conns}-r{r}"
        cell_dir = out / run_id / server / app / "plaintext"
        cell_dir.mkdir(parents=True, exist_ok=True)
        failed = (run * RUN_CELLS + n) % FAIL_EVERY == FAIL_EVERY - 1
        text = scale_text(tpl.text, factor, tpl.threads, conns)
        files = {"warmup": f"{name}.warmup.txt"}
        (cell_dir / files["warmup"]).write_text(text)
        if not failed:
            files["stdout"] = f"{name}.txt"
            (cell_dir / files["stdout"]).write_text(text)
            if tpl.report is not None:
                files["lua_json"] = f"{name}.lua.json"
                doc = json.dumps(scale_report(tpl.report, factor))
                (cell_dir / files["lua_json"]).write_text(doc)
        at = began + timedelta(seconds=10 * n)
        sidecar = replace(
            tpl.sidecar,
            run_id=run_id, server=server, app=app, workload="plaintext", connections=conns,
            repeat=r, threads=tpl.threads, started_at=_iso(at),
            ended_at=_iso(at + timedelta(seconds=9)), status="failed" if failed else "ok",
            reason=FAILURE if failed else None, files=files,
        )  # fmt: skip
        # Plain writes, not the store's fsync'd ones: a synthetic tree is thrown away.
        (cell_dir / f"{name}.json").write_text(json.dumps(sidecar.to_json(), indent=2))
        planned.append(f"{server}/{app}/plaintext/{name}")
    _write_run_json(out / run_id, run_id, began, planned, complete, templates[0])
    return run_id


def _write_run_json(
    run_dir: Path, run_id: str, began: datetime, planned: list[str], complete: bool, tpl: Template
) -> None:
    example = read_run(min(EXAMPLE_RAW.glob("*/run.json")))
    settings = {
        **example.settings,
        **{"servers": list(SERVERS), "apps": list(APPS), "workloads": ["plaintext"]},
        **{"connections": list(LEVELS), "repeats": REPEATS, "threads": tpl.threads},
    }
    versions = {**example.versions, "cherrypy": "18.10.0"}  # not in the example
    meta = replace(
        example,
        run_id=run_id, profile=PROFILE, settings=settings, versions=versions,
        status="complete" if complete else "interrupted", started_at=_iso(began),
        ended_at=_iso(began + timedelta(seconds=10 * len(planned))), cells_planned=tuple(planned),
    )  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(meta.to_json(), indent=2))
