"""Table stage: a cell's columns beyond wrk's figures, from documents already read.

Takes the parsed cell sidecar, its `.samples.json` and its Lua report (harness/tables/dataset.py
reads the files) and returns column dicts for harness/tables/schema.py: pinned CPU counts and
the preflight verdict, the sampler summary (server and wrk CPU, accept queue, established
connections) and the session workload's per-method counts. Pure: no I/O.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, cast

from harness.parse.records import RawFormatError
from harness.raw.records import CellSidecar
from harness.raw.samples import COLUMNS as SAMPLE_FIELDS
from harness.raw.samples import Sample, summarize

# A plain tuple per sample instead of the frozen Sample dataclass: summarize() reads only
# attributes, and building 720 frozen dataclasses (a 3-minute cell) costs three times the
# JSON parse, which load_runs pays for every cell.
_SampleRow = namedtuple("_SampleRow", SAMPLE_FIELDS)  # type: ignore[misc]
SESSION_METHODS = ("GET", "POST", "DELETE")
SESSION_REPLIES = ("value", "created", "deleted", "not_found", "other")


def sidecar_columns(cell: CellSidecar) -> dict[str, Any]:
    """CPU pinning counts, the hosts and the preflight verdict, from the cell sidecar."""
    out: dict[str, Any] = {
        "client_cpus_n": len(cell.client_cpus) if cell.client_cpus else None,  # unpinned: null
        "server_cpus_n": len(cell.server_cpus) if cell.server_cpus else None,
        "infrastructure": cell.infrastructure,
        **host_columns(cell),
    }
    check = cell.preflight
    if check is None:
        return out  # imported cells and runs from before the preflight
    # Every failed check, blocking or not: gunicorn's sync worker fails keep-alive by design.
    out.update(
        preflight_ok=check.ok,
        preflight_ignored=check.ignored,
        preflight_reason="; ".join(check.failed) or check.blocking,
    )
    return out


def host_columns(cell: CellSidecar) -> dict[str, Any]:
    """Where server and wrk ran: SSH destinations from a remote run's sidecar, `local` for
    a cell the bench measured on one machine, unknown (None) for an imported one."""
    if cell.server_host is not None or cell.client_hosts:
        clients = tuple(cell.client_hosts or ())
        return {
            "server_host": cell.server_host,
            "client_hosts": ", ".join(clients) or None,
            "clients_n": len(clients) or None,
        }
    if cell.imported or cell.source is not None:
        return {"server_host": None, "client_hosts": None, "clients_n": None}
    return {"server_host": "local", "client_hosts": "local", "clients_n": 1}


def samples_columns(doc: dict[str, Any], path: str) -> dict[str, Any]:
    """`summarize` of a parsed `.samples.json` (format checked by the caller)."""
    if doc.get("columns") != SAMPLE_FIELDS or not isinstance(doc.get("samples"), list):
        raise RawFormatError(f"expected columns {SAMPLE_FIELDS} and a list of samples", path=path)
    try:
        rows = [_SampleRow._make(r) for r in doc["samples"]]
        return summarize(cast(list[Sample], rows))
    except (TypeError, ValueError, AttributeError):
        # A row of the wrong length or a value of the wrong type: name the file, not the line.
        raise RawFormatError("expected one row of sample values per sample", path=path) from None


def session_columns(report: dict[str, Any], path: str) -> dict[str, Any]:
    """Requests issued per method and replies per kind from session.lua's report member."""
    session = report.get("session")
    if session is None:
        return {}
    if not isinstance(session, dict):
        raise RawFormatError("session: expected an object", path=path)
    issued, replies, checks = (session.get(k) for k in ("issued", "replies", "checks"))
    if not all(d is None or isinstance(d, dict) for d in (issued, replies, checks)):
        raise RawFormatError("session: issued, replies, checks: expected objects", path=path)
    out = {f"session_{m.lower()}": (issued or {}).get(m) for m in SESSION_METHODS}
    # A reply kind the mix never produced is absent from the report: zero, not unknown.
    out.update({f"session_{k}": None if replies is None else replies.get(k, 0)
                for k in SESSION_REPLIES})  # fmt: skip
    out["session_exact"] = session.get("exact")
    # Only an exact run (one connection per wrk thread) checks replies against its model.
    out["session_mismatches"] = (checks or {}).get("mismatches")
    return out
