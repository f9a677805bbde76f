"""Site stage 3c: two runs and their tables -> the context of a comparison page.

`compare_context` turns `harness.tables.compare` results into what `compare.md.j2` prints:
the two runs' facts, the tally of regressions and improvements, the differing sidecar
fields, every compared cell, and the sentences that say what "within noise" means for
these repeat counts. `plan_compare` adds one page per pair plus the index of
comparisons to a `SitePlan`; `render_standalone` gives the same page as plain markdown
for `invoke compare --out`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness.pages.context import (
    HOME,
    Run,
    SiteError,
    measured,
    records,
    rel,
    run_page,
    slug,
)
from harness.tables import compare
from harness.tables.runfacts import recorded_prose

COMPARE = "results/compare/index.md"
LONG_VALUE = 160  # sidecar values longer than this are cut on the page (run.json has all)


def compare_page(run_a: str, run_b: str) -> str:
    return f"results/compare/{slug(run_a)}--{slug(run_b)}.md"


def _ratio(row: Mapping[str, Any], metric: str) -> str:
    r = row.get(f"{metric}_ratio")
    if r is None:
        return "—"
    return f"{r:.3f} ({(r - 1) * 100:+.1f} %)"


def _side(run: Run, page: str | None, linked: Collection[str]) -> dict[str, Any]:
    m = measured(run, page or HOME)
    m["run_link"] = m["run_link"] if page and run["run_id"] in linked else None
    return m


def _noise_text(cells: pd.DataFrame) -> list[str]:
    """What "within noise" means here, and why there is no p-value, in words."""
    if not len(cells):
        return []
    # The most ok repeats any cell has on both sides: if even that many cannot reach
    # significance, no cell on the page can.
    n = int(cells[["requests_per_sec_n_a", "requests_per_sec_n_b"]].min(axis=1).max())
    text = [
        "A ratio is B's mean over A's mean (ok repeats only). For throughput, above 1 is "
        "better; for p99 latency, below 1 is better. Each cell says how many ok repeats "
        "each side had.",
        "Within noise: the 95 % confidence intervals of A's and B's means overlap (Student's "
        "t over the repeats, the intervals every page of this site shows). With two "
        "repeats a side these intervals are wide (t = 12.7): only a large, steady "
        "difference is called.",
    ]
    unknown = int((cells["requests_per_sec_verdict"] == "noise unknown").sum())
    if unknown:
        text.append(
            f"Noise unknown: {unknown} cell(s) have fewer than two ok repeats on a side, so "
            "there is no interval to hold a difference against; their ratios are shown in "
            "the table below, but none of them is called a regression or an improvement. "
            "Measure with --repeats 3 or more to compare them."
        )
    floor = compare.min_rank_p(n, n)
    if floor > 0.05:
        text.append(
            f"No difference on this page is called significant: with {n} ok repeat(s) per "
            f"side at most, even a perfect separation of the repeats gives a rank test "
            f"(Mann-Whitney) a two-sided p-value of {floor:.2f} at best, above the usual "
            "0.05. Regressions and improvements below are differences larger than the "
            "spread of the repeats: worth a second look, not proven. More repeats per cell "
            "make a test possible."
        )
    return text


def compare_context(
    run_a: Run, run_b: Run, table: pd.DataFrame, page: str | None, linked: Collection[str] = ()
) -> dict[str, Any]:
    """The context of compare.md.j2 for A (before) and B (after); page None: standalone."""
    a = table[table["run_id"] == run_a["run_id"]]
    b = table[table["run_id"] == run_b["run_id"]]
    if not len(a) or not len(b):
        missing = run_a["run_id"] if not len(a) else run_b["run_id"]
        raise SiteError(f"run {missing} has no recorded cell to compare")
    cells = compare.compare_cells(a, b)
    rows = []
    for r in records(cells):
        rows.append(
            {
                **r,
                "rps_ratio": _ratio(r, "requests_per_sec"),
                "p99_ratio": _ratio(r, "latency_p99_ms"),
                "rps_verdict": r["requests_per_sec_verdict"],
                "p99_verdict": r["latency_p99_ms_verdict"],
            }
        )
    flagged = {
        kind: [
            r for r in rows if kind in (r["requests_per_sec_verdict"], r["latency_p99_ms_verdict"])
        ]
        for kind in ("regression", "improvement")
    }
    # As a reader sees them: the machine's paths relative to the project, older runs'
    # placeholders in words (`recorded_prose`).
    sides = {"a": run_a, "b": run_b}
    diff = [
        {
            "field": recorded_prose(str(d["field"]), run_b),
            **{
                k: _cut(None if d[k] is None else recorded_prose(str(d[k]), sides[k]))
                for k in sides
            },
        }
        for d in compare.metadata_diff(run_a, run_b)
    ]
    return {
        "title": f"{run_b['run_id']} compared with {run_a['run_id']}",
        "home": rel(page, HOME) if page else None,
        "a": _side(run_a, page, linked),
        "b": _side(run_b, page, linked),
        "both": len(rows),
        "only_a": compare.only_in(a, b),
        "only_b": compare.only_in(b, a),
        "tally": compare.tally(cells),
        "noise": _noise_text(cells),
        "regressions": flagged["regression"],
        "improvements": flagged["improvement"],
        "diff": diff,
        "rows": rows,
    }


def _cut(value: str | None) -> str:
    if value is None:
        return "(absent)"
    return value if len(value) <= LONG_VALUE else value[: LONG_VALUE - 1] + "…"


def plan_compare(
    pages: dict[str, tuple[str, dict[str, Any]]],
    runs: Sequence[Run],
    table: pd.DataFrame,
    listed_pairs: Sequence[tuple[str, str]],
    shown: Sequence[Run],
    subject: Run,
) -> list[str]:
    """Add the comparison pages and their index; return the comparison pages.

    Compares the newest two complete runs of one shape (if any), then `listed_pairs`;
    `table` holds every run, `shown` are the runs with their own page on the site.
    """
    by_id = {str(r["run_id"]): r for r in runs}
    linked = {str(r["run_id"]) for r in shown}
    pairs = site_pairs(runs, listed_pairs)
    listed = []
    for run_a, run_b in pairs:
        unknown = [r for r in (run_a, run_b) if r not in by_id]
        if unknown:
            raise SiteError(f"compare: unknown run {', '.join(unknown)}")
        page = compare_page(run_a, run_b)
        ctx = compare_context(by_id[run_a], by_id[run_b], table, page, linked)
        pages[page] = ("compare.md.j2", ctx)
        listed.append({"a": run_a, "b": run_b, "link": rel(COMPARE, page), "tally": ctx["tally"]})
    pages[COMPARE] = (
        "compare_index.md.j2",
        {
            "title": "Comparisons",
            "m": measured(subject, COMPARE),
            "home": rel(COMPARE, HOME),
            "pairs": listed,
            "run_links": {r: rel(COMPARE, run_page(r)) for r in linked},
        },
    )
    return [compare_page(a, b) for a, b in pairs]


def site_pairs(runs: Sequence[Run], listed: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The comparisons a site shows: the latest two complete runs of one shape, then `listed`."""
    auto = compare.latest_pair(list(runs))
    return list(dict.fromkeys([*([auto] if auto else []), *listed]))


