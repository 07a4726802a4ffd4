"""Issue #34, reports a reviewer cannot fault: budget and hardware on every page, one definition of classes
covered, the winning-discriminator flag, one Holm family per report, paired tests for paired runs, wall time
per run and per population, the index table and seeds needed; each against an independent computation."""

import csv
import dataclasses
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from gbench.analysis import stats
from gbench.analysis.claims import CONFIRMED, Claim, check_claims, claims_caption
from gbench.analysis.comparisons import study_tables
from gbench.analysis.pairing import PAIRED, UNPAIRED
from gbench.analysis.sequential import PROCEDURE, Design, replay
from gbench.analysis.stats import holm, seeds_needed
from gbench.config import EvalOptions, RunConfig, resolve_params
from gbench.evaluation.classmetrics import mode_coverage
from gbench.report.build import analysed, write_report
from gbench.report.classplots import histogram_title
from gbench.report.grids import study_grid
from gbench.report.index import write_index
from gbench.report.notes import hardware_text, trained_text
from gbench.results import flags, provenance
from gbench.results.records import RunRecord, load_local
from gbench.studies.sweep.suite import load_suite
from gbench.training.population.run import execute_population
from gbench.training.runner import DataCache

REPO = Path(__file__).resolve().parents[1]
EXTRACTOR = "lenet-mnist@1a2b3c4d"


def record(variant, seed, fid, **row):
    base = {
        "status": "ok",
        "architecture": "mlp",
        "seed": seed,
        "fid": fid,
        "fid_extractor": EXTRACTOR,
        "fid_samples": 1000,
        "score": "probability",
    }
    return RunRecord(variant=variant, seed=seed, row={**base, **row})


# -- 1. the budget, what ran, the hardware: on both pages -------------------------------------------

FULL = """
[suite]
name = "full"
seeds = [0, 1, 2]
baseline = "baseline"
[base]
architecture = "mlp"
epochs = 200
[[variants]]
name = "baseline"
[[variants]]
name = "epochs-100"
epochs = 100
"""


def test_both_pages_carry_the_budget_note_what_each_setting_trained_and_the_hardware(tmp_path):
    (tmp_path / "full.toml").write_text(FULL)
    (tmp_path / "quarter.toml").write_text('[suite]\nname = "quarter"\nfull = "full.toml"\nbudget = 0.25\n')
    suite = load_suite(tmp_path / "quarter.toml")
    machine = "Example CPU 9000, 2 threads of 2 logical CPUs"
    records = [
        record(
            name,
            seed,
            40.0 + seed + (3 if name == "baseline" else 0),
            epochs=epochs,
            steps=epochs * 600,
            train_seconds=100.0,
            hardware=machine,
            gbench_version="0.1.0 (commit abc123)",
        )
        for name, epochs in (("baseline", 50), ("epochs-100", 25))
        for seed in range(3)
    ]
    write_report(records, tmp_path / "report", suite)
    md, page = (tmp_path / "report" / "report.md").read_text(), (tmp_path / "report" / "report.html").read_text()
    for text in (md, page.replace("&#x27;", "'").replace("<code>", "`").replace("</code>", "`")):
        assert "Reduced budget. The full study is `gbench sweep" in text
        # the name says 100, it ran 25
        assert "25 epochs (15,000 steps): epochs-100" in text and "50 epochs (30,000 steps): baseline" in text
        assert "at 0.25 of the full study's budget" in text
        assert f"Runs trained on {machine} (6 runs), with gbench 0.1.0 (commit abc123) (6 runs)" in text
        assert "this report was written by gbench 0.1.0" in text and "logical CPUs" in text
    # the HTML shows the command as code, as the Markdown does, not with its backticks
    assert "The full study is <code>gbench sweep" in page and "`" not in page.split("<body")[1].split("All runs")[0]


def test_one_thread_reads_in_the_singular_in_a_run_s_hardware_and_in_the_report(tmp_path):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert ", 1 thread of " in provenance.hardware()
    finally:
        torch.set_num_threads(threads)
    # runs written before the fix recorded "1 threads of"; the report says it right
    records = [record("baseline", 0, 40.0, hardware="Example CPU, 1 threads of 2 logical CPUs")]
    text = hardware_text(records)
    assert "Runs trained on Example CPU, 1 thread of 2 logical CPUs (1 run)" in text and "1 threads" not in text


def test_a_step_budget_names_its_fraction_of_an_epoch_in_two_decimals():
    records = [record("small", 0, 40.0, epochs=0.5336, steps=500), record("long", 0, 40.0, epochs=25, steps=15000)]
    assert trained_text(records) == "What ran: 0.53 epochs (500 steps): small; 25 epochs (15,000 steps): long."


