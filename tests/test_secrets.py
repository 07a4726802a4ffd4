"""No password in any output (issue #32): storage URLs and MLflow tracking URIs
are shown masked everywhere, an unreachable tracker or storage fails at the
start in one line, and a tracker that dies mid-run only warns.

Each command runs as a real `gbench` process; every byte it prints and every
file under its --out is searched for the password.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error, run_cli, start_gbench

from gbench.secrets import mask, masked_command

PASSWORD = "pw-Secret-7"
CLOSED = "127.0.0.1:9"  # the discard port: nothing listens there, so connecting is refused at once
SUITE = """
[suite]
name = "secret-sweep"
target = "plugins.mlp"
seeds = [0]

[base]
architecture = "mlp"
steps = 10
train_limit = 500
eval_samples = 0
log_every = 5

[[variants]]
name = "baseline"
"""
TINY_TUNE = [
    "--trials",
    "1",
    "--steps",
    "10",
    "--train-limit",
    "500",
    "--eval-samples",
    "200",
    "--log-every",
    "5",
    "--space",
    "hidden_dim=16:32",
]


def assert_no_password(result: subprocess.CompletedProcess, out: Path | None = None) -> None:
    """The password is nowhere: not in stdout, stderr, or any file under ``out`` (binary files included)."""
    assert PASSWORD not in result.stdout and PASSWORD not in result.stderr, (result.stdout, result.stderr)
    if out is not None and out.exists():
        leaking = [path for path in out.rglob("*") if path.is_file() and PASSWORD.encode() in path.read_bytes()]
        assert not leaking, leaking


# --- the masking function, against SQLAlchemy's own rendering -------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:pw@db.example.org:5432/studies",
        "postgresql+psycopg://user:p%40ss:w/rd@10.0.0.1/db?sslmode=require",
        "mysql+pymysql://root:hunter2@127.0.0.1/optuna",
        "postgresql://user@host/db",
        "sqlite:////tmp/runs/tune.db",
    ],
)
def test_mask_writes_a_database_url_as_sqlalchemy_hides_its_password(url):
    import sqlalchemy.engine

    expected = sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    assert mask(url) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:secret@127.0.0.1:9/", "http://user:***@127.0.0.1:9/"),
        ("https://:token@mlflow.example.org/api", "https://:***@mlflow.example.org/api"),
        (
            "API request to http://u:secret@h:5000/api/2.0/x failed; and 'postgresql://a:b/c@d/e'",
            "API request to http://u:***@h:5000/api/2.0/x failed; and 'postgresql://a:***@d/e'",
        ),
        ("postgresql://u@h/db?sslmode=require&password=secret", "postgresql://u@h/db?sslmode=require&password=***"),
        ("http://host:5000/experiments", "http://host:5000/experiments"),
        ("step 10: d_loss 0.69, ratio 3:1", "step 10: d_loss 0.69, ratio 3:1"),
    ],
)
def test_mask_hides_every_password_inside_any_text_and_leaves_the_rest(text, expected):
    assert mask(text) == expected


def test_the_resume_command_line_is_masked():
    shown = masked_command(
        ["gbench", "sweep", "suite.toml", "--storage", f"postgresql://me:{PASSWORD}@db/x", "--out", "my runs"]
    )
    assert shown == "gbench sweep suite.toml --storage postgresql://me:***@db/x --out 'my runs'"


# --- an unreachable tracker or storage: one line, rc 2, at once, no password ----------------------------


@pytest.mark.parametrize("command", ["run", "tune", "sweep"])
def test_an_unreachable_mlflow_server_fails_at_the_start_in_one_line_without_its_password(command, tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    target = {
        "run": ["plugins.mlp", "--architecture", "mlp", "--steps", "10"],
        "tune": ["plugins.mlp", *TINY_TUNE],
        "sweep": [str(suite)],
    }[command]
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli(
        command,
        *target,
        "--out",
        str(out),
        "--log",
        "mlflow",
        "--mlflow-uri",
        f"http://user:{PASSWORD}@{CLOSED}/",
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert_one_line_error(result, "--mlflow-uri 'http://user:***@127.0.0.1:9/' cannot be reached", "Connection refused")
    assert elapsed < 30, elapsed
    assert_no_password(result, out)
    assert not list(out.rglob("summary.json")) and not (out / "results.csv").exists()  # nothing trained


@pytest.mark.parametrize("command", ["tune", "sweep", "report"])
def test_an_unreachable_postgres_storage_fails_in_one_line_without_its_password(command, tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    storage = f"postgresql://gbench:{PASSWORD}@{CLOSED}/studies"
    target = {"tune": ["plugins.mlp", *TINY_TUNE], "sweep": [str(suite)], "report": ["--study-name", "secret-sweep"]}[
        command
    ]
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli(command, *target, "--storage", storage, "--out", str(out), timeout=120)
    elapsed = time.monotonic() - started
    assert_one_line_error(result, "cannot reach storage 'postgresql://gbench:***@127.0.0.1:9/studies'")
    assert elapsed < 30, elapsed
    assert_no_password(result, out)


def test_a_storage_url_without_a_scheme_is_refused_without_its_password(tmp_path):
    result = run_cli(
        "tune",
        "plugins.mlp",
        *TINY_TUNE,
        "--storage",
        f"gbench:{PASSWORD}@db.example.org/studies",
        "--out",
        str(tmp_path),
    )
    assert_one_line_error(result, "'...@db.example.org/studies' is not a database URL")
    assert_no_password(result, tmp_path)


# --- a real PostgreSQL server, its URL holding a password ------------------------------------------------


@pytest.fixture
def secret_postgres_url(postgres_url):
    """The fixture's database URL with a password in it (the fixture's
    server trusts loopback, so it is carried, not checked)."""
    assert postgres_url.startswith("postgresql://postgres@")
    return postgres_url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)


@pytest.mark.postgres
def test_tune_and_sweep_on_postgres_show_the_storage_masked_and_write_no_password(secret_postgres_url, tmp_path):
    shown = mask(secret_postgres_url)
    assert PASSWORD not in shown and ":***@" in shown

    tuned = run_cli(
        "tune",
        "plugins.mlp",
        *TINY_TUNE,
        "--storage",
        secret_postgres_url,
        "--study-name",
        "secret-tune",
        "--out",
        str(tmp_path / "tune"),
    )
    assert tuned.returncode == 0, tuned.stderr
    assert_no_password(tuned, tmp_path / "tune")
    assert f"in {shown}" in tuned.stdout + tuned.stderr  # the study line names the storage, masked
    assert f"optuna-dashboard '{shown}'" in tuned.stdout + tuned.stderr

    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    swept = run_cli("sweep", str(suite), "--storage", secret_postgres_url, "--out", str(tmp_path / "sweep"))
    assert swept.returncode == 0, swept.stderr
    assert_no_password(swept, tmp_path / "sweep")
    assert f"study in {shown}" in swept.stdout + swept.stderr
    assert (tmp_path / "sweep" / "results.csv").is_file()

    reported = run_cli(
        "report", "--storage", secret_postgres_url, "--study-name", "secret-sweep", "--out", str(tmp_path / "report")
    )
    assert reported.returncode == 0, reported.stderr
    assert_no_password(reported, tmp_path / "report")

    missing = run_cli(
        "report", "--storage", secret_postgres_url, "--study-name", "no-such-sweep", "--out", str(tmp_path / "report")
    )
    assert_one_line_error(missing, f"no study named 'no-such-sweep' in {shown}", "secret-sweep")
    assert_no_password(missing)


# --- a tracker server that dies mid-run ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_mlflow_server(folder: Path, port: int) -> subprocess.Popen:
    """A real `mlflow server` on loopback, in its own process group (it starts worker processes)."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{folder / 'server.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "server.log").open("w"),
        start_new_session=True,
    )
    import urllib.request

    # importing MLflow's server and creating its tables takes a minute on a busy machine
    deadline = time.monotonic() + 240
    while True:
        assert server.poll() is None, (folder / "server.log").read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            pass
        assert time.monotonic() < deadline, "mlflow server did not start"
        time.sleep(0.5)


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        # the group this test started: the server and its workers die at once, as a crash
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=30)


