"""The sequential procedure behind ``--seeds auto``: boundaries against published
values and an independent simulation, and its false-positive rate under the null."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gbench.analysis.sequential import (
    DIFFERENT,
    NOT_DISTINGUISHABLE,
    UNDECIDED,
    Design,
    boundaries,
    parse_auto,
    replay,
    spent_alpha,
)
from gbench.errors import GbenchError


def test_one_look_is_the_plain_two_sided_test():
    assert boundaries((10,), 10, 0.05) == pytest.approx((1.959964,), abs=1e-6)


def test_boundaries_match_published_lan_demets_pocock_values():
    # Lan-DeMets Pocock-type spending, two-sided alpha 0.05, equally spaced looks
    # (Jennison & Turnbull 2000, and gsDesign's sfLDPocock): K=2 and K=5.
    assert boundaries((5, 10), 10, 0.05) == pytest.approx((2.157, 2.201), abs=2e-3)
    assert boundaries((2, 4, 6, 8, 10), 10, 0.05) == pytest.approx((2.438, 2.427, 2.410, 2.397, 2.386), abs=2e-3)


def test_boundaries_spend_alpha_as_promised_in_a_simulated_random_walk():
    # Independent of the recursive integration: simulate the null walk of nested
    # z-statistics directly and count where each path first crosses.
    looks = Design().looks(10)
    bounds = np.array(boundaries(looks, 10, 0.05))
    rng = np.random.default_rng(7)
    paths = 400_000
    n = np.array(looks, dtype=float)
    increments = rng.normal(size=(paths, len(looks))) * np.sqrt(np.diff(n, prepend=0.0))
    z = np.abs(np.cumsum(increments, axis=1)) / np.sqrt(n)
    crossed = z >= bounds
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    spend = np.diff([0.0, *(spent_alpha(k / 10, 0.05) for k in looks)])
    for k, expected in enumerate(spend):
        observed = float(np.mean(first == k))
        assert observed == pytest.approx(expected, abs=4 * math.sqrt(expected / paths) + 2e-4), k
    assert float(np.mean(first >= 0)) == pytest.approx(0.05, abs=0.002)


def _welch_z(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Welch's test written out (not scipy's ttest_ind), rows are comparisons."""
    n_a, n_b = a.shape[1], b.shape[1]
    va, vb = a.var(axis=1, ddof=1) / n_a, b.var(axis=1, ddof=1) / n_b
    t = (a.mean(axis=1) - b.mean(axis=1)) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    p = 2 * stats.t.sf(np.abs(t), df)
    return stats.norm.isf(p / 2)


def test_false_positive_rate_stays_at_alpha_where_testing_after_every_seed_does_not():
    design = Design(start=3, max_seeds=10)
    looks = design.looks(10)
    bounds = boundaries(looks, 10, 0.05)
    rng = np.random.default_rng(2024)
    comparisons = 4000  # both settings from one distribution: every rejection is a false positive
    a = rng.normal(50.0, 6.0, size=(comparisons, 10))
    b = rng.normal(50.0, 6.0, size=(comparisons, 10))
    sequential = np.zeros(comparisons, dtype=bool)
    naive = np.zeros(comparisons, dtype=bool)
    for n, bound in zip(looks, bounds):
        z = _welch_z(a[:, :n], b[:, :n])
        sequential |= z >= bound
        naive |= z >= stats.norm.isf(0.025)  # "stop as soon as p < 0.05"
    error = math.sqrt(0.05 * 0.95 / comparisons)
    assert sequential.mean() <= 0.05 + 2.5 * error, sequential.mean()
    assert sequential.mean() >= 0.05 - 5 * error, sequential.mean()  # not a procedure that never rejects
    assert naive.mean() > 0.09  # the inflation the procedure exists to avoid
    # replay() takes the same decisions as the written-out rule above
    for i in range(60):
        outcome = replay(design, list(a[i]), list(b[i]))
        assert (outcome.decision == DIFFERENT) == bool(sequential[i]), i


def test_replay_stops_early_on_a_large_difference_and_runs_to_the_maximum_otherwise():
    rng = np.random.default_rng(3)
    far = replay(Design(), list(rng.normal(80, 3, 10)), list(rng.normal(50, 3, 10)))
    assert far.decision == DIFFERENT and far.seeds == 3 and "stopped at 3 seeds" in far.why
    same = replay(Design(max_seeds=6), [50.0, 51.0, 49.0, 50.5, 49.5, 50.2], [50.1, 50.9, 49.2, 50.4, 49.6, 50.0])
    assert same.decision == NOT_DISTINGUISHABLE and same.seeds == 6 and "maximum" in same.why
    partial = replay(Design(), [50.0, 51.0, 49.0, 50.5], [50.1, 50.9, 49.2, 50.4])
    assert partial.decision == UNDECIDED and partial.seeds == 4
    diverged = replay(Design(max_seeds=4), [50.0, float("nan"), 49.0, 50.5], [50.1, 50.9, 49.2, 50.4])
    assert diverged.decision in (NOT_DISTINGUISHABLE, DIFFERENT) and len(diverged.z) == 2


def test_parse_auto():
    assert parse_auto("auto") == Design(3, 10)
    assert parse_auto("auto:6") == Design(3, 6)
    assert parse_auto("0,1,2") is None
    with pytest.raises(GbenchError, match="auto:10"):
        parse_auto("auto:2")
    with pytest.raises(GbenchError, match="integer"):
        parse_auto("auto:x")
