"""Which grid axis moves a metric more: the spreads of the settings' means over two axes, compared beyond seed noise.

A grid's claim "hidden size matters more than latent size" (S2) compares two
spreads. An axis's **spread** is the largest minus the smallest marginal mean
over its values (each value's mean over the settings that have it, the other
axis averaged out). The test is of ``D = spread(axis) - spread(other)``
against 0:

- its standard error comes from a bootstrap of each setting's runs over seeds,
  resampling the setting's residuals about its mean scaled by
  ``sqrt(n / (n - 1))``, so that a resampled mean has the variance ``s^2 / n``
  of the real one (a plain resample of 5 seeds has (n - 1) / n of it); the
  bootstrap also carries the noise in which values are the largest and the
  smallest;
- its degrees of freedom are Welch-Satterthwaite's for the linear contrast
  that ``D`` is at the observed means (the two extreme values of each axis):
  the settings it weighs most decide how well their variance is known;
- interval ``D ± t(df) x se``, p two-sided from the same t.

Why not the bootstrap's percentile interval and tail p alone: in a 2 x 2 grid
``D`` rests on two cells (for equal spreads, ``D`` is one off-diagonal cell
minus the other), whose variances are known to 8 degrees of freedom at 5
seeds, and the percentile interval both shrinks the variance and ignores
that: it called equal spreads different in 8-12% of simulated 2 x 2 grids at
5 seeds and 21% at 3, at a nominal 5%. This test does so in 3-7% over the
2 x 2, 3 x 3 and 6 x 6 grids simulated in ``tests/test_claims.py``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class SpreadTest:
    """Two axes' spreads, their difference with its interval, and the two-sided p of the difference against 0."""

    spread_axis: float
    spread_other: float
    interval: tuple[float, float]
    p: float

    @property
    def difference(self) -> float:
        return self.spread_axis - self.spread_other


def spreads(means: np.ndarray, levels: Sequence[Hashable]) -> np.ndarray:
    """Largest minus smallest marginal mean over each axis value: ``means`` is (draws, settings), ``levels`` each
    setting's value of the axis."""
    marginal = np.column_stack([means[:, [v == level for v in levels]].mean(axis=1) for level in dict.fromkeys(levels)])
    return marginal.max(axis=1) - marginal.min(axis=1)


def _contrast(means: np.ndarray, levels: Sequence[Hashable]) -> np.ndarray:
    """Each setting's weight in the axis's spread at ``means``: +1 / m for the m settings of the largest marginal
    mean, -1 / m for those of the smallest."""
    values = list(dict.fromkeys(levels))
    marginal = [means[[v == level for v in levels]].mean() for level in values]
    high, low = values[int(np.argmax(marginal))], values[int(np.argmin(marginal))]
    return np.array([(v == high) / levels.count(high) - (v == low) / levels.count(low) for v in levels], dtype=float)


def compare_spreads(
    cells: Sequence[Sequence[float]],
    axis: Sequence[Hashable],
    other: Sequence[Hashable],
    resamples: int,
    confidence: float,
) -> SpreadTest:
    """Spread over ``axis`` against spread over ``other``: ``cells`` holds each setting's values over seeds (two or
    more each), ``axis`` and ``other`` each setting's value of the two axes."""
    arrays = [np.asarray(c, dtype=float) for c in cells]
    axis, other = list(axis), list(other)
    means = np.array([a.mean() for a in arrays])
    spread_axis, spread_other = float(spreads(means[None, :], axis)[0]), float(spreads(means[None, :], other)[0])
    difference = spread_axis - spread_other
    rng = np.random.default_rng(0)
    draws = np.column_stack(
        [
            a.mean()
            + ((a - a.mean()) * np.sqrt(len(a) / (len(a) - 1)))[rng.integers(0, len(a), (resamples, len(a)))].mean(
                axis=1
            )
            for a in arrays
        ]
    )
    se = float((spreads(draws, axis) - spreads(draws, other)).std(ddof=1))
    if se == 0:
        # no seed noise in the settings that decide the spreads: the difference is exact
        return SpreadTest(spread_axis, spread_other, (difference, difference), 0.0 if difference else 1.0)
    weights = _contrast(means, axis) - _contrast(means, other)
    terms = weights**2 * np.array([a.var(ddof=1) / len(a) for a in arrays])
    runs = np.array([len(a) for a in arrays], dtype=float)
    df = float(terms.sum() ** 2 / (terms**2 / (runs - 1)).sum()) if terms.sum() > 0 else float((runs - 1).sum())
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * se
    p = float(2 * stats.t.sf(abs(difference) / se, df))
    return SpreadTest(spread_axis, spread_other, (difference - half, difference + half), p)
