"""Export stage: the tidy table -> results.csv and results.jsonl, for people and scripts.

The CSV opens in any spreadsheet program (UTF-8, comma-separated, a header row, empty
cells for missing values); JSON lines carry the same rows with `null` for missing.
Both keep the table's fixed column and row order, so the same raw/ gives the same
bytes. Files are written to a temporary name and renamed, like everything in raw/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.raw.store import write_atomic

CSV_NAME = "results.csv"
JSONL_NAME = "results.jsonl"


@dataclass(frozen=True)
class Export:
    """What `export_raw` wrote, and every file it left out (`--skip-bad`), as error lines."""

    written: list[Path]
    skipped: list[str]


def export_raw(raw_dir: str | Path, out_dir: str | Path, skip_bad: bool = False) -> Export:
    """The whole table of `raw_dir` as results.csv and results.jsonl in `out_dir`: the one
    implementation behind `invoke export` and `python -m harness export`.

    A file that cannot be read stops the export with a RawFormatError naming it, unless
    `skip_bad`: then it is left out and listed in `skipped` (never dropped silently).
    """
    from harness.tables.dataset import load_runs

    table = load_runs(Path(raw_dir), skip_bad=skip_bad)
    skipped = [str(s["error"]) for s in table.attrs.get("skipped", [])]
    return Export(export_table(table, out_dir), skipped)


def export_table(df: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write `results.csv` and `results.jsonl` into `out_dir`; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_text = df.to_csv(index=False, lineterminator="\n", na_rep="")
    # Column by column: pandas hands back NaN (floats, text) and pd.NA (nullable ints,
    # booleans) for "missing", and JSON has one spelling for it (null). Twice as fast as
    # converting each row to a dict and checking each of its values.
    names = [str(c) for c in df.columns]
    columns = [_values(c) for _, c in df.items()]
    encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    rows = zip(*columns, strict=True)
    lines = [encode(dict(zip(names, row, strict=True))) + "\n" for row in rows]
    written = [out / CSV_NAME, out / JSONL_NAME]
    write_atomic(written[0], csv_text.encode("utf-8"))
    write_atomic(written[1], "".join(lines).encode("utf-8"))
    return written


def _values(column: pd.Series) -> list[object]:
    """The column's values as Python objects, None where missing."""
    missing = column.isna().tolist()
    return [
        None if gone else v for v, gone in zip(column.astype(object).tolist(), missing, strict=True)
    ]
