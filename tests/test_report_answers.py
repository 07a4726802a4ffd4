"""Reports that answer their own question or say they cannot (issue #34 points 8 and 9): the not-trained rule,
curve claims (FID still falling, losses oscillating) from metrics.csv, and S3's answer about D = 0.5."""

import json
import tomllib

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gbench.analysis.claims import CONFIRMED, CONTRADICTED, UNDECIDED, Claim, check_claims
from gbench.analysis.curves import NOISE_AUTOCORRELATION, TREND_ROWS, final_slope, oscillation
from gbench.analysis.readiness import TRAINED_COVERAGE
from gbench.analysis.variance import seed_share_interval
from gbench.errors import GbenchError
from gbench.report.build import write_report
from gbench.report.index import write_index
from gbench.results import store
from gbench.results.records import RunRecord, load_local
from gbench.studies.sweep.suite import parse_suite

SUITE = """
[suite]
name = "s"
baseline = "baseline"
figures = []
[base]
architecture = "mlp"
[[variants]]
name = "baseline"
[[variants]]
name = "wide"
"""


def row(variant, seed, fid, coverage, **extra):
    """A results.csv row as a sweep writes it (the columns the report reads)."""
    return {
        "run_id": f"{variant}-s{seed}",
        "suite": "s",
        "variant": variant,
        "status": "ok",
        "architecture": "mlp",
        "seed": seed,
        "fid": fid,
        "fid_extractor": "lenet-mnist@1a2b3c4d",
        "fid_samples": 1000,
        "coverage": coverage,
        "steps": 200,
        **extra,
    }


def answer_of(folder):
    return next(line for line in (folder / "report.md").read_text().splitlines() if line.startswith("**Answer:**"))


def test_noise_level_runs_say_they_cannot_answer(tmp_path):
    """All FIDs noise-level and no setting reaching coverage 0.02: the answer box says so, with the budget to run at."""
    rng = np.random.default_rng(1)
    # wide: mean 0.012, the best, still below 0.02
    coverages = {"baseline": [0.001, 0.003, 0.002], "wide": [0.010, 0.012, 0.014]}
    rows = [
        row(v, s, float(300 + rng.normal(0, 20) - 80 * (v == "wide")), coverages[v][s])
        for v in coverages
        for s in range(3)
    ]
    store.write_csv(tmp_path / "runs" / "results.csv", rows, columns=list(rows[0]))
    records = load_local(tmp_path / "runs")  # read back as `gbench report` reads a folder
    (tmp_path / "full.toml").write_text(SUITE.replace("[base]", "[base]\nsteps = 5000"))
    short = tmp_path / "short.toml"
    short.write_text('[suite]\nname = "s-short"\nfull = "full.toml"\nbudget = 0.04\n')
    suite = parse_suite(tomllib.loads(short.read_text()), short)
    write_report(records, tmp_path / "report", suite)
    best = np.mean(coverages["wide"])
    assert best < TRAINED_COVERAGE
    assert answer_of(tmp_path / "report") == (
        "**Answer:** Not trained enough to answer; run at budget > 0.04 (the full study: full.toml). "
        "No setting's samples reach coverage 0.02 "
        f"(the best, wide: {best:.4f}), so the FIDs below rank noise, not the settings."
    )
    assert "lower than" not in answer_of(tmp_path / "report")  # wide's 80-point lower FID is not offered as an answer
    write_index(tmp_path)  # the index of reports says it too, instead of the lowest FID
    index = (tmp_path / "index.md").read_text()
    assert (
        "| Not trained enough to answer; run at budget > 0.04 (the full study: full.toml). |" in index
        and "lowest FID" not in index
    )
    # the same FIDs with one setting trained (coverage 0.3): the report answers as usual
    trained = [{**r, "coverage": 0.3 if r["variant"] == "wide" else r["coverage"]} for r in rows]
    store.write_csv(tmp_path / "trained" / "results.csv", trained, columns=list(trained[0]))
    write_report(load_local(tmp_path / "trained"), tmp_path / "report2", suite)
    assert "Not trained enough" not in answer_of(tmp_path / "report2") and "Lowest mean FID" in answer_of(
        tmp_path / "report2"
    )


