"""The expected best FID after k settings tried, as Lucic et al. (2018, "Are GANs created equal?") draw it.

A candidate's search tried T settings. Had it tried only k of them, in a
random order, its best would be the minimum of k of the T FIDs drawn without
replacement. Its expectation is exact by order statistics: with the FIDs
sorted, FID_(1) <= ... <= FID_(T), the i-th smallest is the minimum of a
k-subset exactly when the subset holds it and k-1 of the T-i larger ones, so

    E[min of k of T] = sum_i FID_(i) * C(T-i, k-1) / C(T, k).

The interval is a percentile bootstrap over trials: resample the T trials with
replacement, recompute the curve, take the 2.5% and 97.5% points at each k.

What a trial counts as (:func:`trial_value`): a finished trial its final FID;
a pruned trial the last FID it reported (the evidence the pruner stopped it
on; +inf when it reported none); a trial that diverged or ended without a FID
+inf. An infinite FID in a k-draw makes that draw's minimum the others', and
a curve point is +inf only when every k-subset could hold nothing but
infinities (k <= the number of infinite trials); ties and infinities never
make a NaN. The curve assumes the T trials are exchangeable draws, which
random search gives ([search] sampler = "random"); under TPE later trials
depend on earlier ones, and the curve is then only a description.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Bootstrap resamples of the trials behind each curve's interval.
BOOTSTRAP = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class TrialOutcome:
    """One counted search trial of a candidate, as the budget curve reads it."""

    number: int
    state: str  # "complete" or "pruned"
    fid: float | None  # its final FID, or a pruned trial's last reported one; None: diverged or none reported
    wall_seconds: float = 0.0


def trial_value(trial: TrialOutcome) -> float:
    """What a trial counts as in the curve: its FID, +inf without one (see the module's docstring)."""
    return float(trial.fid) if trial.fid is not None and math.isfinite(trial.fid) else math.inf


def expected_best(values: Sequence[float]) -> list[float]:
    """E[min of k of the T values, drawn without replacement] for k = 1..T, exactly (order statistics)."""
    return [float(v) for v in _expected_best_rows(np.array([sorted(float(v) for v in values)]))[0]]


def _weights(total: int) -> np.ndarray:
    """W[k-1, i-1] = C(T-i, k-1) / C(T, k): the chance that the i-th smallest of T is the minimum of a k-subset."""
    return np.array(
        [[math.comb(total - i, k - 1) / math.comb(total, k) for i in range(1, total + 1)] for k in range(1, total + 1)]
    )


def _expected_best_rows(ordered: np.ndarray) -> np.ndarray:
    """:func:`expected_best` of every row of ``ordered`` (each sorted ascending) at once.

    An infinite value has weight 0 for k above the number of infinities (the sorted infinities are the last
    values, and the i-th smallest is never a k-subset's minimum for i > T-k+1), so it enters only where
    the expectation is +inf: those points are set apart, never computed as inf * 0.
    """
    total = ordered.shape[1]
    infinite = np.isinf(ordered)
    finite_part = np.where(infinite, 0.0, ordered) @ _weights(total).T
    infinities = infinite.sum(axis=1, keepdims=True)
    k = np.arange(1, total + 1)[None, :]
    return np.where(k <= infinities, math.inf, finite_part)


@dataclass(frozen=True)
class BudgetCurve:
    """One candidate's expected best FID after k = 1..T settings, with its bootstrap interval."""

    candidate: str
    expected: list[float]
    low: list[float]
    high: list[float]
    pruned: int
    diverged: int  # trials counted as +inf

    @property
    def trials(self) -> int:
        return len(self.expected)


def budget_curve(
    candidate: str, trials: Sequence[TrialOutcome], seed: int = 0, resamples: int = BOOTSTRAP
) -> BudgetCurve:
    """The candidate's curve; the bootstrap is seeded, so the same trials give the same interval."""
    values = [trial_value(t) for t in trials]
    expected = expected_best(values)
    rng = np.random.default_rng(seed)
    total = len(values)
    resampled = np.sort(np.array(values)[rng.integers(0, total, (resamples, total))], axis=1)
    curves = _expected_best_rows(resampled)
    tail = (1 - CONFIDENCE) / 2 * 100
    # "lower": a resampled value itself, never an interpolation between a number and +inf
    low = [float(v) for v in np.percentile(curves, tail, axis=0, method="lower")]
    high = [float(v) for v in np.percentile(curves, 100 - tail, axis=0, method="lower")]
    pruned = sum(t.state == "pruned" for t in trials)
    return BudgetCurve(candidate, expected, low, high, pruned, sum(math.isinf(v) for v in values))


@dataclass
class SearchSummary:
    """A search study's phase 1 as the report reads it (built from the searches' studies by gbench.studies)."""

    trials: dict[str, list[TrialOutcome]]  # candidate -> its counted search trials
    datasets: dict[str, str]  # candidate -> the data set it trains on
    references: dict[str, str | None]  # data set -> the candidate the others are compared with
    planned_trials: int  # [search] trials per candidate
    space: str  # the searched space, described
    sampler: str
    pruner: str

    def curves(self) -> list[BudgetCurve]:
        return [budget_curve(name, trials) for name, trials in self.trials.items() if trials]

    def search_seconds(self, candidate: str) -> float:
        return float(sum(t.wall_seconds for t in self.trials.get(candidate, [])))
