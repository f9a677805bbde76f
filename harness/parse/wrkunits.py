"""Parse stage: wrk's numbers and units (its src/units.c), shared by both wrk parsers.

Times print as us / ms / s / m / h, counts with k, M, G (x1000), sizes with K, M, G, T
and B (x1024). `scaled` converts a printed number exactly: "2.01" and a scale of "e3"
parse to 2010.0, where 2.01 * 1000 gives 2009.9999999999998.
"""

from __future__ import annotations

import re

NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+|nan|inf)"  # glibc prints 0/0 as "-nan"
TIME = rf"({NUM})(us|ms|s|m|h)"
COUNTS = rf"({NUM})([kMGTP]?)"
SIZE = rf"({NUM})([KMGTP]?)B"
PCT = rf"({NUM})%"
# wrk's own unit tables: time base us (then s, m, h), counts x1000, sizes x1024. A scale
# is (decimal exponent, factor): "2.01" + "e3" parses to exactly 2010.0, where
# 2.01 * 1000 gives 2009.9999999999998; only minutes and hours need a factor.
Scale = tuple[str, float]
TIME_MS: dict[str, Scale] = dict(
    us=("e-3", 1), ms=("", 1), s=("e3", 1), m=("e3", 60), h=("e3", 3600)
)
TIME_S: dict[str, Scale] = dict(us=("e-6", 1), ms=("e-3", 1), s=("", 1), m=("", 60), h=("", 3600))
COUNT: dict[str, Scale] = {p: (f"e{3 * i}", 1.0) for i, p in enumerate("kMGTP", 1)}
COUNT[""] = ("", 1.0)
SIZE_SCALE = {p: 1024.0**i for i, p in enumerate(("", "K", "M", "G", "T", "P"))}


def ascii_re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)  # no Unicode digits: wrk prints ASCII only


def scaled(num: str, scale: Scale) -> float:
    exp, factor = scale
    value = float(num + exp) if exp and num[-1] in "0123456789." else float(num)
    if factor == 1:
        return value
    dot = num.find(".")  # round away the noise of x60, to the digits printed
    return round(value * factor, len(num) - dot - 1 if dot >= 0 else 0)


def ms(num: str, unit: str) -> float:
    return scaled(num, TIME_MS[unit])
