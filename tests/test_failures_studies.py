"""Issue #32 point 4 for ``gbench sweep`` and ``gbench tune``: every bad value is one line naming it, exit 2, and
nothing written (no --out folder, no study database), found before any run or trial starts; and point 3's
PostgreSQL server stopping mid-sweep. Each test backs a line of docs/failures.md.

The bad values are those of ``gbench run``'s test (tests/test_failures_more.py's BAD_OPTIONS): for a sweep each goes
into the suite's [base] as the key the suite file spells (the options a sweep takes on its command line stay there),
for a tune onto its command line. They run in this process through the real CLI entry point (``gbench.cli.main``), as
the command would: a process per value would cost seconds each.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error
from test_failures_more import BAD_OPTIONS, BOOM_PLUGIN, _server_control, results

#: Options ``gbench sweep`` takes on its command line; every other option of a run is a key of the suite file.
SWEEP_FLAGS = ("--seeds", "--device", "--population", "--population-size")
TINY = {"steps": "2", "train_limit": "200", "batch_size": "20", "eval_samples": "0"}


def main(capsys, *argv: str) -> subprocess.CompletedProcess:
    """``gbench ARGV`` through the CLI's entry point in this process: its exit code and what it printed."""
    from gbench.cli import main as cli_main

    capsys.readouterr()
    try:
        code = cli_main(list(argv))
    except SystemExit as exit:  # argparse's own errors
        code = int(exit.code or 0)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(["gbench", *argv], code, captured.out, captured.err)


def toml_value(text: str) -> str:
    return text if re.fullmatch(r"-?\d+", text) else f'"{text}"'


def as_suite_key(needle: str) -> str:
    """A message's option as the suite file spells it: ``--eval-samples 1`` -> ``eval_samples = 1``."""
    return re.sub(r"--([a-z-]+)(?: (\S+))?", lambda m: m[1].replace("-", "_") + (f" = {m[2]}" if m[2] else ""), needle)


ONE_VARIANT = '[[variants]]\nname = "v1"\n'


def write_suite(folder: Path, target: str, base: dict[str, str], variants: str = ONE_VARIANT) -> Path:
    """A suite of ``target`` with ``base`` as its [base] table and ``variants`` ([[variants]] or a [grid]) after it."""
    suite = folder / "suite.toml"
    lines = "".join(f"{key} = {toml_value(value)}\n" for key, value in base.items())
    suite.write_text(
        f'[suite]\nname = "bad"\ntitle = "t"\nquestion = "q"\ntarget = "{target}"\nseeds = [0]\n\n'
        f"[base]\n{lines}\n{variants}"
    )
    return suite


@pytest.fixture
def boom(tmp_path) -> Path:
    path = tmp_path / "boom.py"
    path.write_text(BOOM_PLUGIN)
    return path


IDS = [" ".join(options) for options, _ in BAD_OPTIONS]


@pytest.mark.parametrize("options,named", BAD_OPTIONS, ids=IDS)
def test_every_bad_value_in_a_suite_is_one_line_naming_the_variant_and_nothing_is_written(
    capsys, boom, tmp_path, options, named
):
    pairs = dict(zip(options[::2], options[1::2]))
    in_file = {flag[2:].replace("-", "_"): value for flag, value in pairs.items() if flag not in SWEEP_FLAGS}
    on_line = [part for flag, value in pairs.items() if flag in SWEEP_FLAGS for part in (flag, value)]
    suite = write_suite(tmp_path, str(boom), {"architecture": "boom-net", **TINY, **in_file})
    out = tmp_path / "out"
    result = main(capsys, "sweep", str(suite), *on_line, "--out", str(out), "--no-report")
    if in_file:
        assert_one_line_error(result, "variant 'v1'", as_suite_key(named))
    else:
        assert_one_line_error(result, named)
    assert not out.exists()  # no folder, no sweep.db, no run


@pytest.mark.parametrize("options,named", BAD_OPTIONS, ids=IDS)
def test_every_bad_value_given_to_tune_is_one_line_naming_it_and_nothing_is_written(
    capsys, boom, tmp_path, options, named
):
    out = tmp_path / "out"
    tiny = [part for key, value in TINY.items() for part in (f"--{key.replace('_', '-')}", value)]
    search = ["--trials", "1", "--objective", "wall_time"]
    result = main(capsys, "tune", str(boom), *search, *tiny, *options, "--out", str(out))
    assert_one_line_error(result, named)
    assert not out.exists()  # no folder, no tune.db, no trial


