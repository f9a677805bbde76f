"""Table stage: raw records -> one tidy pandas DataFrame -> statistics, flags, comparisons.

In: a raw/ tree (through the raw records and the parsers). Out: one row per cell and
repeat with fixed columns and dtypes (docs/schema.md), validity flags, per-cell
summaries, run-to-run comparisons, the CSV/JSON-lines export. Draws and renders nothing.
"""