# -- 2. one definition of classes covered, named where shown ----------------------------------------


def test_histogram_titles_and_tables_use_the_two_named_glossary_counts(tmp_path):
    counts = [49_505] + [55] * 9  # 99% ones: every class present, one covered
    title = histogram_title("k-5", counts, [0.1] * 10)
    labels = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    _, covered, _ = mode_coverage(labels, [1000] * 10)  # the evaluator's own count, from labels
    assert covered == 1 and title == "k-5\n1/10 covered, 10/10 present, 50,000 samples"
    records = [
        record(name, seed, 40.0 + seed, classes_covered=c, class_counts=" ".join(map(str, counts)))
        for name, c in (("a", 1), ("b", 9))
        for seed in range(2)
    ]
    assert "classes covered" in study_grid(study_tables(records)[0]).headers
    write_report(records, tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text()
    assert (
        "- **classes covered**: classes that get at least 50% of their expected share" in md
        and "- **classes present**: classes with at least one" in md
    )


# -- 3. a discriminator that wins is flagged ----------------------------------------------------------


def test_a_winning_discriminator_is_flagged_in_rows_tables_answer_and_summary(tmp_path):
    assert flags.discriminator_wins(0.995, 0.01) is True
    assert flags.discriminator_wins(0.98, 0.01) is False and flags.discriminator_wins(0.995, 0.03) is False
    assert flags.discriminator_wins(0.995, 0.01, "critic") is None and flags.discriminator_wins(None, 0.01) is None
    records = [record("baseline", s, 50.0 + s, d_real=0.7, d_loss=0.9) for s in range(3)]
    records += [
        record("strong-d", s, 60.0 + s, d_real=0.995 if s < 2 else 0.8, d_loss=0.01 if s < 2 else 0.5) for s in range(3)
    ]
    write_report(records, tmp_path / "r", SimpleNamespace(baseline="baseline"))
    md = (tmp_path / "r" / "report.md").read_text()
    assert "3 ok; discriminator wins in 2" in md and "| strong-d | 0 | ok, discriminator wins |" in md
    assert (
        "The discriminator wins (D(x) >= 0.99 and d_loss <= 0.02 at the end of training) in: strong-d (2 of 3 runs)."
        in md
    )
    summary = {row["setting"]: row for row in csv.DictReader(open(tmp_path / "r" / "summary.csv"))}
    assert summary["strong-d"]["discriminator_wins"] == "2" and summary["baseline"]["discriminator_wins"] == "0"
    docs = (REPO / "docs" / "results.md").read_text()
    assert (
        f"D(x) >= {flags.D_WINS_REAL}" in docs
        and f"d_loss <= {flags.D_WINS_LOSS}" in docs
        and "discriminator_wins" in docs
    )


# -- 4. one comparison, one verdict ---------------------------------------------------------------------

BASE = [50.0, 52.0, 49.0, 51.0, 53.0]


def family_records():
    shifted = {"a": -2.8, "b": -9.0}
    rows = [record("baseline", s, BASE[s], d_real=0.6 + 0.01 * s) for s in range(5)]
    for name, shift in shifted.items():
        rows += [record(name, s, BASE[(s + 2) % 5] + shift, d_real=0.88 + 0.02 * s) for s in range(5)]
    return rows


def test_a_pair_in_the_results_and_the_claims_gets_one_adjusted_p_and_one_verdict(tmp_path):
    claims = [
        Claim("a helps", "a", "lower_than", "baseline"),
        Claim("b helps", "b", "lower_than", "baseline"),
        Claim("D(x) of a above 0.9", "a", "above", 0.9, metric="d_real"),
        Claim("D(x) of b above 0.9", "b", "above", 0.9, metric="d_real"),
        Claim("D(x) of baseline below 0.63", "baseline", "below", 0.63, metric="d_real"),
    ]
    suite = SimpleNamespace(baseline="baseline", claims=claims)
    records = family_records()
    # the old code: Holm over the table's 2 tests says "a" holds, Holm over the 5 claims says it does not
    old_table = study_tables(records, baseline="baseline")[0]
    old_claims = check_claims(records, claims)
    assert old_table.setting("a").p_adjusted < 0.05 <= old_claims[0].p_adjusted
    tables, results, _ = analysed(records, suite)
    row = tables[0].setting("a")
    # 2 table pairs + 3 value claims; 2 claims are table pairs
    assert row.p_adjusted == results[0].p_adjusted and row.family == results[0].family == 5
    ps = [tables[0].setting("a").p, tables[0].setting("b").p, *(r.p for r in results[2:])]
    by_hand = sorted(ps)
    running, adjusted = 0.0, {}
    for rank, p in enumerate(by_hand):
        running = max(running, min(1.0, (len(ps) - rank) * p))
        adjusted[p] = running
    assert row.p_adjusted == pytest.approx(adjusted[row.p]) and results[3].p_adjusted == pytest.approx(
        adjusted[results[3].p]
    )
    assert (row.verdict == "lower FID") == (results[0].verdict == CONFIRMED)
    write_report(records, tmp_path / "r", suite)
    md = (tmp_path / "r" / "report.md").read_text()
    assert (
        md.count(
            "over the 5 distinct comparisons of this report "
            "(2 in the results table, 5 claims; 2 claims test a pair of the table and count once)"
        )
        == 2
    )


def test_under_seeds_auto_the_sequential_decision_gives_the_verdict_and_the_answer():
    base, a = [50.0, 52.0, 49.0, 51.0], [48.1, 48.8, 48.0, 45.4]
    records = [record("baseline", s, base[s], seeds_auto="auto:4") for s in range(4)] + [
        record("a", s, a[s], seeds_auto="auto:4") for s in range(4)
    ]
    outcome = replay(Design(3, 4), a, base)
    # fixed-sample Welch says "lower"
    assert outcome.decision == "not distinguishable" and scipy_stats.ttest_ind(a, base, equal_var=False).pvalue < 0.05
    assert study_tables(records, baseline="baseline")[0].setting("a").verdict == "lower FID"
    tables, _, sequential = analysed(records, SimpleNamespace(baseline="baseline", variants=[]))
    assert (
        sequential
        and tables[0].setting("a").verdict == "not distinguishable"
        and not tables[0].setting("a").significant
    )
    from gbench.report.answer import answer

    text = answer(tables[0], (), (), sequential)
    assert f"({PROCEDURE}, 5% overall), not distinguishable from the baseline" in text and "lower than" not in text
    # look 1 of 2: |z| 1.48 < 2.04
    tables, _, _ = analysed([r for r in records if r.seed < 3], SimpleNamespace(baseline="baseline", variants=[]))
    assert tables[0].setting("a").verdict == "undecided" and "undecided (the sweep is unfinished): a." in answer(
        tables[0], (), (), True
    )


# -- 5. paired designs get paired tests -------------------------------------------------------------------


def test_settings_that_differ_only_in_ema_are_paired_by_seed_and_a_second_difference_unpairs_them():
    # --ema never feeds back into training: seed s with and without it is the same training (S8's mlp and mlp-ema)
    plain = [80.0, 74.0, 88.0, 79.0, 83.0]
    averaged = [p + d for p, d in zip(plain, [1.2, 0.8, 1.5, 1.1, 0.9])]
    records = [record("mlp", s, plain[s], ema="") for s in range(5)]
    records += [record("mlp-ema", s, averaged[s], ema=0.999) for s in range(5)]
    records += [record("mlp-ema-wide", s, averaged[s], ema=0.999, hidden_dim=512) for s in range(5)]
    table = study_tables(records, baseline="mlp")[0]
    paired, welch = table.setting("mlp-ema"), table.setting("mlp-ema-wide")
    assert paired.test == PAIRED and paired.p == pytest.approx(scipy_stats.ttest_rel(averaged, plain).pvalue)
    assert paired.p < 0.001 < 0.05 < scipy_stats.ttest_ind(averaged, plain, equal_var=False).pvalue
    assert "differ only in ema" in paired.pairing_note
    assert welch.test == UNPAIRED and "differ in hidden_dim," in welch.pairing_note + ","
    claims = check_claims(
        records,
        [
            Claim("EMA lowers FID", "mlp-ema", "lower_than", "mlp"),
            Claim("EMA and width lower FID", "mlp-ema-wide", "lower_than", "mlp"),
        ],
    )
    assert claims[0].test == PAIRED and claims[0].p == pytest.approx(paired.p)
    # the claims' caption gives each paired claim its own reason, not another design's
    caption = claims_caption(claims)
    assert (
        "Paired t-test over seeds for 'EMA lowers FID': they differ only in ema, an average of the generator's "
        "weights kept beside training"
        in caption
        and "trained for different lengths" not in caption
        and "EMA and width" not in caption
    )
    apart = [record("mlp", s, plain[s], ema="") for s in range(5)] + [
        record("mlp-ema", s + 5, averaged[s], ema=0.999) for s in range(5)
    ]
    assert study_tables(apart, baseline="mlp")[0].setting("mlp-ema").test == UNPAIRED  # other seeds: no pairs


def test_the_same_runs_trained_for_different_lengths_get_a_paired_test(tmp_path):
    base = [50.0, 55.0, 47.0, 52.0, 58.0]
    # the same runs stopped earlier: worse by about 3, seed by seed
    shorter = [b + d for b, d in zip(base, [3.1, 2.4, 3.6, 2.9, 3.3])]
    records = [record("baseline", s, base[s], epochs=50, hidden_dim=256) for s in range(5)]
    records += [record("epochs-100", s, shorter[s], epochs=25, hidden_dim=256) for s in range(5)]
    records += [record("hidden-512", s, shorter[s], epochs=50, hidden_dim=512) for s in range(5)]
    table = study_tables(records, baseline="baseline")[0]
    paired, welch = table.setting("epochs-100"), table.setting("hidden-512")
    differences = np.subtract(shorter, base)
    t = differences.mean() / (differences.std(ddof=1) / math.sqrt(5))  # by hand
    assert (
        paired.test == PAIRED
        and paired.t == pytest.approx(t)
        and paired.p == pytest.approx(2 * scipy_stats.t.sf(abs(t), 4))
    )
    assert paired.p == pytest.approx(scipy_stats.ttest_rel(shorter, base).pvalue) and paired.p < 0.001
    assert (
        welch.test == UNPAIRED
        and welch.p == pytest.approx(scipy_stats.ttest_ind(shorter, base, equal_var=False).pvalue)
        and welch.p > 0.05
    )
    assert "differ in hidden_dim" in welch.pairing_note and "trained for different lengths" in paired.pairing_note
    claim = check_claims(records, [Claim("fewer epochs hurt", "epochs-100", "higher_than", "baseline")])[0]
    assert claim.test == PAIRED and claim.p == pytest.approx(paired.p)
    said = "Paired t-test over seeds for 'fewer epochs hurt': the same runs (set-up, hyperparameters, seeds) trained"
    assert said in claims_caption([claim])
    write_report(records, tmp_path / "r", SimpleNamespace(baseline="baseline"))
    md = (tmp_path / "r" / "report.md").read_text()
    assert (
        " (paired) |" in md
        and "(paired): the paired t-test over seeds instead (interval, bootstrap, MDD and seeds from the "
        "seed-by-seed differences) for epochs-100, because the same runs"
        in md
        and "the others are not paired: hidden-512, because they differ from the reference in their set-up "
        "(hidden_dim), so a seed draws each its own initial weights;"
        in md
    )


# -- 7. wall time: a run's share and the population's ------------------------------------------------------


def test_a_population_member_records_its_share_and_the_populations_wall_time(registry, tmp_path):
    configs = []
    for seed in (0, 1):
        config = RunConfig(
            architecture="mlp",
            seed=seed,
            steps=10,
            train_limit=1000,
            log_every=5,
            device="cpu",
            eval=EvalOptions(samples=0),
        )
        config = dataclasses.replace(
            config, params=resolve_params(registry, config, {"latent_dim": 8, "hidden_dim": 16})
        )
        configs.append(config)
    rows, why_not = execute_population(configs, registry, tmp_path, cache=DataCache())
    assert why_not is None and [row["population"] for row in rows] == [2, 2]
    assert rows[0]["population_seconds"] == rows[1]["population_seconds"] > 0
    for row in rows:
        assert row["train_seconds"] == pytest.approx(row["population_seconds"] / 2, abs=1e-3)
        assert (
            "logical CPUs" in row["hardware"]
            and row["gbench_version"].startswith("0.1.0")
            and row["discriminator_wins"] in (True, False)
        )
    stored = load_local(tmp_path)[0].row
    assert (
        flags.run_seconds(stored) == pytest.approx(stored["train_seconds"])
        and flags.population_seconds(stored) == stored["population_seconds"]
    )
    grid = study_grid(study_tables(load_local(tmp_path))[0])
    # named apart, in the table and its caption
    shares, whole = (grid.headers.index("train s"), grid.headers.index("population s"))
    assert (
        grid.rows[0][shares] == f"{rows[0]['train_seconds']:.1f}"
        and grid.rows[0][whole] == f"{rows[0]['population_seconds']:.1f}"
    )
    assert "population s: the wall time of the population the run trained in" in grid.caption
    old = {"train_seconds": 147.8, "population": 3}  # a row from before population_seconds: the population's time
    assert flags.run_seconds(old) == pytest.approx(147.8 / 3) and flags.population_seconds(old) == 147.8


def test_the_version_is_dirty_for_changed_code_only_not_for_reports_written_into_the_checkout(tmp_path):
    """Republishing reports into docs/studies one after another marked every report but the first as written by
    changed code; only gbench's own code counts."""
    import subprocess
    import sys

    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    # the code under test is this checkout's, committed in the clone
    shutil.copytree(REPO / "gbench", clone / "gbench", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "-C", str(clone), "add", "-A"], check=True)
    identity = ["-c", "user.name=gbench tests", "-c", "user.email=tests@gbench.invalid"]
    subprocess.run(
        ["git", "-C", str(clone), *identity, "commit", "-q", "--allow-empty", "-m", "this checkout"], check=True
    )
    ask = [sys.executable, "-c", "from gbench.results.provenance import gbench_version; print(gbench_version())"]

    def version() -> str:
        done = subprocess.run(ask, cwd=tmp_path, env={"PYTHONPATH": str(clone)}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
    assert version().endswith(f"(commit {head.stdout.strip()})")
    (clone / "docs" / "studies" / "index.md").write_text("rewritten by a report\n")
    (clone / "README.md").write_text("edited\n")
    assert not version().endswith("-dirty)")
    with open(clone / "gbench" / "__init__.py", "a") as handle:
        handle.write("# changed\n")
    assert version().endswith("-dirty)")


# -- 10. the index: one table, in study order, by design and budget-----------------------------------------------------


def test_the_index_of_the_published_studies_is_one_table_in_study_and_budget_order(tmp_path):
    for folder in sorted((REPO / "docs" / "studies").iterdir()):
        if (folder / "study.json").is_file():
            (tmp_path / folder.name).mkdir()
            for name in ("study.json", "summary.csv"):
                shutil.copy(folder / name, tmp_path / folder.name / name)
    write_index(tmp_path)
    md = (tmp_path / "index.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| [")]
    order = [line.split("](", 1)[1].split("/", 1)[0] for line in rows]
    assert order == [
        "s1-mlp-capacity-short",
        "s1-mlp-capacity-tenth",
        "s1-mlp-capacity-quarter",
        "s2-latent-hidden-2x2-short",
        "s2-latent-hidden-2x2-quarter",
        "s2-latent-hidden-2x2-half",
        "s2-latent-hidden-6x6-short",  # another design of S2: after the 2 x 2's budgets, not among them
        "s3-dynamics",
        "s4-interpolation",
        "s5-mode-collapse",
        "s6-fashion",
        "s7-packing-hundredth",
        "s8-conditional-tenth",
        "s8-conditional-fifth",
        "s8-conditional-two-fifths",
        "s8-conditional-half",
        "s9-created-equal-fifth",
    ]
    assert "17 studies, in study order (S1 to S9)" in md  # the span from the rows, not a fixed S1 to S6
    quarter = rows[2]
    summary = list(csv.DictReader(open(tmp_path / "s1-mlp-capacity-quarter" / "summary.csv")))
    lower = [row["setting"] for row in summary if row["verdict"] == "lower FID"]
    best = min(summary, key=lambda row: float(row["fid_mean"]))
    assert (
        f"| 1/4 (50 of 200 epochs) | 5 | lowest FID {best['setting']} "
        f"({float(best['fid_mean']):.1f} ± {float(best['fid_sd']):.1f})" in quarter
    )
    assert (
        f"lower than the baseline: {', '.join(lower)}." in quarter
        and "| settings: 5 too few seeds, 2 lower; claims: 4 not distinguishable, 1 confirmed, 1 contradicted |"
        in quarter
    )
    # S2's 6x6 grid asks its own question
    assert [row.count("| (as above) |") for row in rows] == [
        0,
        1,
        1,
        0,
        1,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        1,
        1,
        1,
        0,
    ]


# -- 11. seeds needed ---------------------------------------------------------------------------------------


def test_seeds_needed_never_says_two_and_the_docstring_states_the_simulated_power():
    assert seeds_needed(100.0, 1.0, 1.0) == 3 and seeds_needed(1.0, 0.0, 0.0) == 3
    assert stats.paired_seeds_needed(100.0, 1.0) == 3
    assert seeds_needed(1.0, 1.0, 1.0) == 17  # above the floor the power table is unchanged (Cohen: d = 1 needs 17)
    assert "45% of draws at 2 seeds" in stats.__doc__ and "69% at 3, 78% at 5 and 80% at 10" in " ".join(
        stats.__doc__.split()
    )
    assert holm([0.01, None]) == [0.01, None]