def test_a_report_over_two_data_sets_answers_each_apart_and_refuses_only_the_untrained_one(tmp_path):
    """S8: MNIST's runs below coverage 0.02, Fashion-MNIST's above: one refusal, one answer, then the claims once,
    the decided ones by name."""
    fashion = {"dataset": "fashion-mnist", "fid_extractor": "lenet-fashion-mnist@9deeb78a"}
    rows = [row("baseline", s, 80.0 + s, 0.002, dataset="mnist") for s in range(3)]
    rows += [row("wide", s, 70.0 + s, 0.010, dataset="mnist") for s in range(3)]
    rows += [row("baseline-fashion", s, 40.0 + s, 0.030, **fashion) for s in range(3)]
    rows += [row("wide-fashion", s, 20.0 + s, 0.045, **fashion) for s in range(3)]
    store.write_csv(tmp_path / "runs" / "results.csv", rows, columns=list(rows[0]))
    suite_file = tmp_path / "s.toml"
    suite_file.write_text(
        SUITE
        + '[[variants]]\nname = "baseline-fashion"\ndataset = "fashion-mnist"\n'
        + '[[variants]]\nname = "wide-fashion"\ndataset = "fashion-mnist"\n'
        + '[[claims]]\nclaim = "wide helps on Fashion"\nsetting = "wide-fashion"\nlower_than = "baseline-fashion"\n'
    )
    suite = parse_suite(tomllib.loads(suite_file.read_text()), suite_file)
    write_report(load_local(tmp_path / "runs"), tmp_path / "report", suite)
    text = answer_of(tmp_path / "report")
    mnist, rest = text.split(" On fashion-mnist: ")
    assert mnist.startswith("**Answer:** On mnist: Not trained enough to answer")
    assert "(the best, wide: 0.0100)" in mnist
    assert rest.startswith("Lowest mean FID (lenet-fashion-mnist@9deeb78a features, 1,000 samples): wide-fashion")
    assert "lower than the baseline baseline-fashion (41.0 ± 1.0): wide-fashion" in rest
    assert rest.endswith('Claims checked: 1 confirmed. Confirmed: "wide helps on Fashion".')
    answers = json.loads((tmp_path / "report" / "study.json").read_text())["answers"]  # the index reads these
    assert [(a["name"], a["trained"]) for a in answers] == [("mnist", False), ("fashion-mnist", True)]
    assert answers[1]["extractor"] == "lenet-fashion-mnist@9deeb78a"
    write_index(tmp_path)  # the index answers per data set too
    assert (
        "| mnist: not trained enough to answer. fashion-mnist: lowest FID wide-fashion (21.0 ± 1.0); lower than the "
        "baseline (baseline-fashion): wide-fashion. |" in (tmp_path / "index.md").read_text()
    )


def history(values, metric, every=50):
    return [{"step": every * (i + 1), metric: value} for i, value in enumerate(values)]


def test_final_slope_is_the_least_squares_slope_of_the_last_evaluations():
    fid = [150.0, 120.0, 100.0, 80.0, 70.0, 64.0, 61.0, 59.0]  # the last 4 at steps 5000..8000 (every 1000)
    rows = [{"step": 1000 * (i + 1), "fid": v} for i, v in enumerate(fid)] + [
        {"step": 8500, "fid": None, "d_loss": 1.0}
    ]
    steps, last = np.array([5.0, 6.0, 7.0, 8.0]), np.array(fid[-4:])
    by_hand = ((steps - steps.mean()) @ (last - last.mean())) / ((steps - steps.mean()) @ (steps - steps.mean()))
    assert final_slope(rows, "fid", 4) == pytest.approx(by_hand) == pytest.approx(-3.6)
    assert final_slope(rows, "fid", 9) is None  # fewer evaluations than asked


def test_a_final_slope_never_reaches_back_past_the_runs_second_half():
    """With 5 evaluations in all, the last 5 are the whole curve and its early fall: no slope (issue #34 point 8: FID
    still falling at the end). 10 evaluations make the last 5 the second half; 9 leave the window past it."""
    plateau = [150.0, 90.0, 60.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0]
    rows = [{"step": 1000 * (i + 1), "fid": v} for i, v in enumerate(plateau)]
    assert final_slope(rows[:5], "fid", 5) is None
    assert final_slope(rows[1:], "fid", 5) is None
    assert final_slope(rows, "fid", 5) == pytest.approx(0.0)
    records = [
        RunRecord("baseline", seed, row("baseline", seed, 50.0, 0.3), history=rows[5 * (seed % 2) : 5 * (seed % 2) + 5])
        for seed in range(3)
    ]
    (result,) = check_claims(records, [Claim("the baseline underfits", "baseline", "falls_over_last", 5.0)])
    assert result.p is None and result.values == []
    assert result.note == (
        "fewer than two runs with at least 10 evaluations, so that the last 5 are the end of the run, at most its "
        "second half, not all of it; give a smaller eval_every"
    )


