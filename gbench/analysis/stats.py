"""Statistics over seeds: is a difference between two settings real or seed noise?

The numbers only; :mod:`gbench.analysis.comparisons` applies them to the settings of a study.

- :func:`summarize`: n, mean, sd (ddof=1) and the Student-t 95% interval of the mean.
- :func:`welch` and :func:`welch_difference`: Welch's t-test (unequal variances)
  and its 95% interval for the difference of means (scipy.stats.ttest_ind).
- :func:`bootstrap_difference`: a percentile bootstrap interval for the same
  difference, resampling seeds within each setting (scipy.stats.bootstrap).
- :func:`probability_of_improvement`: P(X < Y) for one draw of each (lower FID
  is better), estimated as the Mann-Whitney U statistic over nX * nY, as
  rliable (Agarwal et al. 2021) does, with its bootstrap interval.
- :func:`detectable_difference` and :func:`seeds_needed`: power of the Welch
  test by the t approximation (the noncentral t replaced by a shifted central
  t with Welch-Satterthwaite degrees of freedom). It is optimistic at few
  seeds: at the difference it calls detectable with 80% power, simulated
  two-sided Welch tests at 5% (equal sds, 40,000 draws each,
  ``python benchmarks/seeds_power.py``) reject in 45% of draws at 2 seeds,
  69% at 3, 78% at 5 and 80% at 10. So :func:`seeds_needed` never answers
  fewer than :data:`MIN_SEEDS_NEEDED` (3) seeds.
- :func:`paired_t` and :func:`paired_difference`: the paired t-test
  (scipy.stats.ttest_rel) and its interval, for settings whose runs share
  their seeds' initial weights and batch order
  (:func:`gbench.analysis.comparisons.pairing` says when).
- :func:`holm`: Holm-Bonferroni adjusted p-values.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as _scipy

# the public API (docs/api.md)
__all__ = [
    "Summary",
    "bootstrap_difference",
    "bootstrap_interval",
    "detectable_difference",
    "holm",
    "paired_difference",
    "paired_t",
    "probability_of_improvement",
    "seeds_needed",
    "summarize",
    "welch",
    "welch_difference",
]

ALPHA = 0.05
CONFIDENCE = 0.95
CORRECTION = "Holm-Bonferroni"
POWER = 0.80
#: Bootstrap resamples; the generator is seeded so that a report is the same every time it is written.
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0
#: seeds_needed searches up to this many seeds per setting.
MAX_SEEDS = 1000
#: seeds_needed never answers fewer: at 2 seeds the promised 80% power is about 45% (benchmarks/seeds_power.py).
MIN_SEEDS_NEEDED = 3

# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Mean and spread of one quantity over seeds."""

    n: int
    mean: float | None
    sd: float | None  # sample standard deviation (ddof=1); None for n < 2
    ci_low: float | None  # 95% CI of the mean (Student t); None for n < 2
    ci_high: float | None

    @property
    def half_width(self) -> float | None:
        return None if self.ci_high is None or self.mean is None else self.ci_high - self.mean


def finite(values: Iterable[Any]) -> list[float]:
    """The values that are finite numbers (None, text, NaN and inf dropped)."""
    out = []
    for value in values:
        if isinstance(value, bool) or value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out.append(number)
    return out


