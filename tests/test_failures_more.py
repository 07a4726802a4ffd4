"""More failures, each through the real ``gbench`` CLI: one line, exit 2, no traceback, nothing lost.

A plugin that raises mid-training (its forward, its loss, its schedule), solo
and as a population; every option with a bad value, found before any folder
is written; and the other tracebacks of issue #32 point 3 (a seed torch cannot
take, a suite variant name too long for a folder, a results.csv that is a
folder, ``export -o`` a folder or an unwritable place, PostgreSQL stopping
mid-tune). Each test backs a line of docs/failures.md.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, _postgres_bin, assert_one_line_error, run_cli

#: One plugin file with a part of each kind. BOOM_PART picks the part that raises
#: and BOOM_STEP the step it raises at (0: never). The schedule, asked first in
#: every step, hears the step (the runs use boom-schedule) and tells the others.
BOOM_PLUGIN = """
import math, os
import torch
from torch import nn
from gbench import hookimpl
from gbench.plugins.registry import Architecture, Dataset, Loss, LossTerms, Nets, Schedule

PART, FAIL_AT = os.environ.get("BOOM_PART", ""), int(os.environ.get("BOOM_STEP", "0"))
step_in_progress = 0  # set by the schedule, which is asked first in every step


class Generator(nn.Module):
    def __init__(self, image_shape):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, math.prod(image_shape)), nn.Tanh(), nn.Unflatten(1, tuple(image_shape)))

    def forward(self, z):
        if PART == "architecture" and self.training and FAIL_AT and step_in_progress == FAIL_AT:
            raise RuntimeError("generator exploded")
        return self.net(z)


def build(params, image_shape):
    discriminator = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(image_shape), 1))
    return Nets(generator=Generator(image_shape), discriminator=discriminator, latent_dim=8)


class Sides:
    def discriminator_loss(self, D, real, fake):
        r, f = D(real).reshape(-1), D(fake).reshape(-1)
        loss = nn.functional.softplus(-r).mean() + nn.functional.softplus(f).mean()
        return LossTerms(loss, torch.sigmoid(r).mean(), torch.sigmoid(f).mean())

    def generator_loss(self, D, fake):
        if PART == "loss" and FAIL_AT and step_in_progress == FAIL_AT:
            raise ValueError("loss went sideways")
        f = D(fake).reshape(-1)
        return LossTerms(nn.functional.softplus(-f).mean(), None, torch.sigmoid(f).mean())


class Steps:
    def learning_rates(self, lr):
        return lr, lr

    def discriminator_steps(self, step, last):
        global step_in_progress
        step_in_progress = step + 1
        if PART == "schedule" and step + 1 == FAIL_AT:
            raise KeyError("no schedule for this step")
        return 1


def load_rgb(split, roots):
    generator = torch.Generator().manual_seed(0 if split == "train" else 1)
    images = torch.randint(0, 256, (200, 3, 8, 8), dtype=torch.uint8, generator=generator)
    return images, torch.zeros(200, dtype=torch.int64)


@hookimpl
def gbench_register_architectures(register):
    register(Architecture("boom-net", build))


@hookimpl
def gbench_register_losses(register):
    register(Loss("boom-loss", lambda params: Sides()))


@hookimpl
def gbench_register_schedules(register):
    register(Schedule("boom-schedule", lambda params: Steps()))


@hookimpl
def gbench_register_datasets(register):
    register(Dataset("tiny-rgb", load_rgb, image_shape=(3, 8, 8)))
