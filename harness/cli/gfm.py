"""Command-line stage: plain GitHub-flavoured markdown for pasting into a pull request.

In: text and rows. Out: markdown lines with no HTML and no entities (the site's pages
escape for mkdocs; a pull request shows `&#40;` as it is): table cells escape only the
`|` GFM would split on, identifiers are code spans.
"""

from __future__ import annotations

from collections.abc import Sequence


def text(value: str) -> str:
    """One table cell or heading: on one line, with `|` escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def code(value: str) -> str:
    """A code span that survives any backticks in `value`."""
    value = text(value)
    fence = "``" if "`" in value else "`"
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """A GFM table; `align` has one letter per column: l(eft), r(ight), c(enter)."""
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    rule = [marks.get(align[i] if i < len(align) else "l", ":--") for i in range(len(headers))]
    lines = ["| " + " | ".join(text(h) for h in headers) + " |", "|" + "|".join(rule) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(text(cell) for cell in row) + " |")
    return lines
