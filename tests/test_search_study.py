"""Search suites (issue #37, "Are GANs created equal?"): every candidate tuned on one budget, each best retrained
over seeds, the expected best FID after k settings tried; real runs, real Optuna, real PostgreSQL."""

from __future__ import annotations

import csv
import itertools
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import REPO, assert_one_line_error, run_cli, run_sweep_workers
from optuna.trial import TrialState

from gbench.analysis.search_budget import TrialOutcome, budget_curve, expected_best
from gbench.errors import GbenchError
from gbench.studies.sweep.suite import parse_suite

SUITE = """
[suite]
name = "t-search"
title = "tiny search"
question = "Are two losses created equal?"
seeds = [0, 1]
baseline = "ns"

[base]
architecture = "mlp"
dataset = "mnist"
steps = {steps}
batch_size = 32
train_limit = 500
eval_samples = 100
eval_every = 10

[base.params]
latent_dim = 8
hidden_dim = 16

[search]
trials = 3
space = ["lr=1e-4:1e-2:log", "beta1=0.1,0.5,0.9"]
pruner_startup = 1

[[variants]]
name = "ns"
loss = "non-saturating"

[[variants]]
name = "lsgan"
loss = "lsgan"

[quick]
steps = 10
"""
KEYS = ["lsgan|0", "lsgan|1", "ns|0", "ns|1"]


def write_suite(tmp_path: Path, steps: int = 20, text: str | None = None) -> Path:
    path = tmp_path / "search.toml"
    path.write_text(text if text is not None else SUITE.format(steps=steps))
    return path


def results(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def counted(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=storage)
    return [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


# ---------------------------------------------------------------------------
# The expected best FID after k settings: exact, against enumeration and a Monte Carlo
# ---------------------------------------------------------------------------


def test_expected_best_is_the_mean_minimum_over_every_k_subset():
    values = [31.5, 12.0, 47.25, 12.0, math.inf, 25.5, 60.0]  # a tie and a trial without FID
    curve = expected_best(values)
    for k in range(1, len(values) + 1):
        subsets = list(itertools.combinations(values, k))
        brute = sum(min(s) for s in subsets) / len(subsets)
        assert curve[k - 1] == pytest.approx(brute) if math.isfinite(brute) else math.isinf(curve[k - 1])
    assert math.isinf(curve[0]) and math.isfinite(curve[1])  # one inf: only a single draw can hold nothing else
    assert curve[-1] == 12.0 and all(a >= b - 1e-9 for a, b in zip(curve, curve[1:]))


def test_expected_best_agrees_with_a_monte_carlo_of_random_trial_orders():
    rng = random.Random(7)
    values = [rng.uniform(10, 100) for _ in range(12)]
    draws = 20000
    sums = [0.0] * len(values)
    for _ in range(draws):  # the best of the first k trials of a shuffled order, as a search run in that order finds it
        order = rng.sample(values, len(values))
        best = math.inf
        for k, value in enumerate(order):
            best = min(best, value)
            sums[k] += best
    for exact, total in zip(expected_best(values), sums):
        assert total / draws == pytest.approx(exact, rel=0.02)


def test_the_bootstrap_interval_holds_the_curve_and_is_seeded():
    trials = [TrialOutcome(i, "pruned" if i % 4 == 0 else "complete", 20.0 + (i * 37 % 11)) for i in range(16)]
    curve = budget_curve("ns", trials)
    assert curve.pruned == 4 and curve.diverged == 0 and curve.trials == 16
    assert all(low <= mean <= high for low, mean, high in zip(curve.low, curve.expected, curve.high))
    assert curve.high[0] - curve.low[0] > curve.high[-1] - curve.low[-1] >= 0  # one draw is the most uncertain
    assert budget_curve("ns", trials).low == curve.low  # same trials, same interval
    none = budget_curve("wgan", [TrialOutcome(0, "complete", None), TrialOutcome(1, "pruned", 50.0)])
    assert none.diverged == 1 and math.isinf(none.expected[0]) and none.expected[1] == 50.0


# ---------------------------------------------------------------------------
# Bad [search] input: one line naming the key, before anything trains
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (("trials = 3", "trails = 3"), "unknown key 'trails'"),
        (("trials = 3", "trials = 0"), "[search] trials = 0"),
        (('space = ["lr=1e-4:1e-2:log", "beta1=0.1,0.5,0.9"]', 'space = "lr=1e-4:1e-2"'), "[search] space ="),
        (("pruner_startup = 1", 'sampler = "grid"'), "[search] sampler = 'grid'"),
        (("pruner_startup = 1", "seed = 1"), "[search] seed = 1 is also a retrain seed"),
        (('loss = "lsgan"', 'loss = "lsgan"\ndataset = "fashion-mnist"'), "no candidate on 'fashion-mnist'"),
        (("seeds = [0, 1]", 'seeds = "auto"'), None),  # one data set: seeds auto is fine
    ],
)
def test_bad_search_tables_fail_in_one_line_naming_the_key(change, needle):
    import tomllib

    text = SUITE.format(steps=20).replace(*change)
    if needle is None:
        assert parse_suite(tomllib.loads(text)).search is not None
        return
    with pytest.raises(GbenchError) as error:
        parse_suite(tomllib.loads(text))
    assert needle in str(error.value) and "\n" not in str(error.value)


