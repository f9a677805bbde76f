"""Table stage: a raw/ tree -> one tidy DataFrame, one row per cell and repeat.

Reads each run's run.json, every cell sidecar `c<N>-r<k>.json`, the wrk stdout it names
(through parse_wrk_file), the Lua report and the sampler's `.samples.json` beside it.
Where a report exists its exact counters and microseconds fill the figure columns; the
rounded printed figures stay in the `*_printed` twins. Failed cells stay as rows with
empty figures, never zeros. The validity flags of harness/tables/flags.py are filled last.
Column order, dtypes and row order are fixed; docs/schema.md documents every column.
Each run's client ceilings are read by harness/tables/ceilings.py.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pandas as pd

from harness.matrix.model import effective_connections
from harness.parse.openloop import parse_openloop_file
from harness.parse.wrk import RawFormatError, WrkResult, parse_wrk_file
from harness.raw import samples
from harness.raw.documents import CALIBRATION_FORMAT_VERSION, read_document
from harness.raw.records import RunMeta, read_cell, read_run
from harness.tables.cellcolumns import samples_columns, session_columns, sidecar_columns
from harness.tables.flags import add_flags
from harness.tables.intervals import add_intervals
from harness.tables.parsecache import ParseCache
from harness.tables.runfacts import project_roots, relative_to
from harness.tables.schema import (
    CELL_STATS,
    COLUMNS,
    DTYPES,
    SORT_KEYS,
    figures,
    open_loop_figures,
    report_figures,
    wrk2_open_loop,
)

_SIDECAR_NAME = re.compile(r"c\d+(?:-at[0-9p]+(?:pct|rps))?-r\d+\.json")
_TYPES: dict[str, tuple[type, ...]] = {"Int64": (int,), "str": (str,), "boolean": (bool,)}


def load_runs(
    raw_dir: str | Path,
    skip_bad: bool = False,
    cache: ParseCache | None = None,
    runs: Collection[str] | None = None,
    cells: Collection[str] | None = None,
) -> pd.DataFrame:
    """Every cell of every run under `raw_dir` (or of the one run `raw_dir` is).

    With a `cache` (harness/tables/parsecache.py), wrk outputs parsed before are not parsed again.
    `runs`: only the runs in these folders of `raw_dir` (one table for several runs costs
    less than one per run: harness/site/tablecache.py builds them in batches).
    `cells`: only the repeats of these cells, as `server/app/workload/c<N>` (what
    `invoke bench` shows beside a cell it has just measured).

    A file that cannot be read raises RawFormatError naming it (and the line), unless
    `skip_bad`: then its cell (or its whole run, for run.json) is left out and listed
    in `df.attrs["skipped"]` as {"path", "error"} dicts.
    """
    raw_dir = Path(raw_dir)
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []

    def bad(e: RawFormatError) -> None:
        if not skip_bad:
            raise e
        skipped.append({"path": e.path or str(raw_dir), "error": str(e)})

    # File columns are relative to the raw/ root, also when `raw_dir` is one run.
    root = raw_dir.parent if (raw_dir / "run.json").is_file() else raw_dir
    for run_dir in run_dirs(raw_dir):
        if runs is not None and run_dir.name not in runs:
            continue
        try:
            run = _run_columns(run_dir / "run.json")
        except RawFormatError as e:
            bad(e)
            continue
        for sidecar in sorted(run_dir.glob("*/*/*/c*-r*.json")):
            if _SIDECAR_NAME.fullmatch(sidecar.name) and (
                cells is None or _cell_of(run_dir, sidecar) in cells
            ):
                try:
                    rows.append(_cell_row(root, sidecar, run, cache))
                except RawFormatError as e:
                    bad(e)
    # Sorted here, as sort_values(SORT_KEYS, kind="stable") would (the keys are never
    # missing), so that the flags can be read from the row dicts in the table's order.
    rows.sort(key=lambda r: tuple(r[k] for k in SORT_KEYS))
    _offered_pct(rows)
    df = pd.DataFrame({c: pd.Series([r.get(c) for r in rows], dtype=DTYPES[c]) for c in COLUMNS})
    df = add_intervals(df)
    cell_stats = df[CELL_STATS].astype(object)
    stats = cell_stats.where(cell_stats.notna(), None).to_numpy().tolist()
    for row, values in zip(rows, stats, strict=True):
        row.update(zip(CELL_STATS, values, strict=True))  # the flags read these too
    df = add_flags(df, rows)
    df.attrs["skipped"] = skipped
    if cache is not None:
        cache.save()
    return df


def _cell_of(run_dir: Path, sidecar: Path) -> str:
    """`server/app/workload/c<N>` of a sidecar `…/c<N>-r<k>.json`."""
    folder = sidecar.parent.relative_to(run_dir).as_posix()
    return f"{folder}/{sidecar.name.partition('-r')[0]}"


def _offered_pct(rows: list[dict[str, Any]]) -> None:
    """Each open-loop row's offered rate as a share (%) of its closed-loop cell's mean
    req/s in the same run: the sidecar's basis for a relative rate, else the mean of
    the closed-loop rows in the table (an absolute rate, or an imported cell)."""
    sums: dict[tuple[Any, ...], list[float]] = {}
    for r in rows:
        if r.get("loop") == "closed" and r.get("status") == "ok":
            rps = r.get("requests_per_sec")
            if isinstance(rps, int | float) and rps > 0:
                key = tuple(r[k] for k in ("run_id", "server", "app", "workload", "connections"))
                sums.setdefault(key, []).append(float(rps))
    for r in rows:
        offered = r.get("offered_rate_rps")
        if r.get("loop") != "open" or not isinstance(offered, int | float):
            continue
        basis = r.get("closed_loop_rps")
        if not isinstance(basis, int | float) or basis <= 0:
            key = tuple(r[k] for k in ("run_id", "server", "app", "workload", "connections"))
            values = sums.get(key)
            basis = sum(values) / len(values) if values else None
            r["closed_loop_rps"] = basis
        r["offered_pct"] = 100 * offered / basis if basis else None


def run_dirs(raw_dir: Path) -> list[Path]:
    if (raw_dir / "run.json").is_file():
        return [raw_dir]
    if not raw_dir.is_dir():
        raise RawFormatError("expected a raw/ directory, found none", path=str(raw_dir))
    return sorted(p for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_json(path: Path, kind: str | None = None, version: int = 0) -> dict[str, Any]:
    """A JSON object; with `kind`, a document of that kind in format `version`."""
    return read_document(path, kind, (version,)) if kind else read_document(path)


def _checked(values: dict[str, Any], path: Path) -> dict[str, Any]:
    # A value of the wrong JSON type would otherwise fail deep inside pandas.
    for key, v in values.items():
        want = _TYPES.get(DTYPES[key], (int, float))
        if v is not None and (
            not isinstance(v, want) or (isinstance(v, bool) and bool not in want)
        ):
            raise RawFormatError(f"{key}: expected {want[0].__name__}, found {v!r}", path=str(path))
    return values


def _run_columns(path: Path) -> dict[str, Any]:
    run = read_run(path)
    host, versions, git = run.host, run.versions, run.git
    cols = {
        "run_id": run.run_id,
        "profile": run.profile,
        "run_status": run.status,
        "run_started_at": run.started_at,
        "run_ended_at": run.ended_at,
        # Its interpreter's path, if recorded, relative to the project (the table is published).
        "python_version": relative_to(str(versions["python"]), project_roots(run.as_dict()))
        if versions.get("python")
        else None,
        "wrk_version": versions.get("wrk"),
        "host": host.get("hostname"),
        **{k: host.get(k) for k in ("cpu_model", "cores", "kernel", "os")},
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        # import_logs marks the run (`imported_from`), import_metrics the run or the cell.
        "imported": run.imported_from is not None or run.imported,
        "precision_target": run.settings.get("precision"),
        "client_ceiling_rps": _ceiling(path.parent, run),
    }
    # Versions are keyed by server and app id (the bench looks up their packages).
    return {**_checked(cols, path), "versions": dict(versions)}


def _ceiling(run_dir: Path, run: RunMeta) -> float | None:
    """The lowest client ceiling measured for the run (start, end, or `invoke calibrate`):
    a cell near the lowest is near what wrk could drive at some point of the run."""
    found = [c.get("requests_per_sec") for c in run.calibrations if c.get("status") == "ok"]
    path = run_dir / "calibration.json"
    if path.is_file():
        doc = read_json(path, "calibration", CALIBRATION_FORMAT_VERSION)
        if doc.get("status") == "ok":
            found.append(doc.get("requests_per_sec"))
    values = [float(v) for v in found if isinstance(v, int | float) and v > 0]
    return min(values) if values else None


def _cell_row(
    raw_dir: Path, sidecar: Path, run: dict[str, Any], cache: ParseCache | None = None
) -> dict[str, Any]:
    cell = read_cell(sidecar)
    row = {
        **{k: getattr(cell, k) for k in SORT_KEYS + ["status", "reason", "url", "threads"]},
        **{k: getattr(cell, k) for k in ("nofile_limit", "started_at", "ended_at")},
        **{k: getattr(cell, k) for k in ("server_ready_s", "wrk_exit_code", "server_exit_code")},
        "duration_configured_s": cell.duration_configured_s,
        "warmup_configured_s": cell.warmup_configured_s,
        "timeout_configured_s": cell.timeout_configured_s,
    }
    if cell.run_id != run["run_id"]:
        raise RawFormatError(
            f"run_id {cell.run_id!r} is not this run's {run['run_id']!r}", path=str(sidecar)
        )
    row.update(
        loop=cell.loop,
        offered_rate_rps=cell.offered_rate_rps,
        closed_loop_rps=cell.closed_loop_rps,
    )
    paths = {k: sidecar.parent / name for k, name in cell.files.items()}
    cell_dir = sidecar.parent.relative_to(raw_dir).as_posix()
    rel = {f"{k}_file": f"{cell_dir}/{name}" for k, name in cell.files.items()}
    versions = run["versions"]
    row.update(
        {k: v for k, v in run.items() if k != "versions"},
        **sidecar_columns(cell),
        stdout_file=rel.get("stdout_file"),
        lua_json_file=rel.get("lua_json_file"),
        metrics_file=rel.get("metrics_file"),
        samples_file=rel.get("samples_file"),
        open_json_file=rel.get("open_json_file"),
        has_server_metrics="metrics" in paths,
        server_version=versions.get(cell.server),
        framework_version=versions.get(cell.app),
    )
    row["imported"] = row["imported"] or cell.imported
    if "samples" in paths:  # also for a failed cell: the sampler may have seen a crash
        path = paths["samples"]
        doc = read_json(path, "samples", samples.FORMAT_VERSION)
        row.update(_checked(samples_columns(doc, str(path)), path))
    if row.get("wrk_cpu_pct_mean") is None and cell.wrk_cpu_pct_mean is not None:
        # wrk ran on another host, where no sampler watched it: its agent read wrk's CPU
        # time at exit (wait4); with several clients, the busiest one's.
        row["wrk_cpu_pct_mean"] = float(cell.wrk_cpu_pct_mean)
    if cell.ok and cell.loop == "open" and "open_json" not in paths and "stdout" in paths:
        # wrk2's output (import-logs): its printed latency is corrected for coordinated
        # omission, its -U block (if printed) is not; the rate came from the file name.
        result = _parse(paths["stdout"], row["threads"], row["connections"], cache, run["run_id"])
        row.update(figures(result), **wrk2_open_loop(result, cell.offered_rate_rps))
        row["url"] = row["url"] or result.url
        row["threads"] = row["threads"] or result.threads
    elif cell.ok and cell.loop == "open":
        if "open_json" not in paths:
            raise RawFormatError(
                "open-loop cell 'ok' but files has no 'open_json'", path=str(sidecar)
            )
        opened = parse_openloop_file(paths["open_json"])
        row.update(open_loop_figures(opened))
        row["offered_rate_rps"] = cell.offered_rate_rps or opened.offered_rate_rps
        row["threads"] = row["threads"] or opened.connections
    elif cell.ok and "stdout" not in paths and "lua_json" in paths:
        # Several clients: each one's output is kept as .client<i>.*; the cell's own
        # figures are the merged Lua report (docs/raw-format.md, "Several hosts").
        merged = read_json(paths["lua_json"])
        row.update(report_figures(merged, paths["lua_json"]))
        row.update(_checked(session_columns(merged, str(paths["lua_json"])), paths["lua_json"]))
    elif cell.ok:
        if "stdout" not in paths:
            raise RawFormatError("status 'ok' but files has no 'stdout'", path=str(sidecar))
        result = _parse(paths["stdout"], row["threads"], row["connections"], cache, run["run_id"])
        report = read_json(paths["lua_json"]) if "lua_json" in paths else None
        row.update(figures(result, report, paths.get("lua_json", "")))
        if report is not None:
            lua_json = paths["lua_json"]
            row.update(_checked(session_columns(report, str(lua_json)), lua_json))
        row["url"] = row["url"] or result.url
        row["threads"] = row["threads"] or result.threads
    threads = row["threads"]
    row["connections_effective"] = (
        effective_connections(threads, cell.connections) if threads else None
    )
    return row


def _parse(
    path: Path, threads: int | None, connections: int, cache: ParseCache | None, run_id: str
) -> WrkResult:
    try:
        result = cache.parse(path, run_id) if cache is not None else parse_wrk_file(path)
    except OSError as e:
        raise RawFormatError(f"cannot read: {e.strerror}", path=str(path)) from None
    if result.connections not in (None, connections) or result.threads not in (None, threads):
        msg = (
            f"wrk printed {result.threads} threads and {result.connections} connections,"
            f" the sidecar says {threads} and {connections}"
        )
        raise RawFormatError(msg, path=str(path))
    return result
