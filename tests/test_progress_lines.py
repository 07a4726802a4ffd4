"""Progress in any log (issue #35 point 1): `gbench run ... > run.log 2>&1` gets plain lines where a terminal gets bars.

The real CLI, its output to a real file, as under nohup, SLURM, CI or a Jupyter ``!`` cell.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from gbench.commands import _progress
from gbench.results import store

STEPS = 20
TINY = (
    "run",
    "plugins.mlp",
    "--architecture",
    "mlp",
    "--steps",
    str(STEPS),
    "--train-limit",
    "500",
    "--eval-samples",
    "200",
    "--log-every",
    "2",
)


def run_into_log(tmp_path: Path, *extra: str) -> tuple[str, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    out, log = tmp_path / "out", tmp_path / "run.log"
    with open(log, "w") as file:  # stdout and stderr both to the file: not a terminal
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        env.pop("COLUMNS", None)
        code = subprocess.run(
            [sys.executable, "-m", "gbench", *TINY, "--out", str(out), *extra],
            stdout=file,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=300,
        )
    assert code.returncode == 0, log.read_text()
    return log.read_text(), out


def test_a_run_into_a_log_file_prints_a_start_line_progress_lines_and_an_end_line_with_its_fid(tmp_path):
    text, out = run_into_log(tmp_path)
    [row] = store.read_results(out)
    label = f"[1/1] mlp {row['loss']} {row['schedule']} seed 0"
    assert f"{label}: started, {STEPS} steps" in text
    progress = re.findall(
        rf"^{re.escape(label)}: step (\d+)/{STEPS} \((\d+)%\), (\d+) images/s, (\S+) left$", text, flags=re.MULTILINE
    )
    assert progress, text
    steps = [int(step) for step, *_ in progress]
    assert steps == sorted(steps) and len(steps) <= 1 / _progress.LINE_FRACTION  # at most one line per 10% of the steps
    assert all(0 < int(images) for _, _, images, _ in progress)
    # the FID results.csv holds
    assert f"{label}: done in " in text and f"seed 0 FID {float(row['fid']):.2f} ({row['status']})" in text
    assert "━" not in text.split("gbench run plugins.mlp")[0]  # no bar drawn above the table


def test_quiet_prints_no_progress_and_verbose_prints_every_log_row(tmp_path):
    quiet, _ = run_into_log(tmp_path / "q", "--quiet")
    assert "started" not in quiet and "images/s" not in quiet and "done in" not in quiet
    assert "gbench run plugins.mlp" in quiet and "FID" in quiet  # the final table still comes
    verbose, out = run_into_log(tmp_path / "v", "--verbose")
    [row] = store.read_results(out)
    logged = re.findall(
        rf"^{re.escape(row['run_id'])} step (\d+)/{STEPS}: .*d_loss \S+ g_loss ", verbose, flags=re.MULTILINE
    )
    assert [int(step) for step in logged] == list(range(2, STEPS + 1, 2))  # every log row: what metrics.csv holds
    assert [int(r["step"]) for r in store.read_csv(out / row["run_id"] / "metrics.csv")] == list(range(2, STEPS + 1, 2))


def test_duration_and_throttle():
    assert [_progress.duration(s) for s in (0, 42.4, 185, 3720, float("inf"))] == ["0s", "42s", "3m05s", "1h02m", "?"]
    throttle = _progress.Throttle(total=100)
    assert [throttle.due(done) for done in (5, 10, 15, 19, 20, 100)] == [False, True, False, False, True, True]


def test_sweep_and_tune_status_lines_in_a_log_are_throttled_verbose_prints_each_change_and_quiet_none():
    import io

    from rich.console import Console

    def lines_for(level: int) -> list[str]:
        file = io.StringIO()  # not a terminal, as a log file
        status = _progress.StatusLines(level, total=20, console=Console(file=file, width=200))
        for done in range(21):
            status.update(done, f"sweep s: {done}/20 runs done")
            status.update(done, f"sweep s: {done}/20 runs done")  # polled again, nothing new
        return file.getvalue().splitlines()

    # every 10% of the runs
    assert lines_for(_progress.NORMAL) == [
        f"sweep s: {done}/20 runs done" for done in (2, 4, 6, 8, 10, 12, 14, 16, 18, 20)
    ]
    assert lines_for(_progress.VERBOSE) == [f"sweep s: {done}/20 runs done" for done in range(21)]
    assert lines_for(_progress.QUIET) == []