def test_seeds_auto_with_two_data_sets_is_refused():
    import tomllib

    text = SUITE.format(steps=20).replace("seeds = [0, 1]", 'seeds = "auto"')
    text += '\n[[variants]]\nname = "ns-fashion"\nloss = "non-saturating"\ndataset = "fashion-mnist"\n'
    text += '\n[[variants]]\nname = "lsgan-fashion"\nloss = "lsgan"\ndataset = "fashion-mnist"\n'
    with pytest.raises(GbenchError, match="2 data sets"):
        parse_suite(tomllib.loads(text))
    groups = parse_suite(tomllib.loads(text.replace('seeds = "auto"', "seeds = [0, 1]"))).comparison_groups()
    assert groups == {
        "mnist": (["ns", "lsgan"], "ns"),
        "fashion-mnist": (["ns-fashion", "lsgan-fashion"], "ns-fashion"),
    }


def test_a_space_naming_an_unknown_hyperparameter_stops_the_sweep_before_training(tmp_path):
    path = write_suite(tmp_path, text=SUITE.format(steps=20).replace('"beta1=0.1,0.5,0.9"', '"beta=0.1,0.5"'))
    out = tmp_path / "out"
    result = run_cli("sweep", str(path), "--out", str(out))
    assert_one_line_error(result, "[search] space (candidate 'ns')", "unknown hyperparameter 'beta'", "beta1")
    assert not list(out.glob("*/config.json"))  # nothing trained


# ---------------------------------------------------------------------------
# End to end: gbench sweep runs both phases, resumes exactly, and reports
# ---------------------------------------------------------------------------


