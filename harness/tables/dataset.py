"""Table stage: a raw/ tree -> one tidy DataFrame, one row per cell and repeat.

Reads each run's run.json, every cell sidecar `c<N>-r<k>.json`, the wrk stdout it names
(through parse_wrk_file), the Lua report and the sampler's `.samples.json` beside it.
Where a report exists its exact counters and microseconds fill the figure columns; the
rounded printed figures stay in the `*_printed` twins. Failed cells stay as rows with
empty figures, never zeros. The validity flags of harness/tables/flags.py are filled last.
Column order, dtypes and row order are fixed; docs/schema.md documents every column.
`load_calibrations` reads each run's `calibration.json` (the client ceiling) as is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pandas as pd

from harness.parse.wrk import RawFormatError, WrkResult, parse_wrk_file
from harness.raw import samples
from harness.tables.cellcolumns import samples_columns, session_columns, sidecar_columns
from harness.tables.flags import add_flags
from harness.tables.parsecache import ParseCache
from harness.tables.schema import COLUMNS, DTYPES, SORT_KEYS, figures, report_figures

FORMAT_VERSION = 1  # of run.json and the cell sidecars (docs/raw-format.md)
# Of calibration.json, versioned by harness/bench/calibrate.py (not imported: it starts nginx).
CALIBRATION_FORMAT_VERSION = 1
_SIDECAR_NAME = re.compile(r"c\d+-r\d+\.json")
_TYPES: dict[str, tuple[type, ...]] = {"Int64": (int,), "str": (str,), "boolean": (bool,)}


def load_runs(
    raw_dir: str | Path,
    skip_bad: bool = False,
    cache: ParseCache | None = None,
    runs: Collection[str] | None = None,
) -> pd.DataFrame:
    """Every cell of every run under `raw_dir` (or of the one run `raw_dir` is).

    With a `cache` (harness/tables/parsecache.py), wrk outputs parsed before are not parsed again.
    `runs`: only the runs in these folders of `raw_dir` (one table for several runs costs
    less than one per run: harness/site/tablecache.py builds them in batches).

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
    for run_dir in _run_dirs(raw_dir):
        if runs is not None and run_dir.name not in runs:
            continue
        try:
            run = _run_columns(run_dir / "run.json")
        except RawFormatError as e:
            bad(e)
            continue
        for sidecar in sorted(run_dir.glob("*/*/*/c*-r*.json")):
            if _SIDECAR_NAME.fullmatch(sidecar.name):
                try:
                    rows.append(_cell_row(root, sidecar, run, cache))
                except RawFormatError as e:
                    bad(e)
    # Sorted here, as sort_values(SORT_KEYS, kind="stable") would (the keys are never
    # missing), so that the flags can be read from the row dicts in the table's order.
    rows.sort(key=lambda r: tuple(r[k] for k in SORT_KEYS))
    df = pd.DataFrame({c: pd.Series([r.get(c) for r in rows], dtype=DTYPES[c]) for c in COLUMNS})
    df = add_flags(df, rows)
    df.attrs["skipped"] = skipped
    if cache is not None:
        cache.save()
    return df