def test_oscillation_separates_a_swinging_loss_from_a_settling_one():
    rng = np.random.default_rng(0)
    t = np.arange(300)
    settling = 0.7 + 0.6 * np.exp(-t / 60) + rng.normal(0, 0.05, t.size)
    # period 8 rows: faster than the 21-row trend, slower than noise
    swinging = settling + 0.15 * np.sin(2 * np.pi * t / 8)
    residual = swinging[TREND_ROWS // 2 : -(TREND_ROWS // 2)] - np.convolve(
        swinging, np.ones(TREND_ROWS) / TREND_ROWS, "valid"
    )
    residual -= residual.mean()
    assert oscillation(history(swinging, "d_loss"), "d_loss") == pytest.approx(
        residual[:-1] @ residual[1:] / (residual @ residual)
    )
    assert oscillation(history(swinging, "d_loss"), "d_loss") > 0.4
    assert abs(oscillation(history(settling, "d_loss"), "d_loss")) < 0.15
    assert oscillation(history(settling[:TREND_ROWS], "d_loss"), "d_loss") is None  # too short to take a trend out


def curve_records():
    """baseline: FID still falling at the end, over 5 seeds; wide: flat (plateau). Losses: baseline swings, wide
    settles."""
    records = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        steps = np.arange(1, 11) * 1000
        falling = 200 * np.exp(-steps / 8000) + rng.normal(0, 1, 10)
        flat = 40 + rng.normal(0, 1, 10)
        t = np.arange(300)
        settling = 0.7 + 0.6 * np.exp(-t / 60) + rng.normal(0, 0.05, t.size)
        swinging = settling + 0.15 * np.sin(2 * np.pi * t / 8)
        for variant, fid, loss in (("baseline", falling, swinging), ("wide", flat, settling)):
            rows = [{"step": int(s), "fid": float(f)} for s, f in zip(steps, fid)] + [
                {"step": 20 * (i + 1), "d_loss": float(v)} for i, v in enumerate(loss)
            ]
            records.append(RunRecord(variant, seed, row(variant, seed, float(fid[-1]), 0.3), history=rows))
    return records


def test_curve_claims_against_hand_computed_t_tests(tmp_path):
    records = curve_records()
    claims = [
        Claim("the baseline underfits", "baseline", "falls_over_last", 5.0),
        Claim("wide underfits", "wide", "falls_over_last", 5.0),
        Claim("the baseline's loss oscillates", "baseline", "oscillates", 1.0, "d_loss"),
        Claim("wide's loss oscillates", "wide", "oscillates", 1.0, "d_loss"),
    ]
    results = check_claims(records, claims)
    slopes = [final_slope(r.history, "fid", 5) for r in records if r.variant == "baseline"]
    assert results[0].values == pytest.approx(slopes) and results[0].difference == pytest.approx(np.mean(slopes))
    assert results[0].p == pytest.approx(scipy_stats.ttest_1samp(slopes, 0).pvalue)
    assert [r.verdict for r in results] == [CONFIRMED, UNDECIDED, CONFIRMED, UNDECIDED]
    # the oscillation reference: white noise about its own 21-row moving average, simulated here against the closed form
    noise = np.random.default_rng(7).normal(size=(200, 400))
    simulated = np.mean([oscillation(history(series, "d_loss"), "d_loss") for series in noise])
    assert simulated == pytest.approx(NOISE_AUTOCORRELATION, abs=0.01)
    assert results[2].difference == pytest.approx(np.mean(results[2].values) - NOISE_AUTOCORRELATION)


