"""gbench tune end to end: real Optuna studies, real training and FID on an
MNIST subset, real PostgreSQL and real worker processes (one of them killed)."""

from __future__ import annotations

import csv
import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import REPO, assert_one_line_error, run_cli
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

# One cheap trial: the MLP, fixed but for a narrow space, 20 steps on 2,000 images, FID from 200 samples at the end.
SMALL = ["--steps", "20", "--train-limit", "2000", "--eval-samples", "200", "--log-every", "10"]
SPACE = [
    "--space",
    "architecture=mlp",
    "--space",
    "hidden_dim=16:48",
    "--space",
    "latent_dim=8:32:log",
    "--space",
    "k=1:2",
    "--set",
    "beta1=0.5",
]


def counted(study: optuna.Study) -> list:
    return [t for t in study.get_trials() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def results(out: Path) -> list[dict]:
    path = out / "results.csv"
    return list(csv.DictReader(open(path))) if path.exists() else []


def ran_here(stdout: str) -> int:
    """The 'this process ran N' count a tune process prints at the end."""
    return int(stdout.rsplit("this process ran ", 1)[1].split()[0])


def test_study_completes_and_resuming_adds_exactly_the_missing_trials(tmp_path):
    out = tmp_path / "runs"
    first = run_cli("tune", "--trials", "2", "--pruner", "none", *SMALL, *SPACE, "--out", str(out))
    assert first.returncode == 0, first.stderr
    storage = f"sqlite:///{out / 'tune.db'}"
    study = optuna.load_study(study_name="tune-mlp", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert ran_here(first.stdout) == 2

    second = run_cli("tune", "--trials", "3", "--n-jobs", "2", "--pruner", "none", *SMALL, *SPACE, "--out", str(out))
    assert second.returncode == 0, second.stderr
    # two threads, one missing trial: exactly one more (and it ran alone: reproducible)
    assert ran_here(second.stdout) == 1
    assert "(resumed)" in second.stderr
    study = optuna.load_study(study_name="tune-mlp", storage=storage)
    done = counted(study)
    assert len(done) == 3 and all(t.state == TrialState.COMPLETE for t in done)
    assert not [t for t in study.trials if t.state == TrialState.FAIL and not t.user_attrs.get("gbench:surplus")]

    # every trial is an ordinary run in the results store, with its FID and the trial's values
    rows = {row["run_id"]: row for row in results(out)}
    assert set(rows) == {t.user_attrs["run_id"] for t in done}
    for trial in done:
        row = rows[trial.user_attrs["run_id"]]
        assert float(row["fid"]) == pytest.approx(trial.value)
        assert row["fid_extractor"].startswith("lenet-mnist@")
        assert int(row["hidden_dim"]) == trial.params["hidden_dim"] and 16 <= trial.params["hidden_dim"] <= 48
        assert int(row["k"]) == trial.params["k"] and row["beta1"] == "0.5" and row["architecture"] == "mlp"
        assert row["study"] == "tune-mlp" and int(row["trial"]) == trial.number

    table = list(csv.DictReader(open(out / "trials.csv")))
    assert [r["number"] for r in table] == [str(t.number) for t in sorted(done, key=lambda t: t.number)]
    assert {r["state"] for r in table} == {"COMPLETE"}

    # the best trial as a ready-to-paste `gbench run` line that reproduces it
    best = min(done, key=lambda t: t.value)
    line = next(l for l in second.stdout.splitlines() if l.startswith("gbench run "))
    words = shlex.split(line)
    assert (
        f"hidden_dim={best.params['hidden_dim']}" in words and f"k={best.params['k']}" in words and "beta1=0.5" in words
    )
    rerun = run_cli(*words[1:], "--out", str(tmp_path / "rerun"), "--eval-samples", "200")
    assert rerun.returncode == 0, rerun.stderr
    [again] = results(tmp_path / "rerun")
    assert float(again["fid"]) == pytest.approx(best.value, rel=1e-6)


def test_the_printed_run_line_alone_reproduces_the_best_trial(tmp_path):
    """Every option that decides the result travels in the line: pasted as printed, it gives the best trial's very
    FID."""
    out = tmp_path / "runs"
    # Warm the real-split statistics cache first: computing them consumes torch's global RNG (a DataLoader draws a
    # seed), so a run whose first mid-training evaluation fills a cold cache trains on differently (reported to #11.5).
    warm = run_cli(
        "run", "mlp", "--steps", "1", "--train-limit", "1000", "--eval-samples", "10", "--out", str(tmp_path / "warm")
    )
    assert warm.returncode == 0, warm.stderr
    options = [
        "--steps",
        "30",
        "--train-limit",
        "1000",
        "--eval-samples",
        "300",
        "--eval-every",
        "15",
        "--batch-size",
        "50",
        "--seeds",
        "3",
        "--log-every",
        "10",
    ]
    result = run_cli("tune", "--trials", "2", "--pruner", "none", *options, *SPACE, "--out", str(out))
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="tune-mlp", storage=f"sqlite:///{out / 'tune.db'}")
    best = min(counted(study), key=lambda t: t.value)
    line = next(l for l in result.stdout.splitlines() if l.startswith("gbench run "))
    words = shlex.split(line)
    for option, value in (
        ("--steps", "30"),
        ("--train-limit", "1000"),
        ("--eval-samples", "300"),
        ("--eval-every", "15"),
        ("--seeds", "3"),
    ):
        assert words[words.index(option) + 1] == value, line
    assert "batch_size=50" in words and "beta1=0.5" in words, line

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    rerun = run_cli(*words[1:], cwd=fresh)  # exactly as printed, from another folder: into its ./runs
    assert rerun.returncode == 0, rerun.stderr
    [again] = results(fresh / "runs")
    assert int(again["seed"]) == 3 and int(again["batch_size"]) == 50 and int(again["steps"]) == 30
    assert float(again["fid"]) == best.value, (line, results(out))  # same seed, same device: identical


def test_a_repeated_point_reuses_the_earlier_run_instead_of_training_again(tmp_path):
    """Two points in the space (k=1 or 2), four trials: the repeats take the earlier run's values, untrained."""
    out = tmp_path / "runs"
    fixed = [
        "--space",
        "architecture=mlp",
        "--space",
        "k=1,2",
        "--set",
        "hidden_dim=16",
        "--set",
        "latent_dim=8",
        "--set",
        "beta1=0.5",
        "--set",
        "lr=0.0002",
    ]
    result = run_cli("tune", "--trials", "4", "--pruner", "none", *SMALL, *fixed, "--out", str(out))
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="tune-mlp", storage=f"sqlite:///{out / 'tune.db'}")
    trials = counted(study)
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    trained = [t for t in trials if "same_as" not in t.user_attrs]
    reused = [t for t in trials if "same_as" in t.user_attrs]
    assert len(trained) == len({t.params["k"] for t in trials}) and len(reused) == 4 - len(trained) >= 2
    by_number = {t.number: t for t in trials}
    for trial in reused:
        original = by_number[trial.user_attrs["same_as"]]
        assert original.number < trial.number and "same_as" not in original.user_attrs
        assert trial.params == original.params and trial.value == original.value
        assert trial.user_attrs["run_id"] == original.user_attrs["run_id"] and trial.user_attrs["wall_time"] == 0.0
    # only the trained trials are runs in the store; trials.csv says which trial each repeat reused
    assert sorted(row["run_id"] for row in results(out)) == sorted(t.user_attrs["run_id"] for t in trained)
    table = {row["number"]: row for row in csv.DictReader(open(out / "trials.csv"))}
    assert {table[str(t.number)]["same_as"] for t in reused} == {str(t.user_attrs["same_as"]) for t in reused}
    assert "not trained again" in result.stderr
    assert result.stderr.endswith("\n")  # off a terminal rich ends the live table's last frame without one

    # a different training length is a different run: nothing is reused across it
    longer = run_cli(
        "tune", "--trials", "5", "--pruner", "none", *SMALL[:1], "25", *SMALL[2:], *fixed, "--out", str(out)
    )
    assert longer.returncode == 0, longer.stderr
    study = optuna.load_study(study_name="tune-mlp", storage=f"sqlite:///{out / 'tune.db'}")
    [fifth] = [t for t in counted(study) if t.number == 4]
    assert "same_as" not in fifth.user_attrs and fifth.user_attrs["steps"] == 25