def with_compared(
    chosen: Sequence[Run], runs: Sequence[Run], listed: Sequence[tuple[str, str]]
) -> list[Run]:
    """The runs chosen for the site and every run a comparison of the site names (newest
    first): each gets its page and its download, so the site mentions no run it hides."""
    named = {r for pair in site_pairs(runs, listed) for r in pair}
    shown = {str(r["run_id"]) for r in chosen}
    extra = [r for r in runs if r["run_id"] in named - shown]
    return sorted([*chosen, *extra], key=lambda r: str(r["run_id"]), reverse=True)


def render_standalone(raw_dir: Path, run_a: str, run_b: str) -> str:
    """The comparison of two runs in raw_dir as one markdown file, without site links."""
    from harness.pages import render as pages
    from harness.tables.dataset import load_runs

    runs, frames = {}, []
    for run_id in (run_a, run_b):
        sidecar = raw_dir / run_id / "run.json"
        if not sidecar.is_file():
            raise SiteError(f"compare: no run {run_id!r} in {raw_dir}")
        runs[run_id] = json.loads(sidecar.read_text(encoding="utf-8"))
        frames.append(load_runs(sidecar.parent))
    ctx = compare_context(runs[run_a], runs[run_b], pd.concat(frames, ignore_index=True), None)
    return pages.render_pages({"compare.md": ("compare.md.j2", ctx)})["compare.md"]
