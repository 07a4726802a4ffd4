"""How much of a metric's spread over a study's runs is seed noise: a variance decomposition with an exact interval.

The claim "seeds move FID a lot" (S2) is about two variances: how far runs of
one setting spread (between seeds) against how far the settings' true means
spread (between settings). The one-way ANOVA decomposition over the study's
``k`` settings, each with its runs over seeds:

- within (seeds): the pooled variance of the runs about their setting's mean,
  ``MSW = sum((n_i - 1) s_i^2) / sum(n_i - 1)``;
- between (settings): the variance of the settings' means less what seed
  noise alone puts into a mean, ``max(0, var(means) - MSW / n)`` with ``n``
  the mean number of runs per setting (the ANOVA estimate ``(MSB - MSW) / n``);
- **seeds' share** = within / (within + between): 1 when the settings do not
  matter at all, 0 when every run of a setting gives the same value. With
  ``F = MSB / MSW`` it is ``n / (F + n - 1)``.

Its interval and p are exact for equal runs per setting and normal seed noise
(Scheffe's fixed-effects analysis: the grid's settings are chosen, not drawn):
``F`` follows the noncentral F distribution with ``k - 1`` and ``sum(n_i - 1)``
degrees of freedom and noncentrality ``lambda = n (k - 1) between / within``,
so a share ``s`` is ``lambda = n (k - 1) (1 - s) / s``. The interval inverts
the distribution's CDF at the observed ``F``; p is the two-sided tail of the
observed ``F`` under the claimed share. With unequal runs per setting ``n`` is
their mean and the interval approximate.

Why not a bootstrap of the seeds within each setting: with 5 seeds a resample
repeats values, its within-setting variance is (n - 1) / n of the sample's on
average and often far less, so the bootstrap's shares sit below the estimate,
and its percentile interval excluded its own estimate (S2 6 x 6: 0.74 with
[0.45, 0.73]; it covered a known share in 34-44% of simulated 36-setting
grids, where this interval covers it in 93-96%; ``tests/test_report_answers.py``).
Heavy-tailed seed noise (a collapsed run among good ones) makes any interval
here too narrow: in the same simulation with t(3) noise this one covers 62-94%.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import optimize, stats

from gbench.errors import GbenchError


def claimed_share(value: object, at: str) -> float:
    """A suite's ``seed_share_above = VALUE``, checked: a share of the variance strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise GbenchError(
            f"{at}: seed_share_above = {value!r} must be a share of the variance, 0 < value < 1, "
            "e.g. seed_share_above = 0.25"
        )
    return float(value)


def anova(cells: Sequence[Sequence[float]]) -> tuple[float, float, float, int, int]:
    """``(MSW, MSB, n, k - 1, sum(n_i - 1))`` of ``cells``, each setting's values over seeds (two or more each)."""
    arrays = [np.asarray(c, dtype=float) for c in cells]
    runs = np.array([len(a) for a in arrays], dtype=float)
    n = float(runs.mean())
    within = float(sum(((a - a.mean()) ** 2).sum() for a in arrays) / (runs - 1).sum())
    between_means = float(np.var([a.mean() for a in arrays], ddof=1))
    return within, n * between_means, n, len(arrays) - 1, int((runs - 1).sum())


def seed_share(cells: Sequence[Sequence[float]]) -> float:
    """Seeds' share of the variance over ``cells``: within / (within + between), 1 when nothing varies."""
    within, msb, n, _, _ = anova(cells)
    return _share(within, msb, n)


def _share(within: float, msb: float, n: float) -> float:
    between = max(0.0, (msb - within) / n)
    total = within + between
    return within / total if total > 0 else 1.0


def _cdf(f: float, dfn: int, dfd: int, noncentrality: float) -> float:
    # scipy's ncf takes nc > 0; at 0 it is the central F
    if noncentrality <= 0:
        return float(stats.f.cdf(f, dfn, dfd))
    return float(stats.ncf.cdf(f, dfn, dfd, noncentrality))


def _noncentrality_at(f: float, dfn: int, dfd: int, probability: float) -> float:
    """The noncentrality whose CDF at ``f`` is ``probability`` (0 when even the central F's is below it)."""

    def gap(noncentrality: float) -> float:
        return _cdf(f, dfn, dfd, noncentrality) - probability  # falls as the noncentrality grows

    if gap(0.0) <= 0:
        return 0.0
    high = 1.0
    while gap(high) > 0:
        high *= 2
    return float(optimize.brentq(gap, 0.0, high, xtol=1e-12, rtol=1e-12))


def seed_share_interval(
    cells: Sequence[Sequence[float]], claimed: float, confidence: float
) -> tuple[float, tuple[float, float], float]:
    """Seeds' share of the variance over ``cells`` (each setting's values over seeds), its exact interval, and the
    two-sided p of the share against ``claimed``; every cell needs two values or more, and two cells or more."""
    within, msb, n, dfn, dfd = anova(cells)
    point = _share(within, msb, n)
    if within == 0:
        # no seed noise at all: the share is exactly 0 when the settings differ; when nothing varies the runs say
        # nothing about it
        return (0.0, (0.0, 0.0), 0.0) if msb > 0 else (point, (0.0, 1.0), 1.0)
    f = msb / within

    def share(noncentrality: float) -> float:
        return 1.0 / (1.0 + noncentrality / (n * dfn))

    # a larger noncentrality is a smaller share, so the CDF's upper quantile gives the share's lower bound
    low = share(_noncentrality_at(f, dfn, dfd, (1 - confidence) / 2))
    high = share(_noncentrality_at(f, dfn, dfd, (1 + confidence) / 2))
    claimed_noncentrality = n * dfn * (1 - claimed) / claimed
    below = _cdf(f, dfn, dfd, claimed_noncentrality)
    return point, (low, high), min(1.0, 2 * min(below, 1 - below))