"""

TRAIN = ("--steps", "8", "--train-limit", "100", "--batch-size", "20", "--eval-samples", "0", "--checkpoint-every", "2")
HOOKS = {
    "architecture": "gbench_register_architectures",
    "loss": "gbench_register_losses",
    "schedule": "gbench_register_schedules",
}
PART_OPTIONS = {"architecture": [], "loss": ["--loss", "boom-loss"], "schedule": []}
NAMES = {"architecture": "boom-net", "loss": "boom-loss", "schedule": "boom-schedule"}


@pytest.fixture
def boom(tmp_path) -> Path:
    path = tmp_path / "boom.py"
    path.write_text(BOOM_PLUGIN)
    return path


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def results(out: Path) -> list[dict]:
    return list(csv.DictReader(open(out / "results.csv"))) if (out / "results.csv").exists() else []


# --- a plugin that raises mid-training ----------------------------------------


@pytest.mark.parametrize("part", ["architecture", "loss", "schedule"])
@pytest.mark.parametrize("seeds", ["0", "0,1"], ids=["solo", "population"])
def test_a_plugin_raising_mid_training_is_one_line_the_run_is_failed_and_the_same_command_retries_it(
    boom, tmp_path, part, seeds
):
    out = tmp_path / "out"
    args = [
        "run",
        str(boom),
        *TRAIN,
        *PART_OPTIONS[part],
        "--schedule",
        "boom-schedule",
        "--seeds",
        seeds,
        "--population",
        "on",
        "--out",
        str(out),
    ]
    failed = run_cli(*args, env={"BOOM_PART": part, "BOOM_STEP": "4"})
    assert_one_line_error(
        failed,
        f"plugin {str(boom)!r}",
        f"hook {HOOKS[part]}",
        f"{part} {NAMES[part]!r}",
        "at step 4/8 of run",
        "marked failed",
        progress_first=True,
    )
    line = failed.stderr.strip()
    assert "trained one by one" not in failed.stdout + failed.stderr  # the population trained as one
    folders = sorted(path for path in out.iterdir() if path.is_dir())
    assert len(folders) == len(seeds.split(","))
    for folder in folders:  # every member failed together: its last checkpoint (step 2) kept, no summary, no row
        marker = json.loads((folder / "interrupted.json").read_text())
        assert marker["status"] == "failed" and marker["step"] == 2 and marker["error"] == line.split("error: ", 1)[1]
        assert (folder / "checkpoint.pt").is_file() and not (folder / "summary.json").exists()
    assert results(out) == []
    shown = run_cli("show", str(out))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count(": failed (last checkpoint at step 2/8)") + shown.stderr.count(
        ": failed (last checkpoint at step 2/8)"
    ) == len(folders)

    # the plugin fixed: the same command retries in the same folders
    again = run_cli(*args, env={"BOOM_PART": part, "BOOM_STEP": "0"})
    assert again.returncode == 0, again.stderr
    assert sorted(path for path in out.iterdir() if path.is_dir()) == folders
    assert sorted(row["run_id"] for row in results(out)) == [folder.name for folder in folders]
    assert all(row["status"] == "ok" and row["steps"] == "8" for row in results(out))
    assert (again.stdout + again.stderr).count("from step 2/8") == len(folders)
    assert not any((folder / "interrupted.json").exists() or (folder / "checkpoint.pt").exists() for folder in folders)


# --- every option checked before any work ---------------------------------------

BAD_OPTIONS = [
    (["--eval-samples", "1"], "--eval-samples 1"),
    (["--eval-samples", "3"], "--eval-samples 3"),
    (["--eval-samples", "-1"], "--eval-samples"),
    (["--eval-samples", "x"], "--eval-samples"),
    (["--eval-every", "0"], "--eval-every"),
    (["--log-every", "0"], "--log-every"),
    (["--checkpoint-every", "-1"], "--checkpoint-every"),
    (["--batch-size", "500"], "--batch-size 500"),
    (["--batch-size", "0"], "--batch-size"),
    (["--train-limit", "10"], "--batch-size 20 is larger than the 10 training images of 'mnist' (--train-limit 10)"),
    (["--threads", "0"], "--threads"),
    (["--population-size", "0"], "--population-size"),
    (["--train-limit", "0"], "--train-limit"),
    (["--steps", "0"], "--steps"),
    (["--epochs", "0"], "--epochs"),
    (["--seeds", "99999999999999999999"], "--seeds"),
    (["--seeds", "0-99999999999999999999"], "--seeds"),
    (["--seeds", "-3"], "--seeds"),
    (["--eval-samples", "100", "--fid-extractor", "nope"], "--fid-extractor nope"),
    (
        ["--eval-samples", "100", "--fid-extractor", "lenet-mnist", "--dataset", "tiny-rgb"],
        "--fid-extractor lenet-mnist",
    ),
    (["--eval-samples", "100", "--dataset", "tiny-rgb", "--fid-extractor", "lenet"], "--fid-extractor lenet"),
    (
        ["--eval-samples", "100", "--fid-extractor", "inception", "--inception-weights", "/no/such/weights.pth"],
        "--inception-weights",
    ),
    (["--dataset", "nope"], "dataset 'nope'"),
    (["--device", "tpu"], "--device"),
    (["--population", "sometimes"], "--population"),
    (["--precision", "fp8"], "--precision"),
    # a loss that reads class labels on an unconditional architecture (issue #36)
    (["--loss", "acgan"], "--loss acgan needs class labels"),
    (["--ema", "1.5"], "--ema"),
]


@pytest.mark.parametrize("options,named", BAD_OPTIONS, ids=[" ".join(options) for options, _ in BAD_OPTIONS])
def test_every_bad_option_is_one_line_naming_it_before_anything_is_written(boom, tmp_path, options, named):
    out = tmp_path / "out"
    base = ["--steps", "2", "--train-limit", "200", "--batch-size", "20", "--eval-samples", "0"]
    result = run_cli("run", str(boom), *base, *options, "--out", str(out))
    assert_one_line_error(result, named)
    assert not out.exists()  # not even an empty folder: OUT is made once every run passed its checks


# --- the other tracebacks -----------------------------------------------------------


def test_a_suite_variant_name_too_long_for_a_folder_is_one_line_before_any_run(tmp_path):
    name = "v" * 300
    suite = tmp_path / "suite.toml"
    suite.write_text(
        f'[suite]\nname = "long"\ntitle = "t"\nquestion = "q"\ntarget = "plugins.mlp"\nseeds = [0]\n\n'
        f'[base]\narchitecture = "mlp"\nsteps = 2\ntrain_limit = 200\neval_samples = 0\n\n'
        f'[[variants]]\nname = "short"\n\n[[variants]]\nname = "{name}"\n'
    )
    out = tmp_path / "out"
    result = run_cli("sweep", str(suite), "--out", str(out), "--no-report")
    assert_one_line_error(result, "v" * 40, "300 characters", "at most 188")
    assert files_under(out) == []


def test_a_results_csv_that_is_a_folder_is_one_line_for_show_and_export(tmp_path):
    (tmp_path / "results.csv").mkdir()
    for command in (["show", str(tmp_path)], ["export", str(tmp_path)], ["export", str(tmp_path), "--format", "json"]):
        assert_one_line_error(run_cli(*command), str(tmp_path / "results.csv"), "is not a file")


@pytest.fixture(scope="module")
def finished_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    result = run_cli(
        "run",
        "plugins.mlp",
        "--architecture",
        "mlp",
        "--steps",
        "2",
        "--train-limit",
        "200",
        "--eval-samples",
        "0",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    return out


def test_export_to_an_existing_folder_is_one_line_and_writes_nothing(finished_out, tmp_path):
    target = tmp_path / "exports"
    target.mkdir()
    assert_one_line_error(run_cli("export", str(finished_out), "-o", str(target)), f"-o {str(target)!r} is a folder")
    assert files_under(target) == []


def test_export_to_an_unwritable_folder_is_one_line(finished_out, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        # root writes anywhere it has permission bits for: /sys refuses new files even to root
        where = Path("/sys") if os.access(locked, os.W_OK) else locked
        result = run_cli("export", str(finished_out), "-o", str(where / "results.csv"))
        assert_one_line_error(result, str(where / "results.csv"), "pick a file in a folder you can write")
        assert not (where / "results.csv").exists()
    finally:
        locked.chmod(0o700)


# --- PostgreSQL stopping mid-tune -----------------------------------------------------

TUNE = [
    "--trials",
    "3",
    "--pruner",
    "none",
    "--steps",
    "150",
    "--train-limit",
    "500",
    "--eval-samples",
    "100",
    "--log-every",
    "10",
    "--checkpoint-every",
    "10",
    "--heartbeat",
    "2",
    "--space",
    "hidden_dim=16:48",
    "--set",
    "latent_dim=8",
]


def _server_control(postgres_url: str) -> tuple[list[str], str, str]:
    """The session server's pg_ctl command prefix, data folder and start options (those conftest started it with)."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        data = str(connection.execute("SHOW data_directory").fetchone()[0])  # type: ignore[index]
        port = str(connection.execute("SHOW port").fetchone()[0])  # type: ignore[index]
    bin_dir = _postgres_bin()
    assert bin_dir is not None
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    options = f"-p {port} -k {Path(data).parent} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off"
    return [*as_postgres, str(bin_dir / "pg_ctl"), "-D", data], options, str(Path(data).parent / "log")