PASSWORD = "s3cret-pw"
MLP = {"architecture": "mlp", "steps": "2", "train_limit": "200", "eval_samples": "0"}

#: Bad inputs of issue #32's last round, for a sweep: name -> (its variants or grid, its command line, what the one
#: line names).
SWEEP_INPUTS = {
    "a variant sets an unknown option": (
        '[[variants]]\nname = "v1"\nbogus_option = 3\n',
        [],
        ["unknown key 'bogus_option'", "variant 'v1'"],
    ),
    "a grid value of the wrong type": (
        '[grid]\nhidden_dim = [16, "wide"]\n',
        [],
        ["variant 'hidden_dim=wide'", "hidden_dim='wide' is not a valid int"],
    ),
    "a grid cell's batch larger than the data": (
        "[grid]\nbatch_size = [16, 500]\n",
        [],
        ["variant 'batch_size=500'", "batch_size = 500 is larger than the 200 training images"],
    ),
    "--jobs 0": (ONE_VARIANT, ["--jobs", "0"], ["--jobs '0' must be at least 1"]),
    "--storage with a bad scheme": (ONE_VARIANT, ["--storage", "foo://x/y"], ["unknown database type 'foo'"]),
    "--storage whose password holds an @": (
        ONE_VARIANT,
        ["--storage", f"postgresql://u:{PASSWORD}@x@127.0.0.1:1/db"],
        ["holds an '@'", "%40"],
    ),
    "--storage unreachable, password masked": (
        ONE_VARIANT,
        ["--storage", f"postgresql://u:{PASSWORD}@127.0.0.1:1/db"],
        ["cannot reach storage 'postgresql://u:***@127.0.0.1:1/db'"],
    ),
}
#: The same for a tune: name -> (its command line, what the one line names).
TUNE_INPUTS = {
    "--trials 0": (["--trials", "0"], ["--trials 0 must be at least 1"]),
    "--n-jobs 0": (["--n-jobs", "0"], ["--n-jobs '0' must be at least 1"]),
    "a searched batch size range larger than the data": (
        ["--space", "batch_size=16:500"],
        ["--space batch_size=16:500:log reaches 500", "200 training images"],
    ),
    "a searched batch size list larger than the data": (
        ["--space", "batch_size=10,300"],
        ["--space batch_size=10,300 reaches 300"],
    ),
    "--storage with a bad scheme": (["--storage", "foo://x/y"], ["unknown database type 'foo'"]),
    "--storage whose password holds an @": (
        ["--storage", f"postgresql://u:{PASSWORD}@x@127.0.0.1:1/db"],
        ["holds an '@'"],
    ),
    "--storage unreachable, password masked": (
        ["--storage", f"postgresql://u:{PASSWORD}@127.0.0.1:1/db"],
        ["'postgresql://u:***@127.0.0.1:1/db'"],
    ),
}


@pytest.mark.parametrize("case", sorted(SWEEP_INPUTS))
def test_more_bad_sweep_inputs_are_one_line_and_write_nothing(capsys, tmp_path, case):
    variants, options, needles = SWEEP_INPUTS[case]
    suite = write_suite(tmp_path, "plugins.mlp", MLP, variants)
    out = tmp_path / "out"
    result = main(capsys, "sweep", str(suite), *options, "--out", str(out), "--no-report")
    assert_one_line_error(result, *needles)
    assert PASSWORD not in result.stderr + result.stdout
    assert not out.exists()


@pytest.mark.parametrize("case", sorted(TUNE_INPUTS))
def test_more_bad_tune_inputs_are_one_line_and_write_nothing(capsys, tmp_path, case):
    options, needles = TUNE_INPUTS[case]
    out = tmp_path / "out"
    tiny = ["--steps", "2", "--train-limit", "200", "--eval-samples", "0", "--objective", "wall_time"]
    result = main(capsys, "tune", "plugins.mlp", "--trials", "1", *tiny, *options, "--out", str(out))
    assert_one_line_error(result, *needles)
    assert PASSWORD not in result.stderr + result.stdout
    assert not out.exists()