def summarize(values: Iterable[Any], confidence: float = CONFIDENCE) -> Summary:
    """n, mean, sd (ddof=1) and the Student-t confidence interval of the mean."""
    data = finite(values)
    n = len(data)
    if n == 0:
        return Summary(0, None, None, None, None)
    mean = sum(data) / n
    if n < 2:
        return Summary(1, mean, None, None, None)
    sd = math.sqrt(sum((x - mean) ** 2 for x in data) / (n - 1))
    half = float(_scipy.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


def mean(values: Iterable[Any]) -> float | None:
    data = finite(values)
    return sum(data) / len(data) if data else None


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Welch's two-sided t-test: (t statistic, p-value); NaN when it cannot be computed."""
    result = _scipy.ttest_ind(list(a), list(b), equal_var=False)
    return float(result.statistic), float(result.pvalue)


def paired_t(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """The paired two-sided t-test of ``a[i]`` against ``b[i]`` (the same seed): (t statistic, p-value); NaN when
    undefined."""
    result = _scipy.ttest_rel(list(a), list(b))
    return float(result.statistic), float(result.pvalue)


def paired_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """mean(a - b) over the pairs and the paired t interval of it: (difference, low, high); NaN where undefined."""
    interval = _scipy.ttest_rel(list(a), list(b)).confidence_interval(confidence)
    return float(np.mean(np.subtract(a, b))), float(interval.low), float(interval.high)


def paired_detectable_difference(
    sd_differences: float, n: int, alpha: float = ALPHA, power: float = POWER
) -> float | None:
    """The smallest true mean difference a two-sided paired t-test at ``alpha`` detects with ``power`` over ``n`` pairs
    (t approximation, n - 1 df, ``sd_differences`` the sd of the pairs' differences); None below 2 pairs or without
    spread."""
    if n < 2 or sd_differences == 0:
        return None
    return float((_scipy.t.ppf(1 - alpha / 2, n - 1) + _scipy.t.ppf(power, n - 1)) * sd_differences / math.sqrt(n))


def paired_seeds_needed(
    difference: float, sd_differences: float, alpha: float = ALPHA, power: float = POWER, most: int = MAX_SEEDS
) -> int | None:
    """Pairs (seeds) at which a paired test detects ``difference`` with ``power``; at least :data:`MIN_SEEDS_NEEDED`;
    None above ``most``."""
    if difference == 0 or not math.isfinite(difference):
        return None
    for n in range(MIN_SEEDS_NEEDED, most + 1):
        detectable = paired_detectable_difference(sd_differences, n, alpha, power)
        if detectable is None or detectable <= abs(difference):
            return n
    return None


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values, in the input order; None stays None (not tested).

    Sorted ascending, the i-th smallest of m p-values (i from 1) becomes
    max over j <= i of min(1, (m - j + 1) * p_(j)). A hypothesis is rejected
    at level alpha when its adjusted p-value is below alpha.
    """
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(tested)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


# ---------------------------------------------------------------------------
# The difference of two settings: intervals and probability of improvement
# ---------------------------------------------------------------------------


def welch_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """mean(a) - mean(b) and Welch's confidence interval for it: (difference, low, high); NaN where undefined."""
    result = _scipy.ttest_ind(list(a), list(b), equal_var=False)
    interval = result.confidence_interval(confidence)
    return float(np.mean(a) - np.mean(b)), float(interval.low), float(interval.high)


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _share_lower(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(X < Y) over all pairs, ties counting one half, along ``axis`` (batched for the bootstrap).

    Counted from how often each distinct value was drawn, O(n log n), instead of
    comparing every pair: at 2,500 seeds a side, 9,999 resamples of nX x nY
    comparisons would need 58 GiB. The result is the pairwise one to the bit.
    """
    x, y = np.moveaxis(np.asarray(x, float), axis, -1), np.moveaxis(np.asarray(y, float), axis, -1)
    (x_ranks, y_ranks), bins = _dense_ranks(x, y)
    return _share_lower_of_ranks(x_ranks, y_ranks, bins=bins)


def _dense_ranks(*samples: np.ndarray) -> tuple[list[np.ndarray], int]:
    """Each value's place among the samples' distinct values (0 for the smallest), as floats, and the
    number of places; NaN, compared with anything neither lower nor equal, gets the last place alone."""
    support = np.unique(np.concatenate([np.ravel(sample) for sample in samples]))
    support = support[~np.isnan(support)]
    return [np.searchsorted(support, sample).astype(float) for sample in samples], len(support) + 1


def _share_lower_of_ranks(x: np.ndarray, y: np.ndarray, axis: int = -1, *, bins: int) -> np.ndarray:
    """:func:`_share_lower` of samples given as :func:`_dense_ranks`: the order is all it depends on,
    so the bootstrap resamples the ranks (the same draws as of the values) and needs no search per draw."""
    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    lower, ties = _pairs_lower_and_tied(x.astype(np.intp), y.astype(np.intp), bins)
    # counted as integers and divided by nX * nY as the mean of the pairwise comparisons was: the same bits
    pairs = x.shape[-1] * y.shape[-1]
    return lower / pairs + 0.5 * (ties / pairs)


def _pairs_lower_and_tied(x: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ranks: the pairs (x, y) with x < y, and those with x == y, as integer counts.

    With cx[k] and cy[k] the draws of rank k in a row's x and y, the pairs below are the
    sum over k of cy[k] times the x draws of lower ranks, the ties the sum of cx[k] * cy[k].
    The last rank (NaN's) enters neither sum.
    """
    batch = np.broadcast_shapes(x.shape[:-1], y.shape[:-1])

    def draws(ranks: np.ndarray) -> np.ndarray:
        rows = np.broadcast_to(ranks, (*batch, ranks.shape[-1])).reshape(-1, ranks.shape[-1])
        index = rows + bins * np.arange(rows.shape[0])[:, None]  # one run of bins per row: one bincount for all
        return np.bincount(index.ravel(), minlength=rows.shape[0] * bins).reshape(rows.shape[0], bins)[:, :-1]

    drawn_x, drawn_y = draws(x), draws(y)
    x_below = np.cumsum(drawn_x, axis=-1) - drawn_x  # x draws of lower ranks
    lower = np.einsum("ij,ij->i", drawn_y, x_below).reshape(batch)
    ties = np.einsum("ij,ij->i", drawn_y, drawn_x).reshape(batch)
    return lower, ties


#: Values in one batch of bootstrap resamples (both samples): 16 MB as float64, about 200 MB with the statistic's work
#: arrays. Below it the resamples are drawn in one batch, exactly as before batching existed.
BOOTSTRAP_BATCH_VALUES = 2_000_000


def bootstrap_interval(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    statistic: Callable[..., np.ndarray],
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    paired: bool = False,
) -> tuple[float, float]:
    """A percentile bootstrap interval of ``statistic(a, b)``, each sample resampled on its own (seeds within a
    setting).

    Percentile rather than BCa: with 2 to 5 seeds BCa's acceleration estimate
    is often undefined; the percentile interval is too narrow at such sizes,
    which the report's caption says.
    """
    # One batch draws the same resamples as scipy's default; many seeds are drawn in
    # batches so that memory stays bounded (the statistic's work per value is a few arrays).
    values_per_resample = max(1, len(a) + len(b))
    batch = (
        None
        if resamples * values_per_resample <= BOOTSTRAP_BATCH_VALUES
        else max(1, BOOTSTRAP_BATCH_VALUES // values_per_resample)
    )
    result = _scipy.bootstrap(
        (np.asarray(a, float), np.asarray(b, float)),
        statistic,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        paired=paired,
        random_state=np.random.default_rng(BOOTSTRAP_SEED),
        batch=batch,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def bootstrap_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE, paired: bool = False
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a) - mean(b), resampling seeds within each setting (``paired``: the same
    seeds for both)."""
    return bootstrap_interval(a, b, _mean_difference, confidence, paired=paired)


def probability_of_improvement(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """P(a value of ``a`` is lower than one of ``b``): (estimate, bootstrap low, high).

    The estimate is U / (nA * nB) with U the Mann-Whitney statistic of b
    against a (the pairs with b > a, ties counting one half), rliable's
    definition with "lower FID is better".
    """
    u = float(_scipy.mannwhitneyu(list(b), list(a), alternative="two-sided").statistic)
    (a_ranks, b_ranks), bins = _dense_ranks(np.asarray(a, float), np.asarray(b, float))
    low, high = bootstrap_interval(a_ranks, b_ranks, functools.partial(_share_lower_of_ranks, bins=bins), confidence)
    return u / (len(a) * len(b)), low, high


# ---------------------------------------------------------------------------
# Power: what the seeds at hand can detect
# ---------------------------------------------------------------------------


def _welch_se_df(sd_a: float, n_a: int, sd_b: float, n_b: int) -> tuple[float, float]:
    va, vb = sd_a**2 / n_a, sd_b**2 / n_b
    se2 = va + vb
    if se2 == 0:
        return 0.0, math.nan
    return math.sqrt(se2), se2**2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))


def detectable_difference(
    sd_a: float, n_a: int, sd_b: float, n_b: int, alpha: float = ALPHA, power: float = POWER
) -> float | None:
    """The smallest true difference of means a two-sided Welch test at ``alpha`` detects with ``power``.

    t approximation: (t_{1-alpha/2, df} + t_{power, df}) * SE, with SE and df
    (Welch-Satterthwaite) from the standard deviations given. None without
    spread (both sd 0) or with fewer than two values on a side.
    """
    if n_a < 2 or n_b < 2:
        return None
    se, df = _welch_se_df(sd_a, n_a, sd_b, n_b)
    if se == 0:
        return None
    return float((_scipy.t.ppf(1 - alpha / 2, df) + _scipy.t.ppf(power, df)) * se)


def seeds_needed(
    difference: float, sd_a: float, sd_b: float, alpha: float = ALPHA, power: float = POWER, most: int = MAX_SEEDS
) -> int | None:
    """Seeds per setting (the same on both sides) for which ``difference`` is detectable with ``power``; None above
    ``most``.

    At least :data:`MIN_SEEDS_NEEDED`: the t approximation promises power that 2 seeds do not have.
    """
    if difference == 0 or not math.isfinite(difference):
        return None
    for n in range(MIN_SEEDS_NEEDED, most + 1):
        detectable = detectable_difference(sd_a, n, sd_b, n, alpha, power)
        if detectable is None:  # no spread at all: any difference shows with the fewest seeds
            return MIN_SEEDS_NEEDED
        if detectable <= abs(difference):
            return n
    return None
