"""Suite files and gbench sweep end to end: every shipped suite validates; bad
suites fail in one line; a quick sweep runs and reports; a killed sweep
resumes without repeating runs; two workers share a PostgreSQL-backed sweep."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import REPO, assert_one_line_error, run_cli, run_sweep_workers
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

SUITES = sorted((REPO / "benchmarks" / "suites").glob("*.toml"))

SUITE = """
[suite]
name = "t-sweep"
title = "A test sweep"
question = "Does a wider MLP train as well?"
target = "plugins.mlp"
seeds = [0, 1]
baseline = "baseline"
figures = ["samples"]

[base]
architecture = "mlp"
steps = {steps}
train_limit = 2000
eval_samples = 0
log_every = 20
checkpoint_every = {checkpoint}

[base.params]
latent_dim = 16
hidden_dim = 32

[[variants]]
name = "baseline"

[[variants]]
name = "hidden-48"
params = {{ hidden_dim = 48 }}
{more}
[quick]
steps = 20
eval_samples = 200
"""


def write_suite(tmp_path: Path, steps: int = 20, checkpoint: int = 10, more: str = "", text: str | None = None) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(text if text is not None else SUITE.format(steps=steps, checkpoint=checkpoint, more=more))
    return path


def results(out: Path) -> list[dict]:
    path = out / "results.csv"
    return list(csv.DictReader(open(path))) if path.exists() else []


# ---------------------------------------------------------------------------
# Suite files
# ---------------------------------------------------------------------------


def test_the_benchmark_suites_exist():
    assert SUITES, "benchmarks/suites/*.toml: the studies' suites"


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_every_shipped_suite_parses_and_validates(path):
    from gbench.studies.sweep.suite import load_registry, load_suite

    # the installed plugins and the suite's target (S7's: docs/examples/pacgan.py)
    registry = load_registry(load_suite(path, check=False))
    suite = load_suite(path, registry=registry)
    assert suite.name and suite.title and suite.seeds and suite.variants
    assert len({v.name for v in suite.variants}) == len(suite.variants)
    if suite.baseline:
        assert suite.baseline in [v.name for v in suite.variants]
    for quick in (False, True):
        runs = suite.runs(registry, quick=quick)
        seeds = suite.quick_seeds() if quick else suite.seeds
        assert len(runs) == len(suite.variants) * len(seeds)
        assert len({run.config.run_id for run in runs}) == len(runs)  # one folder per (variant, seed)
        if quick:
            assert all(run.config.total_steps(60_000) <= 100 for run in runs)


def test_a_suite_gives_one_config_per_variant_and_seed(tmp_path, registry):
    from gbench.studies.sweep.suite import load_suite

    head = SUITE.split("[[variants]]")[0].format(steps=20, checkpoint=10).replace('baseline = "baseline"\n', "")
    grid = write_suite(tmp_path, text=head + "[grid]\nlatent_dim = [8, 16]\nhidden_dim = [16, 32]\n")
    suite = load_suite(grid, registry=registry)
    assert suite.grid_axes == {"latent_dim": [8, 16], "hidden_dim": [16, 32]}
    runs = suite.runs(registry)
    assert [r.config.run_id for r in runs[:2]] == ["latent_dim=8,hidden_dim=16-s0", "latent_dim=8,hidden_dim=16-s1"]
    assert {(r.config.params["latent_dim"], r.config.params["hidden_dim"], r.seed) for r in runs} == {
        (l, h, s) for l in (8, 16) for h in (16, 32) for s in (0, 1)
    }

    suite = load_suite(
        write_suite(
            tmp_path,
            steps=300,
            more='\n[[variants]]\nname = "batchnorm"\narchitecture = "mlp-batchnorm"\nsteps = 100\n',
        ),
        registry=registry,
    )
    configs = {(r.variant, r.seed): r.config for r in suite.runs(registry)}
    assert configs[("hidden-48", 1)].params["hidden_dim"] == 48 and configs[("hidden-48", 1)].params["latent_dim"] == 16
    assert configs[("batchnorm", 0)].architecture == "mlp-batchnorm" and configs[("batchnorm", 0)].steps == 100
    assert configs[("baseline", 0)].steps == 300 and configs[("baseline", 0)].checkpoint_every == 10
    quick = {(r.variant, r.seed): r.config for r in suite.runs(registry, quick=True)}
    assert (
        quick[("batchnorm", 1)].steps == 20
        and quick[("batchnorm", 1)].eval.samples == 200
        and quick[("batchnorm", 1)].train_limit == 2000
    )


@pytest.mark.parametrize(
    "change, needles, real_cli",
    [
        (("[base]", "[base]\nepocs = 3"), ["unknown key 'epocs'", "did you mean 'epochs'"], True),
        (
            ("params = { hidden_dim = 48 }", "params = { hiden_dim = 48 }"),
            ["variant 'hidden-48'", "unknown hyperparameter 'hiden_dim'"],
            True,
        ),
        (
            ('[[variants]]\nname = "baseline"', '[[variants]]\nname = "baseline"\narchitecture = "mlpp"'),
            ["variant 'baseline'", "unknown architecture 'mlpp'"],
            False,
        ),
        (("[quick]", "[grid]\n[quick]"), ["either [[variants]] or [grid]"], False),
        (('baseline = "baseline"', 'baseline = "base"'), ["baseline = 'base' names no variant"], False),
        (("seeds = [0, 1]", "seeds = []"), ["seeds = []"], False),
        (("[quick]", "[quick]\nbogus = 1"), ["[quick]: unknown key 'bogus'"], False),
        (('figures = ["samples"]', 'figures = ["sample_grids"]'), ["unknown figure 'sample_grids'"], False),
    ],
)
def test_bad_suites_fail_in_one_line(tmp_path, capsys, change, needles, real_cli):
    """Through the real command in a fresh process, or (the same code path, faster) through gbench.cli.main."""
    from gbench.cli import main

    text = SUITE.format(steps=20, checkpoint=10, more="")
    assert change[0] in text
    path = write_suite(tmp_path, text=text.replace(change[0], change[1], 1))
    args = ["sweep", str(path), "--quick", "--out", str(tmp_path / "out")]
    if real_cli:
        result = run_cli(*args)
    else:
        code = main(args)
        captured = capsys.readouterr()
        result = subprocess.CompletedProcess(args, code, captured.out, captured.err)
    assert_one_line_error(result, str(path), *needles)
    assert not (tmp_path / "out").exists()


def test_an_empty_grid_fails_in_one_line(tmp_path):
    head = SUITE.split("[[variants]]")[0].format(steps=20, checkpoint=10).replace('baseline = "baseline"\n', "")
    for grid, needle in (
        ("[grid]\n", "[grid] is empty"),
        ("[grid]\nlatent_dim = []\n", "latent_dim = [] must be a non-empty list"),
    ):
        path = write_suite(tmp_path, text=head + grid)
        assert_one_line_error(run_cli("sweep", str(path), "--out", str(tmp_path / "out")), needle)
    assert_one_line_error(run_cli("sweep", str(tmp_path / "missing.toml")), "missing.toml", "does not exist")


def write_reduced(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reduced.toml"
    path.write_text(text)
    return path


def test_a_budget_suite_is_its_full_suite_with_epochs_and_steps_scaled(tmp_path, registry):
    from gbench.studies.sweep.suite import load_suite

    claim = '\n[[claims]]\nclaim = "wider helps"\nsetting = "hidden-48"\nlower_than = "baseline"\n'
    full = write_suite(
        tmp_path,
        steps=300,
        more='\n[[variants]]\nname = "batchnorm"\narchitecture = "mlp-batchnorm"\nsteps = 100\n' + claim,
    )
    reduced = write_reduced(
        tmp_path, f'[suite]\nname = "t-tenth"\nfull = "{full.name}"\nbudget = 0.1\n\n[base]\neval_every = 10\n'
    )
    suite = load_suite(reduced, registry=registry)
    assert (suite.name, suite.title, suite.full, suite.budget) == (
        "t-tenth",
        "A test sweep (at 1/10 of its budget)",
        "suite.toml",
        0.1,
    )
    assert suite.seeds == [0, 1] and suite.baseline == "baseline" and [c.text for c in suite.claims] == ["wider helps"]
    configs = {(r.variant, r.seed): r.config for r in suite.runs(registry)}
    # [base] and a variant's own steps, both scaled
    assert configs[("baseline", 0)].steps == 30 and configs[("batchnorm", 1)].steps == 10
    assert configs[("hidden-48", 0)].params["hidden_dim"] == 48 and configs[("baseline", 1)].eval.every == 10
    assert configs[("baseline", 0)].checkpoint_every == 10  # what is not training length stays as in the full suite
    assert all(r.config.steps == 20 for r in suite.runs(registry, quick=True))  # the full suite's [quick]

    head = SUITE.split("[[variants]]")[0].format(steps=20, checkpoint=10).replace('baseline = "baseline"\n', "")
    grid = write_suite(
        tmp_path, text=head.replace("steps = 20\n", "") + "[grid]\nsteps = [100, 250]\nhidden_dim = [16, 32]\n"
    )
    reduced = write_reduced(
        tmp_path, f'[suite]\nname = "t-grid-fifth"\ntitle = "fifth"\nfull = "{grid.name}"\nbudget = 0.2\n'
    )
    suite = load_suite(reduced, registry=registry)
    assert [v.name for v in suite.variants][:2] == [
        "steps=20,hidden_dim=16",
        "steps=20,hidden_dim=32",
    ] and suite.grid_axes == {
        "steps": [20, 50],
        "hidden_dim": [16, 32],
    }


@pytest.mark.parametrize(
    "reduced, needles",
    [
        ('name = "r"\nfull = "suite.toml"\nbudget = 0', ["budget = 0 must be a fraction", "0 < budget <= 1"]),
        ('name = "r"\nfull = "suite.toml"\nbudget = 1.5', ["budget = 1.5 must be a fraction"]),
        ('name = "r"\nfull = "suite.toml"\nbudget = "half"', ["budget = 'half' must be a fraction"]),
        ('name = "r"\nbudget = 0.5', ["budget = 0.5 scales the full study", 'full = "s1_mlp_capacity.toml"']),
        ('full = "suite.toml"\nbudget = 0.5', ["needs its own name"]),
        ('name = "r"\nfull = "nosuch.toml"\nbudget = 0.5', ["nosuch.toml", "does not exist"]),
        (
            'name = "r"\nfull = "suite.toml"\nbudget = 0.5\n[[variants]]\nname = "x"',
            ["takes its [variants] from 'suite.toml'", "remove [variants] here"],
        ),
        ('name = "r"\nfull = "suite.toml"\nbudjet = 0.5', ["unknown key 'budjet'", "did you mean 'budget'"]),
    ],
)
def test_bad_budget_suites_fail_in_one_line(tmp_path, capsys, reduced, needles):
    from gbench.cli import main

    write_suite(tmp_path)
    path = write_reduced(tmp_path, "[suite]\n" + reduced + "\n")
    code = main(["sweep", str(path), "--quick", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert_one_line_error(subprocess.CompletedProcess([], code, captured.out, captured.err), *needles)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------
# Sweeps
# ---------------------------------------------------------------------------


def test_a_quick_sweep_runs_every_variant_and_seed_and_writes_the_report(tmp_path):
    path = write_suite(tmp_path)
    out = tmp_path / "out"
    result = run_cli("sweep", str(path), "--quick", "--out", str(out), "--population", "on")
    assert result.returncode == 0, result.stderr
    rows = results(out)
    assert sorted((r["variant"], r["seed"]) for r in rows) == [
        ("baseline", "0"),
        ("baseline", "1"),
        ("hidden-48", "0"),
        ("hidden-48", "1"),
    ]
    assert {r["suite"] for r in rows} == {"t-sweep"} and {r["steps"] for r in rows} == {"20"}
    assert all(float(r["fid"]) > 0 and r["fid_extractor"].startswith("lenet-mnist@") for r in rows)
    assert sorted(r["run_id"] for r in rows) == ["baseline-s0", "baseline-s1", "hidden-48-s0", "hidden-48-s1"]
    assert {r["hidden_dim"] for r in rows if r["variant"] == "hidden-48"} == {"48"}
    assert (out / "report" / "report.html").is_file() and (out / "report" / "report.md").is_file()
    assert {r["population"] for r in rows} == {"2"}  # each variant's two seeds trained as one population

    # the default, --population auto, on a CPU in fp32: the same runs one at a time (the faster choice there,
    # docs/speed.md), the same experiment up to floating-point reassociation
    solo = run_cli("sweep", str(path), "--quick", "--out", str(tmp_path / "solo"), "--no-report")
    assert solo.returncode == 0, solo.stderr
    assert "--population auto: seeds train one by one on a CPU in fp32" in solo.stderr, solo.stderr
    solo_fid = {r["run_id"]: float(r["fid"]) for r in results(tmp_path / "solo")}
    assert {r["population"] for r in results(tmp_path / "solo")} == {"1"}
    assert {r["run_id"]: float(r["fid"]) for r in rows} == pytest.approx(solo_fid, rel=1e-3)

    # the study holds each run's record, so a report needs no shared disk
    from gbench.studies.sweep.sweep import load_records_from_storage

    records = load_records_from_storage(f"sqlite:///{out / 'sweep.db'}", "t-sweep-quick")
    assert sorted((r.variant, r.seed) for r in records) == [
        ("baseline", 0),
        ("baseline", 1),
        ("hidden-48", 0),
        ("hidden-48", 1),
    ]
    by_run = {r.row["run_id"]: r for r in records}
    for row in rows:
        assert by_run[row["run_id"]].row["fid"] == pytest.approx(float(row["fid"]))
        assert by_run[row["run_id"]].history[-1]["step"] == 20

    # run again: nothing left to do, nothing repeated
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/summary.json")}
    again = run_cli("sweep", str(path), "--quick", "--out", str(out), "--no-report")
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/summary.json")} == stamps
    assert len(results(out)) == 4


def test_a_killed_sweep_resumes_without_repeating_finished_runs(tmp_path):
    path = write_suite(tmp_path, steps=800, checkpoint=50)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sweep = subprocess.Popen(
        [sys.executable, "-m", "gbench", "sweep", str(path), "--out", str(out), "--no-report", "--population", "on"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    while True:  # kill once a run has finished and the next one has checkpointed mid-way
        assert sweep.poll() is None and time.monotonic() < deadline, sweep.communicate()
        finished = list(out.glob("*/summary.json"))
        halfway = [p for p in out.glob("*/checkpoint.pt") if not (p.parent / "summary.json").exists()]
        if finished and halfway:
            break
        time.sleep(0.05)
    sweep.send_signal(signal.SIGKILL)
    sweep.communicate()
    stamps = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/summary.json")}
    cut_off = {p.parent.name for p in out.glob("*/checkpoint.pt")} - set(stamps)
    assert stamps and cut_off

    # a heartbeat grace period of 30 minutes: only seeing at once that the worker's process is gone lets this finish
    # in time
    resumed = run_cli(
        "sweep",
        str(path),
        "--out",
        str(out),
        "--no-report",
        "--jobs",
        "2",
        "--heartbeat",
        "600",
        "--population",
        "on",
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr
    rows = results(out)
    assert sorted(r["run_id"] for r in rows) == ["baseline-s0", "baseline-s1", "hidden-48-s0", "hidden-48-s1"]
    assert all(r["steps"] == "800" and r["status"] in ("ok", "collapsed") for r in rows)
    for name, stamp in stamps.items():  # finished runs were not repeated
        assert (out / name / "summary.json").stat().st_mtime_ns == stamp
    assert not list(out.glob("*/checkpoint.pt"))

    study = optuna.load_study(study_name="t-sweep", storage=f"sqlite:///{out / 'sweep.db'}")
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["key"] for t in complete) == ["baseline|0", "baseline|1", "hidden-48|0", "hidden-48|1"]
    # the killed worker held a whole group (both seeds of the variant it was training): each member was retried once
    dead = [t for t in study.trials if t.state == TrialState.FAIL and not t.user_attrs.get("gbench:surplus")]
    # (a member whose folder was already finished when the kill came is taken as it is, not trained again: see the
    # stamps above)
    assert (
        {t.user_attrs["run_id"] for t in dead} >= cut_off
        and len(dead) == 2
        and len({t.user_attrs["variant"] for t in dead}) == 1
    )
    for trial in dead:
        retry = next(t for t in complete if t.user_attrs["key"] == trial.user_attrs["key"])
        assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == trial.number
    workers = {t.user_attrs["gbench:worker"].split("|")[1] for t in complete if t.number > max(d.number for d in dead)}
    assert len(workers) >= 1  # the --jobs 2 worker processes did the rest


def test_ctrl_c_gives_the_running_run_back_at_once(tmp_path):
    """SIGINT mid-run: exit 130, and the run's trial is FAIL with a WAITING retry of the same key already, not RUNNING
    until a heartbeat runs out."""
    path = write_suite(tmp_path, steps=5000, checkpoint=100000)
    out = tmp_path / "out"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "gbench", "sweep", str(path), "--out", str(out), "--no-report", "--population", "on"],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("*/config.json")):  # a run has started training
        assert sweep.poll() is None and time.monotonic() < deadline, sweep.communicate()
        time.sleep(0.1)
    time.sleep(0.5)
    sweep.send_signal(signal.SIGINT)
    _, stderr = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, stderr
    study = optuna.load_study(study_name="t-sweep", storage=f"sqlite:///{out / 'sweep.db'}")
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    given_back = [t for t in study.trials if t.state == TrialState.FAIL and not t.user_attrs.get("gbench:surplus")]
    # the population in training: both seeds
    assert sorted(t.user_attrs["key"] for t in given_back) == ["baseline|0", "baseline|1"]
    for trial in given_back:
        retries = [t for t in study.trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == trial.number]
        assert [(t.state, t.user_attrs["key"]) for t in retries] == [(TrialState.WAITING, trial.user_attrs["key"])]


@pytest.mark.postgres
def test_two_sweep_workers_on_postgres_run_every_variant_and_seed_once(postgres_url, tmp_path):
    path = write_suite(
        tmp_path, steps=600, checkpoint=1000, more='\n[[variants]]\nname = "latent-8"\nparams = { latent_dim = 8 }\n'
    )
    run_sweep_workers(path, postgres_url, [tmp_path / f"m{i}" for i in range(2)], timeout=400)
    keys = sorted(f"{v}|{s}" for v in ("baseline", "hidden-48", "latent-8") for s in (0, 1))
    study = optuna.load_study(study_name="t-sweep", storage=postgres_url)
    assert sorted(t.user_attrs["key"] for t in study.trials if t.state == TrialState.COMPLETE) == keys
    assert all(t.user_attrs.get("gbench:surplus") for t in study.trials if t.state != TrialState.COMPLETE)
    trained = [(r["variant"], r["seed"]) for i in range(2) for r in results(tmp_path / f"m{i}")]
    assert sorted(f"{v}|{s}" for v, s in trained) == keys  # each run trained on exactly one of the two machines
    for i in range(2):  # a worker trains the seeds of a variant it claimed as one population
        rows = results(tmp_path / f"m{i}")
        assert all(int(r["population"]) == sum(1 for o in rows if o["variant"] == r["variant"]) for r in rows)

    from gbench.studies.sweep.sweep import load_records_from_storage

    records = load_records_from_storage(postgres_url, "t-sweep")
    assert sorted(f"{r.variant}|{r.seed}" for r in records) == keys
    assert all(r.row["suite"] == "t-sweep" and r.history and r.history[-1]["step"] == 600 for r in records)


# ---------------------------------------------------------------------------
# A study's finished runs, without training: trials told COMPLETE by hand
# ---------------------------------------------------------------------------


def finished_study(tmp_path: Path, seeds: list[int]):
    """A sweep's real study (real suite, real Optuna storage) whose every run is COMPLETE with a stored record."""
    from gbench.results.records import RunRecord
    from gbench.studies.sweep.sweep import open_study, plan

    planned = plan(write_suite(tmp_path), out=str(tmp_path / "out"), seeds=seeds)
    study = open_study(planned)[0].study
    for _ in planned.runs:
        trial = study.ask()
        key = trial.user_attrs["key"]
        variant, _, seed = key.rpartition("|")
        record = RunRecord(
            variant=variant,
            seed=int(seed),
            row={"run_id": f"{variant}-s{seed}", "status": "ok", "fid": 10.0 + int(seed)},
            history=[],
        )
        trial.set_user_attr("record", record.to_json())
        study.tell(trial, 10.0 + int(seed))
    return study


