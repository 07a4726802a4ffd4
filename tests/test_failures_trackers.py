"""Issue #32 point 2: TensorBoard's event file that stops growing mid-run (a full disk, a file over the size limit)
warns once, in one line, and the run goes on to its end and keeps every file of its own. Backs docs/failures.md.

The real ``gbench run --log tensorboard`` under RLIMIT_FSIZE: every file may grow to the limit and no further, as on
a full disk. The run's own files (a tiny MLP: its checkpoint and generator stay far below the limit) fit; the event
file, which grows with every row and every evaluation's sample grid, does not: it fails mid-run, in TensorBoard's
own writer thread. (MLflow's local store failing mid-run: tests/test_secrets.py, its artifact folder replaced by a
file; its database outgrows such a limit while MLflow creates its tables, before the first row.)
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
from conftest import REPO, run_cli
from test_failures import file_size_limit

LIMIT = 300_000  # bytes: the event file passes it at about step 20 (3 sample grids)
STEPS = 60
TINY_MLP = ["--architecture", "mlp", "--set", "hidden_dim=8", "--set", "latent_dim=8", "--device", "cpu"]
RUN = ["run", "plugins.mlp", *TINY_MLP, "--steps", str(STEPS), "--train-limit", "500", "--eval-samples", "100"]
RUN += ["--eval-every", "10", "--log-every", "10"]


@pytest.mark.slow
def test_a_tensorboard_file_that_stops_growing_mid_run_warns_once_and_the_run_keeps_its_files(tmp_path):
    tracker = "tensorboard"
    # the real images' FID statistics are cached on first use (a file far over the limit): made first, unlimited
    assert run_cli(*RUN, "--steps", "1", "--out", str(tmp_path / "warm")).returncode == 0
    out = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "gbench", *RUN, "--out", str(out), "--log", tracker]
    limited = file_size_limit(LIMIT)
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600, preexec_fn=limited)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if f"warning: --log {tracker} failed" in line]
    assert len(warnings) == 1, result.stderr
    assert "the runs go on without" in warnings[0] and "keep their own files" in warnings[0]
    # before the fix, TensorBoard's writer thread printed the error's traceback ("Exception in thread ...")
    assert "Traceback" not in result.stderr and "Exception in thread" not in result.stderr, result.stderr
    # the event file filled up mid-run: it holds the first rows and grids, and stops before the run's end
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = out.glob("*/events.out.tfevents.*")
    assert events.stat().st_size == LIMIT
    written = EventAccumulator(str(events), size_guidance={"scalars": 0, "images": 0})
    written.Reload()
    steps = [event.step for event in written.Scalars("train/d_loss")]
    assert steps and steps[0] == 10 and steps[-1] < STEPS, steps
    # the run trained to its end and kept every file of its own
    (summary,) = out.glob("*/summary.json")
    run_dir = summary.parent
    assert (run_dir / "generator.pt").is_file() and (run_dir / "samples.png").is_file()
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert [int(row["step"]) for row in rows] == list(range(10, STEPS + 1, 10))
    (row,) = csv.DictReader(open(out / "results.csv"))
    assert row["run_id"] == run_dir.name and row["steps"] == str(STEPS) and row["fid"]