def test_curve_claims_parse_and_reach_the_report(tmp_path):
    text = (
        SUITE
        + '\n[[claims]]\nclaim = "the baseline underfits"\nsetting = "baseline"\nfalls_over_last = 5\n'
        + '\n[[claims]]\nclaim = "the losses oscillate"\nsetting = "baseline"\nmetric = "d_loss"\noscillates = true\n'
    )
    suite = parse_suite(tomllib.loads(text))
    assert suite.claims == [
        Claim("the baseline underfits", "baseline", "falls_over_last", 5.0),
        Claim("the losses oscillate", "baseline", "oscillates", 1.0, "d_loss"),
    ]
    runs = tmp_path / "runs"
    written = curve_records()
    for (
        record
    ) in written:  # real files: results.csv and each run's metrics.csv, read back as `gbench report` reads them
        store.write_csv(runs / record.row["run_id"] / "metrics.csv", record.history, columns=["step", "d_loss", "fid"])
    store.write_csv(runs / "results.csv", [r.row for r in written], columns=list(written[0].row))
    loaded = load_local(runs)
    assert [len(r.history) for r in loaded] == [len(r.history) for r in written]
    write_report(loaded, tmp_path, suite)
    section = (tmp_path / "report.md").read_text().split("## Claims checked", 1)[1].split("\n## ", 1)[0]
    assert (
        "| the baseline underfits | - "
        "| slope of FID of baseline over its last 5 evaluations below 0 (per 1,000 steps) |" in section
    )
    assert section.count(f"| {CONFIRMED} |") == 2


@pytest.mark.parametrize(
    "claim, message",
    [
        (
            'setting = "wide"\nfalls_over_last = 2',
            "falls_over_last = 2 must be a whole number of evaluations, at least 3",
        ),
        ('setting = "wide"\nfalls_over_last = 4.5', "falls_over_last = 4.5 must be a whole number"),
        ('setting = "wide"\nmetric = "d_loss"\noscillates = false', "write oscillates = true"),
        (
            'setting = "wide"\noscillates = true',
            "oscillates needs a metric logged at every log row, one of d_loss, g_loss, d_real, d_fake (got 'fid')",
        ),
    ],
)
def test_bad_curve_claims_fail_in_one_line(claim, message):
    with pytest.raises(GbenchError) as error:
        parse_suite(tomllib.loads(SUITE + '\n[[claims]]\nclaim = "x"\n' + claim))
    assert message in str(error.value) and "claim 1" in str(error.value) and "\n" not in str(error.value)


def test_an_equilibrium_study_is_answered_by_the_distance_from_one_half(tmp_path):
    """S3 asks how far D(x) and D(G(z)) sit from 0.5: its answer leads with that, per setting, not with FID."""
    d = {"baseline": (0.95, 0.05), "wide": (0.6, 0.42)}
    records = [
        RunRecord(v, s, row(v, s, 30.0 + s + 5 * (v == "wide"), 0.3, d_real=d[v][0] + 0.01 * s, d_fake=d[v][1]))
        for v in d
        for s in range(3)
    ]
    suite = parse_suite(
        tomllib.loads(
            SUITE
            + '\n[[claims]]\nclaim = "D(x) drifts to about 1"\nsetting = "baseline"\nmetric = "d_real"\nabove = 0.9\n'
        )
    )
    write_report(records, tmp_path / "s3", suite)
    text = answer_of(tmp_path / "s3")
    wide_distance = max(abs(0.61 - 0.5), abs(0.42 - 0.5))  # mean D(x) 0.61 over seeds
    assert text.startswith(
        "**Answer:** Distance from the equilibrium D = 0.5 at the end of training, mean D(x) / D(G(z)) over seeds "
        f"and the larger of their distances from 0.5, nearest first: wide 0.61 / 0.42 ({wide_distance:.2f}); "
        "baseline 0.96 / 0.05 (0.46). Nearest: wide; farthest: baseline."
    )
    assert text.index("Distance from the equilibrium") < text.index("Lowest mean FID")
    # the studies index answers the same question in its one line, before FID's
    write_index(tmp_path)
    (line,) = [r for r in (tmp_path / "index.md").read_text().splitlines() if r.startswith("| [")]
    assert (
        "| nearest D = 0.5, D(x) / D(G(z)): wide 0.61 / 0.42; farthest: baseline 0.96 / 0.05; lowest FID baseline"
        in line
    )