def study_with_two_good_trials(out: Path, rung_attrs: bool = False) -> str:
    """A study whose two complete trials reached FID 1.0 and 1.1 by step 10 (and 20); its storage URL."""
    out.mkdir()
    storage = f"sqlite:///{out / 'tune.db'}"
    study = optuna.create_study(study_name="tune-mlp", storage=storage, direction="minimize")
    study.set_user_attr("gbench:kind", "tune")
    study.set_user_attr("gbench:ready", True)
    for value in (1.0, 1.1):
        # Hyperband keeps each trial's value at a rung in a system attribute, as it would have recorded it.
        system_attrs = {"completed_rung_0": value} if rung_attrs else {}
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.COMPLETE,
                value=value,
                intermediate_values={10: value, 20: value},
                system_attrs=system_attrs,
            )
        )
    return storage


def test_median_pruner_prunes_a_clearly_worse_trial(tmp_path):
    """Two earlier trials reached FID 1.0 by step 10; the next real trial (FID ~100 at step 10) is pruned there."""
    out = tmp_path / "runs"
    storage = study_with_two_good_trials(out)
    result = run_cli(
        "tune",
        "--trials",
        "3",
        "--pruner",
        "median",
        "--pruner-startup",
        "2",
        "--eval-every",
        "10",
        *SMALL,
        *SPACE,
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="tune-mlp", storage=storage)
    [trial] = [t for t in study.trials if t.number == 2]
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["pruned_step"] == 10 and list(trial.intermediate_values) == [10]
    assert trial.intermediate_values[10] > 10  # a real FID after 10 steps, far above the median of 1.0..1.1
    assert len(counted(study)) == 3

    # the pruned trial is still a run in the store, marked pruned at its step; the tables say so
    [row] = results(out)
    assert row["run_id"] == trial.user_attrs["run_id"] and row["status"] == "pruned" and row["steps"] == "10"
    assert float(row["fid"]) == pytest.approx(trial.intermediate_values[10])
    [line] = [r for r in csv.DictReader(open(out / "trials.csv")) if r["number"] == "2"]
    assert line["state"] == "PRUNED" and line["pruned_step"] == "10"
    assert "pruned@10" in result.stderr


