"""Bench side: turn a directory of plain wrk outputs into a raw run (docs/raw-format.md).

`import_logs(src_dir, pattern, out_dir) -> run_id` reads files such as the study's
`uwsgi.500.log`, takes the server and connection count (and optionally app, workload,
repeat) from each file name through `pattern`, copies each text byte for byte to
`<out_dir>/<run-id>/<server>/<app>/<workload>/c<N>-r<k>.txt` and writes the sidecars.

- Pattern fields: `{server}` and `{connections}` are required; `{app}`, `{workload}`,
  `{repeat}` and `{rate}` are optional. Numbers are digits; names are anything but `/`, matched as
  short as the rest of the pattern allows (`{server}.{connections}.log` reads
  `gunicorn.gthread.500.log` as server `gunicorn.gthread`).
- Repeats: files may sit in one level of subdirectories named `r1`, `run2`, `repeat3`
  or `4` (case-insensitive), which gives the repeat; else `{repeat}`, else 1.
- Open loop: wrk2's output (a fixed rate, latency corrected for coordinated omission)
  and the open-loop client's report (harness/bench/lua/openloop.lua's `.open.json`)
  become open-loop cells at their offered rate, which wrk2 does not print: `{rate}`
  (requests per second) gives it, and a wrk2 file without it is refused. The report
  says its own rate (`{rate}`, if given, must agree). A closed-loop wrk output with a
  `{rate}` is refused: wrk has no rate.
- What the logs cannot tell is recorded as unknown: app and workload `unknown` unless
  given, versions, host facts, argv, CPUs and limits `null`, profile `imported`.
  Threads, duration and URL come from wrk's own header lines.
- A text without a wrk summary becomes a failed cell whose reason says so; two files
  for one cell, or a header that contradicts the file name stop the import with one
  error listing every offending file.
- Files that do not match (a CSV the older study left beside its logs, a file in a
  folder that is not a repeat directory, anything but a regular file) are skipped: each
  is passed to `note`, and run.json lists them under `import_skipped` ({"path", "why"}).
  `strict=True` refuses the import instead, naming them. Hidden files and directories
  (names starting with ".") are ignored.
- Nothing is written outside `out_dir`. A name field that is not a plain directory name
  (".", "..", a path separator, a drive such as "C:") is refused naming the file, and
  every path written is resolved and checked to lie under `out_dir` before the first
  write.
- Symbolic links in the source directory (to files or directories) are refused, naming
  each: a link can point anywhere, and a text copied from outside the directory would
  be published as a measurement. Copy the file itself into the directory instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness.matrix.model import Cell, OfferedRate
from harness.parse.openloop import OpenLoopResult, is_openloop_report, parse_openloop
from harness.parse.wrk import RawFormatError, WrkResult, parse_wrk
from harness.raw.importsource import (
    ImportLogsError,
    Skipped,
    candidates,
    confined,
    read_bytes,
    unsafe_name,
)
from harness.raw.records import CellSidecar, RunMeta
from harness.raw.store import RunStore, check_writable, utc_now, write_atomic

FIELDS = {"server": r"[^/]+?", "app": r"[^/]+?", "workload": r"[^/]+?"}
NUMBERS = ("connections", "repeat", "rate")
UNKNOWN = "unknown"
HOST_KEYS = "hostname cpu_model cores memory_bytes kernel os nofile_soft nofile_hard".split()


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """`{server}.{connections}.log` -> an anchored regex with one named group per field."""
    if "/" in pattern:
        raise ImportLogsError(f"pattern {pattern!r}: a file name, not a path (no '/')")
    parts, seen = [], set()
    for literal, field in re.findall(r"([^{]*)(?:\{([^}]*)\})?", pattern):
        parts.append(re.escape(literal))
        if not field:
            continue
        if field not in FIELDS and field not in NUMBERS:
            known = ", ".join(f"{{{k}}}" for k in [*FIELDS, *NUMBERS])
            raise ImportLogsError(
                f"pattern {pattern!r}: unknown field {{{field}}} (known: {known})"
            )
        if field in seen:
            raise ImportLogsError(f"pattern {pattern!r}: field {{{field}}} appears twice")
        seen.add(field)
        parts.append(f"(?P<{field}>{r'[0-9]+' if field in NUMBERS else FIELDS[field]})")
    missing = [f"{{{f}}}" for f in ("server", "connections") if f not in seen]
    if missing:
        raise ImportLogsError(f"pattern {pattern!r}: needs {' and '.join(missing)}")
    return re.compile("".join(parts))


def _cells(
    src: Path, regex: re.Pattern[str], pattern: str, strict: bool
) -> tuple[dict[Cell, Path], list[Skipped]]:
    found, skipped, links = candidates(src)
    if links:
        listed = ", ".join(p.relative_to(src).as_posix() for p in links)
        raise ImportLogsError(
            f"{src}: symbolic links are not imported (copy the files themselves): {listed}"
        )
    cells: dict[Cell, Path] = {}
    clashes, unsafe = [], []
    for path, dir_repeat in found:
        rel = path.relative_to(src).as_posix()
        m = regex.fullmatch(path.name)
        if m is None:
            skipped.append({"path": rel, "why": f"name does not match the pattern {pattern!r}"})
            continue
        fields = m.groupdict()
        bad = [f for f in FIELDS if fields.get(f) is not None and unsafe_name(fields[f])]
        if bad:
            unsafe.append(f"{rel} ({', '.join(f'{f} {fields[f]!r}' for f in bad)})")
            continue
        repeat = int(fields["repeat"]) if fields.get("repeat") else dir_repeat or 1
        if dir_repeat and fields.get("repeat") and int(fields["repeat"]) != dir_repeat:
            clashes.append(f"{rel}: repeat {fields['repeat']} in a repeat-{dir_repeat} directory")
            continue
        rate = int(fields["rate"]) if fields.get("rate") else None
        cell = Cell(
            fields["server"],
            fields.get("app") or UNKNOWN,
            fields.get("workload") or UNKNOWN,
            int(fields["connections"]),
            repeat,
            None if rate is None else OfferedRate(float(rate), False),
        )
        if rate is None and is_openloop_report(read_bytes(path)):
            cell = replace(cell, rate=_report_rate(path))
        if cell.connections < 1 or repeat < 1 or rate == 0:
            clashes.append(f"{rel}: connections, repeat and rate count from 1")
        elif cell in cells:
            first = cells[cell].relative_to(src).as_posix()
            clashes.append(f"{first} and {rel}: both {cell.key}")
        else:
            cells[cell] = path
    if unsafe:
        raise ImportLogsError(
            f"{src}: cannot import {'; '.join(unsafe)}: a name field must be a plain folder"
            " name, not '.', '..', one with a path separator or a drive"
        )
    if not cells and not clashes:
        names = [s["path"] for s in skipped]
        shown = ", ".join(names[:10]) + (" …" if len(names) > 10 else "")
        raise ImportLogsError(
            f"pattern {pattern!r} matches none of the {len(names)} files in {src}: {shown}"
        )
    if strict and skipped:
        clashes.append(
            "files that do not match (--strict): "
            + ", ".join(f"{s['path']} ({s['why']})" for s in skipped)
        )
    if clashes:
        raise ImportLogsError(f"{src}: cannot import: {'; '.join(clashes)}")
    return cells, sorted(skipped, key=lambda s: s["path"])


def _report_rate(path: Path) -> OfferedRate | None:
    """The offered rate an open-loop report says it ran at (None: unreadable)."""
    try:
        return OfferedRate(parse_openloop(read_bytes(path), str(path)).offered_rate_rps, False)
    except RawFormatError:
        return None


Parsed = WrkResult | OpenLoopResult


def _read(path: Path, cell: Cell) -> tuple[bytes, Parsed | None, str | None]:
    data = read_bytes(path)
    if is_openloop_report(data):
        try:
            report = parse_openloop(data, str(path))
        except RawFormatError as e:
            return data, None, f"open-loop report {path.name} not readable: {e}"
        if cell.rate is not None and abs(cell.rate.value - report.offered_rate_rps) > 0.5:
            raise ImportLogsError(
                f"{path}: the file name says rate {cell.rate.label}, the report says "
                f"{report.offered_rate_rps:g}; fix the pattern or the name"
            )
        if report.connections != cell.connections:
            raise ImportLogsError(
                f"{path}: the file name says {cell.connections} connections, the report "
                f"says {report.connections}; fix the pattern or the name"
            )
        return data, report, None
    try:
        result = parse_wrk(data.decode("utf-8", "replace"))
    except RawFormatError as e:
        return data, None, f"no wrk summary in {path.name}: {e}"
    if result.connections not in (None, cell.connections):
        raise ImportLogsError(
            f"{path}: the file name says {cell.connections} connections, wrk's header says "
            f"{result.connections}; fix the pattern or the name"
        )
    if result.tool == "wrk2" and cell.rate is None:
        raise ImportLogsError(
            f"{path}: wrk2's output (open loop) does not print the rate it offered (-R): "
            "give it in the file name with {rate} in the pattern, e.g. "
            "'{server}.{connections}.{rate}.log'"
        )
    if result.tool == "wrk" and cell.rate is not None:
        raise ImportLogsError(
            f"{path}: the file name gives rate {cell.rate.label}, but this is closed-loop "
            "wrk output (wrk has no rate; wrk2 prints its calibration or HdrHistogram "
            "lines); drop {rate} from the pattern for it"
        )
    return data, result, None


def _run_id(out: Path, profile: str) -> str:
    # Run ids are UTC start times to the second; a second import within the same second
    # takes the next free second rather than overwrite or fail.
    now = datetime.now(UTC)
    for step in range(60):
        run_id = (now + timedelta(seconds=step)).strftime("%Y%m%dT%H%M%SZ") + f"-{profile}"
        if not (out / run_id).exists():
            return run_id
    raise ImportLogsError(f"{out}: no free run id for profile {profile!r}")


def import_logs(
    src_dir: str | Path,
    pattern: str,
    out_dir: str | Path,
    profile: str = "imported",
    strict: bool = False,
    note: Callable[[str], None] | None = None,
) -> str:
    """Import every wrk output in `src_dir` named by `pattern` as one run; return its id.

    Files that do not match are skipped, passed to `note` one line each and recorded
    in run.json's `import_skipped`; with `strict` they refuse the import instead.
    """
    src, out = Path(src_dir), Path(out_dir)
    if not src.is_dir():
        raise ImportLogsError(f"{src}: not a directory")
    if unsafe_name(profile):
        raise ImportLogsError(f"profile {profile!r}: not a plain name (it names the run folder)")
    cells, skipped = _cells(src, compile_pattern(pattern), pattern, strict)
    check_writable(out, "--raw")
    store = RunStore(out, _run_id(out, profile))
    targets = {store.run_json: "run.json"}
    for cell, path in cells.items():
        files = store.cell_files(cell)
        targets.update(
            dict.fromkeys((files["stdout"], files["open_json"], files["sidecar"]), str(path))
        )
    confined(out, targets)  # before the first write
    texts = {cell: _read(path, cell) for cell, path in cells.items()}
    if note is not None:
        for s in skipped:
            note(f"skipped {src / s['path']}: {s['why']}")
    order = sorted(cells, key=lambda c: (c.repeat, c.server, c.app, c.workload, c.connections))
    parsed = [r for _d, r, _e in texts.values() if isinstance(r, WrkResult)]

    def same(values: list[Any]) -> Any:
        return values[0] if values and all(v == values[0] for v in values) else None

    servers = sorted({c.server for c in cells})
    unknown_settings = "warmup_s timeout_s workers server_threads seed server_cpus client_cpus"
    store.write_run(
        RunMeta(
            run_id=store.run_id,
            profile=profile,
            status="complete",
            settings={
                "servers": servers,
                "apps": sorted({c.app for c in cells}),
                "workloads": sorted({c.workload for c in cells}),
                "connections": sorted({c.connections for c in cells}),
                "repeats": max(c.repeat for c in cells),
                "duration_s": same([r.test_duration_s for r in parsed]),
                "threads": same([r.threads for r in parsed]),
                "shuffle": False,
                **dict.fromkeys(unknown_settings.split()),
            },
            cells_planned=tuple(c.key for c in order),
            host=dict.fromkeys(HOST_KEYS),
            versions={"python": None, "wrk": None, **dict.fromkeys(servers)},
            servers={s: {"worker_model": UNKNOWN, "settings": {}} for s in servers},
            git={"commit": None, "dirty": None},
            argv=("import-logs", str(src), pattern),
            imported_from={"src_dir": str(src.resolve()), "pattern": pattern, "at": utc_now()},
            import_skipped=tuple(skipped),
        )
    )
    for cell in order:
        data, result, reason = texts[cell]
        kind = "open_json" if is_openloop_report(data) else "stdout"
        write_atomic(store.cell_files(cell)[kind], data)
        # Where each text came from, so an import can be checked against its source.
        source = {"path": cells[cell].relative_to(src).as_posix(), "sha256": _sha256(data)}
        store.write_cell(replace(_cell_record(store.run_id, cell, result, reason), source=source))
    return store.run_id


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cell_record(run_id: str, cell: Cell, result: Parsed | None, reason: str | None) -> CellSidecar:
    """What a log tells of its cell; everything else (argv, CPUs, limits) is unknown."""
    if isinstance(result, OpenLoopResult):
        assert cell.rate is not None
        return CellSidecar(
            run_id=run_id, server=cell.server, app=cell.app, workload=cell.workload,
            connections=cell.connections, repeat=cell.repeat, status="ok",
            threads=result.connections, rate=cell.rate.label,
            offered_rate_rps=result.offered_rate_rps,
        )  # fmt: skip
    rate = cell.rate
    return CellSidecar(
        rate=None if rate is None else rate.label,
        offered_rate_rps=None if rate is None else rate.value,
        run_id=run_id,
        server=cell.server,
        app=cell.app,
        workload=cell.workload,
        connections=cell.connections,
        repeat=cell.repeat,
        status="ok" if result else "failed",
        reason=reason,
        threads=result.threads if result else None,
        duration_configured_s=result.test_duration_s if result else None,
        url=result.url if result else None,
    )
