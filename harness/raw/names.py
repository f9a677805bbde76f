"""Raw stage: the names of the files the harness writes into a run folder.

`harness_file(rel)` says whether a path relative to `raw/<run-id>/` is one the bench,
the calibration or an importer writes (docs/raw-format.md, "Layout"); anything else
found there (a note, an `.html` someone dropped in) is not the harness's, and the site
neither publishes nor zips it. Dotfiles (temp files, the run's lock) never are.
"""

from __future__ import annotations

import re

# run.json and the calibrations (harness/bench/calibrate.py) at the top of the run: the
# summary of each (`calibration.<when>.json`; `calibration.json` and its wrk outputs from
# runs before calibrations were cells).
RUN_FILES = frozenset(
    {"run.json", "calibration.json", "calibration.txt", "calibration.lua.json"}
    | {f"calibration.{when}.json" for when in ("start", "resume", "end")}
)
# A calibration's own cell: `calibration/<when>/nginx/raw/plaintext/c<N>-r1.*`.
CALIBRATION_FOLDERS = ("start", "resume", "end", "request")
# The open-loop client's floor: `openloop-floor/end/nginx/raw/plaintext/c<N>-at<R>-r1.*`.
CELL_FOLDERS = ("calibration", "openloop-floor")
# The open-loop client's own latency floor against nginx (harness/bench/openfloor.py).
_RUN_FILE = re.compile(r"openloop-floor\.(?:json|txt|open\.json)")
# `<server>/<app>/<workload>/c<N>-r<k><suffix>`, the suffixes of RunStore.cell_files and,
# with several client hosts, each client's `.client<i>.*` (harness/bench/cell.py).
_CELL_FILE = re.compile(
    r"c\d+(?:-at[0-9p]+(?:pct|rps))?-r\d+"
    r"(?:\.json|\.txt|\.lua\.json|\.open\.json|\.warmup\.txt|\.samples\.json|\.server\.log"
    r"|\.metrics\.prom|\.metrics\.before\.prom|\.metrics\.after\.prom"
    r"|\.client\d+\.(?:txt|lua\.json|warmup\.txt))"
)


def harness_file(rel: str) -> bool:
    """`rel` (posix, relative to the run folder) names a file the harness writes there."""
    parts = rel.split("/")
    if any(not p or p.startswith(".") for p in parts):
        return False
    if len(parts) == 1:
        return parts[0] in RUN_FILES or _RUN_FILE.fullmatch(parts[0]) is not None
    if len(parts) == 6 and parts[0] in CELL_FOLDERS and parts[1] in CALIBRATION_FOLDERS:
        parts = parts[2:]
    return len(parts) == 4 and _CELL_FILE.fullmatch(parts[3]) is not None
