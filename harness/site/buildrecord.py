"""Site stage: the record of how site/ was built — `.wsgi-baseline-build.json` in it.

`build_site` writes it once the engine has built the site: the address the site was
built for (`site_url`), the engine, the runs shown and the comparisons asked for, and
the raw folder read (relative to the project; None when outside it). `invoke publish`
reads it to refuse, or build again, a site made for another address. The record is
published with the site, so it holds no path of the machine that built it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.paths import REPO_ROOT

# In site/: how it was built (site_url, engine, runs), for `invoke publish` to check.
# No path of the machine that built it: the record is published with the site.
BUILD_RECORD = ".wsgi-baseline-build.json"


def write_build_record(site_dir: Path, record: Mapping[str, Any]) -> Path:
    path = site_dir / BUILD_RECORD
    path.write_text(json.dumps({"format_version": 1, **record}, indent=1, sort_keys=True) + "\n")
    return path


def read_build_record(site_dir: Path) -> dict[str, Any]:
    """The record of the build in `site_dir`; empty for a site built before records."""
    path = site_dir / BUILD_RECORD
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def record_build(
    site_dir: Path,
    raw_dir: Path,
    runs: str,
    compare: Sequence[tuple[str, str]],
    engine: str,
    site_url: str | None,
) -> Path:
    """Record what `invoke publish --site-url` needs to build the same site for another
    address: the raw folder only when it is inside the project (relative: the record is
    published)."""
    try:
        raw = raw_dir.resolve().relative_to(REPO_ROOT.resolve()).as_posix()
    except ValueError:
        raw = None
    return write_build_record(
        site_dir,
        {
            "site_url": site_url,
            "engine": engine,
            "runs": runs,
            "compare": [list(p) for p in compare],
            "raw": raw,
        },
    )