def test_an_architecture_that_cannot_take_the_data_is_one_line_for_sweep_and_tune_before_anything_is_written(
    capsys, boom, tmp_path
):
    """dcgan serves 28, 32 and 64 px; the boom plugin's tiny-rgb is 3x8x8: the nets are built before any run, as
    `gbench run` builds them (training/validate.validate_configs)."""
    base = {"architecture": "dcgan", "dataset": "tiny-rgb", "steps": "2", "eval_samples": "0"}
    suite = write_suite(tmp_path, "plugins.dcgan", base)
    out = tmp_path / "out"
    result = main(capsys, "sweep", str(suite), "--plugin", str(boom), "--out", str(out), "--no-report")
    assert_one_line_error(result, "variant 'v1'", "architecture 'dcgan'", "not 3x8x8")
    assert not out.exists()
    tiny = ["--dataset", "tiny-rgb", "--steps", "2", "--eval-samples", "0", "--objective", "wall_time"]
    result = main(capsys, "tune", "plugins.dcgan", "--plugin", str(boom), "--trials", "1", *tiny, "--out", str(out))
    assert_one_line_error(result, "architecture 'dcgan'", "not 3x8x8")
    assert not out.exists()


def test_clean_given_a_file_names_it_as_a_file_not_a_missing_folder(capsys, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# not runs\n")
    assert_one_line_error(main(capsys, "clean", str(readme)), str(readme), "is a file, not a results folder")
    assert readme.read_text() == "# not runs\n"
    assert_one_line_error(main(capsys, "clean", str(tmp_path / "nothing")), "does not exist")


# --- PostgreSQL stopping mid-sweep ------------------------------------------------------

SWEEP_RUNS = {
    **{"architecture": "mlp", "steps": "150", "train_limit": "500", "eval_samples": "100"},
    **{"log_every": "10", "checkpoint_every": "10"},
}
THREE_VARIANTS = "".join(f'[[variants]]\nname = "h{w}"\nparams = {{ hidden_dim = {w} }}\n\n' for w in (16, 24, 32))


@pytest.mark.postgres
def test_postgres_stopping_mid_sweep_is_one_line_and_the_same_command_finishes_with_exact_counts(
    postgres_url, tmp_path
):
    import optuna
    from optuna.trial import TrialState

    pg_ctl, options, log = _server_control(postgres_url)
    suite = write_suite(tmp_path, "plugins.mlp", SWEEP_RUNS, THREE_VARIANTS)
    out = tmp_path / "out"
    storage = ["--storage", postgres_url, "--study-name", "lost", "--heartbeat", "2"]
    command = [sys.executable, "-m", "gbench", "sweep", str(suite), *storage, "--no-report", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sweep = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(out.glob("*/checkpoint.pt")) and time.monotonic() < deadline and sweep.poll() is None:
        time.sleep(0.2)  # a run is training
    assert sweep.poll() is None, sweep.communicate()
    subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], check=True, capture_output=True, timeout=120)
    try:
        _, stderr = sweep.communicate(timeout=240)
    finally:
        subprocess.run([*pg_ctl, "-o", options, "-l", log, "-w", "start"], check=True, capture_output=True, timeout=120)
    assert sweep.returncode == 2, stderr
    # the sweep's opening line (printed while the server was up), then the error's one line
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert "Traceback" not in stderr and "Exception in thread" not in stderr, stderr
    assert len(lines) == 2 and lines[0].startswith("sweep 'lost'"), stderr
    assert lines[1].startswith("gbench sweep: error: lost the connection to --storage"), lines[1]
    assert "run the same command again" in lines[1]

    again = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "(3 of 3 runs done)" in again.stdout + again.stderr
    study = optuna.load_study(study_name="lost", storage=postgres_url)
    complete = [trial for trial in study.trials if trial.state == TrialState.COMPLETE]
    assert sorted(trial.user_attrs["variant"] for trial in complete) == ["h16", "h24", "h32"]  # each run once
    rows = results(out)
    assert sorted(row["variant"] for row in rows) == ["h16", "h24", "h32"]
    assert all(row["status"] in ("ok", "collapsed") and row["steps"] == "150" for row in rows)  # finished runs