def test_seeds_train_each_trial_as_one_population_scored_by_the_mean_fid(tmp_path):
    out = tmp_path / "runs"
    result = run_cli("tune", "--trials", "2", "--pruner", "none", "--seeds", "0,1,2", *SMALL, *SPACE, "--out", str(out))
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="tune-mlp", storage=f"sqlite:///{out / 'tune.db'}")
    rows = {row["run_id"]: row for row in results(out)}
    for trial in counted(study):
        members = [rows[f"tune-mlp-t{trial.number:04d}-s{seed}"] for seed in (0, 1, 2)]
        assert [m["seed"] for m in members] == ["0", "1", "2"] and {m["population"] for m in members} == {"3"}
        # the objective: the mean over seeds
        assert trial.value == pytest.approx(sum(float(m["fid"]) for m in members) / 3)
        assert trial.user_attrs["fid_seeds"] == pytest.approx([float(m["fid"]) for m in members])
    assert len(rows) == 6 and "--seeds 0,1,2" in result.stdout  # the printed run line trains the same seeds


def test_with_seeds_the_pruner_sees_the_mean_of_the_members(tmp_path):
    out = tmp_path / "runs"
    storage = study_with_two_good_trials(out)
    result = run_cli(
        "tune",
        "--trials",
        "3",
        "--pruner",
        "median",
        "--pruner-startup",
        "2",
        "--eval-every",
        "10",
        "--seeds",
        "0,1",
        *SMALL,
        *SPACE,
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="tune-mlp", storage=storage)
    [trial] = [t for t in study.trials if t.number == 2]
    assert trial.state == TrialState.PRUNED and list(trial.intermediate_values) == [10]
    members = sorted(results(out), key=lambda row: row["seed"])
    assert [(m["seed"], m["status"], m["steps"]) for m in members] == [("0", "pruned", "10"), ("1", "pruned", "10")]
    assert trial.intermediate_values[10] == pytest.approx((float(members[0]["fid"]) + float(members[1]["fid"])) / 2)


