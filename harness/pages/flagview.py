"""Site stage 3b: the table's validity flags -> badges, flagged-cell lists and the legend.

Takes the `flags` and `flag_details` columns harness/tables/flags.py fills (one row per repeat)
and returns, per cell (server, app, workload, connections), each flag some repeat
raised with every repeat's detail text. Pages show a flag where its number is shown: a
badge (the flag's title, linking to its entry on the legend page) next to the cell, and
the details in a list. The legend is built from `harness.tables.flaginfo.FLAGS` itself, so it
always names exactly the flags the table can carry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.pages.context import FLAGS_PAGE, rel, server_page
from harness.tables.flaginfo import FLAGS
from harness.tables.flags import details_of

Key = tuple[str, str, str, int]
_ORDER = {fid: i for i, fid in enumerate(FLAGS)}


@dataclass(frozen=True)
class CellFlag:
    id: str
    details: tuple[tuple[int, str], ...]  # (repeat, detail) of each repeat that raised it

    @property
    def title(self) -> str:
        info = FLAGS.get(self.id)
        return info.title if info else self.id

    def text(self) -> str:
        """'r1: detail; r2: other', or 'r1, r2: detail' when the repeats agree."""
        texts = {d for _, d in self.details}
        repeats = ", ".join(f"r{k}" for k, _ in self.details)
        if len(texts) == 1:
            return f"{repeats}: {texts.pop()}"
        return "; ".join(f"r{k}: {d}" for k, d in self.details)


CellFlags = Mapping[Key, Sequence[CellFlag]]


def key_of(row: Mapping[Any, Any]) -> Key:
    return (str(row["server"]), str(row["app"]), str(row["workload"]), int(row["connections"]))


def cell_flags(df: pd.DataFrame) -> dict[Key, list[CellFlag]]:
    """Cell -> the flags any of its repeats raised, in legend order."""
    found: dict[Key, dict[str, list[tuple[int, str]]]] = {}
    cols = ["server", "app", "workload", "connections", "repeat", "flags", "flag_details"]
    for row in df[cols].to_dict("records"):
        ids = row["flags"] if isinstance(row["flags"], str) else ""
        details = details_of(row["flag_details"] if isinstance(row["flag_details"], str) else "")
        for fid in (f for f in ids.split(";") if f):
            per = found.setdefault(key_of(row), {}).setdefault(fid, [])
            per.append((int(row["repeat"]), details.get(fid, "")))
    return {
        key: [
            CellFlag(fid, tuple(sorted(by[fid])))
            for fid in sorted(by, key=lambda f: (_ORDER.get(f, len(_ORDER)), f))
        ]
        for key, by in sorted(found.items())
    }


def badges(flags: Sequence[CellFlag], page: str) -> list[dict[str, str]]:
    """Inline labels for a table cell on `page`: title and link to the legend entry."""
    legend = rel(page, FLAGS_PAGE)
    return [{"id": f.id, "title": f.title, "link": f"{legend}#{f.id}"} for f in flags]


def cell_badges(cells: CellFlags, page: str, key: Key) -> list[dict[str, str]]:
    return badges(cells.get(key, ()), page)


def flag_items(cells: CellFlags, page: str, server: str | None = None) -> list[dict[str, Any]]:
    """One list item per flagged cell and flag (of one server, or all): for admonitions."""
    return [
        {
            "server": key[0],
            "app": key[1],
            "workload": key[2],
            "connections": key[3],
            "link": rel(page, server_page(key[0])),
            "badge": badges([flag], page),
            "detail": flag.text(),
        }
        for key, flags in sorted(cells.items())
        if server is None or key[0] == server
        for flag in flags
    ]


def legend(cells: CellFlags, page: str) -> list[dict[str, Any]]:
    """Every flag harness/tables/flaginfo.py defines, with the cells of this run that carry it."""
    out = []
    for info in FLAGS.values():
        flagged = [
            {
                "server": key[0],
                "app": key[1],
                "workload": key[2],
                "connections": key[3],
                "link": rel(page, server_page(key[0])),
                "detail": flag.text(),
            }
            for key, flags in sorted(cells.items())
            for flag in flags
            if flag.id == info.id
        ]
        out.append(
            {"id": info.id, "title": info.title, "explanation": info.explanation, "cells": flagged}
        )
    return out