@pytest.mark.slow
def test_an_mlflow_server_that_dies_mid_run_warns_once_and_the_run_finishes_with_its_files(tmp_path):
    from mlflow.tracking import MlflowClient

    port = _free_port()
    server = _start_mlflow_server(tmp_path, port)
    out = tmp_path / "runs"
    steps = 3000
    try:
        gbench = start_gbench(
            *"run plugins.mlp --architecture mlp --steps".split(),
            str(steps),
            *"--train-limit 2000 --log-every 10 --eval-samples 200 --eval-every 1000 --device cpu --out".split(),
            str(out),
            *"--log mlflow --mlflow-uri".split(),
            f"http://tracker:{PASSWORD}@127.0.0.1:{port}/",
        )
        client = MlflowClient(tracking_uri=f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 240
        while True:  # the run has started on the server, its parameters logged: now the server dies
            assert gbench.poll() is None, gbench.communicate()
            assert time.monotonic() < deadline
            experiment = client.get_experiment_by_name("gbench")
            started = client.search_runs([experiment.experiment_id]) if experiment is not None else []
            # the run is created before its parameters reach the server: under load a kill between them left none
            if started and "architecture" in started[0].data.params:
                break
            time.sleep(0.3)
        _stop(server)
        stdout, stderr = gbench.communicate(timeout=600)
    finally:
        _stop(server)
        if "gbench" in locals() and gbench.poll() is None:
            gbench.kill()
    result = subprocess.CompletedProcess(gbench.args, gbench.returncode, stdout, stderr)

    assert gbench.returncode == 0, stderr
    warnings = [line for line in stderr.splitlines() if "warning: --log mlflow failed" in line]
    assert len(warnings) == 1, stderr
    assert "the runs go on without mlflow" in warnings[0]
    assert "Traceback" not in stderr
    assert_no_password(result, out)
    # the run trained to its end and kept every file of its own
    (summary,) = out.glob("*/summary.json")
    run_dir = summary.parent
    assert (run_dir / "generator.pt").is_file() and (run_dir / "samples.png").is_file()
    metrics = (run_dir / "metrics.csv").read_text().strip().splitlines()
    assert metrics[-1].split(",")[0] == str(steps), metrics[-1]
    assert (out / "results.csv").read_text().count(run_dir.name) == 1
    # what reached the server before it died holds no password either (the tags and parameters are masked)
    stored = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'server.db'}")
    (run,) = stored.search_runs([stored.get_experiment_by_name("gbench").experiment_id])
    assert run.data.tags["gbench.run_id"] == run_dir.name and run.data.params["architecture"] == "mlp"
    assert not [value for value in {**run.data.tags, **run.data.params}.values() if PASSWORD in value]


