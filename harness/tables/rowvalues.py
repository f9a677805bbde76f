"""Table stage: reading a row's numbers for the flags — present, numeric, not NaN — and
the thresholds the flag modules share."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

SATURATED = 0.90  # share of a CPU budget counted as "all of it" (sampling and jitter)


def num(row: Mapping[str, Any], *names: str) -> float | None:
    """The first present, non-empty numeric value among `names`, else None."""
    for name in names:
        v = row.get(name)
        if v is None or v is pd.NA or isinstance(v, str):
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if not math.isnan(f):
            return f
    return None
