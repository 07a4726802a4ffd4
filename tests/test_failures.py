"""What happens when things fail: each test backs one line of docs/failures.md.

Real processes, real files, real signals: a test starts the real ``gbench``
CLI, breaks something the way the world does (a wrong --data-root, SIGTERM
from a scheduler, a truncated file, a full disk) and checks what the user
sees and what stays on disk.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, run_cli

MNIST_RAW = Path(os.environ["GBENCH_DATA"]) / "MNIST" / "raw"
TINY = ("--steps", "2", "--train-limit", "200", "--eval-samples", "0")


# --- 1. an explicit --data-root is the only place gbench looks ------------------


def test_missing_data_root_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "no-such-dir"
    result = run_cli("run", "plugins.mlp", *TINY, "--data-root", str(missing), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, str(missing), "does not exist")
    assert not (tmp_path / "o" / "results.csv").exists()


def test_data_root_without_the_files_names_them_even_when_gbench_data_has_them(tmp_path):
    # GBENCH_DATA (set by conftest) holds MNIST: an explicit root must not fall back to it
    partial = tmp_path / "partial" / "MNIST" / "raw"
    partial.mkdir(parents=True)
    shutil.copy(MNIST_RAW / "train-images-idx3-ubyte", partial)  # the labels file is missing
    result = run_cli(
        "run", "plugins.mlp", *TINY, "--data-root", str(tmp_path / "partial"), "--out", str(tmp_path / "o")
    )
    assert_one_line_error(result, str(tmp_path / "partial"), "train-labels-idx1-ubyte", "train-images-idx3-ubyte")
    assert not (tmp_path / "o" / "results.csv").exists()


def test_data_root_from_a_config_file_is_honoured_too(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'data_root = "{tmp_path / "nothing-here"}"\n')
    result = run_cli("run", "plugins.mlp", *TINY, "--config", str(config), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, str(tmp_path / "nothing-here"))


def test_a_data_root_holding_the_files_trains(tmp_path):
    root = tmp_path / "root" / "MNIST" / "raw"
    root.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (root / name).symlink_to(MNIST_RAW / name)
    result = run_cli(
        "run",
        "plugins.mlp",
        *TINY,
        "--data-root",
        str(tmp_path / "root"),
        "--out",
        str(tmp_path / "o"),
        env={"GBENCH_DATA": str(tmp_path / "x")},
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o" / "results.csv").read_text().count("\n") == 4  # header + the plugin's three architectures


# --- 2, 3. SIGTERM stops like Ctrl-C; the same command resumes the run -----------

ONE_MLP = ("--train-limit", "1000", "--eval-samples", "0", "--log-every", "10")


def start_gbench(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "gbench", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_until_training(process: subprocess.Popen, out: Path, timeout: float = 180) -> None:
    """config.json is written just before the trainer starts; give it a moment more to be mid-run."""
    deadline = time.monotonic() + timeout
    while not list(out.glob("*/config.json")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    time.sleep(1.0)


def mlp_config(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.toml"
    path.write_text('architecture = "mlp"\n')
    return path


def state_dict(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def metrics_without_time(path: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(open(path))]


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_the_state_and_the_same_command_resumes_it_exactly(tmp_path, sig, code):
    steps = "300"
    command = (
        "run",
        "plugins.mlp",
        "--config",
        str(mlp_config(tmp_path)),
        "--steps",
        steps,
        *ONE_MLP,
        "--out",
        str(tmp_path / "out"),
    )
    process = start_gbench(*command)
    wait_until_training(process, tmp_path / "out")
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    last = stderr.strip().splitlines()[-1]
    assert "SIGTERM" in last if sig == signal.SIGTERM else "SIGINT" in last
    assert "again to resume" in last and "gbench run plugins.mlp" in last and "Traceback" not in stderr
    [run_dir] = (tmp_path / "out").iterdir()
    marker = json.loads((run_dir / "interrupted.json").read_text())
    assert marker["status"] == "interrupted" and 0 < marker["step"] < 300
    saved = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)  # loads without pickle's code
    assert saved["step"] == marker["step"]
    assert not (run_dir / "summary.json").exists() and not (tmp_path / "out" / "results.csv").exists()

    shown = run_cli("show", str(tmp_path / "out"))  # labelled, not counted as a run
    assert shown.returncode == 0 and f"{run_dir.name}: interrupted at step {marker['step']}/300" in shown.stderr, (
        shown.stderr
    )

    resumed = run_cli(*command)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed interrupted run {run_dir.name} from step {marker['step']}/300" in resumed.stderr
    assert [p.name for p in (tmp_path / "out").iterdir() if p.is_dir()] == [
        run_dir.name
    ]  # the same folder, not a second one
    assert not (run_dir / "interrupted.json").exists() and not (run_dir / "checkpoint.pt").exists()
    [row] = list(csv.DictReader(open(tmp_path / "out" / "results.csv")))
    assert row["run_id"] == run_dir.name and row["steps"] == "300"

    if sig == signal.SIGINT:
        return  # the same path as SIGTERM from here on; the exactness check runs once
    # bit-exact: the interrupted and resumed run ends where an uninterrupted one does
    reference = run_cli(*command[:-1], str(tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr
    [ref_dir] = [p for p in (tmp_path / "ref").iterdir() if p.is_dir()]
    mine, theirs = state_dict(run_dir / "generator.pt"), state_dict(ref_dir / "generator.pt")
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert metrics_without_time(run_dir / "metrics.csv") == metrics_without_time(ref_dir / "metrics.csv")


def test_a_run_killed_between_its_summary_and_its_results_row_is_listed_when_resumed(tmp_path, registry):
    # SIGKILL can land after summary.json is renamed into place and before results.csv is rewritten
    # (CI caught it in test_a_killed_sweep_resumes_without_repeating_finished_runs); resuming lists the run,
    # never retrains it
    from gbench.config import EvalOptions, RunConfig, resolve_params
    from gbench.training.runner import execute

    def config() -> RunConfig:
        made = RunConfig(
            architecture="mlp",
            seed=0,
            steps=5,
            train_limit=200,
            device="cpu",
            run_id="mlp-s0",
            eval=EvalOptions(samples=0),
        )
        return dataclasses.replace(made, params=resolve_params(registry, made))

    out = tmp_path / "out"
    first = execute(config(), registry, out)
    (out / "results.csv").write_text("")  # the row the kill never let gbench write (an empty file, as if just created)
    stamp = (out / "mlp-s0" / "summary.json").stat().st_mtime_ns
    again = execute(config(), registry, out)
    assert again == first and (out / "mlp-s0" / "summary.json").stat().st_mtime_ns == stamp  # not trained again
    [row] = list(csv.DictReader(open(out / "results.csv")))
    assert row["run_id"] == "mlp-s0" and row["steps"] == "5"
    execute(config(), registry, out)  # listed once, however often it is resumed
    assert len(list(csv.DictReader(open(out / "results.csv")))) == 1


# --- 4. a damaged file is one line naming it, exit 2, never a traceback -----------


@pytest.fixture(scope="module")
def finished_out(tmp_path_factory) -> Path:
    """One finished two-step run of the plain MLP (a real run folder to break copies of)."""
    out = tmp_path_factory.mktemp("finished") / "out"
    config = mlp_config(out.parent)
    result = run_cli(
        "run", "plugins.mlp", "--config", str(config), "--seeds", "0,1", *TINY, "--log-every", "1", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def out_copy(finished_out, tmp_path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(finished_out, copy)
    return copy


def run_dirs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir())


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "other-weights"])
def test_a_damaged_generator_pt_is_one_line_for_eval_sample_and_interpolate(out_copy, tmp_path, damage):
    run_dir = run_dirs(out_copy)[0]
    weights = run_dir / "generator.pt"
    if damage == "truncated":
        truncate(weights)
    elif damage == "garbage":
        weights.write_bytes(b"not a torch file at all\n" * 10)
    else:  # a whole, loadable file that is not this generator's
        torch.save({"weight": torch.zeros(3)}, weights)
    for command in (
        ("eval", str(run_dir), "-n", "50", "--no-kid", "--no-precision-recall"),
        ("sample", str(run_dir), "-n", "4", "-o", str(tmp_path / "s.npz")),
        ("interpolate", str(run_dir), "-o", str(tmp_path / "i.png")),
    ):
        assert_one_line_error(run_cli(*command), str(weights))
    assert not (tmp_path / "s.npz").exists() and not (tmp_path / "i.png").exists()


@pytest.mark.parametrize("damage", ["truncated", "pickled-code"])
def test_a_damaged_checkpoint_stops_the_resume_in_one_line(tmp_path, damage):
    command = (
        "run",
        "plugins.mlp",
        "--config",
        str(mlp_config(tmp_path)),
        "--steps",
        "300",
        *ONE_MLP,
        "--out",
        str(tmp_path / "out"),
    )
    process = start_gbench(*command)
    wait_until_training(process, tmp_path / "out")
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=120)
    [run_dir] = run_dirs(tmp_path / "out")
    checkpoint = run_dir / "checkpoint.pt"
    if damage == "truncated":
        truncate(checkpoint)
    else:  # weights_only=True refuses to run code a pickle asks for
        torch.save({"step": 1, "generator": {}, "hook": shutil.rmtree}, checkpoint)
    assert_one_line_error(run_cli(*command), str(checkpoint), "delete it")
    assert checkpoint.exists() and (run_dir / "interrupted.json").exists()  # nothing deleted behind the user's back


RESULTS_DAMAGE = {
    "unterminated-quote": lambda text: text + 'x,"never closed,1,2\n',
    "cut-line": lambda text: text + text.splitlines()[1][:15],
    "not-gbench": lambda text: "name,value\nfoo,1\n",
    "short-row": lambda text: text + "a,b\n",
    "empty": lambda text: "",
}


@pytest.mark.parametrize("damage", sorted(RESULTS_DAMAGE))
def test_a_damaged_results_csv_is_one_line_for_show_export_and_report(out_copy, damage):
    results = out_copy / "results.csv"
    results.write_text(RESULTS_DAMAGE[damage](results.read_text()))
    for command in (("show", str(out_copy)), ("export", str(out_copy), "--format", "json"), ("report", str(out_copy))):
        result = run_cli(*command)
        assert_one_line_error(result, str(results))
        assert result.stdout == ""  # no made-up row


def test_a_metrics_csv_cut_mid_line_is_one_line_for_report(out_copy):
    metrics = run_dirs(out_copy)[0] / "metrics.csv"
    truncate(metrics, keep=0.7)
    assert not metrics.read_text().endswith("\n")
    assert_one_line_error(run_cli("report", str(out_copy)), str(metrics))


def test_an_optuna_study_gbench_did_not_make_is_one_line(tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path / 'foreign.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=url, study_name="theirs")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    tune = run_cli(
        "tune",
        "plugins.mlp",
        "--storage",
        url,
        "--study-name",
        "theirs",
        "--trials",
        "1",
        "--pruner",
        "none",
        *TINY[:4],
        "--eval-samples",
        "50",
        "--out",
        str(tmp_path / "o"),
    )
    assert_one_line_error(tune, "'theirs'", "not made by gbench")
    assert_one_line_error(
        run_cli("report", "--storage", url, "--study-name", "theirs"), "'theirs'", "not made by gbench"
    )
    assert len(optuna.load_study(storage=url, study_name="theirs").trials) == 2  # their study is left as it was


def test_a_file_that_is_not_a_database_is_one_line(tmp_path):
    (tmp_path / "notes.db").write_text("not sqlite\n")
    url = f"sqlite:///{tmp_path / 'notes.db'}"
    assert_one_line_error(run_cli("report", "--storage", url, "--study-name", "x"), "notes.db")


# --- 5. disk full: the run fails in one line, nothing written before is lost ------


def file_size_limit(limit: int):
    """preexec_fn: writes past ``limit`` bytes fail with EFBIG, as on a full disk (SIGXFSZ ignored so write() returns
    the error)."""

    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def snapshot_files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != ".results.lock"
    }


def test_a_full_disk_fails_the_run_in_one_line_and_keeps_every_earlier_file(out_copy, tmp_path):
    before = snapshot_files(out_copy)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "gbench",
        "run",
        "plugins.mlp",
        "--config",
        str(mlp_config(tmp_path)),
        "--seeds",
        "5",
        *TINY,
        "--out",
        str(out_copy),
    ]
    # 200 kB: config.json and samples.png fit, generator.pt (about 1 MB) does not
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, preexec_fn=file_size_limit(200_000)
    )
    assert_one_line_error(
        result, "generator.pt", "File too large", "free space", progress_first=True
    )  # found at the end of training
    after = snapshot_files(out_copy)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing already there changed or went
    assert not [name for name in after if name.endswith(".tmp")]  # no temp file left behind
    rows = list(csv.DictReader(open(out_copy / "results.csv")))
    assert len(rows) == 2 and all(row["steps"] == "2" for row in rows)
    assert run_cli("show", str(out_copy)).returncode == 0


def test_a_full_disk_while_rewriting_results_csv_keeps_the_old_table(out_copy):
    before = (out_copy / "results.csv").read_bytes()
    script = (
        "import sys; from gbench.results import store\n"
        "from gbench.errors import GbenchError\n"
        "row = dict(store.read_results(sys.argv[1])[0], run_id='new-run', notes='x' * 5000)\n"
        "try:\n    store.upsert_result(sys.argv[1], row)\n"
        "except GbenchError as error:\n    print(error); sys.exit(2)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(out_copy)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=file_size_limit(len(before) + 1000),
    )
    assert result.returncode == 2 and "results.csv" in result.stdout and "File too large" in result.stdout, (
        result.stdout,
        result.stderr,
    )
    assert (out_copy / "results.csv").read_bytes() == before
    assert not list(out_copy.glob(".results.csv.*.tmp"))


# --- 6. four writers and two readers on one --out ---------------------------------


@pytest.mark.slow
def test_four_writers_and_looping_readers_see_every_row_once_and_never_a_partial_one(tmp_path):
    out = tmp_path / "out"
    config = mlp_config(tmp_path)
    seeds = ["0-24", "25-49", "50-74", "75-99"]  # 100 runs in all
    writers = [
        start_gbench("run", "plugins.mlp", "--config", str(config), "--seeds", s, *TINY, "--out", str(out))
        for s in seeds
    ]
    reads, seen = 0, 0
    while any(w.poll() is None for w in writers) or reads < 4:
        for command in (("export", str(out), "--format", "csv"), ("show", str(out))):
            result = run_cli(*command)
            reads += 1
            if result.returncode == 2 and "does not exist" in result.stderr:
                continue  # before the first row: results.csv is not there yet
            assert result.returncode == 0 and "Traceback" not in result.stderr, (command, result.stderr)
            if command[0] == "export":
                rows = list(csv.DictReader(result.stdout.splitlines(), strict=True))
                ids = [row["run_id"] for row in rows]
                assert len(ids) == len(set(ids)) >= seen  # no row twice, none lost since the last read
                assert all(None not in row and row["status"] and row["steps"] == "2" for row in rows)  # whole rows only
                seen = len(ids)
    for writer in writers:
        _, stderr = writer.communicate()
        assert writer.returncode == 0, stderr
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert sorted(int(row["seed"]) for row in rows) == list(range(100))
    assert {row["run_id"] for row in rows} == {p.parent.name for p in out.glob("*/summary.json")}
    assert reads > 4


SUITE = """
[suite]
name = "t-term"
title = "SIGTERM in a sweep"
question = "Is an interrupted run resumed and counted once?"
target = "plugins.mlp"
seeds = [0]

