"""Raw stage: the typed, versioned records the raw store keeps (docs/raw-format.md).

`RunMeta` is `run.json`, `CellSidecar` a cell's `c<N>-r<k>.json`: frozen, validated when
read (`read_run`, `read_cell`: every error names the file and the field), written only
through `harness.raw.store.RunStore`, in the current format version, whatever version
was read. Also the preflight check's vocabulary, which the bench (running the check)
and the table stage (reading it back) share. Standard library only: the agents on
remote hosts import it too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.parse.records import RawFormatError

ANNOUNCED_CLOSE = "server sent Connection: close: every request would need a new connection"
EOF_FRAMING = (
    "no Content-Length and not chunked: the body ends at connection close, "
    "so wrk would count every response as a read error"
)


@dataclass(frozen=True)
class PreflightResult:
    ok: bool
    checks: list[tuple[str, bool, str]]  # (name, passed, detail) in the order checked
    reason: str | None  # the failed checks as "name: detail; …", None when ok


def preflight_result(checks: list[tuple[str, bool, str]]) -> PreflightResult:
    failed = [f"{name}: {detail}" for name, passed, detail in checks if not passed]
    return PreflightResult(not failed, checks, "; ".join(failed) or None)


def blocking(result: PreflightResult) -> str | None:
    """The failures that make wrk's figures wrong, or None if the server may be measured.

    An announced `Connection: close` (gunicorn's sync worker, by design) fails the
    keep-alive check but only costs a reconnect per request: wrk honours it and counts
    no error. Everything else (wrong answer, EOF framing, a silent close) blocks.
    """
    failed = [
        f"{name}: {detail}"
        for name, passed, detail in result.checks
        if not passed and detail != ANNOUNCED_CLOSE
    ]
    return "; ".join(failed) or None


# --- Run and cell sidecars -------------------------------------------------------------
# Format history (run.json and the cell sidecars share one version number):
# 1 — first version: run.json plus per cell `c<N>-r<k>.json` beside wrk's `.txt`, the
#     Lua report and the samples. A cell sidecar's `duration_s`, `warmup_s` and
#     `timeout_s` were the configured times (the tables call wrk's measured time
#     `duration_s`).
# 2 — those three are named `duration_configured_s`, `warmup_configured_s` and
#     `timeout_configured_s`; nothing else changed. Version 1 is still read: its three
#     fields are read under their new names.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
# calibration.json (written by harness/bench/calibrate.py) has its own history:
# 1 — first version.
CALIBRATION_FORMAT_VERSION = 1
_RENAMED_IN_2 = {
    "duration_s": "duration_configured_s",
    "warmup_s": "warmup_configured_s",
    "timeout_s": "timeout_configured_s",
}
STATUSES = ("ok", "failed")


def read_document(
    path: Path, kind: str | None = None, versions: tuple[int, ...] = READABLE_VERSIONS
) -> dict[str, Any]:
    """A JSON object from `path`; with `kind`, a document of that kind whose format
    version is one of `versions` (run and cell documents' by default)."""
    try:
        doc = json.loads(path.read_bytes())
    except OSError as e:
        raise RawFormatError(f"cannot read: {e.strerror}", path=str(path)) from None
    except json.JSONDecodeError as e:
        msg = f"expected JSON, found {e.msg.lower()} (column {e.colno})"
        raise RawFormatError(msg, e.lineno, path=str(path)) from None
    except UnicodeDecodeError:
        raise RawFormatError("expected UTF-8 JSON, found other bytes", path=str(path)) from None
    if not isinstance(doc, dict):
        raise RawFormatError(
            f"expected a JSON object, found {type(doc).__name__}", 1, path=str(path)
        )
    if kind is not None:
        version = doc.get("format_version")
        if type(version) is not int or version not in versions:
            raise RawFormatError(
                f"unknown format_version {version!r} (this code reads "
                f"{', '.join(map(str, versions))})",
                path=str(path),
            )
        if doc.get("kind") != kind:
            raise RawFormatError(
                f"expected kind {kind!r}, found {doc.get('kind')!r}", path=str(path)
            )
    return doc


# What each field may hold: a name for the error message and the accepted JSON types.
_INT = ("int", (int,))
_NUMBER = ("a number", (int, float))
_TEXT = ("str", (str,))
_BOOL = ("bool", (bool,))
_LIST = ("a list", (list,))
_OBJECT = ("an object", (dict,))


def _check(doc: Mapping[str, Any], key: str, want: tuple[str, tuple[type, ...]], path: str) -> Any:
    value = doc.get(key)
    name, types = want
    if value is None:
        return None
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise RawFormatError(f"{key}: expected {name}, found {value!r}", path=path)
    return value


@dataclass(frozen=True)
class RunMeta:
    """`run.json`: what a run measured, where, with what, and how far it got."""

    run_id: str
    profile: str | None = None
    status: str | None = None  # running, complete or interrupted
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
    imported: bool = False  # a run made only of import-metrics cells
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
            doc[f.name] = list(value) if isinstance(value, tuple) else _plain(value)
        return {**doc, **self.extra}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], path: str) -> RunMeta:
        run_id = _check(doc, "run_id", _TEXT, path=path)
        if run_id is None:
            raise RawFormatError("missing field 'run_id'", path=path)
        maps: dict[str, Any] = {k: _check(doc, k, _OBJECT, path) or {} for k in _RUN_MAPS}
        if not all(v is None or isinstance(v, str) for v in maps["versions"].values()):
            raise RawFormatError("versions: expected strings", path=path)
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: _check(doc, k, _TEXT, path) for k in _RUN_TEXT}
        return cls(
            run_id=run_id,
            **values,
            **maps,
            cells_planned=tuple(_check(doc, "cells_planned", _LIST, path) or ()),
            argv=tuple(map(str, _check(doc, "argv", _LIST, path) or ())),
            hosts=_check(doc, "hosts", _OBJECT, path),
            imported_from=_check(doc, "imported_from", _OBJECT, path),
            imported_cells=tuple(_check(doc, "imported_cells", _LIST, path) or ()),
            imported=_check(doc, "imported", _BOOL, path) is True,
            extra={k: v for k, v in doc.items() if k not in known and k not in _ENVELOPE},
        )

    def as_dict(self) -> dict[str, Any]:
        """The record as the plain mapping page contexts take (current field names)."""
        return self.to_json()


