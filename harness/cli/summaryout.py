"""Command-line stage: a `RunSummary` -> the terminal, JSON and pull-request markdown.

In: harness/cli/summary.py's `RunSummary`. Out: one rich table per app × workload ×
connection level followed by hyperfine's sentence (`render`), a versioned JSON document
(`to_json`), GitHub-flavoured markdown without HTML (`to_markdown`); `report_run` does
all that `invoke bench` and `invoke summary` print and write for a run.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.cli import gfm
from harness.cli.output import write_output
from harness.cli.summary import FORMAT_VERSION, TITLES, RunSummary, ServerLine, summarize_run
from harness.parse.records import RawFormatError


def report_run(
    run_dir: Path, console: Console, export_json: str = "", export_markdown: str = "",
    strict: bool = False,
) -> RunSummary | None:  # fmt: skip
    """Print the summary of the run in `run_dir` and write the exports asked for. A table
    that cannot be read is one line on `console`, not an error, unless `strict`: the run
    is on disk either way, and the site lists what could not be read."""
    try:
        found = summarize_run(run_dir)
    except RawFormatError as e:
        if strict:
            raise
        console.print(f"no summary: {e}", markup=False)
        return None
    render(found, console)
    if export_json:
        write_output(export_json, json.dumps(to_json(found), indent=2) + "\n", "--export-json")
    if export_markdown:
        write_output(export_markdown, to_markdown(found), "--export-markdown")
    return found


def _rps(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _pm(line: ServerLine) -> str:
    pm = line.plus_minus
    return "noise unknown" if pm is None else f"± {pm:,.0f}"


def _place(line: ServerLine) -> str:
    return "—" if line.rank is None else str(line.rank)


def _status(line: ServerLine) -> str:
    if line.rank is None:
        return f"failed: {line.reasons}" if line.reasons else "failed"
    failed = line.repeats - line.repeats_ok
    return f"{line.verdict}; {failed} failed: {line.reasons}" if failed else line.verdict


def _repeats(line: ServerLine) -> str:
    return f"{line.repeats_ok}/{line.repeats}"


def render(summary: RunSummary, console: Console) -> None:
    """The summary as one rich table per group, then the ratios, on `console`."""
    console.print(
        f"\n[bold]Summary of run {summary.run_id}[/] (profile {summary.profile}, "
        f"{summary.status})\nreq/s: the mean over the ok repeats ± the half-width of its 95 % "
        "interval; servers whose intervals overlap the fastest's are tied with it "
        "(not significant); noise unknown: fewer than two ok repeats"
    )
    for group in summary.groups:
        table = Table(title=group.title, title_justify="left", box=None, pad_edge=False)
        for name, justify in (
            ("#", "right"), ("server", "left"), ("req/s", "right"), ("95 % CI", "right"),
            ("ok/repeats", "right"), ("p99 ms", "right"), ("verdict", "left"),
            ("flags", "left"),
        ):  # fmt: skip
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for s in group.servers:
            p99 = "—" if s.latency_p99_ms is None else f"{s.latency_p99_ms:.2f}"
            flags = ", ".join(s.flags)
            table.add_row(
                _place(s), s.server, _rps(s.requests_per_sec), _pm(s), _repeats(s), p99,
                _status(s), f"[yellow]{flags}[/]" if flags else "",
            )  # fmt: skip
        console.print()
        console.print(table)
        for i, sentence in enumerate(group.sentences()):
            console.print(("  " if i == 0 else "    ") + sentence, highlight=False)
    if summary.flagged:
        console.print("\nflags (what each means: the site's Flags page):")
        for f in summary.flagged:
            console.print(f"  {f}: {TITLES.get(f, f)}", highlight=False)


def to_json(summary: RunSummary) -> dict[str, Any]:
    """The summary as a JSON document (versioned: `format_version`)."""
    return {
        "format_version": FORMAT_VERSION,
        "kind": "bench-summary",
        "run_id": summary.run_id,
        "profile": summary.profile,
        "status": summary.status,
        "interval": "95 % Student's t over the ok repeats",
        "groups": [
            {
                "app": g.app,
                "workload": g.workload,
                "connections": g.connections,
                "servers": [asdict(s) | {"flags": list(s.flags)} for s in g.servers],
                "summary": g.sentences(),
            }
            for g in summary.groups
        ],
        "flags": {f: TITLES.get(f, f) for f in summary.flagged},
    }


def to_markdown(summary: RunSummary) -> str:
    """The summary as GitHub-flavoured markdown: plain text, no HTML, for a pull request."""
    out = [
        f"## Run {gfm.code(summary.run_id)}",
        "",
        f"Profile {gfm.code(str(summary.profile))}, status {summary.status}. Mean req/s "
        "± the half-width of its 95 % interval over the ok repeats; servers whose "
        "intervals overlap the fastest's are tied with it.",
    ]
    for g in summary.groups:
        out += ["", f"### {gfm.text(g.title)}", ""]
        out += gfm.table(
            ["#", "Server", "req/s", "95 % CI", "ok/repeats", "p99 ms", "Verdict", "Flags"],
            [
                [
                    _place(s), gfm.code(s.server), _rps(s.requests_per_sec), _pm(s),
                    _repeats(s),
                    "—" if s.latency_p99_ms is None else f"{s.latency_p99_ms:.2f}",
                    _status(s), ", ".join(gfm.code(f) for f in s.flags),
                ]
                for s in g.servers
            ],
            align="rlrrrrll",
        )  # fmt: skip
        sentences = g.sentences()
        if sentences:
            out += ["", f"{sentences[0]}:", *(f"- {s}" for s in sentences[1:])]
    if summary.flagged:
        out += ["", "Flags:", ""]
        out += [f"- {gfm.code(f)}: {TITLES.get(f, f)}" for f in summary.flagged]
    return "\n".join(out) + "\n"