def grid_records(spread, noise, seeds=5):
    """Four settings whose true FIDs are 50 + spread * (0, 1, 2, 3), runs with seed noise of sd ``noise``."""
    rng = np.random.default_rng(3)
    return [
        RunRecord(f"v{i}", seed, row(f"v{i}", seed, float(50 + spread * i + rng.normal(0, noise)), 0.3))
        for i in range(4)
        for seed in range(seeds)
    ]


def anova_share(records):
    """Seeds' share by the textbook one-way ANOVA sums of squares (equal runs per setting)."""
    groups = {}
    for r in records:
        groups.setdefault(r.variant, []).append(r.row["fid"])
    values = np.array(list(groups.values()))
    k, n = values.shape
    grand = values.mean()
    msw = ((values - values.mean(axis=1, keepdims=True)) ** 2).sum() / (k * (n - 1))
    msb = n * ((values.mean(axis=1) - grand) ** 2).sum() / (k - 1)
    between = max(0.0, (msb - msw) / n)
    return msw / (msw + between)


def test_seed_share_claim_against_a_textbook_anova(tmp_path):
    claim = Claim("seeds move FID a lot", "", "seed_share_above", 0.25)
    noisy, clean = grid_records(spread=1, noise=10), grid_records(spread=20, noise=1)
    noisy_result, clean_result = check_claims(noisy, [claim])[0], check_claims(clean, [claim])[0]
    assert noisy_result.values == pytest.approx([anova_share(noisy)]) and clean_result.values == pytest.approx(
        [anova_share(clean)]
    )
    assert noisy_result.values[0] > 0.8 and clean_result.values[0] < 0.05
    assert noisy_result.difference == pytest.approx(anova_share(noisy) - 0.25)
    low, high = noisy_result.interval
    assert low < noisy_result.difference <= high
    assert (noisy_result.verdict, clean_result.verdict) == (CONFIRMED, CONTRADICTED)
    variants = "".join(f'[[variants]]\nname = "v{i}"\n' for i in range(4))
    suite = parse_suite(
        tomllib.loads(
            f'[suite]\nname = "g"\nfigures = []\n[base]\narchitecture = "mlp"\n{variants}'
            '[[claims]]\nclaim = "seeds move FID a lot"\nseed_share_above = 0.25\n'
        )
    )
    write_report(noisy, tmp_path, suite)
    section = (tmp_path / "report.md").read_text().split("## Claims checked", 1)[1]
    assert (
        "| seeds move FID a lot | - | seeds' share of the variance of FID over all settings above 0.25 "
        f"| seeds' share {anova_share(noisy):.3f} |" in section
    )
    # two runs of one setting only: no test, and why
    few = check_claims([r for r in clean if r.variant == "v0"], [claim])[0]
    assert few.verdict.startswith("no test (fewer than two settings")


def fixed_grid(rng, settings, seeds, share, noise="normal"):
    """A grid of ``settings`` fixed true means (their variance 1) plus seed noise that makes the seeds' share
    ``share``: one array of values over seeds per setting."""
    means = rng.normal(0, 1, settings)
    means = (means - means.mean()) / means.std(ddof=1)
    sd = np.sqrt(share / (1 - share))
    noise_draws = rng.normal(size=(settings, seeds)) if noise == "normal" else rng.standard_t(3, (settings, seeds))
    return list(means[:, None] + sd * noise_draws / (1.0 if noise == "normal" else np.sqrt(3.0)))


@pytest.mark.parametrize("settings, share", [(36, 0.75), (4, 0.3)])
def test_seed_share_interval_covers_a_known_share(settings, share):
    """Simulated grids with a known seeds' share: the 95% interval covers it in about 95% of studies (the old
    bootstrap of seeds within settings covered 0.75 in 34% of 36-setting grids) and always holds its estimate."""
    rng = np.random.default_rng(7)
    studies, covered = 400, 0
    for _ in range(studies):
        point, (low, high), p = seed_share_interval(fixed_grid(rng, settings, 5, share), share, 0.95)
        assert low <= point <= high
        covered += low <= share <= high
        assert (p < 0.05) == (not low <= share <= high) or abs(p - 0.05) < 1e-6
    # binomial sd of the coverage over 400 studies is 0.011
    assert 0.92 <= covered / studies <= 0.98