def test_a_report_holds_the_planned_runs_only_though_the_study_has_more(tmp_path):
    """Seeds 0 and 1 finished in the study; a sweep of the same study with --seeds 0 reports seed 0 alone."""
    from gbench.studies.sweep.sweep import plan, sweep_records

    study = finished_study(tmp_path, seeds=[0, 1])
    seed_0 = plan(write_suite(tmp_path), out=str(tmp_path / "out"), seeds=[0])
    records = sweep_records(seed_0, study, tmp_path / "out")
    assert [(r.variant, r.seed) for r in records] == [("baseline", 0), ("hidden-48", 0)]  # plan order
    both = plan(write_suite(tmp_path), out=str(tmp_path / "out"), seeds=[0, 1])
    assert len(sweep_records(both, study, tmp_path / "out")) == 4


def test_a_report_that_cannot_be_imported_is_an_error_not_a_plain_table(tmp_path, monkeypatch):
    """gbench.report.build (and scipy under it) always ships: failing to import it must not quietly print a results
    table instead."""
    import gbench
    from gbench.commands.sweeping import finish
    from gbench.studies.sweep.plan import plan

    study = finished_study(tmp_path, seeds=[0])
    planned = plan(write_suite(tmp_path), out=str(tmp_path / "out"), seeds=[0])
    import gbench.report

    monkeypatch.setitem(sys.modules, "gbench.report.build", None)  # as when its import of scipy fails
    # the package's attribute would hand the module over regardless
    monkeypatch.delattr(gbench.report, "build", raising=False)
    (tmp_path / "out").mkdir(exist_ok=True)
    with pytest.raises(ImportError):
        finish(planned, study, tmp_path / "out")
    assert finish(planned, study, tmp_path / "out", write_report=False) == 0  # --no-report never needs it