_RUN_TEXT = ("profile", "status", "started_at", "ended_at", "resumed_at")
_RUN_MAPS = ("settings", "host", "versions", "servers", "git", "unavailable")
_RUN_OPTIONAL = {"resumed_at", "hosts", "imported_from", "imported_cells", "imported"}
_ENVELOPE = {"format_version", "kind"}


@dataclass(frozen=True)
class PreflightRecord:
    """The preflight check as a sidecar keeps it (docs/raw-format.md, `preflight`)."""

    ok: bool
    blocking: str | None  # the failures that refuse the cell, or None
    ignored: bool  # blocking, but measured anyway (--ignore-preflight)
    checks: tuple[tuple[str, bool, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "blocking": self.blocking,
            "ignored": self.ignored,
            "checks": [list(c) for c in self.checks],
        }

    @classmethod
    def from_json(cls, doc: Any, path: str) -> PreflightRecord:
        if not isinstance(doc, dict) or not isinstance(doc.get("checks", []), list):
            raise RawFormatError("preflight: expected an object with a list of checks", path=path)
        checks = []
        for c in doc.get("checks", []):
            if not (isinstance(c, list) and len(c) == 3 and isinstance(c[1], bool)):
                raise RawFormatError(
                    f"preflight.checks: expected [name, passed, detail], found {c!r}", path=path
                )
            checks.append((str(c[0]), c[1], str(c[2])))
        return cls(doc.get("ok") is True, doc.get("blocking"), doc.get("ignored") is True,
                   tuple(checks))  # fmt: skip

    @property
    def failed(self) -> list[str]:
        """Every failed check as `name: detail`, blocking or not."""
        return [f"{name}: {detail}" for name, passed, detail in self.checks if not passed]


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
    backlog: int | None = None
    started_at: str | None = None
    ended_at: str | None = None
    server_argv: tuple[str, ...] | None = None
    server_env: Mapping[str, str] | None = None
    server_ready_s: float | None = None
    server_exit_code: int | None = None
    server_stop: str | None = None
    server_stderr_tail: str | None = None
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
    imported: bool = False
    import_info: Mapping[str, Any] | None = None  # `import` in the file (import-metrics)
    source: Mapping[str, Any] | None = None  # import-logs: the log it came from
    files: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.server}/{self.app}/{self.workload}/c{self.connections}-r{self.repeat}"

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
            doc[name] = value.to_json() if isinstance(value, PreflightRecord) else _plain(value)
        return {**doc, **self.extra}

    def as_dict(self) -> dict[str, Any]:
        """The record as the plain mapping page contexts take (current field names)."""
        return self.to_json()

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], path: str) -> CellSidecar:
        if doc.get("format_version") == 1:
            doc = {_RENAMED_IN_2.get(k, k): v for k, v in doc.items()}
        values: dict[str, Any] = {}
        for name, want in _CELL_FIELDS.items():
            key = "import" if name == "import_info" else name
            values[name] = _check(doc, key, want, path=path)
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
        for name in ("server_cpus", "client_cpus"):
            cpus = values[name]
            if cpus is not None and not all(type(c) is int for c in cpus):
                raise RawFormatError(f"{name}: expected a list of CPUs, found {cpus!r}", path=path)
        for name in ("server_argv", "wrk_argv", "client_hosts", "server_cpus", "client_cpus"):
            if values[name] is not None:
                values[name] = tuple(values[name])
        if doc.get("preflight") is not None:
            values["preflight"] = PreflightRecord.from_json(doc["preflight"], path=path)
        values["metrics_errors"] = tuple(map(str, values["metrics_errors"] or ()))
        values["clients"] = tuple(values["clients"]) if values["clients"] is not None else None
        values["interrupted"] = values["interrupted"] is True
        values["imported"] = values["imported"] is True
        values["files"] = files
        known = {*_CELL_FIELDS, "import", *_ENVELOPE}
        values["extra"] = {k: v for k, v in doc.items() if k not in known}
        return cls(**values)


