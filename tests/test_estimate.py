"""gbench.analysis.estimate: a reduced-budget study's runs scaled to the full suite's budget, by hand."""

import pytest

from gbench.analysis.estimate import full_study_estimate
from gbench.errors import GbenchError
from gbench.report.build import write_report
from gbench.results.records import RunRecord
from gbench.studies.sweep.suite import load_suite

FULL = """
[suite]
name = "full"
seeds = [0, 1, 2, 3, 4]
[base]
architecture = "mlp"
epochs = 200
eval_every = 6000
[[variants]]
name = "baseline"
[[variants]]
name = "long"
epochs = 300
[[variants]]
name = "fixed-steps"
steps = 5000
eval_samples = 0
[[variants]]
name = "never-ran"
"""


def suites(tmp_path, full_line='full = "full.toml"'):
    (tmp_path / "full.toml").write_text(FULL)
    short = (
        FULL.replace('name = "full"', f'name = "short"\n{full_line}')
        .replace("epochs = 200", "epochs = 10")
        .replace("epochs = 300", "epochs = 15")
    )
    (tmp_path / "short.toml").write_text(short.replace("steps = 5000", "steps = 500"))
    return load_suite(tmp_path / "short.toml")


def record(variant, seed, train_seconds, steps, epochs=None, eval_seconds=None):
    row = {
        "run_id": f"{variant}-s{seed}",
        "status": "ok",
        "architecture": "mlp",
        "seed": seed,
        "train_seconds": train_seconds,
        "steps": steps,
    }
    if epochs is not None:
        row["epochs"] = epochs
    if eval_seconds is not None:
        row.update(eval_seconds=eval_seconds, fid=50.0 + seed, fid_extractor="lenet-mnist@1a2b3c4d", fid_samples=1000)
    return RunRecord(variant=variant, seed=seed, row=row)


def records():
    rows = []
    for seed in range(2):
        rows.append(record("baseline", seed, 20.0 + 2 * seed, 6000, 10, eval_seconds=2.0))  # 10 epochs of 600 steps
        rows.append(record("long", seed, 33.0, 9000, 15, eval_seconds=3.0))
        rows.append(record("fixed-steps", seed, 5.0, 500))  # no evaluation
    return rows


def test_each_setting_scales_by_its_own_seconds_per_step_and_evaluation(tmp_path):
    estimate = full_study_estimate(records(), suites(tmp_path))
    costs = {cost.name: cost for cost in estimate.settings}
    baseline = costs["baseline"]
    # seconds per step: mean of 20/6000 and 22/6000; 200 epochs x
    # 600 steps; evaluations at 6000, 12000, ... 114000 and the final
    # one at 120000 (gbench.training.trainer): 20 of 2 s; 5 seeds
    assert (
        baseline.seconds_per_step == pytest.approx(21 / 6000)
        and baseline.steps_full == 120_000
        and baseline.evals_full == 20
    )
    assert baseline.seconds == pytest.approx(5 * (21 / 6000 * 120_000 + 2.0 * 20))
    assert costs["long"].steps_full == 180_000 and costs["long"].evals_full == 30
    assert costs["long"].seconds == pytest.approx(5 * (33 / 9000 * 180_000 + 3.0 * 30))
    assert costs["fixed-steps"].steps_full == 5000 and costs["fixed-steps"].evals_full == 0
    assert costs["fixed-steps"].seconds == pytest.approx(5 * 5.0 / 500 * 5000)
    assert estimate.missing == ["never-ran"]
    text = estimate.text()
    assert (
        f"gbench sweep {tmp_path / 'full.toml'}" in text
        and "15 runs" in text
        and f"about {estimate.seconds / 3600:.1f} hours" in text
    )
    assert "Not estimated (no runs here): never-ran." in text


def test_the_report_of_a_short_suite_states_the_full_studys_cost(tmp_path):
    write_report(records(), tmp_path / "report", suites(tmp_path))
    md = (tmp_path / "report" / "report.md").read_text()
    assert "> Reduced budget. The full study is `gbench sweep" in md.split("## Results")[0]


def test_a_full_suite_that_is_not_there_fails_in_one_line(tmp_path):
    with pytest.raises(GbenchError, match=r"full = 'nowhere.toml' names no suite file next to it"):
        suites(tmp_path, 'full = "nowhere.toml"')  # when the suite is read, before anything trains
    assert full_study_estimate(records(), load_suite(tmp_path / "full.toml")) is None


def test_a_population_members_share_of_the_training_time_is_what_a_run_costs(tmp_path):
    rows = records()
    for record_ in rows:
        # trained as a population of 2: each row holds the population's time, twice its own
        if record_.variant == "baseline":
            record_.row.update(train_seconds=2 * record_.row["train_seconds"], population=2)
    costs = {cost.name: cost for cost in full_study_estimate(rows, suites(tmp_path)).settings}
    assert costs["baseline"].seconds_per_step == pytest.approx(21 / 6000)
