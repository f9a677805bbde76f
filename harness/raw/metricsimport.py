"""Server-side latency, import: a service the tool did not start -> a cell in `raw/`.

`import_metrics(prom_files, wrk_file, run_dir, …)` takes wrk's stdout and one or two
Prometheus scrapes of a service measured elsewhere (the study's Kask case), and writes
them into the raw tree like a measured cell: wrk's text and the scrapes byte for byte,
the histogram delta as `c<N>-r<k>.metrics.prom`, and a cell sidecar marked
`"imported": true` whose unknown fields are null. Nothing is started or scraped here.

Two checks keep a wrong pair out: the requests the server's histogram counted in the
scrape window must agree with wrk's (`check_counts`: a dump over the service's life
beside one short wrk run is refused), and a cell imported before is not silently given
a second repeat: a second import needs its `--repeat`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from harness.errors import UserError
from harness.parse.prometheus import PromHistError, histogram_delta, parse_histograms
from harness.parse.records import RawFormatError
from harness.parse.wrk import parse_wrk
from harness.raw.records import CellSidecar, RunMeta, read_run
from harness.raw.store import RunStore, utc_now, write_atomic

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class MetricsImportError(UserError, ValueError):
    """Input that cannot be imported; the message names the file and the fix."""


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise MetricsImportError(f"{path}: cannot read: {e.strerror}") from None


# Requests in the scrape window but not in wrk's count: those in flight when wrk stopped
# (up to one per connection) and a share for a window a little wider than wrk's run.
COUNT_TOLERANCE = 0.10


def _repeats(cell_dir: Path, connections: int) -> set[int]:
    return {int(m.group(1)) for p in cell_dir.glob(f"c{connections}-r*.json")
            if (m := re.fullmatch(rf"c{connections}-r(\d+)\.json", p.name))}  # fmt: skip


def check_request_counts(server: float, wrk: int, connections: int, source: str) -> None:
    """The server's count over the scrape window agrees with wrk's, or a
    MetricsImportError says by how much and what to do."""
    low = wrk * (1 - COUNT_TOLERANCE) - connections
    high = wrk * (1 + COUNT_TOLERANCE) + connections
    if not low <= server <= high:
        raise MetricsImportError(
            f"{source}: the histogram counts {server:,.0f} requests, wrk made {wrk:,} "
            f"(more than {COUNT_TOLERANCE:.0%} apart, beyond the {connections} in flight): "
            "not the scrapes of this load? Scrape just before and just after wrk runs and "
            "give both (--prom BEFORE,AFTER), or --ignore-counts to import it anyway"
        )


def import_metrics(
    prom_files: Sequence[Path],
    wrk_file: Path,
    run_dir: Path,
    *,
    server: str,
    app: str,
    workload: str = "imported",
    repeat: int | None = None,
    lua_json: Path | None = None,
    note: str = "",
    check_counts: bool = True,
) -> Path:
    """Add one imported cell to `run_dir` (created if new); return its sidecar path.

    `prom_files` is either one file (a histogram counted from zero for this load, e.g.
    a service started just for it) or two (scrapes before and after the load; their
    difference is stored). Connections, threads, duration and URL come from wrk's own
    header lines. `repeat` None: the first repeat of a cell not imported before.
    """
    for what, ident in (("server", server), ("app", app), ("workload", workload)):
        if not _ID.match(ident):
            raise MetricsImportError(f"--{what}: {ident!r} must be letters, digits, . _ -")
    if len(prom_files) not in (1, 2):
        raise MetricsImportError("give one Prometheus file (a delta) or two (before, after)")
    wrk_bytes = _read(wrk_file)
    try:
        wrk = parse_wrk(wrk_bytes.decode("utf-8", "replace"))
    except RawFormatError as e:
        raise MetricsImportError(str(e.at(wrk_file))) from None
    if wrk.connections is None:
        raise MetricsImportError(f"{wrk_file}: no '<N> threads and <N> connections' line")
    texts = [_read(p) for p in prom_files]
    try:
        if len(texts) == 2:
            delta = histogram_delta(texts[0].decode(), texts[1].decode())
        else:
            delta = texts[0].decode()
        series = parse_histograms(delta, str(prom_files[-1]))
        if not series:
            raise MetricsImportError(f"{prom_files[-1]}: no histogram series found")
    except (PromHistError, UnicodeDecodeError) as e:
        raise MetricsImportError(str(e)) from None
    # Each histogram family counts every request once (over all its label sets).
    families: dict[str, float] = {}
    for s in series:
        families[s.name] = families.get(s.name, 0.0) + s.total
    server_count = max(families.values())
    if check_counts:
        scrapes = ",".join(map(str, prom_files))
        check_request_counts(server_count, wrk.requests, wrk.connections, scrapes)

    cell_dir = run_dir / server / app / workload
    taken = _repeats(cell_dir, wrk.connections)
    if repeat is None and taken:
        cell = f"{server}/{app}/{workload}/c{wrk.connections}"
        raise MetricsImportError(
            f"{run_dir}: {cell} was imported before (repeat {', '.join(map(str, sorted(taken)))});"
            f" to add this as another repeat, give --repeat {max(taken) + 1}"
        )
    k = repeat if repeat is not None else 1
    base = cell_dir / f"c{wrk.connections}-r{k}"
    sidecar = base.with_suffix(".json")
    if sidecar.exists():
        raise MetricsImportError(f"{sidecar}: this cell exists already; choose another --repeat")
    files: dict[str, str] = {}

    def put(kind: str, suffix: str, data: bytes) -> None:
        path = base.with_name(base.name + suffix)
        write_atomic(path, data)
        files[kind] = path.name

    put("stdout", ".txt", wrk_bytes)
    if lua_json is not None:
        put("lua_json", ".lua.json", _read(lua_json))
    if len(texts) == 2:
        put("metrics_before", ".metrics.before.prom", texts[0])
        put("metrics_after", ".metrics.after.prom", texts[1])
    put("metrics", ".metrics.prom", delta.encode())

    now = utc_now()
    record = CellSidecar(
        run_id=run_dir.name,
        server=server,
        app=app,
        workload=workload,
        connections=wrk.connections,
        repeat=k,
        status="ok",
        threads=wrk.threads,
        duration_configured_s=wrk.test_duration_s,
        url=wrk.url,
        imported=True,
        import_info={
            "imported_at": now,
            "note": note,
            "request_counts": {
                "wrk": wrk.requests,
                "server": server_count,
                "checked": check_counts,
            },  # fmt: skip
            "sources": {
                str(p): hashlib.sha256(_read(p)).hexdigest()
                for p in [wrk_file, *prom_files, *([lua_json] if lua_json else [])]
            },
        },
        # What the harness would have recorded had it run the load is unknown here.
        files=files,
    )
    _register(run_dir, record.key, now)
    # Last: a cell exists when its sidecar exists. The store lists the files written.
    return RunStore(run_dir.parent, run_dir.name).write_cell(record)


def _register(run_dir: Path, key: str, now: str) -> None:
    """List the cell in run.json's `imported_cells` (not `cells_planned`: resuming a
    bench run compares that list with its matrix); create an import-only run if new."""
    path = run_dir / "run.json"
    if path.is_file():
        run = read_run(path)
    else:
        run = RunMeta(run_id=run_dir.name, profile="import", status="complete",
                      started_at=now, ended_at=now, imported=True)  # fmt: skip
    if key not in run.imported_cells:
        run = replace(run, imported_cells=(*run.imported_cells, key))
    RunStore(run_dir.parent, run_dir.name).write_run(run)