def _plain(value: Any) -> Any:
    """Tuples as lists, mappings as dicts: what json.dumps writes back."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


_CELL_FIELDS: dict[str, tuple[str, tuple[type, ...]]] = {
    "run_id": _TEXT, "server": _TEXT, "app": _TEXT, "workload": _TEXT,
    "connections": _INT, "repeat": _INT, "status": _TEXT, "reason": _TEXT,
    "threads": _INT, "duration_configured_s": _NUMBER, "warmup_configured_s": _NUMBER,
    "timeout_configured_s": _NUMBER, "url": _TEXT, "server_cpus": _LIST,
    "client_cpus": _LIST, "nofile_limit": _INT, "backlog": _INT, "started_at": _TEXT,
    "ended_at": _TEXT, "server_argv": _LIST, "server_env": _OBJECT,
    "server_ready_s": _NUMBER, "server_exit_code": _INT, "server_stop": _TEXT,
    "server_stderr_tail": _TEXT, "server_host": _TEXT, "client_hosts": _LIST,
    "server_pid": _INT, "server_pgid": _INT, "preflight": _OBJECT, "wrk_argv": _LIST,
    "wrk_env": _OBJECT, "wrk_exit_code": _INT, "wrk_stderr": _TEXT,
    "wrk_cpu_pct_mean": _NUMBER, "clients": _LIST, "metrics_errors": _LIST,
    "interrupted": _BOOL, "imported": _BOOL, "import_info": _OBJECT, "source": _OBJECT,
    "files": _OBJECT,
}  # fmt: skip
# Written only when set, as before version 2 (older readers and golden files agree).
_CELL_OPTIONAL = {
    "backlog", "server_stop", "server_host", "client_hosts", "server_pid", "server_pgid",
    "preflight", "wrk_env", "wrk_stderr", "wrk_cpu_pct_mean", "clients", "metrics_errors",
    "interrupted", "imported", "import_info", "source",
}  # fmt: skip


def read_run(path: Path) -> RunMeta:
    return RunMeta.from_json(read_document(path, "run"), path=str(path))


def read_cell(path: Path) -> CellSidecar:
    return CellSidecar.from_json(read_document(path, "cell"), path=str(path))
