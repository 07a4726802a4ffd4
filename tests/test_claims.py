"""gbench.analysis.claims: suite [[claims]] parsed, checked against hand-computed Welch / one-sample t tests, and in
the report."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gbench.analysis.claims import CONFIRMED, CONTRADICTED, UNDECIDED, Claim, check_claims, parse_claims
from gbench.analysis.spreads import compare_spreads
from gbench.errors import GbenchError
from gbench.report.build import write_report
from gbench.results.records import RunRecord
from gbench.studies.sweep.suite import parse_suite

T_975 = {4: 2.7764451052, 8: 2.3060041350}  # Student t quantiles (tables)


def record(variant, seed, fid, **row):
    return RunRecord(
        variant=variant,
        seed=seed,
        row={
            "status": "ok",
            "architecture": "mlp",
            "seed": seed,
            "fid": fid,
            "fid_extractor": "lenet-mnist@1a2b3c4d",
            "fid_samples": 1000,
            **row,
        },
    )


def records():
    base = [50.0, 52.0, 49.0, 51.0, 53.0]  # mean 51, sd sqrt(2.5)
    wide = [40.0, 41.0, 39.0, 42.0, 38.0]  # mean 40: clearly lower
    same = [50.5, 52.5, 49.5, 51.0, 52.0]  # within seed noise of base
    rows = []
    for seed in range(5):
        rows.append(record("baseline", seed, base[seed], d_real=0.95 + 0.01 * seed, d_fake=0.2))
        rows.append(record("wide", seed, wide[seed], d_real=0.7, d_fake=0.05 + 0.001 * seed))
        rows.append(record("same", seed, same[seed], d_real=0.5, d_fake=0.5))
    return rows


def welch_by_hand(a, b):
    a, b = np.asarray(a), np.asarray(b)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return a.mean() - b.mean(), t, df


def test_comparison_claims_against_hand_computed_welch_and_holm():
    claims = [
        Claim("wide helps", "wide", "lower_than", "baseline"),
        Claim("wide hurts", "wide", "higher_than", "baseline"),
        Claim("same helps", "same", "lower_than", "baseline"),
    ]
    results = check_claims(records(), claims)
    diff, t, df = welch_by_hand([40, 41, 39, 42, 38], [50, 52, 49, 51, 53])
    assert diff == -11.0 and df == pytest.approx(8.0)  # equal sds and sizes: df = 2(n-1)
    assert results[0].difference == pytest.approx(diff)
    half = T_975[8] * abs(diff / t)
    assert results[0].interval == pytest.approx((diff - half, diff + half), rel=1e-6)
    # Holm over 3 claims: the two 'wide' claims share the smallest p (x3, x3 after the running max), 'same' gets x1
    p_wide, p_same = results[0].p, results[2].p
    assert results[0].p_adjusted == pytest.approx(min(1, 3 * p_wide)) and results[1].p_adjusted == pytest.approx(
        min(1, 3 * p_wide)
    )
    assert results[2].p_adjusted == pytest.approx(max(3 * p_wide, p_same))
    assert [r.verdict for r in results] == [CONFIRMED, CONTRADICTED, UNDECIDED]


def test_value_claims_against_the_one_sample_t_test():
    claims = [
        Claim("D(x) near 1", "baseline", "above", 0.9, metric="d_real"),
        Claim("D(G(z)) near 0", "wide", "below", 0.1, metric="d_fake"),
        Claim("D(G(z)) near 0 for the baseline", "baseline", "below", 0.1, metric="d_fake"),  # constant 0.2: exact
        Claim("D(x) of wide above 0.7", "wide", "above", 0.7, metric="d_real"),  # constant and equal: no difference
    ]
    results = check_claims(records(), claims)
    values = np.array([0.95, 0.96, 0.97, 0.98, 0.99])
    sd = values.std(ddof=1)
    half = T_975[4] * sd / math.sqrt(5)
    assert results[0].difference == pytest.approx(values.mean() - 0.9)
    assert results[0].interval == pytest.approx((values.mean() - half - 0.9, values.mean() + half - 0.9))
    t = (values.mean() - 0.9) / (sd / math.sqrt(5))
    assert t == pytest.approx(7.0 * math.sqrt(2))  # mean 0.97, sd sqrt(0.00025): t = 0.07 / 0.005 / sqrt(2)
    assert results[0].p == pytest.approx(2 * scipy_stats.t.sf(t, 4))
    assert results[2].difference == pytest.approx(0.1) and results[2].p == 0.0 and results[2].verdict == CONTRADICTED
    assert results[3].p == 1.0 and results[3].verdict == UNDECIDED
    assert [r.verdict for r in results[:2]] == [CONFIRMED, CONFIRMED]


def test_a_claim_without_two_runs_is_not_tested():
    rows = [record("baseline", 0, 50.0), record("baseline", 1, 51.0), record("wide", 0, 40.0)]
    (result,) = check_claims(rows, [Claim("wide helps", "wide", "lower_than", "baseline")])
    assert result.p is None and result.verdict == "no test (fewer than two runs with a value)"


SUITE = """
[suite]
name = "s"
[base]
architecture = "mlp"
[[variants]]
name = "baseline"
[[variants]]
name = "wide"
"""


@pytest.mark.parametrize(
    "claim, message",
    [
        (
            'claim = "x"\nsetting = "wide"',
            "give exactly one of lower_than, higher_than, no_more_than, no_less_than, above, below, falls_over_last, "
            "oscillates, seed_share_above, "
            "or axis with more_than (got none)",
        ),
        ('claim = "x"\nsetting = "wide"\nlower_than = "baseline"\nabove = 1', "give exactly one of"),
        (
            'claim = "x"\nsetting = "wdie"\nlower_than = "baseline"',
            "setting = 'wdie' names no variant (did you mean 'wide'?)",
        ),
        ('claim = "x"\nsetting = "wide"\nlower_than = "wide"', "lower_than = 'wide' must name another variant"),
        ('claim = "x"\nsetting = "wide"\nabove = "high"', "above = 'high' must be a number"),
        (
            'claim = "x"\nsetting = "wide"\nmetric = "fdi"\nabove = 1',
            "metric = 'fdi' is not a numeric results column (did you mean 'fid'?)",
        ),
        ('setting = "wide"\nabove = 1', "give the claim's words"),
        ('claim = "x"\nsetting = "wide"\nabove = 1\nsauce = "y"', "unknown key 'sauce' (did you mean 'source'?)"),
    ],
)
def test_bad_claims_fail_in_one_line(claim, message):
    import tomllib

    with pytest.raises(GbenchError) as error:
        parse_suite(tomllib.loads(SUITE + "\n[[claims]]\n" + claim))
    assert message in str(error.value) and "claim 1" in str(error.value) and "\n" not in str(error.value)


def test_claims_parse_from_a_suite():
    import tomllib

    suite = parse_suite(
        tomllib.loads(
            SUITE
            + '\n[[claims]]\nclaim = "wide helps"\nsource = "a report"\nsetting = "wide"\nlower_than = "baseline"\n'
        )
    )
    assert suite.claims == [Claim("wide helps", "wide", "lower_than", "baseline", "fid", "a report")]
    assert parse_claims(None, "w", ["a"]) == []


def test_the_report_has_a_claims_section(tmp_path):
    import tomllib

    suite = parse_suite(
        tomllib.loads(
            SUITE.replace('name = "wide"', 'name = "wide"\n[[variants]]\nname = "same"')
            + (
                '\n[[claims]]\nclaim = "wide helps"\nsource = "hand-made: 40 against 51"\n'
                'setting = "wide"\nlower_than = "baseline"\n'
            )
            + '\n[[claims]]\nclaim = "same hurts"\nsetting = "same"\nhigher_than = "baseline"\n'
        )
    )
    write_report(records(), tmp_path, suite)
    md = (tmp_path / "report.md").read_text()
    section = md.split("## Claims checked", 1)[1].split("\n## ", 1)[0]
    assert (
        "| wide helps | hand-made: 40 against 51 | FID of wide lower than baseline "
        "| 40.00 ± 1.58 (n 5) vs 51.00 ± 1.58 (n 5) | -11.00 [" in section
    )
    assert "| confirmed |" in section and f"| {UNDECIDED} |" in section
    html = (tmp_path / "report.html").read_text()
    assert "<h2>Claims checked</h2>" in html and "wide helps" in html
    # the study table comes in two halves a page can hold: the FID comparison to its verdict, then the other
    # measurements
    results = md.split("## Results", 1)[1].split("## Claims checked", 1)[0]
    first, second = [block for block in results.split("\n\n") if block.startswith("| setting |")]
    assert first.splitlines()[0].endswith("| verdict |") and second.splitlines()[0].startswith(
        "| setting | D(x) | D(G(z)) |"
    )
    assert "**Other measurements, mean over seeds**" in results and '<div class="scroll"><table>' in html


def test_every_shipped_suite_with_claims_loads():
    from pathlib import Path

    from gbench.studies.sweep.suite import load_suite

    counts = {
        p.name: len(load_suite(p).claims)
        for p in sorted((Path(__file__).parents[1] / "benchmarks" / "suites").glob("*.toml"))
    }
    assert all(
        counts[name] > 0
        for name in (
            "s1_mlp_capacity.toml",
            "s2_latent_hidden_2x2.toml",
            "s3_dynamics.toml",
            "s5_mode_collapse.toml",
            "s6_fashion.toml",
        )
    )


# --- the answer and the index page


def test_the_answer_says_best_and_what_differs(tmp_path):
    from gbench.report.answer import answer
    from gbench.report.grids import tables_for

    (table,) = tables_for(records(), type("S", (), {"baseline": "baseline"})())
    text = answer(table, check_claims(records(), [Claim("wide helps", "wide", "lower_than", "baseline")]))
    assert text.startswith(
        "Lowest mean FID (lenet-mnist@1a2b3c4d features, 1,000 samples): wide, 40.0 ± 1.6 over 5 seeds."
    )
    assert "lower than the baseline (51.0 ± 1.6): wide; not distinguishable from it: same." in text
    assert text.endswith('Claims checked: 1 confirmed. Confirmed: "wide helps".')  # decided claims by name


def test_a_grid_answer_gives_each_axis_marginal_means_and_counts_long_lists():
    from gbench.report.answer import answer
    from gbench.report.grids import tables_for

    rows = []
    for latent in (16, 36, 100):
        for hidden in (16, 64, 100, 144):
            for seed in range(3):  # FID falls with hidden (30 per step), barely with latent (1)
                fid = 100.0 - 30 * [16, 64, 100, 144].index(hidden) - (1 if latent == 100 else 0) + seed
                rows.append(
                    record(f"latent_dim={latent},hidden_dim={hidden}", seed, fid, latent_dim=latent, hidden_dim=hidden)
                )
    (table,) = tables_for(
        rows,
        type(
            "S", (), {"baseline": None, "grid_axes": {"latent_dim": [16, 36, 100], "hidden_dim": [16, 64, 100, 144]}}
        )(),
    )
    text = answer(table, (), ["latent_dim", "hidden_dim"])
    # marginal means: hidden 16 -> (101 + 101 + 100) / 3 = 100.67, 64 -> 70.67, ...;
    # latent 16 -> mean(101, 71, 41, 11) = 56, 100 -> 55
    assert (
        "by latent_dim: 16 56.0, 36 56.0, 100 55.0 (spread 1.0); "
        "by hidden_dim: 16 100.7, 64 70.7, 100 40.7, 144 10.7 (spread 90.0); hidden_dim moves FID most." in text
    )
    assert (
        "higher than the best latent_dim=100,hidden_dim=144 (10.0 ± 1.0): 9 settings "
        "(latent_dim=16,hidden_dim=16, latent_dim=16,hidden_dim=64, latent_dim=16,hidden_dim=100, ...)" in text
    )


def test_report_index_lists_every_study_and_rejects_bad_input(tmp_path):
    import tomllib

    from conftest import assert_one_line_error, run_cli

    for name in ("first", "second"):
        suite = parse_suite(
            tomllib.loads(
                SUITE.replace(
                    'name = "s"', f'name = "{name}"\ntitle = "Study {name}"\nquestion = "Is wide better ({name})?"'
                )
            )
        )
        write_report(records()[:10], tmp_path / "studies" / name, suite)
    result = run_cli("report", "--index", str(tmp_path / "studies"))
    assert result.returncode == 0, result.stderr
    md = (tmp_path / "studies" / "index.md").read_text()
    assert (
        md.count("](first/report.md) |") == 1
        and md.count("](second/report.md) |") == 1
        and "| Is wide better (second)? |" in md
    )
    # the index's one-line answer
    assert "| lowest FID wide (40.0 ± 1.0); higher than the best (wide): baseline, same. |" in md
    assert '<a href="second/report.html">Study second</a>' in (tmp_path / "studies" / "index.html").read_text()

    assert_one_line_error(
        run_cli("report", "--index", str(tmp_path / "nowhere")), "--index", "nowhere", "is not a folder"
    )
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("report", "--index", str(tmp_path / "empty")), "no reports under", "study.json")
    (tmp_path / "studies" / "second" / "study.json").write_text("{not json")
    before = (tmp_path / "studies" / "index.md").read_text()
    assert_one_line_error(run_cli("report", "--index", str(tmp_path / "studies")), "second/study.json", "gbench report")
    assert (tmp_path / "studies" / "index.md").read_text() == before  # nothing already written is lost


def test_every_digit_present_is_the_rarest_class_share_from_class_counts():
    from gbench.analysis.claims import min_class_share

    hand = "15 7 6 16 2 3 10 10 12 19"  # the hand-made count of STUDIES.md: the rarest digit 2 of 100
    assert min_class_share({"class_counts": hand}) == pytest.approx(0.02) and min_class_share({}) is None
    rows = [record("baseline", s, 50.0 + s, class_counts=hand) for s in range(3)]
    # digit 0 dropped
    rows += [record("wide", s, 40.0 + s, class_counts=f"0 {100 - s} 3 4 5 6 7 8 9 {10 + s}") for s in range(3)]
    claim = lambda setting: Claim("every digit present", setting, "above", 0.01, metric="min_class_share")
    present, dropped = check_claims(rows, [claim("baseline"), claim("wide")])
    assert present.values == pytest.approx([0.02] * 3) and present.verdict == CONFIRMED
    assert dropped.values == [0.0] * 3 and dropped.verdict == CONTRADICTED
    assert claim("wide").describe() == "rarest class share of wide above 0.01"


# --- claims about grid axes: "hidden size matters more than latent size"


def grid_records(hidden_step, latent_step, noise, seeds=5, rng=None, latents=(16, 36, 100), hiddens=(16, 64, 100, 144)):
    rng = rng or np.random.default_rng(1)
    rows = []
    for i, latent in enumerate(latents):
        for j, hidden in enumerate(hiddens):
            for seed in range(seeds):
                fid = 100.0 - hidden_step * j - latent_step * i + noise * rng.standard_normal()
                rows.append(
                    record(f"latent_dim={latent},hidden_dim={hidden}", seed, fid, latent_dim=latent, hidden_dim=hidden)
                )
    return rows


AXIS_CLAIMS = [
    Claim("hidden matters more", "hidden_dim", "more_than", "latent_dim"),
    Claim("latent matters more", "latent_dim", "more_than", "hidden_dim"),
]


def spread_by_pandas(rows, axis):
    import pandas as pd

    frame = pd.DataFrame([r.row for r in rows])
    cells = frame.groupby(["latent_dim", "hidden_dim"], as_index=False)["fid"].mean()
    marginal = cells.groupby(axis)["fid"].mean()
    return marginal.max() - marginal.min()


def test_an_axis_claim_compares_main_effect_spreads_as_pandas_computes_them():
    rows = grid_records(hidden_step=30, latent_step=1, noise=2)
    hidden, latent = check_claims(rows, AXIS_CLAIMS)
    expected = spread_by_pandas(rows, "hidden_dim") - spread_by_pandas(rows, "latent_dim")
    assert 85 < expected < 95  # 90 against about 2, plus noise
    assert hidden.difference == pytest.approx(expected) and hidden.spreads == pytest.approx(
        (spread_by_pandas(rows, "hidden_dim"), spread_by_pandas(rows, "latent_dim"))
    )
    assert latent.difference == pytest.approx(-expected)
    low, high = hidden.interval
    assert low < expected < high and high - low < 10  # 5 seeds of sd 2 per cell: the spreads are known to a few FID
    assert hidden.p < 1e-6  # 90 against 2 with a standard error of about 1.3
    assert (hidden.verdict, latent.verdict) == (CONFIRMED, CONTRADICTED)
    assert "spread of mean FID over hidden_dim larger than over latent_dim" == hidden.claim.describe()
    again = check_claims(rows, AXIS_CLAIMS[:1])[0]
    # seeded: the same report every time
    assert (again.difference, again.interval, again.p) == (hidden.difference, hidden.interval, hidden.p)


def test_an_axis_claim_without_an_effect_is_rarely_decided():
    """Neither axis matters: over 200 noisy grids the claim is decided (either way) at about the nominal 5%, not
    more."""
    rng = np.random.default_rng(7)
    decided = 0
    for _ in range(200):
        rows = grid_records(
            hidden_step=0, latent_step=0, noise=5, rng=rng, latents=(16, 36, 100), hiddens=(16, 64, 100)
        )
        (result,) = check_claims(rows, AXIS_CLAIMS[:1])
        decided += result.p < 0.05
    assert decided <= 20, decided  # 10%: twice the nominal rate, a margin for 200 draws (binomial sd about 3)


@pytest.mark.parametrize("levels, seeds", [(2, 3), (2, 5), (3, 5), (6, 5)])
def test_equal_spreads_are_called_different_at_about_the_nominal_rate(levels, seeds):
    """Both axes move the mean by the same 10 (seed sd 3): over 400 simulated grids the test calls the spreads
    different in about 5%. The percentile bootstrap it replaced did so in 21% of 2 x 2 grids at 3 seeds and 8-12%
    at 5 (binomial sd over 400 grids: 1.1%)."""
    rng = np.random.default_rng(levels * 10 + seeds)
    steps = np.linspace(0, 10, levels)
    axis = [a for a in range(levels) for _ in range(levels)]
    other = [b for _ in range(levels) for b in range(levels)]
    means = steps[axis] + steps[other]
    decided = sum(
        compare_spreads([m + rng.normal(0, 3, seeds) for m in means], axis, other, 1999, 0.95).p < 0.05
        for _ in range(400)
    )
    assert 0.02 <= decided / 400 <= 0.08, decided


def test_spreads_of_a_2x2_are_its_main_effects_and_their_standard_error_is_welchs():
    """In a 2 x 2 the spreads are |main effects|, and the difference of equal-sized ones is the off-diagonal
    contrast: its bootstrap standard error matches the textbook sqrt(s1^2 / n1 + s2^2 / n2) and its df Welch's."""
    rng = np.random.default_rng(3)
    cells = [rng.normal(m, sd, 6) for m, sd in ((0, 1), (12, 2), (10, 3), (20, 1))]
    axis, other = [0, 0, 1, 1], [0, 1, 0, 1]
    test = compare_spreads(cells, axis, other, 99_999, 0.95)
    means = [c.mean() for c in cells]
    assert test.spread_axis == pytest.approx(abs((means[2] + means[3]) / 2 - (means[0] + means[1]) / 2))
    assert test.spread_other == pytest.approx(abs((means[1] + means[3]) / 2 - (means[0] + means[2]) / 2))
    # spread_axis - spread_other = cell (1, 0) - cell (0, 1) here: a two-sample Welch test of those two cells
    t, p = scipy_stats.ttest_ind(cells[2], cells[1], equal_var=False)
    assert test.difference == pytest.approx(means[2] - means[1])
    assert test.p == pytest.approx(p, rel=0.02)


