"""Statistics for comparing control strategies over paired seeds.

Seeds are paired across controllers (seed 3 under ``fixed`` and seed 3 under ``actuated`` see the
same random demand), so a change is judged on the per-seed differences, which removes the
seed-to-seed variation that both share. Intervals are two-sided 95% Student-t intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean with the half-width of its 95% confidence interval (None with fewer than 2 values)."""

    mean: float
    half_width: float | None
    n: int

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width


def estimate(values: Sequence[float]) -> Estimate:
    """Mean and 95% t-interval of ``values``; raises ValueError on an empty sequence."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to estimate from")
    mean = math.fsum(values) / n
    if n < 2:
        return Estimate(mean, None, n)
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    # Imported here: scipy.stats takes most of a second to import, and `ccsim run` never needs it.
    from scipy import stats as scipy_stats

    t = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1))
    return Estimate(mean, t * math.sqrt(variance / n), n)


@dataclass(frozen=True)
class PairedChange:
    """Change of a metric against a baseline over paired seeds: absolute and relative (%)."""

    difference: Estimate
    baseline_mean: float

    @property
    def percent(self) -> float | None:
        if self.baseline_mean == 0:
            return None
        return 100.0 * self.difference.mean / self.baseline_mean

    def percent_interval(self) -> tuple[float, float] | None:
        low, high = self.difference.low, self.difference.high
        if self.baseline_mean == 0 or low is None or high is None:
            return None
        return 100.0 * low / self.baseline_mean, 100.0 * high / self.baseline_mean


def paired_change(baseline: dict[int, float], other: dict[int, float]) -> PairedChange | None:
    """Compare ``other`` with ``baseline`` on the seeds both have (seed -> value)."""
    seeds = sorted(set(baseline) & set(other))
    if not seeds:
        return None
    differences = [other[s] - baseline[s] for s in seeds]
    base_mean = math.fsum(baseline[s] for s in seeds) / len(seeds)
    return PairedChange(estimate(differences), base_mean)