def test_seed_share_interval_inverts_the_noncentral_f_by_simulation():
    """The interval's ends, checked without scipy's ncf: F = MSB / MSW drawn from numpy's noncentral chi-square
    at each end's noncentrality falls below the observed F 2.5% (the low share: a large noncentrality) and 97.5% of
    the time."""
    rng = np.random.default_rng(11)
    cells = fixed_grid(rng, 6, 5, 0.5)
    point, (low, high), _ = seed_share_interval(cells, 0.5, 0.95)
    values = np.array(cells)
    k, n = values.shape
    msw = ((values - values.mean(axis=1, keepdims=True)) ** 2).sum() / (k * (n - 1))
    observed = n * values.mean(axis=1).var(ddof=1) / msw
    assert point == pytest.approx(n / (observed + n - 1))
    draws = 400_000
    for share, below in ((low, 0.025), (high, 0.975)):
        noncentrality = n * (k - 1) * (1 - share) / share
        chi_between = (
            rng.noncentral_chisquare(k - 1, noncentrality, draws) if noncentrality > 0 else rng.chisquare(k - 1, draws)
        )
        f = (chi_between / (k - 1)) / (rng.chisquare(k * (n - 1), draws) / (k * (n - 1)))
        assert (f <= observed).mean() == pytest.approx(below, abs=0.002)


def test_seed_share_interval_without_seed_noise():
    settings_differ = seed_share_interval([[1.0, 1.0], [2.0, 2.0]], 0.25, 0.95)
    nothing_varies = seed_share_interval([[1.0, 1.0], [1.0, 1.0]], 0.25, 0.95)
    assert settings_differ == (0.0, (0.0, 0.0), 0.0)
    assert nothing_varies == (1.0, (0.0, 1.0), 1.0)


def test_seed_share_claim_parses_and_fails_in_one_line():
    suite = parse_suite(
        tomllib.loads(SUITE + '\n[[claims]]\nclaim = "seeds move FID a lot"\nseed_share_above = 0.25\n')
    )
    assert suite.claims == [Claim("seeds move FID a lot", "", "seed_share_above", 0.25)]
    for bad, message in (
        ("seed_share_above = 1.5", "seed_share_above = 1.5 must be a share of the variance, 0 < value < 1"),
        ('seed_share_above = 0.25\nsetting = "wide"', "takes seed_share_above = VALUE alone"),
    ):
        with pytest.raises(GbenchError) as error:
            parse_suite(tomllib.loads(SUITE + '\n[[claims]]\nclaim = "x"\n' + bad))
        assert message in str(error.value) and "\n" not in str(error.value)


def test_the_answer_says_what_each_setting_costs_in_training_time_against_the_reference(tmp_path):
    """gbench answers "at what cost?" too: the cheapest and dearest settings' mean training seconds a run over the
    reference's (S6 asks how a VAE compares on time)."""
    seconds = {"baseline": [10.0, 12.0, 14.5], "wide": [30.0, 31.0, 29.5], "fast": [6.0, 6.5, 5.5]}
    rows = [
        row(v, s, 40.0 + s + 5 * (v == "wide"), 0.3, train_seconds=seconds[v][s]) for v in seconds for s in range(3)
    ]
    store.write_csv(tmp_path / "runs" / "results.csv", rows, columns=list(rows[0]))
    suite_file = tmp_path / "s.toml"
    suite_file.write_text(SUITE + '[[variants]]\nname = "fast"\n')
    suite = parse_suite(tomllib.loads(suite_file.read_text()))
    write_report(load_local(tmp_path / "runs"), tmp_path / "report", suite)
    base = float(np.mean(seconds["baseline"]))
    low, high = np.mean(seconds["fast"]) / base, np.mean(seconds["wide"]) / base
    assert f"Training time a run against baseline's {base:,.1f} s: from {low:.2f}x (fast) to {high:.2f}x (wide)." in (
        answer_of(tmp_path / "report")
    )
    # without training seconds (runs read from an older results.csv) there is no cost sentence
    bare = [{k: v for k, v in r.items() if k != "train_seconds"} for r in rows]
    store.write_csv(tmp_path / "bare" / "results.csv", bare, columns=list(bare[0]))
    write_report(load_local(tmp_path / "bare"), tmp_path / "report2", suite)
    assert "Training time" not in answer_of(tmp_path / "report2")