def test_no_trial_is_pruned_before_the_warmup_step(tmp_path):
    """The trial the median pruner stops at step 10 (test above) runs on when --pruner-warmup 20 forbids that."""
    out = tmp_path / "runs"
    storage = study_with_two_good_trials(out)
    result = run_cli(
        "tune",
        "--trials",
        "3",
        "--pruner",
        "median",
        "--pruner-startup",
        "2",
        "--pruner-warmup",
        "20",
        "--eval-every",
        "10",
        *SMALL,
        *SPACE,
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    [trial] = [t for t in optuna.load_study(study_name="tune-mlp", storage=storage).trials if t.number == 2]
    assert trial.state == TrialState.COMPLETE and list(trial.intermediate_values) == [10, 20]
    assert trial.intermediate_values[10] > 10  # as bad as the pruned one: only the warmup let it run


def test_hyperband_prunes_a_clearly_worse_trial_at_its_first_rung(tmp_path):
    """Trials of 20 steps and a first rung at 10 (--eval-every) make one bracket; FID ~100 is not in its top third."""
    out = tmp_path / "runs"
    storage = study_with_two_good_trials(out, rung_attrs=True)
    result = run_cli(
        "tune", "--trials", "3", "--pruner", "hyperband", "--eval-every", "10", *SMALL, *SPACE, "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    [trial] = [t for t in optuna.load_study(study_name="tune-mlp", storage=storage).trials if t.number == 2]
    assert trial.state == TrialState.PRUNED and trial.user_attrs["pruned_step"] == 10
    assert trial.system_attrs["completed_rung_0"] == trial.intermediate_values[10] > 10
    assert "pruned@10" in result.stderr


def test_two_objectives_print_a_pareto_front_without_pruning(tmp_path):
    result = run_cli("tune", "--trials", "1", "--objective", "fid,wall_time", *SMALL, *SPACE, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "note: Optuna cannot prune multi-objective trials; running without pruning" in result.stderr.splitlines()
    assert "Pareto front" in result.stdout
    study = optuna.load_study(study_name="tune-mlp", storage=f"sqlite:///{tmp_path / 'tune.db'}")
    assert len(study.directions) == 2 and [t.state for t in study.trials] == [TrialState.COMPLETE]
    assert all(t.values[1] > 0 for t in study.trials)


# ---------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------


def test_ctrl_c_gives_the_running_trial_back_and_resuming_counts_it_once(tmp_path):
    """SIGINT mid-trial: exit 130, the trial FAIL with a WAITING retry at once (no heartbeat wait); the next run trains
    the retry, in the same run folder."""
    out = tmp_path / "runs"
    storage = f"sqlite:///{out / 'tune.db'}"
    long_run = ["--steps", "5000", "--train-limit", "2000", "--eval-samples", "200", "--log-every", "5"]
    tune = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gbench",
            "tune",
            "--trials",
            "1",
            "--pruner",
            "none",
            *long_run,
            *SPACE,
            "--out",
            str(out),
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    running: list = []
    while not running:
        assert tune.poll() is None and time.monotonic() < deadline, tune.communicate()
        time.sleep(0.3)
        try:
            study = optuna.load_study(study_name="tune-mlp", storage=storage)
        except (KeyError, Exception):  # no database file or no study in it yet
            continue
        running = [t for t in study.trials if t.state == TrialState.RUNNING and "run_id" in t.user_attrs]
    time.sleep(0.5)  # mid-training
    tune.send_signal(signal.SIGINT)
    _, stderr = tune.communicate(timeout=120)
    assert tune.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr

    study = optuna.load_study(study_name="tune-mlp", storage=storage)
    [interrupted] = [t for t in study.trials if t.number == running[0].number]
    assert interrupted.state == TrialState.FAIL
    [retry] = [t for t in study.trials if t.state == TrialState.WAITING]
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == interrupted.number
    assert retry.params == interrupted.params and not counted(study)
    assert not results(out)  # nothing finished

    again = run_cli("tune", "--trials", "1", "--pruner", "none", *SMALL, *SPACE, "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert ran_here(again.stdout) == 1 and "(resumed)" in again.stderr
    study = optuna.load_study(study_name="tune-mlp", storage=storage)
    [done] = counted(study)
    assert done.number == retry.number and done.state == TrialState.COMPLETE
    assert done.user_attrs["run_id"] == interrupted.user_attrs["run_id"]
    assert [row["run_id"] for row in results(out)] == [interrupted.user_attrs["run_id"]]


# ---------------------------------------------------------------------------
# Several workers on one PostgreSQL study
# ---------------------------------------------------------------------------


def start_worker(*args: str, host: str, out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GBENCH_WORKER_HOST": host}
    return subprocess.Popen(
        [sys.executable, "-m", "gbench", "tune", *args, "--out", str(out)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.postgres
def test_two_worker_processes_share_one_postgres_study_exactly(postgres_url, tmp_path):
    args = ["--storage", postgres_url, "--study-name", "shared", "--trials", "4", "--pruner", "none", *SMALL, *SPACE]
    workers = [start_worker(*args, host="vm", out=tmp_path / f"w{i}") for i in range(2)]  # same host: live pids
    outputs = [worker.communicate(timeout=400) for worker in workers]
    for worker, (_stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr

    study = optuna.load_study(study_name="shared", storage=postgres_url)
    done = counted(study)
    assert len(done) == 4 and all(t.state == TrialState.COMPLETE for t in done)
    # no trial lost or run twice: the runs both workers trained are exactly the counted trials
    trained = [row["run_id"] for i in range(2) for row in results(tmp_path / f"w{i}")]
    assert sorted(trained) == sorted(t.user_attrs["run_id"] for t in done)
    assert sum(ran_here(stdout) for stdout, _ in outputs) == 4
    # any claim beyond the target stood down before it trained anything
    for trial in study.trials:
        if trial.state == TrialState.FAIL:
            assert trial.user_attrs.get("gbench:surplus") and "run_id" not in trial.user_attrs


@pytest.mark.postgres
def test_a_killed_workers_trial_is_retried_by_another_and_counted_once(postgres_url, tmp_path):
    args = [
        "--storage",
        postgres_url,
        "--study-name",
        "kill",
        "--trials",
        "2",
        "--pruner",
        "none",
        "--heartbeat",
        "1",
        "--steps",
        "600",
        "--train-limit",
        "2000",
        "--eval-samples",
        "200",
        *SPACE,
    ]
    victim = start_worker(*args, host="machine-a", out=tmp_path / "a")
    deadline = time.monotonic() + 120
    running = []
    while not running:
        assert victim.poll() is None and time.monotonic() < deadline, victim.communicate()
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name="kill", storage=postgres_url)
        except KeyError:
            continue
        running = [t for t in study.trials if t.state == TrialState.RUNNING and "run_id" in t.user_attrs]
    time.sleep(1.0)  # mid-training
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    killed = running[0]

    # another machine's worker: it cannot see the dead pid, only the silent heartbeat
    survivor = start_worker(*args, host="machine-b", out=tmp_path / "b")
    stdout, stderr = survivor.communicate(timeout=400)
    assert survivor.returncode == 0, stderr
    study = optuna.load_study(study_name="kill", storage=postgres_url)
    states = {t.number: t.state for t in study.trials}
    assert states[killed.number] == TrialState.FAIL
    done = counted(study)
    assert len(done) == 2 and ran_here(stdout) == 2
    [retry] = [t for t in done if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == killed.number]
    assert retry.params == killed.params and retry.user_attrs["run_id"] == killed.user_attrs["run_id"]
    assert not results(tmp_path / "a")  # the victim finished nothing
    assert sorted(r["run_id"] for r in results(tmp_path / "b")) == sorted(t.user_attrs["run_id"] for t in done)


# ---------------------------------------------------------------------------
# Bad input: one line, exit code 2, before anything trains
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--space", "hiden_dim=16:32"], ["'hiden_dim'", "did you mean 'hidden_dim'"]),
        (["--space", "hidden_dim=64:32"], ["hidden_dim=", "empty or inverted range"]),
        (["--space", "lr=0.001:0.001"], ["lr=", "empty or inverted range"]),
        (["--space", "hidden_dim="], ["hidden_dim=", "empty value"]),
        (["--space", "architecture=mlp,nope"], ["unknown architecture 'nope'"]),
        (["--space", "lr=-1:1:log"], ["lr=-1", "outside its range"]),
        (["--trials", "0"], ["--trials 0", "at least 1"]),
        (["--storage", "not-a-url"], ["'not-a-url'", "not a database URL"]),
        (["--storage", "postgresql://postgres@127.0.0.1:notaport/db"], ["not a valid database URL"]),
        (["--storage", "nosuchdb://x/y"], ["unknown database type 'nosuchdb'"]),
        (
            ["--storage", "postgresql://postgres@127.0.0.1:1/db"],
            ["cannot reach storage 'postgresql://postgres@127.0.0.1:1/db'"],
        ),
        (["--objective", "fid,speed"], ["'speed'", "fid, kid, wall_time"]),
        (["--eval-samples", "0"], ["--eval-samples", "needs FID"]),
        (["--devices", "cuda:7"], ["cuda:7"]),
        (["--seeds", "0,1,0"], ["--seeds '0,1,0' repeats seed 0"]),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, args, needles):
    """In-process through gbench.cli.main (the same code path as the command, without a new interpreter each time)."""
    from gbench.cli import main

    started = time.monotonic()
    code = main(["tune", "--trials", "1", *SMALL, *args, "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert_one_line_error(subprocess.CompletedProcess([], code, captured.out, captured.err), *needles)
    assert time.monotonic() - started < 30  # an unreachable server fails fast
    assert not results(tmp_path)


def test_bad_input_through_the_real_command(tmp_path):
    result = run_cli("tune", "--space", "hidden_dim=64:32", *SMALL, "--out", str(tmp_path))
    assert_one_line_error(result, "hidden_dim='64:32'", "empty or inverted range")
    result = run_cli("tune", "--storage", "postgresql://postgres@127.0.0.1:1/db", *SMALL, "--out", str(tmp_path))
    assert_one_line_error(result, "cannot reach storage")
    result = run_cli("tune", "--pruner-warmup=-600", *SMALL, "--out", str(tmp_path))  # argparse's own check
    assert_one_line_error(result, "--pruner-warmup '-600' must be at least 0")


def test_each_worker_thread_trains_on_its_own_device_with_devices(registry, tmp_path):
    """--devices cuda:0,cuda:1 --n-jobs 2: worker i builds its trials' configs on devices[i]."""
    import threading

    from gbench.config import RunConfig
    from gbench.studies.tune.searchspace import build_space
    from gbench.studies.tune.tune import Tuner, run_key

    space = build_space(registry, [("mlp", "non-saturating", "k-steps")], {}, None)
    tuner = Tuner(
        registry,
        RunConfig(architecture="mlp", device="cpu"),
        space,
        "s",
        ["fid"],
        tmp_path,
        False,
        devices=["cuda:0", "cuda:1"],
    )
    seen = {}

    def worker(index: int) -> None:
        tuner.worker.index = index
        seen[index] = tuner.config(("mlp", "non-saturating", "k-steps"), {}).device

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {0: "cuda:0", 1: "cuda:1", 2: "cuda:0"}
    same = [tuner.config(("mlp", "non-saturating", "k-steps"), {}) for _ in range(2)]
    same[1] = dataclasses.replace(same[1], device="cuda:1")
    assert run_key(same[0]) == run_key(same[1])  # the same run on another GPU is a repeat, not a new point
    assert (
        Tuner(registry, RunConfig(architecture="mlp", device="cpu"), space, "s", ["fid"], tmp_path, False)
        .config(("mlp", "non-saturating", "k-steps"), {})
        .device
        == "cpu"
    )
    from gbench.errors import GbenchError
    from gbench.studies.tune.tune import TuneOptions

    with pytest.raises(GbenchError, match="--devices names 2 devices for 1 worker.*--n-jobs 2"):
        TuneOptions(devices=["cuda:0", "cuda:1"]).check(RunConfig(architecture="mlp"))
