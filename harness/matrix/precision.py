"""Matrix stage: how sure a cell's number is — its interval — and when to stop repeating.

A cell is measured several times, each repeat with a fresh server; its figure is the
mean over the ok repeats, and its uncertainty the 95 % confidence interval of that mean
from Student's t distribution: mean ± t(0.975, n−1) · s / √n.

Why t and not a bootstrap: a run has 3 to 10 repeats per cell. A percentile bootstrap
of 3 values can only resample 10 distinct means and its interval is systematically too
narrow at that size (it ignores that s itself is uncertain); the t interval widens
exactly for that (t(0.975, 2) = 4.30). It assumes the repeats vary roughly normally
around the cell's value, which is what independent server starts on a shared machine
give; the table keeps every repeat so a reader can see when they do not. With one
repeat there is no interval: the noise is unknown (on the machines this tool runs on,
two runs of the same code differ by 30–40 %), never "no warning".

The same interval decides adaptive repeats (`invoke bench --precision 2%`): after the
minimum of repeats, a cell whose half-width is more than the target share of its mean
is measured again, until it is within the target or a cap is reached.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

LEVEL = 0.95
MIN_ADAPTIVE_REPEATS = 3  # an interval from fewer repeats is too wide to decide on


@dataclass(frozen=True)
class Interval:
    """The mean of `n` values and its confidence interval (None: fewer than 2 values)."""

    n: int
    mean: float | None
    low: float | None
    high: float | None
    stdev: float | None

    @property
    def cv(self) -> float | None:
        """Coefficient of variation of the values (stdev over mean)."""
        if self.stdev is None or not self.mean:
            return None
        return self.stdev / self.mean

    @property
    def half_width_rel(self) -> float | None:
        """The interval's half-width as a share of the mean: the precision reached."""
        if self.high is None or not self.mean:
            return None
        return (self.high - self.mean) / abs(self.mean)

    def overlaps(self, other: Interval) -> bool:
        """Whether the two intervals share a value (unknown noise counts as overlap)."""
        if None in (self.low, self.high, other.low, other.high):
            return True
        assert self.low is not None and self.high is not None
        assert other.low is not None and other.high is not None
        return self.low <= other.high and other.low <= self.high


def t_critical(dof: Any, level: float = LEVEL) -> Any:
    """Student's t for a two-sided `level` interval with `dof` degrees of freedom, for a
    number or elementwise for an array (NaN where `dof` is NaN)."""
    # Imported when needed (the bench's hosts never need it). scipy.special's inverse
    # of Student's t is what scipy.stats.t.ppf calls: scipy.stats costs 0.7 s to
    # import, in every process of a site build; scipy.special a sixth of that.
    from scipy import special

    return special.stdtrit(dof, 0.5 + level / 2)


def t_quantile(n: int, level: float = LEVEL) -> float:
    """Student's t for a two-sided `level` interval of the mean of `n` values."""
    return float(t_critical(n - 1, level))


def interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """The t interval of the mean of `values` (NaN values left out)."""
    clean = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(clean)
    if n == 0:
        return Interval(0, None, None, None, None)
    mean = statistics.fmean(clean)
    if n == 1:
        return Interval(1, mean, None, None, None)
    sd = statistics.stdev(clean)
    half = t_quantile(n, level) * sd / math.sqrt(n)
    # The figures measured here are never negative, nor is a mean of them: an interval
    # reaching below 0 (two repeats far apart) stops at 0.
    low = max(mean - half, 0.0) if min(clean) >= 0 else mean - half
    return Interval(n, mean, low, mean + half, sd)


def needs_more(
    values: Sequence[float], target: float, done: int, min_repeats: int, max_repeats: int
) -> bool:
    """Whether a cell should be measured once more.

    `values`: the figures of its ok repeats; `done`: how many repeats it had, failed
    ones included. Never before `min_repeats` (those are measured anyway), never once
    `max_repeats` is reached; in between, while the interval's half-width exceeds
    `target` (a share of the mean, e.g. 0.02). With fewer than two ok repeats there is
    no interval to judge: repeating failures does not make a cell precise.
    """
    if done < min_repeats or done >= max_repeats:
        return False
    reached = interval(values).half_width_rel
    return reached is not None and reached > target


def parse_precision(text: str) -> float:
    """`2%`, `2 %` or `0.02` -> 0.02; ValueError for anything else or out of (0, 1)."""
    raw = text.strip()
    value = float(raw[:-1].strip()) / 100 if raw.endswith("%") else float(raw)
    if not 0 < value < 1:
        raise ValueError(f"{text!r} is not a share between 0 and 100 %")
    return value
