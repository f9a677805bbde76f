"""Matrix stage: option values as typed in a shell or a profile -> checked Python values.

Durations (`180`, `180s`, `3m`, `500ms`), comma-separated lists, whole numbers and CPU
lists; `unique` refuses a list that names a value twice. Every bad value is a
`ConfigError` whose one line names the option and the cause.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from harness.errors import UserError

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
T = TypeVar("T")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ConfigError(UserError, ValueError):
    """A bad option or profile value; the message is one line for the user."""


def parse_duration(value: str | int | float, option: str) -> float:
    """`180`, `180s`, `3m`, `500ms` -> seconds; negative or garbage is a ConfigError."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ConfigError(
                f"{option}: {value!r} is not a duration (use e.g. 180, 180s, 3m, 500ms)"
            )
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    if seconds < 0:
        raise ConfigError(f"{option}: duration must not be negative, got {value!r}")
    return seconds


def parse_list(value: str | list[Any], option: str) -> list[str]:
    """Comma-separated `a,b,c` (or a TOML list) -> stripped, non-empty items."""
    items = value if isinstance(value, list) else str(value).split(",")
    out = [str(item).strip() for item in items if str(item).strip()]
    if not out:
        raise ConfigError(f"{option}: empty list")
    return out


def unique(items: Sequence[T], option: str) -> list[T]:
    """`items` when none is given twice; else a ConfigError naming the repeated value
    (`--connections 10,10` would measure one cell twice, the second overwriting the first)."""
    seen: set[T] = set()
    for item in items:
        if item in seen:
            raise ConfigError(f"{option}: {item} is given twice (each value once)")
        seen.add(item)
    return list(items)


def parse_ints(value: str | list[Any], option: str, minimum: int = 1) -> list[int]:
    out = []
    for item in parse_list(value, option):
        try:
            n = int(item)
        except ValueError:
            raise ConfigError(f"{option}: {item!r} is not a whole number") from None
        if n < minimum:
            raise ConfigError(f"{option}: {n} is below the minimum of {minimum}")
        out.append(n)
    return out


def parse_cpus(value: str | list[Any] | None, option: str) -> tuple[int, ...] | None:
    if value in (None, "", "none"):
        return None
    cpus = tuple(unique(parse_ints(value, option, minimum=0), option))
    usable = os.sched_getaffinity(0)
    bad = [c for c in cpus if c not in usable]
    if bad:
        raise ConfigError(f"{option}: CPU {bad[0]} is not usable here (usable: {sorted(usable)})")
    return cpus