def test_device_options_are_checked_in_one_line_before_any_run(tmp_path):
    path = write_suite(tmp_path)
    out = tmp_path / "out"
    assert_one_line_error(run_cli("sweep", str(path), "--out", str(out), "--device", "mps"), "--device mps", "no MPS")
    assert_one_line_error(
        run_cli("sweep", str(path), "--out", str(out), "--devices", "cuda:0,cuda:0", "--jobs", "2"),
        "names a device twice",
    )
    assert_one_line_error(
        run_cli("sweep", str(path), "--out", str(out), "--devices", "cpu,cuda:1"), "2 devices for --jobs 1", "--jobs 2"
    )
    assert_one_line_error(
        run_cli("sweep", str(path), "--out", str(out), "--devices", "cpu,cuda:1", "--jobs", "2"), "cuda:1"
    )
    assert not (out / "results.csv").exists()


def test_population_options(tmp_path):
    path = write_suite(tmp_path)
    assert_one_line_error(
        run_cli("sweep", str(path), "--quick", "--population-size", "0", "--out", str(tmp_path / "a")),
        "--population-size '0' must be at least 1",
    )
    assert_one_line_error(
        run_cli("sweep", str(path), "--quick", "--population", "some", "--out", str(tmp_path / "a")),
        "--population",
        "'some'",
    )
    capped = run_cli(
        "sweep", str(path), "--quick", "--population-size", "1", "--no-report", "--out", str(tmp_path / "b")
    )
    assert capped.returncode == 0, capped.stderr
    assert {r["population"] for r in results(tmp_path / "b")} == {"1"} and len(results(tmp_path / "b")) == 4


