"""How much of a metric's spread over a study's runs is seed noise: a variance decomposition with a bootstrap interval.

The claim "seeds move FID a lot" (S2) is about two variances: how far runs of
one setting spread (between seeds) against how far the settings' true means
spread (between settings). The one-way random-effects decomposition over the
study's settings, each with its runs over seeds:

- within (seeds): the pooled variance of the runs about their setting's mean,
  ``sum((n_i - 1) s_i^2) / sum(n_i - 1)``;
- between (settings): the variance of the settings' means less what seed
  noise alone puts into a mean, ``max(0, var(means) - within / n)`` with ``n``
  the mean number of runs per setting (the ANOVA estimate ``(MSB - MSW) / n``
  for equal numbers of runs);
- **seeds' share** = within / (within + between): 1 when the settings do not
  matter at all, 0 when every run of a setting gives the same value.

Its 95% interval and a two-sided p against the claimed value come from
:data:`~gbench.analysis.claims.BOOTSTRAP_RESAMPLES` resamples of the seeds
within each setting (seeded, so a report is the same each time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gbench.errors import GbenchError


def claimed_share(value: object, at: str) -> float:
    """A suite's ``seed_share_above = VALUE``, checked: a share of the variance strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise GbenchError(
            f"{at}: seed_share_above = {value!r} must be a share of the variance, 0 < value < 1, "
            "e.g. seed_share_above = 0.25"
        )
    return float(value)


def seed_share(values: Sequence[np.ndarray]) -> np.ndarray:
    """Seeds' share of the variance, per draw: ``values`` holds one (draws, runs) array per setting."""
    runs = np.array([v.shape[1] for v in values], dtype=float)
    means = np.column_stack([v.mean(axis=1) for v in values])
    squares = sum(((v - v.mean(axis=1, keepdims=True)) ** 2).sum(axis=1) for v in values)
    within = squares / (runs - 1).sum()
    between = np.maximum(0.0, means.var(axis=1, ddof=1) - within / runs.mean())
    total = within + between
    return np.divide(within, total, out=np.ones_like(total), where=total > 0)


def seed_share_interval(
    cells: Sequence[Sequence[float]], claimed: float, resamples: int, confidence: float
) -> tuple[float, tuple[float, float], float]:
    """Seeds' share of the variance over ``cells`` (each setting's values over seeds), its bootstrap interval, and
    the two-sided p of the share against ``claimed``; every cell needs two values or more, and two cells or more."""
    point = float(seed_share([np.asarray(c, dtype=float)[None, :] for c in cells])[0])
    rng = np.random.default_rng(0)
    draws = seed_share([np.asarray(c, dtype=float)[rng.integers(0, len(c), (resamples, len(c)))] for c in cells])
    low, high = (float(q) for q in np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2]))
    # how often a resample puts the share on the other side of the claimed value
    # (at least one resample's worth, never 0)
    tail = min(int((draws <= claimed).sum()), int((draws >= claimed).sum()))
    return point, (low, high), min(1.0, 2 * (tail + 1) / (resamples + 1))