def test_a_search_suite_interrupted_and_resumed_runs_every_trial_and_seed_once_and_reports(tmp_path):
    path = write_suite(tmp_path, steps=40)
    out = tmp_path / "out"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "gbench", "sweep", str(path), "--out", str(out), "--population", "on"],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("*-t0000/summary.json")):  # the first search trial has finished; the second trains
        assert sweep.poll() is None and time.monotonic() < deadline, sweep.communicate()
        time.sleep(0.05)
    stamp = next(out.glob("*-t0000/summary.json")).stat().st_mtime_ns
    sweep.send_signal(signal.SIGINT)
    _, stderr = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, stderr

    resumed = run_cli("sweep", str(path), "--out", str(out), "--population", "on", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    storage = f"sqlite:///{out / 'sweep.db'}"
    rows = results(out)
    for candidate in ("ns", "lsgan"):  # exactly 3 counted trials each, each its own run folder, none trained twice
        trials = counted(storage, f"t-search-search-{candidate}")
        assert sorted(t.number for t in trials) == sorted({t.number for t in trials}) and len(trials) == 3
        runs = [r for r in rows if r.get("study") == f"t-search-search-{candidate}"]
        assert len(runs) == 3 and len({r["run_id"] for r in runs}) == 3
        assert all(r["seed"] == "1000" for r in runs)  # the search seed: the retrained seeds are fresh draws
    assert next(out.glob("*-t0000/summary.json")).stat().st_mtime_ns == stamp  # the finished trial was not repeated
    retrain = optuna.load_study(study_name="t-search", storage=storage)
    assert sorted(t.user_attrs["key"] for t in retrain.trials if t.state == TrialState.COMPLETE) == KEYS

    # each candidate's retrained runs use its search's best parameters
    for candidate in ("ns", "lsgan"):
        study = optuna.load_study(study_name=f"t-search-search-{candidate}", storage=storage)
        best = min((t for t in study.trials if t.state == TrialState.COMPLETE), key=lambda t: (t.values[0], t.number))
        for seed in (0, 1):
            row = next(r for r in rows if r["run_id"] == f"{candidate}-s{seed}")
            assert float(row["lr"]) == pytest.approx(best.params["lr"])

    # the report: the figure, and the expected best after k trials recomputed from the trials' rows by enumeration
    report = (out / "report" / "report.md").read_text()
    figure = out / "report" / "figures" / "expected_best_fid.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 10_000
    assert "## Are the candidates created equal?" in report and "**Compared with Lucic et al.:**" in report
    for candidate in ("ns", "lsgan"):
        fids = [
            float(r["fid"]) if r["fid"] else math.inf for r in rows if r.get("study") == f"t-search-search-{candidate}"
        ]
        line = next(line for line in report.splitlines() if line.startswith(f"| {candidate} | mnist | 3 |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        for k in (1, 2, 3):
            subsets = list(itertools.combinations(fids, k))
            assert float(cells[4 + k].split(" [")[0]) == pytest.approx(sum(map(min, subsets)) / len(subsets), abs=0.006)
    assert "| **ns** | mnist |" in report and "| reference |" in report  # the verdicts: against non-saturating
    assert "Cost of each candidate" in report

    # gbench report rebuilds the same section from the sweep's storage: OUT/sweep.db, or --storage and --study-name
    def section(text: str) -> str:
        return text[text.index("## Are the candidates created equal?") : text.index("## Figures")]

    for where, extra in (("local", []), ("storage", ["--storage", storage, "--study-name", "t-search"])):
        rebuilt = run_cli("report", str(out), "--suite-file", str(path), "-o", str(tmp_path / where), *extra)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert section((tmp_path / where / "report.md").read_text()) == section(report), where
    bare = tmp_path / "results-only"  # results.csv without the sweep's storage: said, not silently dropped
    bare.mkdir()
    (bare / "results.csv").write_bytes((out / "results.csv").read_bytes())
    without = run_cli("report", str(bare), "--suite-file", str(path))
    assert without.returncode == 0, without.stderr
    assert f"no {bare / 'sweep.db'}, so the report leaves out the searches" in without.stderr
    assert "## Are the candidates created equal?" not in (bare / "report" / "report.md").read_text()

    again = run_cli("sweep", str(path), "--out", str(out), "--no-report")  # finished: nothing trains again
    assert again.returncode == 0, again.stderr
    assert len(results(out)) == len(rows)


@pytest.mark.postgres
def test_two_workers_on_postgres_share_the_searches_and_the_retrain_exactly(postgres_url, tmp_path):
    path = write_suite(tmp_path)
    outs = [tmp_path / f"m{i}" for i in range(2)]
    run_sweep_workers(path, postgres_url, outs, timeout=400)
    rows = [row for out in outs if (out / "results.csv").exists() for row in results(out)]
    for candidate in ("ns", "lsgan"):
        assert len(counted(postgres_url, f"t-search-search-{candidate}")) == 3
        runs = [r["run_id"] for r in rows if r.get("study") == f"t-search-search-{candidate}"]
        assert len(runs) == 3 and len(set(runs)) == 3  # each trial trained on one machine only
    retrain = optuna.load_study(study_name="t-search", storage=postgres_url)
    assert sorted(t.user_attrs["key"] for t in retrain.trials if t.state == TrialState.COMPLETE) == KEYS
    assert sorted(f"{r['variant']}|{r['seed']}" for r in rows if r.get("variant")) == KEYS


def test_retrain_seeds_on_the_command_line_may_not_hold_the_search_seed(tmp_path):
    from gbench.studies.sweep.plan import plan
    from gbench.studies.sweep.search import open_searches

    made = plan(write_suite(tmp_path), out=str(tmp_path / "out"), seeds=[0, 1000])
    with pytest.raises(GbenchError, match="--seeds 0,1000 holds the search seed 1000"):
        open_searches(made)
    assert not (tmp_path / "out").exists()  # refused before any study or run was made


def test_a_retrain_study_refuses_bests_that_changed_since_it_was_planned(tmp_path):
    import dataclasses

    from gbench.studies.sweep.plan import plan
    from gbench.studies.sweep.search import check_bests
    from gbench.studies.sweep.suite import Variant

    made = plan(write_suite(tmp_path), out=str(tmp_path / "out"))
    study = optuna.create_study(study_name="t-search")  # in memory: the attr is what is checked
    first = [Variant(v.name, {**v.changes, "params": {"lr": 0.001}}) for v in made.suite.variants]
    planned = dataclasses.replace(made, suite=dataclasses.replace(made.suite, variants=first))
    check_bests(planned, study)
    check_bests(planned, study)  # the same bests: resumed as it is
    moved = [Variant(v.name, {**v.changes, "params": {"lr": 0.002}}) for v in made.suite.variants]
    with pytest.raises(GbenchError, match="give another --study-name"):
        check_bests(dataclasses.replace(made, suite=dataclasses.replace(made.suite, variants=moved)), study)