@pytest.mark.postgres
def test_postgres_stopping_mid_tune_is_one_line_and_the_same_command_resumes_with_exact_counts(postgres_url, tmp_path):
    import optuna
    from optuna.trial import TrialState

    pg_ctl, options, log = _server_control(postgres_url)
    out = tmp_path / "out"
    args = [
        sys.executable,
        "-m",
        "gbench",
        "tune",
        "plugins.mlp",
        "--storage",
        postgres_url,
        "--study-name",
        "lost",
        *TUNE,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    tune = subprocess.Popen(
        [*args, "--out", str(out)], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    while not list(out.glob("*/checkpoint.pt")) and time.monotonic() < deadline and tune.poll() is None:
        time.sleep(0.2)  # a trial is training
    assert tune.poll() is None, tune.communicate()
    subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], check=True, capture_output=True, timeout=120)
    try:
        _, stderr = tune.communicate(timeout=240)
    finally:
        subprocess.run([*pg_ctl, "-o", options, "-l", log, "-w", "start"], check=True, capture_output=True, timeout=120)
    assert tune.returncode == 2, stderr
    # the study's opening line (printed while the server was up), then the error's one line; the trial table is gone
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 2 and lines[0].startswith("study 'lost'"), stderr
    assert "Traceback" not in stderr and "terminate called" not in stderr, stderr
    assert (
        lines[1].startswith("gbench tune: error: lost the connection to --storage")
        and "run the same command again" in lines[1]
    ), lines[1]

    again = subprocess.run([*args, "--out", str(out)], env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    study = optuna.load_study(study_name="lost", storage=postgres_url)
    complete = [trial for trial in study.trials if trial.state == TrialState.COMPLETE]
    assert len(complete) == 3
    run_ids = [trial.user_attrs["run_id"] for trial in complete]
    assert len(set(run_ids)) == 3 and sorted(row["run_id"] for row in results(out)) == sorted(run_ids)
