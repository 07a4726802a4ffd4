"""metrics.csv grows while a run trains (gbench/training/metrics_log.py), and stays whole across a stop and resume.

Real runs of the real CLI: a second reader (this test) reads the file while the
run trains; SIGTERM and SIGKILL stop it; the same command resumes it. Each step
is in the file once, in order, and the steps are those an uninterrupted run logs.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import run_cli
from test_failures import mlp_config, start_gbench

from gbench.results import store
from gbench.training.metrics_log import MetricsLog, columns_for

STEPS, LOG_EVERY = 300, 10
#: One MLP on 1000 images, no evaluation: ~300 steps a second on one core, so the test can catch it mid-run.
COMMAND = (
    "run",
    "plugins.mlp",
    "--steps",
    str(STEPS),
    "--train-limit",
    "1000",
    "--eval-samples",
    "0",
    "--log-every",
    str(LOG_EVERY),
)
# the trainer logs every LOG_EVERY steps, the last step included
UNINTERRUPTED = list(range(LOG_EVERY, STEPS + 1, LOG_EVERY))


def steps_in(path: Path) -> list[int]:
    return [int(row["step"]) for row in store.read_csv(path)]


def wait_for_rows(process: subprocess.Popen, out: Path, rows: int, timeout: float = 180) -> tuple[Path, list[int]]:
    """Poll the run's metrics.csv, as `tail -f` or a notebook would,
    until it holds ``rows`` rows; the run is still training."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        found = list(out.glob("*/metrics.csv"))
        if found:
            steps = steps_in(found[0])  # read_csv refuses a cut line: every read sees whole rows
            if len(steps) >= rows:
                return found[0], steps
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_metrics_csv_grows_while_training_and_a_resumed_run_has_each_step_once(tmp_path, sig):
    out = tmp_path / "out"
    command = (*COMMAND, "--config", str(mlp_config(tmp_path)), "--checkpoint-every", "50", "--out", str(out))
    process = start_gbench(*command)
    metrics, seen = wait_for_rows(process, out, rows=7)  # past the first checkpoint (step 50)
    assert process.poll() is None, "the run ended before the test read its rows: they were not written while it trained"
    assert seen == UNINTERRUPTED[: len(seen)]
    process.send_signal(sig)
    process.communicate(timeout=120)
    stopped = steps_in(metrics)
    assert stopped == UNINTERRUPTED[: len(stopped)] and len(stopped) >= len(seen)

    resumed = run_cli(*command)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed interrupted run" in resumed.stderr
    steps = steps_in(metrics)
    # strictly increasing, each once, no gap: where the stopped attempt's rows were past its checkpoint too
    assert steps == UNINTERRUPTED
    assert len(set(steps)) == len(steps)


def test_population_members_write_their_rows_as_they_train(tmp_path):
    out = tmp_path / "out"
    command = (
        *COMMAND,
        "--config",
        str(mlp_config(tmp_path)),
        "--seeds",
        "0,1",
        "--population",
        "on",
        "--out",
        str(out),
    )
    process = start_gbench(*command)
    deadline = time.monotonic() + 180
    while len(files := list(out.glob("*/metrics.csv"))) < 2 or min(len(store.read_csv(f)) for f in files) < 2:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    assert process.poll() is None  # both members' rows were on disk while the population trained
    process.communicate(timeout=180)
    assert process.returncode == 0
    for path in files:
        assert steps_in(path) == UNINTERRUPTED


def test_a_row_with_a_new_column_rewrites_the_file_with_the_wider_header(tmp_path):
    log = MetricsLog(tmp_path, history=[{"step": 1, "d_loss": 0.5}])
    log.append({"step": 2, "d_loss": 0.25})
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",") == columns_for([])
    log.append({"step": 3, "d_loss": 0.125, "fid": 42.0})
    rows = store.read_csv(tmp_path / "metrics.csv")
    assert [(row["step"], row["d_loss"], row["fid"]) for row in rows] == [
        ("1", "0.5", ""),
        ("2", "0.25", ""),
        ("3", "0.125", "42.0"),
    ]
    # a resume starts from the checkpoint's history: rows past it (logged after the checkpoint) go
    MetricsLog(tmp_path, history=[{"step": 1, "d_loss": 0.5}], expected=["fid"])
    assert [row["step"] for row in store.read_csv(tmp_path / "metrics.csv")] == ["1"]
