"""Table stage: the verdict in words — its sentences and the notices of an indicative run.

`sentences(title, connections, rows)` says one app's ranking in one or two sentences
("With Flask, granian, bjoern and meinheld are within noise of each other at c=100 …;
the slowest, gunicorn, is 4.3× slower than the fastest") and whether it is a clear win.
`notices(run, stats, apps, connections)` lists what makes a run indicative only: a quick profile,
client and server on one machine, cells near the client's ceiling, cells measured once.
Pure: takes the ranked rows (`Ranked`, made by harness/tables/verdict.py), returns text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.tables.runfacts import one_machine, pinning_text

if TYPE_CHECKING:
    import pandas as pd

# Labels shared with harness/tables/verdict.py, which ranks.
CLEAR = "clear"  # its place is told apart from the fastest's (or it leads alone)
TIED = "tied"  # its interval overlaps its group leader's: the repeats cannot order them
CLIENT_BOUND = "client-bound"  # near what wrk drives here: the number is partly wrk's
NOISE_UNKNOWN = "noise unknown"  # one ok repeat (its own or the leader's): no interval
FAILED = "failed"  # no ok repeat at this level
SHORT_CELL_S = 30  # cells shorter than this are a quick look (the study ran 180 s)


@dataclass(frozen=True)
class Ranked:
    """One server at the headline level of one app."""

    server: str
    place: int | None  # shared by a tie group: the place of its leader; None: failed
    tie_group: int | None
    tied_with: tuple[str, ...]  # the other servers of its tie group
    confidence: str  # CLEAR, TIED, CLIENT_BOUND, NOISE_UNKNOWN or FAILED
    requests_per_sec: float | None  # mean over the ok repeats
    ci_low: float | None  # 95 % interval of that mean; None with one repeat
    ci_high: float | None
    ok_n: int
    share_of_best: float | None
    latency_p99_ms: float | None
    requests_per_cpu_s: float | None  # req/s over the server's mean CPU (one CPU = 1)
    flags: tuple[str, ...]  # flag ids any repeat of the cell raised
    reason: str  # why it failed, when it did


@dataclass(frozen=True)
class Notice:
    id: str  # quick, one_machine, client_bound, one_repeat, imported
    text: str


def _names(servers: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(servers)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _rps(x: float) -> str:
    return f"{x:,.0f}"


def _times(x: float) -> str:
    return f"{x:.1f}×"


def sentences(title: str, conns: int, rows: Sequence[Ranked]) -> tuple[list[str], bool | None]:
    """One or two sentences on one app's ranking, and whether it is a clear win."""
    with_app = f"With {title}"
    measured = [r for r in rows if r.requests_per_sec is not None]
    failed = [r.server for r in rows if r.confidence == FAILED]
    if not measured:
        return [f"{with_app}, no server was measured at c={conns}: every cell failed."], None
    lead = measured[0]
    if len(measured) == 1:
        only = (
            f"{with_app}, only {lead.server} was measured at c={conns} "
            f"({_rps(lead.requests_per_sec or 0)} req/s)"
        )
        return [f"{only}; {_names(failed)} failed." if failed else f"{only}."], None
    first: str
    clear: bool | None
    group = [r for r in measured if lead.tie_group is not None and r.tie_group == lead.tie_group]
    if lead.confidence == NOISE_UNKNOWN:
        clear = None
        first = (
            f"{with_app}, {lead.server} measured the most at c={conns} "
            f"({_rps(lead.requests_per_sec or 0)} req/s), but it was measured once: the "
            "noise is unknown, so this order is not established."
        )
    elif len(group) > 1:
        clear = False
        low = min(r.requests_per_sec or 0 for r in group)
        first = (
            f"{with_app}, {_names([r.server for r in group])} are within noise of each other "
            f"at c={conns} ({_rps(low)}–{_rps(lead.requests_per_sec or 0)} req/s): their 95 % "
            "intervals overlap."
        )
    else:
        second = measured[1]
        both_bound = lead.confidence == CLIENT_BOUND and second.confidence == CLIENT_BOUND
        clear = not both_bound
        ratio = (lead.requests_per_sec or 0) / (second.requests_per_sec or 1)
        first = (
            f"{with_app}, {lead.server} is the fastest at c={conns}: "
            f"{_rps(lead.requests_per_sec or 0)} req/s, {_times(ratio)} the next, "
            f"{second.server}, beyond the noise of the repeats."
        )
        if lead.confidence == CLIENT_BOUND:
            first = first.removesuffix(".") + (
                ", though wrk was near its own limit: both at the client's ceiling, the order "
                "is wrk's, not the servers'."
                if both_bound
                else ", and wrk was near its own limit, so its real lead may be larger."
            )
    rest: list[str] = []
    slowest = measured[-1]
    if slowest is not lead and slowest not in group:
        ratio = (lead.requests_per_sec or 0) / (slowest.requests_per_sec or 1)
        rest.append(f"The slowest, {slowest.server}, is {_times(ratio)} slower than the fastest")
    if failed:
        rest.append(f"{_names(failed)} failed")
    second_sentence = ("; ".join(rest) + ".") if rest else None
    if second_sentence:
        second_sentence = second_sentence[0].upper() + second_sentence[1:]
    return [first, *([second_sentence] if second_sentence else [])], clear


def notices(
    run: Mapping[str, Any],
    stats: pd.DataFrame,
    apps: Sequence[tuple[str, Sequence[Ranked]]],
    connections: int | None,
) -> list[Notice]:
    s = run.get("settings") or {}
    out: list[Notice] = []
    if run.get("imported") or run.get("imported_from"):
        out.append(
            Notice(
                "imported",
                "measured outside this tool and imported: how it was run is partly unknown.",
            )
        )
    duration, profile = s.get("duration_s"), run.get("profile")
    short = isinstance(duration, int | float) and duration < SHORT_CELL_S
    if profile == "quick" or short:
        each = f"{duration:g} s per cell" if isinstance(duration, int | float) else "short cells"
        named = f" (the {profile} profile)" if profile else ""
        out.append(
            Notice(
                "quick",
                f"{each}{named}: a quick look. Decide on runs of minutes per cell, such as the "
                "seed profile's 3 minutes.",
            )
        )
    if one_machine(run):
        out.append(
            Notice(
                "one_machine",
                f"Client and server on one machine ({pinning_text(run)}): no network is "
                "crossed, and wrk shares the machine's caches and memory bandwidth with the "
                "server.",
            )
        )
    bound = [
        f"{r.server} ({title})"
        for title, rows in apps
        for r in rows
        if "client_saturated" in r.flags
    ]
    if bound:
        out.append(
            Notice(
                "client_bound",
                f"{_names(bound)} at c={connections} came near what wrk can drive "
                "here: those numbers measure wrk as much as the server.",
            )
        )
    once = stats[stats["ok"] == 1]
    if len(once):
        out.append(
            Notice(
                "one_repeat",
                f"{len(once)} of {len(stats)} cells "
                f"{'has' if len(once) == 1 else 'have'} one ok repeat: "
                "the noise of such a cell is unknown, and no order with it is established.",
            )
        )
    return out
