"""Export stage: the tidy table -> results.csv and results.jsonl, for people and scripts.

The CSV opens in any spreadsheet program (UTF-8, comma-separated, a header row, empty
cells for missing values); JSON lines carry the same rows with `null` for missing.
Both keep the table's fixed column and row order, so the same raw/ gives the same
bytes. Files are written to a temporary name and renamed, like everything in raw/.

A spreadsheet evaluates a cell that starts with `=`, `+`, `-` or `@` (and, OWASP
adds, a tab or carriage return) as a formula, so a server name or reason such as
`=1+2` or `=HYPERLINK(…)` would run when results.csv is opened. In the CSV only, such
text values get a leading single quote, as OWASP's "CSV injection" page advises; number
columns are left alone (a negative figure stays a number) and results.jsonl keeps every
value as it is, for scripts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.raw.store import check_writable, write_atomic

CSV_NAME = "results.csv"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
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

    check_writable(Path(out_dir))
    table = load_runs(Path(raw_dir), skip_bad=skip_bad)
    skipped = [str(s["error"]) for s in table.attrs.get("skipped", [])]
    return Export(export_table(table, out_dir), skipped)


def export_table(df: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write `results.csv` and `results.jsonl` into `out_dir`; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_text = spreadsheet_safe(df).to_csv(index=False, lineterminator="\n", na_rep="")
    # pandas hands back NaN (floats, text) and pd.NA (nullable ints, booleans) for
    # "missing"; JSON has one spelling for it (null). The whole frame is converted at
    # once: per row or per column, pandas' own overhead was most of the export.
    names = [str(c) for c in df.columns]
    values = df.astype(object).to_numpy().tolist()
    missing = df.isna().to_numpy().tolist()
    encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    lines = [
        encode({k: None if gone else v for k, v, gone in zip(names, row, nas, strict=True)}) + "\n"
        for row, nas in zip(values, missing, strict=True)
    ]
    written = [out / CSV_NAME, out / JSONL_NAME]
    write_atomic(written[0], csv_text.encode("utf-8"))
    write_atomic(written[1], "".join(lines).encode("utf-8"))
    return written


def spreadsheet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with every text value that a spreadsheet would take for a formula quoted."""
    out = df
    for column in df.columns:
        values = df[column]
        if not (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)):
            continue  # numbers, booleans: never text, never escaped
        # pandas' own str.startswith (missing and non-text values: False), not a
        # Python call per value: this was a tenth of exporting a run.
        try:
            formula = values.str.startswith(FORMULA_START, na=False).fillna(False).astype(bool)
        except AttributeError:  # an object column of no text at all (pandas refuses .str)
            continue
        if formula.any():
            if out is df:
                out = df.copy()
            out[column] = values.where(~formula, "'" + values.astype(str))
    return out