def test_fewer_seeds_on_a_resumed_study_that_waits_for_more_is_an_error_not_extra_training(tmp_path):
    """A sweep stopped with seeds 2-4 still waiting, resumed with --seeds 0,1, would train them too: one line
    instead."""
    from gbench.studies.sweep.sweep import open_study, plan

    path = write_suite(tmp_path)
    out = tmp_path / "out"
    open_study(plan(path, out=str(out), seeds=[0, 1, 2]))  # the study, its six runs waiting
    result = run_cli("sweep", str(path), "--seeds", "0,1", "--out", str(out), "--no-report")
    assert_one_line_error(
        result,
        "study 't-sweep' still waits for 2 runs that --seeds 0,1 does not name",
        "baseline seed 2",
        "another --study-name",
    )
    assert not results(out)


def test_a_claim_that_fid_still_falls_is_warned_before_training_when_the_runs_evaluate_too_rarely(tmp_path):
    """falls_over_last = K reads the last K evaluations, which must be the run's second half at most (issue #34 point
    8): a variant evaluating fewer than 2 K times is said before the first step, and the report leaves the claim
    untested with the reason, rather than fitting a slope to the whole curve and its early fall."""
    claim = '\n[[claims]]\nclaim = "the baseline underfits"\nsetting = "baseline"\nfalls_over_last = 3\n'
    text = SUITE.format(steps=40, checkpoint=20, more=claim).replace("eval_samples = 0", "eval_samples = 200")
    path = write_suite(tmp_path, text=text.replace("log_every = 20", "log_every = 20\neval_every = 20"))
    out = tmp_path / "out"
    result = run_cli("sweep", str(path), "--seeds", "0,1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    said = (
        "claim 'the baseline underfits': variant 'baseline' evaluates 2 times in 40 steps (eval_every 20), and "
        "falls_over_last = 3 needs 6 so that its last 3 are the end of the run; the report will leave the claim "
        "untested. Give eval_every = 7 or less"
    )
    assert said in result.stderr and result.stderr.index(said) < result.stderr.index("sweep 't-sweep': 4 runs"), (
        result.stderr
    )
    report = (out / "report" / "report.md").read_text()
    assert (
        "no test (fewer than two runs with at least 6 evaluations, so that the last 3 are the end of the run" in report
    )
    # the answer and the index count it as "no test" and name it; the reason is the claims table's
    from gbench.analysis.claims import Claim, ClaimResult
    from gbench.report.answer import claims_sentence
    from gbench.report.index import write_index

    untested = ClaimResult(
        Claim("the baseline underfits", "baseline", "falls_over_last", 3.0), [], [], None, None, None
    )
    untested.note = "fewer than two runs with at least 6 evaluations"
    assert claims_sentence([untested]) == (
        'Claims checked: 1 no test. No test: "the baseline underfits" (the claims table says why).'
    )

    write_index(out)
    assert "claims: 1 no test |" in (out / "index.md").read_text()

    from gbench.analysis.curves import evaluations, window_note

    # the trainer's evaluations: each multiple of eval_every before the last step, and the final one
    assert [evaluations(40, every) for every in (20, 7, 40, None)] == [2, 6, 1, 1]
    assert window_note("c", "baseline", 3, 40, 7) is None
    assert window_note("c", "baseline", 5, 6000, 600) is None  # S1 at 1/20: 10 evaluations, the last 5 the second half
    assert "evaluates 5 times in 6,000 steps (eval_every 1200)" in window_note("c", "baseline", 5, 6000, 1200)
