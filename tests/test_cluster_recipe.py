"""The cluster recipe of docs/sweeps.md, run as far as this machine allows.

docs/examples/cluster/slurm_sweep.sh runs here under bash as SLURM would run two
array tasks (``SLURM_ARRAY_TASK_ID`` 0 and 1), against the test PostgreSQL
server: one task gets SIGTERM mid-run on every process of its job (what
preemption does), gives its run back and asks to be requeued; it is started
again as the requeue would, and the sweep completes with every run once. SLURM
itself is not here: ``scontrol`` is a stand-in that records what it was asked,
and without ``srun`` the script runs gbench directly. The Kubernetes Job is
parsed and its gbench command checked against the script's.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import REPO, run_cli
from optuna.trial import TrialState
from test_sweep import write_suite

CLUSTER = REPO / "docs" / "examples" / "cluster"
SCRIPT = CLUSTER / "slurm_sweep.sh"
JOB = CLUSTER / "k8s_sweep_job.yaml"
KEYS = sorted(f"{variant}|{seed}" for variant in ("baseline", "hidden-48") for seed in (0, 1))


def script_command() -> list[str]:
    """The script's gbench command line, as words."""
    line = next(
        line
        for line in SCRIPT.read_text().splitlines()
        if " gbench sweep " in line and not line.lstrip().startswith("#")
    )
    words = shlex.split(line)
    return words[words.index("gbench") :]


def options(words: list[str]) -> list[str]:
    return [word for word in words if word.startswith("--")]


def test_the_kubernetes_job_parses_and_runs_the_script_s_command_with_no_password_in_it():
    job = yaml.safe_load(JOB.read_text())
    spec = job["spec"]
    assert (job["kind"], spec["parallelism"], spec["completionMode"]) == ("Job", spec["completions"], "Indexed")
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure" and pod["terminationGracePeriodSeconds"] >= 60
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:2] == script_command()[:2] == ["gbench", "sweep"]
    assert options(command) == options(script_command()) == ["--storage", "--out", "--no-report"]
    env = {item["name"]: item for item in container["env"]}
    assert env["GBENCH_STORAGE"]["valueFrom"]["secretKeyRef"]["key"] and "value" not in env["GBENCH_STORAGE"]
    assert command[command.index("--storage") + 1] == "$(GBENCH_STORAGE)"
    assert not has_password(JOB)


def test_the_slurm_script_s_directives():
    directives = dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(\S+))?", SCRIPT.read_text(), re.M))
    assert directives["array"] and "requeue" in directives and directives["signal"].startswith("TERM@")
    assert not has_password(SCRIPT)


def has_password(path: Path) -> bool:
    """A URL with a password (``scheme://user:secret@host``) outside
    the file's comments (the Secret's creation shows one)."""
    code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    return re.search(r"://[^/\s'\"@]*:[^@/\s]*@", code) is not None


def start_task(task: int, suite: Path, storage: str, root: Path, bin_dir: Path) -> subprocess.Popen:
    """``sbatch --array`` task ``task``: the script under bash, in a process group of its own (the job's processes)."""
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "GBENCH_STORAGE": storage,
        "GBENCH_OUT_ROOT": str(root),
        "SCONTROL_LOG": str(root / "scontrol.log"),
        "SLURM_JOB_ID": str(4300 + task),
        "SLURM_ARRAY_JOB_ID": "4242",
        "SLURM_ARRAY_TASK_ID": str(task),
    }
    return subprocess.Popen(
        ["bash", str(SCRIPT), str(suite)],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def rows(out: Path) -> list[dict]:
    path = out / "results.csv"
    return list(csv.DictReader(open(path))) if path.exists() else []


@pytest.mark.postgres
def test_array_tasks_on_postgres_one_preempted_and_requeued_finish_every_run_once(postgres_url, tmp_path):
    suite = write_suite(tmp_path, steps=300, checkpoint=50)  # 2 variants x 2 seeds, a few seconds each
    root = tmp_path / "cluster"
    root.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text('#!/bin/sh\necho "$@" >> "$SCONTROL_LOG"\n')  # SLURM's requeue, recorded
    # gbench as this Python runs it (the console script is cli.main too), whatever is installed on PATH
    (bin_dir / "gbench").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m gbench "$@"\n')
    for path in bin_dir.iterdir():
        path.chmod(0o755)

    tasks = [start_task(task, suite, postgres_url, root, bin_dir) for task in (0, 1)]
    deadline = time.monotonic() + 240
    while not list((root / "worker-1").glob("*/checkpoint.pt")):  # task 1 is mid-run: preempt it
        assert time.monotonic() < deadline and tasks[1].poll() is None, tasks[1].communicate()
        time.sleep(0.2)
    os.killpg(tasks[1].pid, signal.SIGTERM)  # SLURM signals every process of the job: bash and gbench
    _, stderr = tasks[1].communicate(timeout=120)
    assert tasks[1].returncode == 143, stderr
    assert "SIGTERM: waiting for gbench to give its run back" in stderr
    assert (root / "scontrol.log").read_text() == "requeue 4242_1\n"

    tasks[1] = start_task(1, suite, postgres_url, root, bin_dir)  # the requeued task: the same command
    for task in tasks:
        _, stderr = task.communicate(timeout=300)
        assert task.returncode == 0, stderr
    assert (root / "scontrol.log").read_text() == "requeue 4242_1\n"  # only the preempted run asked

    study = optuna.load_study(study_name="t-sweep", storage=postgres_url)
    assert sorted(t.user_attrs["key"] for t in study.trials if t.state == TrialState.COMPLETE) == KEYS
    interrupted = [t for t in study.trials if t.state == TrialState.FAIL]
    assert interrupted, "the preempted run's trial was given back (FAIL, and a retry queued)"
    finished = [r for task in (0, 1) for r in rows(root / f"worker-{task}")]
    assert sorted(f"{r['variant']}|{r['seed']}" for r in finished) == KEYS  # every run once, on one of the two workers
    assert all(r["status"] in ("ok", "collapsed") and r["steps"] == "300" for r in finished)

    # the report, from any machine: the study alone, no worker's folder
    elsewhere = tmp_path / "laptop"
    elsewhere.mkdir()
    report = run_cli(
        "report",
        "--storage",
        postgres_url,
        "--study-name",
        "t-sweep",
        "--suite-file",
        str(suite),
        "-o",
        str(elsewhere / "report"),
        cwd=elsewhere,
    )
    assert report.returncode == 0, report.stderr
    assert (elsewhere / "report" / "report.md").is_file()
    # the table on stdout fits the terminal; the report has every column
    written = (elsewhere / "report" / "report.md").read_text()
    assert all(variant in written for variant in ("baseline", "hidden-48"))
