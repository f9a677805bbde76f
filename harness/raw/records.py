"""Raw stage: the typed, versioned records the raw store keeps (docs/raw-format.md).

`RunMeta` is `run.json`, `CellSidecar` a cell's `c<N>-r<k>.json`: frozen, validated when
read (`read_run`, `read_cell`: every error names the file and the field), written only
through `harness.raw.store.RunStore`, in the current format version, whatever version
was read (the preflight check's part: harness/raw/preflight.py). Standard library only:
the agents on remote hosts import it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.matrix.model import Cell, OfferedRate
from harness.parse.records import RawFormatError
from harness.raw.documents import (
    BOOL,
    FORMAT_VERSION,
    INT,
    LIST,
    NUMBER,
    OBJECT,
    RENAMED_IN_2,
    STATUSES,
    TEXT,
    check_field,
    plain,
    read_document,
)
from harness.raw.preflight import PreflightRecord


@dataclass(frozen=True)
class RunMeta:
    """`run.json`: what a run measured, where, with what, and how far it got."""

    run_id: str
    profile: str | None = None
    # running, complete, incomplete (every cell done, some lost to a host or link:
    # --resume measures them again) or interrupted
    status: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    resumed_at: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)  # Matrix.settings()
    cells_planned: tuple[str, ...] = ()
    host: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str | None] = field(default_factory=dict)
    servers: Mapping[str, Any] = field(default_factory=dict)
    git: Mapping[str, Any] = field(default_factory=dict)
    argv: tuple[str, ...] = ()
    unavailable: Mapping[str, str] = field(default_factory=dict)
    hosts: Mapping[str, Any] | None = None  # runs on other hosts (harness/bench/remote/)
    imported_from: Mapping[str, Any] | None = None  # invoke import-logs
    imported_cells: tuple[str, ...] = ()  # invoke import-metrics
    import_skipped: tuple[Mapping[str, str], ...] = ()  # import-logs: files not imported
    # The client ceiling measured at the run's start and end (harness/bench/calibrations.py)
    calibrations: tuple[Mapping[str, Any], ...] = ()
    imported: bool = False  # a run made only of import-metrics cells
    # A run with open-loop cells (harness/bench/openfloor.py): the client, and its own
    # latency floor against nginx at the highest rate the run offered.
    open_loop: Mapping[str, Any] | None = None
    # Fields this code does not know, kept as they are so that nothing is lost on rewrite.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"format_version": FORMAT_VERSION, "kind": "run"}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name in _RUN_OPTIONAL and not value:
                continue  # absent, as the writers before version 2 left them
            doc[f.name] = list(value) if isinstance(value, tuple) else plain(value)
        return {**doc, **self.extra}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], path: str) -> RunMeta:
        run_id = check_field(doc, "run_id", TEXT, path=path)
        if run_id is None:
            raise RawFormatError("missing field 'run_id'", path=path)
        maps: dict[str, Any] = {k: check_field(doc, k, OBJECT, path) or {} for k in _RUN_MAPS}
        if not all(v is None or isinstance(v, str) for v in maps["versions"].values()):
            raise RawFormatError("versions: expected strings", path=path)
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: check_field(doc, k, TEXT, path) for k in _RUN_TEXT}
        return cls(
            run_id=run_id,
            **values,
            **maps,
            cells_planned=tuple(check_field(doc, "cells_planned", LIST, path) or ()),
            argv=tuple(map(str, check_field(doc, "argv", LIST, path) or ())),
            hosts=check_field(doc, "hosts", OBJECT, path),
            imported_from=check_field(doc, "imported_from", OBJECT, path),
            imported_cells=tuple(check_field(doc, "imported_cells", LIST, path) or ()),
            import_skipped=tuple(check_field(doc, "import_skipped", LIST, path) or ()),
            calibrations=tuple(check_field(doc, "calibrations", LIST, path) or ()),
            imported=check_field(doc, "imported", BOOL, path) is True,
            open_loop=check_field(doc, "open_loop", OBJECT, path),
            extra={k: v for k, v in doc.items() if k not in known and k not in _ENVELOPE},
        )

    def as_dict(self) -> dict[str, Any]:
        """The record as the plain mapping page contexts take (current field names)."""
        return self.to_json()


_RUN_TEXT = ("profile", "status", "started_at", "ended_at", "resumed_at")
_RUN_MAPS = ("settings", "host", "versions", "servers", "git", "unavailable")
_RUN_OPTIONAL = {
    "resumed_at", "hosts", "imported_from", "imported_cells", "import_skipped", "imported",
    "calibrations", "open_loop",
}  # fmt: skip
_ENVELOPE = {"format_version", "kind"}


@dataclass(frozen=True)
class CellSidecar:
    """`c<N>-r<k>.json`: one cell as measured (or imported), written last, atomically.

    `None` means "not recorded" (an imported cell knows no server argv). Configured
    times carry `_configured_` in their names; what wrk measured is in its own output.
    """

    run_id: str
    server: str
    app: str
    workload: str
    connections: int
    repeat: int
    status: str  # ok or failed
    reason: str | None = None
    threads: int | None = None
    duration_configured_s: float | None = None
    warmup_configured_s: float | None = None
    timeout_configured_s: float | None = None
    url: str | None = None
    server_cpus: tuple[int, ...] | None = None
    client_cpus: tuple[int, ...] | None = None
    nofile_limit: int | None = None
    backlog: int | None = None  # the listen backlog the server was given
    backlog_requested: int | None = None  # what the connections asked; somaxconn caps it
    started_at: str | None = None
    ended_at: str | None = None
    server_argv: tuple[str, ...] | None = None
    server_env: Mapping[str, str] | None = None
    server_ready_s: float | None = None
    server_exit_code: int | None = None
    server_stop: str | None = None
    server_stderr_tail: str | None = None
    server_escaped: tuple[int, ...] = ()  # its PIDs outside its group (setsid), killed
    server_host: str | None = None
    client_hosts: tuple[str, ...] | None = None
    server_pid: int | None = None
    server_pgid: int | None = None
    preflight: PreflightRecord | None = None
    wrk_argv: tuple[str, ...] | None = None
    wrk_env: Mapping[str, str] | None = None
    wrk_exit_code: int | None = None
    wrk_stderr: str | None = None
    wrk_cpu_pct_mean: float | None = None  # wrk on another host: from its CPU time at exit
    clients: tuple[Mapping[str, Any], ...] | None = None  # several client hosts
    metrics_errors: tuple[str, ...] = ()
    interrupted: bool = False
    # Failed because a host or its link was lost (HostError), not because of the server:
    # not a result, so --resume measures it again (RunStore.is_finished).
    infrastructure: bool = False
    imported: bool = False
    import_info: Mapping[str, Any] | None = None  # `import` in the file (import-metrics)
    source: Mapping[str, Any] | None = None  # import-logs: the log it came from
    # Open-loop cells (`--rates`; absent for closed-loop ones): the rate as given (`50%`,
    # `5000`), the requests per second offered, and for a relative rate the closed-loop
    # throughput it is a share of (the mean of that cell's ok repeats in the run) and
    # how many repeats that mean has.
    rate: str | None = None
    offered_rate_rps: float | None = None
    closed_loop_rps: float | None = None
    closed_loop_repeats: int | None = None
    files: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def offered(self) -> OfferedRate | None:
        return None if self.rate is None else OfferedRate.from_label(self.rate)

    @property
    def loop(self) -> str:
        return "closed" if self.rate is None else "open"

    @property
    def cell(self) -> Cell:
        return Cell(
            self.server, self.app, self.workload, self.connections, self.repeat, self.offered
        )

    @property
    def key(self) -> str:
        return self.cell.key

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"format_version": FORMAT_VERSION, "kind": "cell"}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (f.name in _CELL_OPTIONAL and not value):
                continue
            name = "import" if f.name == "import_info" else f.name
            doc[name] = value.to_json() if isinstance(value, PreflightRecord) else plain(value)
        return {**doc, **self.extra}

    def as_dict(self) -> dict[str, Any]:
        """The record as the plain mapping page contexts take (current field names)."""
        return self.to_json()

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], path: str) -> CellSidecar:
        if doc.get("format_version") == 1:
            doc = {RENAMED_IN_2.get(k, k): v for k, v in doc.items()}
        values: dict[str, Any] = {}
        for name, want in _CELL_FIELDS.items():
            key = "import" if name == "import_info" else name
            values[name] = check_field(doc, key, want, path=path)
        for name in ("run_id", "server", "app", "workload", "connections", "repeat", "status"):
            if values[name] is None:
                raise RawFormatError(f"missing field {name!r}", path=path)
        if values["status"] not in STATUSES:
            raise RawFormatError(
                f"status: expected 'ok' or 'failed', found {values['status']!r}", path=path
            )
        files = values["files"] or {}
        if not all(isinstance(v, str) for v in files.values()):
            raise RawFormatError("files: expected an object of file names", path=path)
        for name in ("server_cpus", "client_cpus", "server_escaped"):
            ints = values[name]
            if ints is not None and not all(type(c) is int for c in ints):
                what = f"{name}: expected a list of {'PIDs' if 'escaped' in name else 'CPUs'}"
                raise RawFormatError(f"{what}, found {ints!r}", path=path)
        values["server_escaped"] = tuple(values["server_escaped"] or ())
        for name in ("server_argv", "wrk_argv", "client_hosts", "server_cpus", "client_cpus"):
            if values[name] is not None:
                values[name] = tuple(values[name])
        if doc.get("preflight") is not None:
            values["preflight"] = PreflightRecord.from_json(doc["preflight"], path=path)
        values["metrics_errors"] = tuple(map(str, values["metrics_errors"] or ()))
        values["clients"] = tuple(values["clients"]) if values["clients"] is not None else None
        values["interrupted"] = values["interrupted"] is True
        values["infrastructure"] = values["infrastructure"] is True
        values["imported"] = values["imported"] is True
        if values["rate"] is not None and OfferedRate.from_label(values["rate"]) is None:
            raise RawFormatError(
                f"rate: expected a rate such as '50%' or '5000', found {values['rate']!r}",
                path=path,
            )
        values["files"] = files
        known = {*_CELL_FIELDS, "import", *_ENVELOPE}
        values["extra"] = {k: v for k, v in doc.items() if k not in known}
        return cls(**values)


_CELL_FIELDS: dict[str, tuple[str, tuple[type, ...]]] = {
    "run_id": TEXT, "server": TEXT, "app": TEXT, "workload": TEXT,
    "connections": INT, "repeat": INT, "status": TEXT, "reason": TEXT,
    "threads": INT, "duration_configured_s": NUMBER, "warmup_configured_s": NUMBER,
    "timeout_configured_s": NUMBER, "url": TEXT, "server_cpus": LIST,
    "client_cpus": LIST, "nofile_limit": INT, "backlog": INT, "backlog_requested": INT,
    "started_at": TEXT, "ended_at": TEXT, "server_argv": LIST, "server_env": OBJECT,
    "server_ready_s": NUMBER, "server_exit_code": INT, "server_stop": TEXT,
    "server_stderr_tail": TEXT, "server_escaped": LIST, "server_host": TEXT,
    "client_hosts": LIST, "server_pid": INT, "server_pgid": INT, "preflight": OBJECT,
    "wrk_argv": LIST, "wrk_env": OBJECT, "wrk_exit_code": INT, "wrk_stderr": TEXT,
    "wrk_cpu_pct_mean": NUMBER, "clients": LIST, "metrics_errors": LIST,
    "interrupted": BOOL, "infrastructure": BOOL, "imported": BOOL, "import_info": OBJECT,
    "source": OBJECT, "rate": TEXT, "offered_rate_rps": NUMBER, "closed_loop_rps": NUMBER,
    "closed_loop_repeats": INT, "files": OBJECT,
}  # fmt: skip
# Written only when set, as before version 2 (older readers and golden files agree).
_CELL_OPTIONAL = {
    "backlog", "backlog_requested", "server_stop", "server_escaped", "server_host",
    "client_hosts", "server_pid", "server_pgid", "preflight", "wrk_env", "wrk_stderr",
    "wrk_cpu_pct_mean", "clients", "metrics_errors", "interrupted", "infrastructure",
    "imported", "import_info", "source", "rate", "offered_rate_rps", "closed_loop_rps",
    "closed_loop_repeats",
}  # fmt: skip


def read_run(path: Path) -> RunMeta:
    return RunMeta.from_json(read_document(path, "run"), path=str(path))


def read_cell(path: Path) -> CellSidecar:
    return CellSidecar.from_json(read_document(path, "cell"), path=str(path))
