"""gbench.analysis.stats against hand computation and scipy on fixed numbers."""

import itertools
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gbench.analysis import stats as stats_module
from gbench.analysis.comparisons import setting_names, study_tables
from gbench.analysis.stats import (
    CORRECTION,
    bootstrap_difference,
    detectable_difference,
    holm,
    probability_of_improvement,
    seeds_needed,
    summarize,
    welch,
    welch_difference,
)
from gbench.results.records import RunRecord


def record(variant, seed, fid=None, extractor="lenet-mnist@1a2b3c4d", status="ok", **row):
    row = {"status": status, "architecture": "mlp", "seed": seed, **row}
    if fid is not None:
        row.update(fid=fid, fid_extractor=extractor)
    return RunRecord(variant=variant, seed=seed, row=row)


# --- mean, sd, confidence interval


def test_summary_matches_hand_computation():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert s.n == 4 and s.mean == 2.5
    assert s.sd == pytest.approx(math.sqrt(5 / 3))  # sum of squares 5, ddof=1
    # t_{0.975, 3} = 3.182446305 (table value); half-width = t * s / sqrt(n)
    assert s.half_width == pytest.approx(3.182446305 * math.sqrt(5 / 3) / 2, rel=1e-9)
    low, high = scipy_stats.t.interval(0.95, 3, loc=2.5, scale=scipy_stats.sem([1, 2, 3, 4]))
    assert (s.ci_low, s.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_summary_of_one_value_has_no_spread_and_bad_values_are_dropped():
    one = summarize([7.5, None, float("nan"), "x", float("inf")])
    assert (one.n, one.mean, one.sd, one.ci_low, one.ci_high) == (1, 7.5, None, None, None)
    assert summarize([]).n == 0 and summarize([]).mean is None


# --- Welch's t-test


def test_welch_matches_hand_computation_and_scipy():
    a, b = [1, 2, 3, 4, 5], [2, 4, 6, 8, 10, 12]
    # means 3 and 7, variances 2.5 and 14: se^2 = 2.5/5 + 14/6
    se2 = 2.5 / 5 + 14 / 6
    t_hand = (3 - 7) / math.sqrt(se2)
    df_hand = se2**2 / ((2.5 / 5) ** 2 / 4 + (14 / 6) ** 2 / 5)  # Welch-Satterthwaite
    t, p = welch(a, b)
    assert t == pytest.approx(t_hand) == pytest.approx(-2.376354)
    assert df_hand == pytest.approx(6.97226, rel=1e-5)
    assert p == pytest.approx(2 * scipy_stats.t.sf(abs(t_hand), df_hand))
    assert p == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert 0.04 < p < 0.06


# --- Holm-Bonferroni


def test_holm_on_known_pvalues():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([None, 0.02, 0.5]) == [None, pytest.approx(0.04), pytest.approx(0.5)]
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1
    assert holm([0.03]) == [0.03]  # one test: no correction
    assert holm([]) == []


# --- study tables


def _study():
    return [
        *[record("baseline", s, f) for s, f in enumerate([10.0, 11.0, 12.0])],
        *[record("better", s, f) for s, f in enumerate([5.0, 6.0, 7.0])],
        *[record("similar", s, f) for s, f in enumerate([10.5, 11.5, 12.5])],
        record("single", 0, 8.0),
        *[record("unstable", s, f) for s, f in enumerate([20.0, 22.0])],
        record("unstable", 2, None, status="diverged"),
    ]


def test_each_setting_is_tested_against_the_baseline_with_holm():
    (table,) = study_tables(_study(), baseline="baseline")
    assert table.reference == "baseline" and table.reference_kind == "baseline"
    assert table.extractor == "lenet-mnist@1a2b3c4d"
    assert [row.name for row in table.settings] == ["baseline", "better", "similar", "single", "unstable"]
    base = [10.0, 11.0, 12.0]
    raw = {
        "better": scipy_stats.ttest_ind([5.0, 6.0, 7.0], base, equal_var=False).pvalue,
        "similar": scipy_stats.ttest_ind([10.5, 11.5, 12.5], base, equal_var=False).pvalue,
        "unstable": scipy_stats.ttest_ind([20.0, 22.0], base, equal_var=False).pvalue,
    }
    adjusted = dict(zip(raw, holm(list(raw.values()))))
    assert table.tests == 3
    for name in raw:
        row = table.setting(name)
        assert row.p == pytest.approx(raw[name])
        assert row.p_adjusted == pytest.approx(adjusted[name])
    assert table.setting("better").significant and table.setting("better").diff == pytest.approx(-5.0)
    assert not table.setting("similar").significant
    assert table.setting("single").note == "n<2" and table.setting("single").p is None
    assert table.setting("baseline").reference and table.setting("baseline").p is None
    unstable = table.setting("unstable")
    assert (unstable.runs, unstable.fid.n) == (3, 2)
    assert unstable.status_text() == "2 ok, 1 diverged"
    assert CORRECTION in table.comparison_text() and "baseline 'baseline'" in table.comparison_text()


def test_holm_makes_a_borderline_difference_disappear():
    # alone, 'b' differs at 5%; among four comparisons, Holm's factor 4 on the smallest p removes the mark
    rows = [record("base", s, f) for s, f in enumerate([10.0, 10.5, 11.0])] + [
        record("b", s, f) for s, f in enumerate([11.4, 11.9, 12.2])
    ]
    (alone,) = study_tables(rows, baseline="base")
    assert alone.setting("b").p < 0.05 and alone.setting("b").significant
    noise = [record(f"n{i}", s, 10.5 + 0.01 * i + 0.5 * s) for i in range(3) for s in range(3)]
    (crowded,) = study_tables(rows + noise, baseline="base")
    assert crowded.tests == 4
    b = crowded.setting("b")
    assert b.p == pytest.approx(alone.setting("b").p)
    assert all(b.p < crowded.setting(f"n{i}").p for i in range(3))  # the smallest p: Holm multiplies it by 4
    assert b.p_adjusted == pytest.approx(min(1.0, 4 * b.p))
    assert not b.significant


def test_without_baseline_every_setting_is_compared_with_the_best():
    rows = [r for r in _study() if r.variant != "unstable"]
    (table,) = study_tables(rows, baseline=None)
    assert table.reference == "better" and table.reference_kind == "best"
    assert "best setting 'better'" in table.comparison_text()
    assert table.setting("baseline").p == pytest.approx(
        scipy_stats.ttest_ind([10.0, 11.0, 12.0], [5.0, 6.0, 7.0], equal_var=False).pvalue
    )


def test_a_baseline_without_fid_falls_back_to_the_best_and_says_so():
    rows = [record("baseline", 0, None, status="diverged")] + [
        r for r in _study() if r.variant in ("better", "similar")
    ]
    tables = study_tables(rows, baseline="baseline")
    assert tables[0].reference == "better" and tables[0].reference_kind == "best"
    assert (
        "The baseline 'baseline' has no FID on these features; settings are compared with the best one instead."
        in tables[0].notes
    )
    assert tables[1].extractor is None and [row.name for row in tables[1].settings] == ["baseline"]


def test_fids_of_different_extractors_are_never_ranked_together():
    rows = [record("a", s, f, extractor="lenet-mnist@11111111") for s, f in enumerate([30.0, 31.0])]
    rows += [record("b", s, f, extractor="inception-v3-compat@22222222") for s, f in enumerate([5.0, 6.0])]
    rows += [record("a", s, f, extractor="inception-v3-compat@22222222") for s, f in enumerate([90.0, 95.0], start=2)]
    tables = study_tables(rows, baseline="a")
    assert [t.extractor for t in tables] == ["lenet-mnist@11111111", "inception-v3-compat@22222222"]
    lenet, inception = tables
    assert [row.name for row in lenet.settings] == ["a"] and lenet.setting("a").fid_values == [30.0, 31.0]
    assert inception.setting("a").fid_values == [90.0, 95.0] and inception.setting("b").fid_values == [5.0, 6.0]
    assert inception.setting("b").p == pytest.approx(
        scipy_stats.ttest_ind([5.0, 6.0], [90.0, 95.0], equal_var=False).pvalue
    )
    assert all("not comparable" in " ".join(t.notes) for t in tables)


def test_fids_of_different_sample_counts_are_never_ranked_together():
    # FID falls as the sample count grows: 2,000-sample FIDs are a different quantity from 10,000-sample ones
    rows = [record("a", s, f, fid_samples=10_000) for s, f in enumerate([30.0, 31.0])]
    rows += [record("b", s, f, fid_samples=10_000) for s, f in enumerate([40.0, 41.0])]
    rows += [record("b", s, f, fid_samples=2_000) for s, f in enumerate([60.0, 62.0], start=2)]
    tables = study_tables(rows, baseline="a")
    assert [(t.extractor, t.fid_samples) for t in tables] == [
        ("lenet-mnist@1a2b3c4d", 10_000),
        ("lenet-mnist@1a2b3c4d", 2_000),
    ]
    large, small = tables
    assert large.setting("b").fid_values == [40.0, 41.0] and [row.name for row in small.settings] == ["b"]
    # nothing of its count to compare with
    assert small.setting("b").fid_values == [60.0, 62.0] and small.setting("b").p is None
    assert large.fid_label == "lenet-mnist@1a2b3c4d features, 10,000 samples"
    assert all("different sample counts (10,000, 2,000)" in " ".join(t.notes) for t in tables)


def test_equal_samples_without_spread_get_no_test():
    rows = [record("base", s, 10.0) for s in range(3)] + [record("same", s, 10.0) for s in range(3)]
    (table,) = study_tables(rows, baseline="base")
    assert table.setting("same").note == "sd=0" and table.setting("same").p is None and table.tests == 0
    assert table.comparison_text().startswith("No setting could be tested against 'base'")
    (alone,) = study_tables(rows[:3], baseline="base")
    assert alone.comparison_text() == "One setting only: nothing to compare it with, so no test."


def test_plain_runs_are_named_by_what_differs_between_them():
    rows = [
        RunRecord(
            "",
            0,
            {"architecture": "mlp", "latent_dim": 16, "hidden_dim": 100, "fid": 3.0, "d_loss": 1.0, "run_id": "x"},
        ),
        RunRecord(
            "",
            1,
            {"architecture": "mlp", "latent_dim": 16, "hidden_dim": 100, "fid": 4.0, "d_loss": 2.0, "run_id": "y"},
        ),
        RunRecord(
            "",
            0,
            {"architecture": "mlp", "latent_dim": 100, "hidden_dim": 100, "fid": 5.0, "d_loss": 3.0, "run_id": "z"},
        ),
    ]
    assert setting_names(rows) == ["latent_dim=16", "latent_dim=16", "latent_dim=100"]
    assert setting_names(rows[:2]) == ["mlp", "mlp"]


# --- the difference with the baseline: intervals, probability of improvement, power


def test_welch_interval_of_the_difference_matches_the_hand_formula():
    a, b = [1, 2, 3, 4, 5], [2, 4, 6, 8, 10, 12]
    se2 = 2.5 / 5 + 14 / 6  # variances 2.5 and 14
    df = se2**2 / ((2.5 / 5) ** 2 / 4 + (14 / 6) ** 2 / 5)  # Welch-Satterthwaite
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(se2)
    diff, low, high = welch_difference(a, b)
    assert diff == -4.0 and (low, high) == (pytest.approx(-4 - half), pytest.approx(-4 + half))
    assert half == pytest.approx(3.9835, abs=1e-4)


def _exact_bootstrap(a, b, statistic):
    """Every resample of a and of b, each equally likely: the distribution the bootstrap samples from."""
    values = [
        statistic(np.array(x), np.array(y))
        for x in itertools.product(a, repeat=len(a))
        for y in itertools.product(b, repeat=len(b))
    ]
    return np.quantile(values, [0.025, 0.975])


def test_bootstrap_interval_matches_exact_enumeration_of_resamples():
    a, b = [1.0, 2.3, 4.1], [3.2, 7.7, 8.05]  # 27 x 27 resamples: enumerable
    exact = _exact_bootstrap(a, b, lambda x, y: x.mean() - y.mean())
    low, high = bootstrap_difference(a, b)
    assert (low, high) == (pytest.approx(exact[0], abs=0.05), pytest.approx(exact[1], abs=0.05))
    assert low < np.mean(a) - np.mean(b) < high


def test_probability_of_improvement_counts_pairs_and_its_interval_matches_enumeration():
    # pairs (a, b) with a < b: 1<2, 1<4, 1<5, 2<4, 2<5, 3<4, 3<5 = 7, and the tie 2=2 counts one half
    estimate, _, _ = probability_of_improvement([1.0, 2.0, 3.0], [2.0, 4.0, 5.0])
    assert estimate == pytest.approx(7.5 / 9)
    assert (
        probability_of_improvement([5.0, 6.0], [1.0, 2.0])[0] == 0.0
        and probability_of_improvement([1.0, 2.0], [5.0, 6.0])[0] == 1.0
    )
    a, b = [1.0, 2.3, 4.1], [3.2, 7.7, 8.05]
    share = lambda x, y: np.mean(x[:, None] < y[None, :]) + 0.5 * np.mean(x[:, None] == y[None, :])
    exact = _exact_bootstrap(a, b, share)
    estimate, low, high = probability_of_improvement(a, b)
    assert estimate == pytest.approx(8 / 9)  # only 4.1 > 3.2 is a loss
    assert (low, high) == (pytest.approx(exact[0], abs=0.02), pytest.approx(exact[1], abs=0.02))


def _pairwise_share_lower(x, y, axis=-1):
    """The pairwise definition (every x against every y), the independent computation for the rank-based one."""
    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    return (x[..., :, None] < y[..., None, :]).mean(axis=(-2, -1)) + 0.5 * (x[..., :, None] == y[..., None, :]).mean(
        axis=(-2, -1)
    )


def test_probability_of_improvement_from_ranks_equals_the_pairwise_formula_with_ties():
    rng = np.random.default_rng(7)
    for _ in range(200):  # batches of resamples with many ties (values from 0 to 4), sizes 1 to 8
        x = rng.integers(0, 5, (int(rng.integers(1, 40)), int(rng.integers(1, 9)))).astype(float)
        y = rng.integers(0, 5, (x.shape[0], int(rng.integers(1, 9)))).astype(float)
        # NaN: below, above and equal to nothing
        x[rng.random(x.shape) < 0.05], y[rng.random(y.shape) < 0.05] = (np.nan, np.inf)
        assert np.array_equal(stats_module._share_lower(x, y), _pairwise_share_lower(x, y))
        assert np.array_equal(stats_module._share_lower(x.T, y.T, axis=0), _pairwise_share_lower(x.T, y.T, axis=0))
    for a, b in (
        [[3.0, 1.0, 2.0, 2.0, 5.0], [2.0, 2.0, 4.0, 1.0]],
        [[1.5] * 4, [1.5, 1.5, 2.0]],
        [list(rng.normal(size=30).round(1)), list(rng.normal(0.3, size=25).round(1))],
    ):
        pairwise = scipy_stats.bootstrap(
            (np.array(a), np.array(b)),
            _pairwise_share_lower,
            n_resamples=stats_module.BOOTSTRAP_RESAMPLES,
            confidence_level=0.95,
            method="percentile",
            vectorized=True,
            paired=False,
            random_state=np.random.default_rng(stats_module.BOOTSTRAP_SEED),
        )
        estimate, low, high = probability_of_improvement(a, b)
        assert (low, high) == (pairwise.confidence_interval.low, pairwise.confidence_interval.high)
        # U / (nA nB): one rounding apart
        assert estimate == pytest.approx(_pairwise_share_lower(np.array(a), np.array(b)), rel=1e-15)


def test_probability_of_improvement_at_2500_seeds_a_side_runs_in_bounded_memory():
    # pairwise, 9,999 resamples x 2,500 x 2,500 comparisons asked numpy for 58 GiB
    script = (
        "import tracemalloc, numpy as np\n"
        "from gbench.analysis.stats import probability_of_improvement\n"
        "rng = np.random.default_rng(0)\n"
        "a, b = rng.normal(10, 1, 2500).round(1), rng.normal(10.2, 1, 2500).round(1)\n"
        "tracemalloc.start()\n"
        "print(*probability_of_improvement(a, b), tracemalloc.get_traced_memory()[1])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    # tracemalloc sees numpy's arrays; ru_maxrss would not do: it keeps the forking parent's peak across exec
    estimate, low, high, peak_bytes = (float(word) for word in result.stdout.split())
    rng = np.random.default_rng(0)
    a, b = rng.normal(10, 1, 2500).round(1), rng.normal(10.2, 1, 2500).round(1)
    assert estimate == pytest.approx(float(_pairwise_share_lower(a, b)), abs=1e-12)  # one pair table of 6.25 M fits
    assert low < estimate < high and high - low < 0.05
    assert peak_bytes < 400 * 2**20, f"peak memory {peak_bytes / 2**20:.0f} MiB"


def test_seeds_needed_reproduces_cohens_power_table():
    # Cohen (1988), Table 2.4.1: two-sided alpha 0.05, power 0.80, effect d = difference / sd:
    # d 0.5 -> 64 per group, d 0.8 -> 26, d 1.0 -> 17
    assert [seeds_needed(d, 1.0, 1.0) for d in (0.5, 0.8, 1.0)] == [64, 26, 17]
    assert seeds_needed(0.0, 1.0, 1.0) is None and seeds_needed(1e-6, 1.0, 1.0) is None  # beyond 1000 seeds


def _simulated_power(difference, sd_a, sd_b, n, trials=40_000):
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, sd_a, (trials, n))
    b = rng.normal(difference, sd_b, (trials, n))
    return float((scipy_stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05).mean())


@pytest.mark.parametrize("sds", [(1.0, 1.0), (1.0, 3.0)])
def test_detectable_difference_has_80_percent_power_in_simulation(sds):
    for n in (5, 10):
        detectable = detectable_difference(sds[0], n, sds[1], n)
        assert _simulated_power(detectable, *sds, n) == pytest.approx(0.80, abs=0.025)
    # the t approximation is optimistic at 3 seeds, as the docs say: about 70% real power
    assert 0.64 < _simulated_power(detectable_difference(sds[0], 3, sds[1], 3), *sds, 3) < 0.78


def _null_and_too_few():
    rng = np.random.default_rng(0)
    base = 50 + rng.normal(0, 0.5, 12)
    same = 50 + rng.normal(0, 0.5, 12)  # same distribution, 12 seeds, small spread: well powered
    rows = [record("base", s, float(f)) for s, f in enumerate(base)] + [
        record("same", s, float(f)) for s, f in enumerate(same)
    ]
    rows += [record("noisy", s, f) for s, f in enumerate([40.0, 60.0, 52.0])]  # 3 seeds, sd 10: too few
    return rows


def test_not_distinguishable_says_null_result_or_too_few_seeds():
    (table,) = study_tables(_null_and_too_few(), baseline="base")
    same, noisy = table.setting("same"), table.setting("noisy")
    assert not same.significant and not noisy.significant
    assert table.relevant == pytest.approx(0.1 * table.setting("base").fid.mean)
    assert same.detectable < table.relevant and same.verdict == "null result"
    assert noisy.detectable > table.relevant and noisy.verdict == "too few seeds"
    assert noisy.seeds_needed is None or noisy.seeds_needed > 3
    assert "null result when MDD is at most 10% of the reference's mean FID" in table.comparison_text()
    # a tighter relevant difference: not enough seeds
    (strict,) = study_tables(_null_and_too_few(), baseline="base", relevant=0.01)
    assert (
        strict.setting("same").verdict == "too few seeds"
        and "relevant difference 0.01 given" in strict.comparison_text()
    )


def test_each_comparison_carries_its_intervals_and_power():
    (table,) = study_tables(_study(), baseline="baseline")
    better = table.setting("better")
    assert better.verdict == "lower FID"
    diff, low, high = welch_difference([5.0, 6.0, 7.0], [10.0, 11.0, 12.0])
    assert better.diff_welch == (pytest.approx(low), pytest.approx(high)) and low < -5.0 < high
    assert better.p_better == 1.0 and better.p_better_interval == (1.0, 1.0)  # every seed beats every baseline seed
    # sd 1 on both sides, 3 seeds: (t_.975,4 + t_.80,4) * sqrt(2/3) = (2.776445 + 0.940965) * 0.816497
    assert better.detectable == pytest.approx((2.776445 + 0.940965) * math.sqrt(2 / 3), rel=1e-5)
    assert table.setting("baseline").verdict == "" and table.setting("single").verdict == ""
    for name in ("baseline", "single"):
        assert table.setting(name).diff_welch is None and table.setting(name).p_better is None
    sentences = table.comparison_text()
    for term in (
        "Welch's 95% interval",
        "bootstrap",
        "P(better)",
        "Mann-Whitney",
        "p adj.",
        "80% power",
        "t approximation",
    ):
        assert term in sentences


def test_study_grid_shows_density_and_coverage_means_when_the_runs_have_them():
    from gbench.report.grids import study_grid

    rows = [
        record("a", s, f, density=d, coverage=c) for s, (f, d, c) in enumerate([(30.0, 0.8, 0.6), (31.0, 1.0, 0.7)])
    ]
    rows += [record("b", s, f, density=0.5, coverage=0.4) for s, f in enumerate([40.0, 41.0])]
    grid = study_grid(study_tables(rows, baseline="a")[0])
    density, coverage = grid.headers.index("density"), grid.headers.index("cover")
    assert [r[density] for r in grid.rows] == ["0.900", "0.500"] and [r[coverage] for r in grid.rows] == [
        "0.650",
        "0.400",
    ]
    assert "density" not in study_grid(study_tables([record("a", s, f) for s, f in enumerate([1.0, 2.0])])[0]).headers
