"""Perf stage: measure the tool itself -> docs/about/perf.json (`invoke perf`).

In: synthetic raw trees of a given size and, optionally, short real cells. Out: parse,
table and build times against their floors, peak memory, harness overhead per cell.
"""