def load_calibrations(raw_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Run id -> its `calibration.json` (harness/bench/calibrate.py: wrk against nginx), as
    recorded, plus `path` relative to raw/. Runs without one are left out; a file that
    cannot be read raises RawFormatError naming it."""
    raw_dir = Path(raw_dir)
    root = raw_dir.parent if (raw_dir / "run.json").is_file() else raw_dir
    found = {}
    for run_dir in _run_dirs(raw_dir):
        path = run_dir / "calibration.json"
        if path.is_file():
            doc = _read_json(path, "calibration", CALIBRATION_FORMAT_VERSION)
            found[run_dir.name] = {**doc, "path": path.relative_to(root).as_posix()}
    return found


def _run_dirs(raw_dir: Path) -> list[Path]:
    if (raw_dir / "run.json").is_file():
        return [raw_dir]
    if not raw_dir.is_dir():
        raise RawFormatError("expected a raw/ directory, found none", path=str(raw_dir))
    return sorted(p for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_json(path: Path, kind: str | None = None, known: int = FORMAT_VERSION) -> dict[str, Any]:
    """A JSON object; with `kind`, a document of that kind in format version `known`."""
    try:
        doc = json.loads(path.read_bytes())
    except OSError as e:
        raise RawFormatError(f"cannot read: {e.strerror}", path=str(path)) from None
    except json.JSONDecodeError as e:
        msg = f"expected JSON, found {e.msg.lower()} (column {e.colno})"
        raise RawFormatError(msg, e.lineno, str(path)) from None
    except UnicodeDecodeError:
        raise RawFormatError("expected UTF-8 JSON, found other bytes", path=str(path)) from None
    if not isinstance(doc, dict):
        raise RawFormatError(f"expected a JSON object, found {type(doc).__name__}", 1, str(path))
    if kind is not None:
        version = doc.get("format_version")
        if type(version) is not int or version != known:
            msg = f"unknown format_version {version!r} (this code reads {known})"
            raise RawFormatError(msg, path=str(path))
        if doc.get("kind") != kind:
            raise RawFormatError(
                f"expected kind {kind!r}, found {doc.get('kind')!r}", path=str(path)
            )
    return doc


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
    run = _read_json(path, "run")
    host, versions, git = (run.get(k) or {} for k in ("host", "versions", "git"))
    if not all(isinstance(d, dict) for d in (host, versions, git)):
        raise RawFormatError("host, versions, git: expected JSON objects", path=str(path))
    if not all(v is None or isinstance(v, str) for v in versions.values()):
        raise RawFormatError("versions: expected strings", path=str(path))
    cols = {
        "run_id": run.get("run_id"),
        "profile": run.get("profile"),
        "run_status": run.get("status"),
        "run_started_at": run.get("started_at"),
        "run_ended_at": run.get("ended_at"),
        "python_version": versions.get("python"),
        "wrk_version": versions.get("wrk"),
        "host": host.get("hostname"),
        **{k: host.get(k) for k in ("cpu_model", "cores", "kernel", "os")},
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        # import_logs marks the run (`imported_from`), import_metrics the run or the cell.
        "imported": "imported_from" in run or run.get("imported") is True,
    }
    if cols["run_id"] is None:
        raise RawFormatError("missing field 'run_id'", path=str(path))
    # Versions are keyed by server and app id (the bench looks up their packages).
    return {**_checked(cols, path), "versions": versions}


def _cell_row(
    raw_dir: Path, sidecar: Path, run: dict[str, Any], cache: ParseCache | None = None
) -> dict[str, Any]:
    cell = _read_json(sidecar, "cell")
    get = cell.get
    row = _checked(
        {
            **{k: get(k) for k in SORT_KEYS + ["status", "reason", "url", "threads"]},
            **{k: get(k) for k in ("nofile_limit", "started_at", "ended_at", "server_ready_s")},
            **{k: get(k) for k in ("wrk_exit_code", "server_exit_code")},
            "duration_configured_s": get("duration_s"),
            "warmup_configured_s": get("warmup_s"),
            "timeout_configured_s": get("timeout_s"),
        },
        sidecar,
    )
    for key in SORT_KEYS + ["status"]:
        if row[key] is None:
            raise RawFormatError(f"missing field {key!r}", path=str(sidecar))
    if row["status"] not in ("ok", "failed"):
        raise RawFormatError(
            f"status: expected 'ok' or 'failed', found {row['status']!r}", path=str(sidecar)
        )
    if row["run_id"] != run["run_id"]:
        raise RawFormatError(
            f"run_id {row['run_id']!r} is not this run's {run['run_id']!r}", path=str(sidecar)
        )
    files = get("files") or {}
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise RawFormatError("files: expected an object of file names", path=str(sidecar))
    paths = {k: sidecar.parent / name for k, name in files.items()}
    cell_dir = sidecar.parent.relative_to(raw_dir).as_posix()
    rel = {f"{k}_file": f"{cell_dir}/{name}" for k, name in files.items()}
    versions = run["versions"]
    imported = get("imported")
    if imported is not None and not isinstance(imported, bool):
        raise RawFormatError(f"imported: expected bool, found {imported!r}", path=str(sidecar))
    row.update(
        {k: v for k, v in run.items() if k != "versions"},
        **_checked(sidecar_columns(cell, str(sidecar)), sidecar),
        stdout_file=rel.get("stdout_file"),
        lua_json_file=rel.get("lua_json_file"),
        metrics_file=rel.get("metrics_file"),
        samples_file=rel.get("samples_file"),
        has_server_metrics="metrics" in paths,
        server_version=versions.get(row["server"]),
        framework_version=versions.get(row["app"]),
    )
    row["imported"] = row["imported"] or bool(imported)
    if "samples" in paths:  # also for a failed cell: the sampler may have seen a crash
        path = paths["samples"]
        doc = _read_json(path, "samples", samples.FORMAT_VERSION)
        row.update(_checked(samples_columns(doc, str(path)), path))
    if row.get("wrk_cpu_pct_mean") is None and get("wrk_cpu_pct_mean") is not None:
        # wrk ran on another host, where no sampler watched it: its agent read wrk's CPU
        # time at exit (wait4); with several clients, the busiest one's.
        cpu = get("wrk_cpu_pct_mean")
        if isinstance(cpu, bool) or not isinstance(cpu, int | float):
            raise RawFormatError(
                f"wrk_cpu_pct_mean: expected a number, found {cpu!r}", path=str(sidecar)
            )
        row["wrk_cpu_pct_mean"] = float(cpu)
    if row["status"] == "ok" and "stdout" not in paths and "lua_json" in paths:
        # Several clients: each one's output is kept as .client<i>.*; the cell's own
        # figures are the merged Lua report (docs/raw-format.md, "Several hosts").
        merged = _read_json(paths["lua_json"])
        row.update(report_figures(merged, paths["lua_json"]))
        row.update(_checked(session_columns(merged, str(paths["lua_json"])), paths["lua_json"]))
    elif row["status"] == "ok":
        if "stdout" not in paths:
            raise RawFormatError("status 'ok' but files has no 'stdout'", path=str(sidecar))
        result = _parse(paths["stdout"], row["threads"], row["connections"], cache, run["run_id"])
        report = _read_json(paths["lua_json"]) if "lua_json" in paths else None
        row.update(figures(result, report, paths.get("lua_json", "")))
        if report is not None:
            lua_json = paths["lua_json"]
            row.update(_checked(session_columns(report, str(lua_json)), lua_json))
        row["url"] = row["url"] or result.url
        row["threads"] = row["threads"] or result.threads
    threads, conns = row["threads"], row["connections"]
    # wrk gives each thread connections // threads, so -c10 -t4 opens 8.
    row["connections_effective"] = threads * (conns // threads) if threads else None
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