def test_the_failures_page_names_only_tests_of_this_file_that_exist():
    import re

    page = (REPO / "docs" / "failures.md").read_text()
    named = set(re.findall(r"tests/test_secrets\.py::(test_\w+)", page))
    defined = set(re.findall(r"^def (test_\w+)", Path(__file__).read_text(), re.M))
    assert len(named) == 8 and named <= defined, named - defined


@pytest.mark.slow
def test_a_local_mlflow_store_that_breaks_mid_run_warns_once_and_the_runs_finish(tmp_path):
    """The default store's artifact folder turns into a file
    while two runs train: no grid can be stored from then on."""
    out = tmp_path / "runs"
    gbench = start_gbench(
        *"run plugins.mlp --architecture mlp --seeds 0-1 --steps 600 --train-limit 2000 --log-every 10".split(),
        *"--eval-samples 200 --eval-every 300 --device cpu --log mlflow --out".split(),
        str(out),
        env={"MLFLOW_TRACKING_URI": ""},
    )
    try:
        deadline = time.monotonic() + 240
        while not list(out.glob("*/config.json")):  # the first run has started (its MLflow run is made first)
            assert gbench.poll() is None, gbench.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        artifacts = out / "mlartifacts"
        subprocess.run(["rm", "-rf", str(artifacts)], check=True)
        artifacts.write_text("not a folder any more\n")
        stdout, stderr = gbench.communicate(timeout=600)
    finally:
        if gbench.poll() is None:
            gbench.kill()

    assert gbench.returncode == 0, stderr
    warnings = [line for line in stderr.splitlines() if "warning: --log mlflow failed" in line]
    assert len(warnings) == 1, stderr  # once, though both runs evaluate twice
    assert "Traceback" not in stderr
    summaries = sorted(out.glob("*/summary.json"))
    assert len(summaries) == 2
    for summary in summaries:
        run_dir = summary.parent
        assert (run_dir / "generator.pt").is_file() and (run_dir / "samples.png").is_file()
        assert (run_dir / "metrics.csv").read_text().strip().splitlines()[-1].split(",")[0] == "600"
    assert len((out / "results.csv").read_text().strip().splitlines()) == 3  # the header and both runs