def test_an_axis_claim_without_noise_is_exact_and_needs_two_runs_per_setting():
    exact = check_claims(grid_records(hidden_step=10, latent_step=2, noise=0), AXIS_CLAIMS[:1])[0]
    assert (
        exact.difference == pytest.approx(30 - 4)
        and exact.interval == pytest.approx((26, 26))
        and exact.verdict == CONFIRMED
    )
    flat = check_claims(grid_records(hidden_step=0, latent_step=0, noise=0), AXIS_CLAIMS[:1])[0]
    assert flat.difference == 0 and flat.p == 1.0 and flat.verdict == UNDECIDED
    single = check_claims(grid_records(hidden_step=10, latent_step=2, noise=1, seeds=1), AXIS_CLAIMS[:1])[0]
    assert single.p is None and single.verdict == "no test (a setting with fewer than two runs with a value)"


GRID_SUITE = """
[suite]
name = "g"
[base]
architecture = "mlp"
[grid]
latent_dim = [16, 100]
hidden_dim = [16, 100]
"""


@pytest.mark.parametrize(
    "claim, message",
    [
        (
            'claim = "x"\naxis = "hiden_dim"\nmore_than = "latent_dim"',
            "axis = 'hiden_dim' names no grid axis (did you mean 'hidden_dim'?); grid axes: latent_dim, hidden_dim",
        ),
        ('claim = "x"\naxis = "hidden_dim"', 'give more_than = "AXIS", one of the grid axes: latent_dim, hidden_dim'),
        (
            'claim = "x"\naxis = "hidden_dim"\nmore_than = "hidden_dim"',
            "more_than = 'hidden_dim' must name another grid axis than axis = 'hidden_dim'",
        ),
        (
            'claim = "x"\naxis = "hidden_dim"\nmore_than = "latent_dim"\nlower_than = "a"',
            "give exactly one of lower_than, higher_than, no_more_than, no_less_than, above, below, falls_over_last, "
            "oscillates, seed_share_above, "
            "or axis with more_than (got lower_than, axis, more_than)",
        ),
    ],
)
def test_bad_axis_claims_fail_in_one_line(claim, message):
    import tomllib

    with pytest.raises(GbenchError) as error:
        parse_suite(tomllib.loads(GRID_SUITE + "\n[[claims]]\n" + claim))
    assert message in str(error.value) and "claim 1" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(GbenchError, match=r"grid axes: none \(the suite has no \[grid\]\)"):
        parse_suite(tomllib.loads(SUITE + '\n[[claims]]\nclaim = "x"\naxis = "hidden_dim"\nmore_than = "latent_dim"\n'))


def test_the_report_shows_an_axis_claim_with_both_spreads(tmp_path):
    import tomllib

    suite = parse_suite(
        tomllib.loads(
            GRID_SUITE
            + (
                '\n[[claims]]\nclaim = "hidden size matters more than latent size"\n'
                'axis = "hidden_dim"\nmore_than = "latent_dim"\n'
            )
        )
    )
    assert suite.claims == [Claim("hidden size matters more than latent size", "hidden_dim", "more_than", "latent_dim")]
    rows = grid_records(hidden_step=30, latent_step=1, noise=2, latents=(16, 100), hiddens=(16, 100))
    write_report(rows, tmp_path, suite)
    section = (tmp_path / "report.md").read_text().split("## Claims checked", 1)[1].split("\n## ", 1)[0]
    spreads = f"spread {spread_by_pandas(rows, 'hidden_dim'):.2f} vs {spread_by_pandas(rows, 'latent_dim'):.2f}"
    assert (
        "| hidden size matters more than latent size | - "
        f"| spread of mean FID over hidden_dim larger than over latent_dim | {spreads} | +" in section
    )
    assert "| confirmed |" in section and "9,999 bootstrap resamples" in section
