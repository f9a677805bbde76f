"""Raw stage: the JSON documents of raw/ — format versions, reading, field checks.

Every JSON document the harness writes into raw/ carries `format_version` and `kind`;
run.json and the cell sidecars share one version, whose history is below. Readers get
a `RawFormatError` naming the file (and line) for anything they cannot use. Standard
library only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.parse.records import RawFormatError

# Format history (run.json and the cell sidecars share one version number):
# 1 — first version: run.json plus per cell `c<N>-r<k>.json` beside wrk's `.txt`, the
#     Lua report and the samples. A cell sidecar's `duration_s`, `warmup_s` and
#     `timeout_s` were the configured times (the tables call wrk's measured time
#     `duration_s`).
# 2 — those three are named `duration_configured_s`, `warmup_configured_s` and
#     `timeout_configured_s`; nothing else changed. Version 1 is still read: its three
#     fields are read under their new names.
#     Added later within 2, optional, kept by older readers as unknown fields: a cell's
#     `infrastructure` (failed by a lost host or link, measured again on resume); the run
#     status `incomplete`; `hosts.limits` in run.json (the remote bounds); open-loop
#     cells (`--rates`): a sidecar's `rate`, `offered_rate_rps`, `closed_loop_rps`,
#     `closed_loop_repeats` and its `.open.json` report, `c<N>-at<rate>-r<k>` names,
#     and run.json's `open_loop` (the client and its latency floor against nginx).
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
# calibration.json (written by harness/bench/calibrate.py) has its own history:
# 1 — first version.
CALIBRATION_FORMAT_VERSION = 1
RENAMED_IN_2 = {
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
INT = ("int", (int,))
NUMBER = ("a number", (int, float))
TEXT = ("str", (str,))
BOOL = ("bool", (bool,))
LIST = ("a list", (list,))
OBJECT = ("an object", (dict,))


def check_field(
    doc: Mapping[str, Any], key: str, want: tuple[str, tuple[type, ...]], path: str
) -> Any:
    value = doc.get(key)
    name, types = want
    if value is None:
        return None
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise RawFormatError(f"{key}: expected {name}, found {value!r}", path=path)
    return value


def plain(value: Any) -> Any:
    """Tuples as lists, mappings as dicts: what json.dumps writes back."""
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value
