"""Table stage: the validity flags of open-loop rows (harness/bench/lua/openloop.lua's
cells), and which closed-loop flags do not apply to them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.tables.rowvalues import SATURATED, num

# An open-loop cell's achieved rate below this share of its offered rate did not get
# the load it is labelled with (the server or the client fell behind the schedule).
RATE_ACHIEVED_SHARE = 0.97
# What an open-loop row is not judged by: its connections wait between requests by
# design (Little's law, established connections), it runs one wrk thread per connection,
# and it offers a fixed rate, so req/s is no precision to reach.
CLOSED_LOOP_ONLY = frozenset(
    {"littles_law", "effective_connections", "starved_connections", "imprecise"}
)


def open_client_saturated(row: Mapping[str, Any]) -> str | None:
    """The open-loop client at its CPU budget adds its own delays to every latency it
    reports (it sends late, reads late), whatever the server does: its CPU alone says so.
    wrk runs one thread per connection there, on at most the client CPUs."""
    wrk = num(row, "wrk_cpu_pct_mean")
    if wrk is None:
        return None
    # Pinned: its CPUs; else the host's cores (one thread per connection: many more).
    cpus = num(row, "client_cpus_n") or num(row, "cores") or num(row, "threads") or 1
    if wrk >= SATURATED * 100 * cpus:
        return f"the open-loop client (wrk) used {wrk:.0f} % of {cpus:.0f} CPU(s)"
    return None


def rate_not_achieved(row: Mapping[str, Any]) -> str | None:
    """An open-loop cell that answered less than 97 % of the rate it offered."""
    offered, achieved = num(row, "offered_rate_rps"), num(row, "achieved_rate_rps")
    if row.get("loop") != "open" or not offered or achieved is None:
        return None
    if achieved >= RATE_ACHIEVED_SHARE * offered:
        return None
    return (
        f"achieved {achieved:,.0f} of {offered:,.0f} req/s offered "
        f"({achieved / offered:.0%}, below {RATE_ACHIEVED_SHARE:.0%})"
    )
