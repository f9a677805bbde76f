"""Site stage 3c: docs/about/perf.json (written by `invoke perf`) -> the page about the
tool's own speed.

The figures are measured on demand, not on every build, and committed with the docs;
without the file the page says how to measure instead, so `mkdocs build --strict`
works either way. Decisions (which target was met) were made when measuring; this
module only picks what the template prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.pages.context import HOME, rel

PERF_PAGE = "results/perf.md"
PERF_JSON = "about/perf.json"  # relative to docs/: committed, and a download on the site
HARNESS_KEYS = "cell configured_s cell_wall_s process_wall_s overhead_ratio".split() + [
    "server_ready_s",
    "wrk_measured_s",
    "other_s",
    "servers_not_installed",
    "cells",
]
SIZE_KEYS = (
    *"cells runs parse_files_per_s parse_cached_files_per_s table_s table_cached_s".split(),
    *"build_cold_s build_nochange_s mkdocs_floor_s peak_rss_mb charts_drawn_cold".split(),
)


def read_perf(docs_dir: Path) -> dict[str, Any] | None:
    """The perf figures in `docs_dir`, or None when they were never measured."""
    path = docs_dir / PERF_JSON
    if not path.is_file():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    return doc if isinstance(doc, dict) else None


FIDELITY_KEYS = ("cell", "pairs", "ratio_mean", "ratio_ci_low", "ratio_ci_high", "ratio_min",
                 "ratio_max", "together")  # fmt: skip


def perf_context(doc: dict[str, Any] | None) -> dict[str, Any]:
    """The context of perf.md.j2: sizes measured, targets against their floors."""
    ctx: dict[str, Any] = {
        "title": "Performance of the tool",
        "home": rel(PERF_PAGE, HOME),
        "measured": doc is not None,
    }
    if doc is None:
        return ctx
    # A figure an older perf.json lacks prints as "—" instead of failing the build.
    sizes = [{**dict.fromkeys(SIZE_KEYS), **s} for s in doc.get("sizes", [])]
    for s in sizes:
        floor = s.get("mkdocs_floor_s")
        nochange = s.get("build_nochange_s")
        s["nochange_over_floor"] = nochange / floor if nochange and floor else None
    return {
        **ctx,
        "engines": [row for s in sizes for row in engine_rows(s)],
        "json": rel(PERF_PAGE, PERF_JSON),
        "open_loop_doc": rel(PERF_PAGE, "open-loop.md"),
        "at": str(doc.get("measured_at", "unknown")).replace("T", " "),
        "carried": [
            (name, str(when).replace("T", " "))
            for name, when in (doc.get("carried_over") or {}).items()
        ],
        "host": doc.get("host") or {},
        "load": doc.get("load_average_before") or [],
        "sizes": sizes,
        "targets": doc.get("targets") or [],
        "harness": {**dict.fromkeys(HARNESS_KEYS), **(doc.get("harness") or {})}
        if doc.get("harness")
        else {},
        # An older perf.json has only the one-after-the-other pairs.
        "fidelity": {**dict.fromkeys(FIDELITY_KEYS), **doc["fidelity"]}
        if doc.get("fidelity")
        else None,
        "notes": doc.get("notes") or [],
        "open_loop": doc.get("open_loop")
        if (doc.get("open_loop") or {}).get("status") == "ok"
        else None,
    }


def engine_rows(size: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per site engine measured at this size: cold and no-change builds, each
    with the bare engine build that is its floor (mkdocs's figures keep their old names,
    Zensical's are prefixed)."""
    rows = [
        {
            "cells": size.get("cells"),
            "engine": "mkdocs",
            "cold": size.get("build_cold_s"),
            "cold_floor": size.get("mkdocs_floor_s"),
            "nochange": size.get("build_nochange_s"),
            "floor": size.get("mkdocs_floor_s"),
        }
    ]
    if size.get("zensical_build_cold_s") is not None:
        rows.append(
            {
                "cells": size.get("cells"),
                "engine": "Zensical",
                "cold": size.get("zensical_build_cold_s"),
                "cold_floor": size.get("zensical_floor_cold_s"),
                "nochange": size.get("zensical_build_nochange_s"),
                "floor": size.get("zensical_floor_s"),
            }
        )
    return rows


def plan_perf(pages: dict[str, tuple[str, dict[str, Any]]], docs_dir: Path) -> None:
    pages[PERF_PAGE] = ("perf.md.j2", perf_context(read_perf(docs_dir)))