@pytest.mark.postgres
def test_a_sweep_stopped_by_sigterm_names_the_command_to_resume_with_its_storage_masked(secret_postgres_url, tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.replace("steps = 10", "steps = 3000").replace("train_limit = 500", "train_limit = 2000"))
    out = tmp_path / "out"
    process = start_gbench("sweep", str(suite), "--storage", secret_postgres_url, "--out", str(out), "--no-report")
    deadline = time.monotonic() + 240
    while not list(out.glob("*/config.json")):  # written just before training starts
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    last = stderr.strip().splitlines()[-1]
    assert "again to resume" in last and f"--storage {mask(secret_postgres_url)} " in last, last
    assert_no_password(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), out)


def test_a_bugs_traceback_keeps_its_lines_but_not_the_password(monkeypatch, capsys):
    """Not bad input but a bug: the traceback stays (rc 1), the URL a library quoted in it is masked."""
    from gbench.cli import main
    from gbench.commands import show

    def broken(args):
        raise RuntimeError(f"driver failed for postgresql://gbench:{PASSWORD}@db.example.org/studies")

    monkeypatch.setattr(show, "run", broken)
    assert main(["show"]) == 1
    stderr = capsys.readouterr().err
    assert "Traceback" in stderr and "in broken" in stderr
    assert "RuntimeError: driver failed for postgresql://gbench:***@db.example.org/studies" in stderr
    assert PASSWORD not in stderr


def test_a_tensorboard_folder_that_cannot_be_written_warns_once_and_the_hooks_go_on(monkeypatch, capsys, tmp_path):
    """The built-in plugin's own hooks, on a real SummaryWriter: a run folder under a file cannot hold event files."""
    import torch

    from gbench.plugins import observers
    from plugins import tensorboard_log

    monkeypatch.setenv(observers.LOG_ENV, "tensorboard")
    monkeypatch.setattr(observers, "_failed", set())
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    config = {"architecture": "mlp", "seed": 0, "params": {"note": f"postgresql://u:{PASSWORD}@h/db"}}
    for run_id in ("first", "second"):  # the second run finds the tracker off: no second warning
        tensorboard_log.gbench_run_start(run_id=run_id, config=config, run_dir=blocked / run_id)
        tensorboard_log.gbench_log_row(run_id=run_id, row={"step": 10, "d_loss": 0.7})
        tensorboard_log.gbench_evaluation(
            run_id=run_id, step=10, metrics={"fid": 1.0}, samples=torch.zeros(4, 1, 28, 28)
        )
        tensorboard_log.gbench_run_end(run_id=run_id, row={"status": "ok"}, run_dir=blocked / run_id)
    stderr = capsys.readouterr().err
    warnings = [line for line in stderr.splitlines() if "warning: --log tensorboard failed" in line]
    assert len(warnings) == 1, stderr
    assert not observers.enabled("tensorboard") and not tensorboard_log._writers
    assert observers.hyperparameters(config)["note"] == "postgresql://u:***@h/db"  # what the HParams tab would be given