[base]
architecture = "mlp"
steps = 300
train_limit = 1000
eval_samples = 0
log_every = 10
checkpoint_every = 100000

[[variants]]
name = "baseline"

[[variants]]
name = "hidden-48"
params = { hidden_dim = 48 }
"""


@pytest.mark.slow
def test_a_sweep_stopped_by_sigterm_releases_its_trial_and_resumes_it_once(tmp_path):
    import optuna
    from optuna.trial import TrialState

    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)  # checkpoint_every past the end: only the state saved at the signal can resume it
    out = tmp_path / "out"
    process = start_gbench("sweep", str(suite), "--out", str(out), "--no-report")
    wait_until_training(process, out)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "SIGTERM" in stderr.strip().splitlines()[-1] and "Traceback" not in stderr
    [stopped] = [p.parent for p in out.glob("*/interrupted.json")]
    step = json.loads((stopped / "interrupted.json").read_text())["step"]
    assert 0 < step < 300 and (stopped / "checkpoint.pt").exists()
    study = optuna.load_study(study_name="t-term", storage=f"sqlite:///{out / 'sweep.db'}")
    [released] = [t for t in study.trials if t.state == TrialState.FAIL]  # the stopped run's trial, given back
    [retry] = [
        t
        for t in study.trials
        if t.state == TrialState.WAITING and t.user_attrs.get("key") == released.user_attrs["key"]
    ]
    assert retry.system_attrs.get("failed_trial") == released.number  # Optuna's retry of it, not a new trial

    resumed = run_cli("sweep", str(suite), "--out", str(out), "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert sorted(row["run_id"] for row in rows) == ["baseline-s0", "hidden-48-s0"] and all(
        row["steps"] == "300" for row in rows
    )
    study = optuna.load_study(study_name="t-term", storage=f"sqlite:///{out / 'sweep.db'}")
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["key"] for t in complete) == ["baseline|0", "hidden-48|0"]  # each run counted once
    assert retry.number in {t.number for t in complete}  # the retry, not a new trial, finished the stopped run
    assert not (stopped / "interrupted.json").exists() and not (stopped / "checkpoint.pt").exists()


@pytest.mark.parametrize("name", ["config.json", "summary.json"])
def test_a_damaged_config_or_summary_json_is_one_line(out_copy, tmp_path, name):
    run_dir = run_dirs(out_copy)[0]
    truncate(run_dir / name)
    assert_one_line_error(
        run_cli("eval", str(run_dir), "-n", "50", "--no-kid", "--no-precision-recall"), str(run_dir / name)
    )


# --- 7. docs/failures.md names only tests that exist --------------------------------


def test_the_failures_page_names_only_real_tests():
    import re

    page = (Path(__file__).resolve().parent.parent / "docs" / "failures.md").read_text()
    named = set(re.findall(r"`(test_\w+)", page))
    here = (
        Path(__file__).resolve().parent
    )  # the page's sections are backed by several test files (no_code_runs, failures_more, secrets, store)
    defined = {
        name for file in here.glob("test_*.py") for name in re.findall(r"^def (test_\w+)", file.read_text(), re.M)
    }
    assert named and named <= defined, named - defined
    own = set(re.findall(r"^def (test_\w+)", Path(__file__).read_text(), re.M))
    assert own - {"test_the_failures_page_names_only_real_tests"} <= named, (
        "every test here backs a line of docs/failures.md"
    )
