"""What a run leaves is explained (issue #32 point 5): the real CLI, real signals, real SIGKILL.

A run killed hard, stopped twice, or whose marker is damaged is listed by
``gbench show`` with what the same command will do with it; the same command
finishes the job (finished runs kept, unfinished ones resumed or restarted in
their folders, one row per seed); ``--rerun`` trains new runs on purpose; and
``gbench clean`` removes the unfinished folders (``--dry-run`` only lists them).
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import torch
from conftest import assert_one_line_error, run_cli, start_gbench

ONE_MLP = ("--train-limit", "1000", "--eval-samples", "0", "--log-every", "10")

#: An MLP whose discriminator sleeps in training mode: a step takes ~0.5 s, so two signals land inside one step.
SLOW_PLUGIN = """
import math
import time
from torch import nn
from gbench import hookimpl
from gbench.plugins.registry import Architecture, Hyperparameter, Nets


class Slow(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        if self.training:
            time.sleep(0.15)
        return self.inner(x)


def build_slow(params, image_shape):
    pixels, latent = math.prod(image_shape), params["latent_dim"]
    generator = nn.Sequential(
        nn.Linear(latent, 64), nn.ReLU(), nn.Linear(64, pixels), nn.Tanh(), nn.Unflatten(1, tuple(image_shape))
    )
    discriminator = nn.Sequential(nn.Flatten(), nn.Linear(pixels, 64), nn.ReLU(), nn.Linear(64, 1))
    return Nets(generator=generator, discriminator=Slow(discriminator), latent_dim=latent)


@hookimpl
def gbench_register_architectures(register):
    register(
        Architecture(
            "slow-mlp", build_slow, (Hyperparameter("latent_dim", 16),), "a small MLP GAN whose D sleeps 0.15 s a call"
        )
    )
"""


def wait_for(process: subprocess.Popen, ready, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)


def run_folders(out: Path) -> dict[int, list[Path]]:
    """Run folders by seed."""
    found: dict[int, list[Path]] = {}
    for path in sorted(out.iterdir()):
        if (path / "config.json").exists():
            found.setdefault(json.loads((path / "config.json").read_text())["seed"], []).append(path)
    return found


def rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(open(out / "results.csv")))


def mlp_command(tmp_path: Path, *extra: str) -> tuple[str, ...]:
    config = tmp_path / "mlp.toml"
    config.write_text('architecture = "mlp"\n')
    return ("run", "plugins.mlp", "--config", str(config), *ONE_MLP, *extra, "--out", str(tmp_path / "out"))


def slow_command(tmp_path: Path, *extra: str) -> tuple[str, ...]:
    plugin = tmp_path / "slow.py"
    plugin.write_text(SLOW_PLUGIN)
    return ("run", str(plugin), "--steps", "12", *ONE_MLP, "--log-every", "1", *extra, "--out", str(tmp_path / "out"))


def kill_hard_while_training(command: tuple[str, ...], out: Path, ready) -> None:
    process = start_gbench(*command)
    wait_for(process, ready)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL


def test_a_run_killed_by_sigkill_is_listed_by_show_and_restarted_in_its_folder(tmp_path):
    out = tmp_path / "out"
    command = mlp_command(tmp_path, "--steps", "300")
    kill_hard_while_training(command, out, lambda: bool(list(out.glob("*/config.json"))))
    [run_dir] = [path for path in out.iterdir() if path.is_dir()]
    left = {p.name for p in run_dir.iterdir() if not p.name.startswith(".")}
    # what SIGKILL leaves (metrics.csv, if it was opened yet, holds its header)
    assert left - {"metrics.csv"} == {"config.json"}

    shown = run_cli("show", str(out))
    assert shown.returncode == 0, shown.stderr
    assert (
        f"{run_dir.name}: unfinished, killed before it saved any state (only "
        "config.json); the same command restarts it from step 0" in shown.stderr
    )

    again = run_cli(*command)
    assert again.returncode == 0, again.stderr
    assert (
        f"run {run_dir.name} was killed (only config.json was left) before it saved "
        "any state: restarting it from step 0 in its folder" in again.stderr
    )
    assert [p for p in out.iterdir() if p.is_dir()] == [run_dir]  # the same folder, not a second one
    [row] = rows(out)
    assert row["run_id"] == run_dir.name and row["steps"] == "300" and row["seed"] == "0"
    assert "unfinished" not in run_cli("show", str(out)).stderr


def test_the_same_command_after_a_kill_keeps_finished_seeds_resumes_the_killed_one_and_rerun_trains_again(tmp_path):
    out = tmp_path / "out"
    command = mlp_command(
        tmp_path, "--steps", "200", "--seeds", "0,1", "--checkpoint-every", "20", "--population", "off"
    )

    def seed_1_saved_a_checkpoint() -> bool:  # seed 0 finished (its row written) and seed 1 wrote a checkpoint
        return (out / "results.csv").exists() and any(
            not (path.parent / "summary.json").exists() for path in out.glob("*/checkpoint.pt")
        )

    kill_hard_while_training(command, out, seed_1_saved_a_checkpoint)
    [finished_row] = rows(out)
    assert finished_row["seed"] == "0"
    killed = run_folders(out)[1][0]
    shown = run_cli("show", str(out))
    assert (
        f"{killed.name}: unfinished, killed (no summary.json, no interrupted.json); "
        "the same command resumes it from its checkpoint.pt" in shown.stderr
    )

    again = run_cli(*command)
    assert again.returncode == 0, again.stderr
    assert f"1 run already finished in {out}, kept; --rerun trains them again" in again.stderr
    assert f"resumed interrupted run {killed.name} from step" in again.stderr
    after = rows(out)
    # one row per seed: the finished seed was not trained again
    assert sorted(row["seed"] for row in after) == ["0", "1"]
    assert after[0] == finished_row

    rerun = run_cli(*command, "--rerun")
    assert rerun.returncode == 0, rerun.stderr
    assert "already finished" not in rerun.stderr
    assert sorted(row["seed"] for row in rows(out)) == ["0", "0", "1", "1"]  # new runs, on purpose
    by_seed = run_folders(out)
    assert [len(by_seed[0]), len(by_seed[1])] == [2, 2]
    # the run resumed after SIGKILL ends where a fresh, uninterrupted one (--rerun's) does
    resumed, fresh = (
        torch.load(path / "generator.pt", weights_only=True) for path in sorted(by_seed[1], key=lambda p: p != killed)
    )
    assert resumed.keys() == fresh.keys() and all(torch.equal(resumed[key], fresh[key]) for key in resumed)

    assert run_cli(*command).returncode == 0 and len(rows(out)) == 4  # finished twice over: nothing trains


def stop_twice(command: tuple[str, ...], out: Path, after_checkpoint: bool) -> subprocess.CompletedProcess:
    process = start_gbench(*command)
    wait_for(process, lambda: bool(list(out.glob("*/checkpoint.pt" if after_checkpoint else "*/config.json"))))
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    # inside the same step (each sleeps ~0.45 s in D): the second signal stops it mid-step, with no new checkpoint
    time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_a_double_sigterm_before_any_checkpoint_says_so_and_the_run_restarts(tmp_path):
    out = tmp_path / "out"
    command = slow_command(tmp_path)
    stopped = stop_twice(command, out, after_checkpoint=False)
    assert stopped.returncode == 143, stopped.stderr
    [run_dir] = [path for path in out.iterdir() if path.is_dir()]
    last = stopped.stderr.strip().splitlines()[-1]
    assert (
        f"stopped before saving any state, will restart from step 0: {run_dir.name}" in last
        and "saved state:" not in last
    ), last
    marker = json.loads((run_dir / "interrupted.json").read_text())
    assert (
        marker["step"] is None
        and "restarts from step 0" in marker["resume"]
        and not (run_dir / "checkpoint.pt").exists()
    )
    shown = run_cli("show", str(out))
    assert (
        f"{run_dir.name}: interrupted (SIGTERM) before it saved any state; the same command restarts it from step 0"
        in shown.stderr
    )

    again = run_cli(*command)
    assert again.returncode == 0, again.stderr
    assert (
        f"run {run_dir.name} was stopped by SIGTERM before it saved any state: restarting it from step 0 in its folder"
        in again.stderr
    )
    [row] = rows(out)
    assert row["run_id"] == run_dir.name and row["steps"] == "12"
    assert not (run_dir / "interrupted.json").exists()


def test_a_double_sigterm_after_a_checkpoint_names_the_step_it_saved(tmp_path):
    out = tmp_path / "out"
    command = slow_command(tmp_path, "--checkpoint-every", "2")
    stopped = stop_twice(command, out, after_checkpoint=True)
    assert stopped.returncode == 143, stopped.stderr
    [run_dir] = [path for path in out.iterdir() if path.is_dir()]
    marker = json.loads((run_dir / "interrupted.json").read_text())
    saved = torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"]
    assert marker["step"] == saved and saved % 2 == 0  # the marker names the checkpoint that is there
    assert f"saved state: {run_dir.name} at step {saved}" in stopped.stderr.strip().splitlines()[-1]
    again = run_cli(*command)
    assert again.returncode == 0 and f"resumed interrupted run {run_dir.name} from step {saved}/12" in again.stderr, (
        again.stderr
    )


def test_a_damaged_marker_is_named_in_one_line_before_any_training(tmp_path):
    out = tmp_path / "out"
    command = slow_command(tmp_path)
    process = start_gbench(*command)
    wait_for(process, lambda: bool(list(out.glob("*/config.json"))))
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=120)
    [run_dir] = [path for path in out.iterdir() if path.is_dir()]
    marker = run_dir / "interrupted.json"
    step = json.loads(marker.read_text())["step"]
    marker.write_text('{"status": "interr')  # cut mid-write by a full disk, say
    before = sorted(p.name for p in run_dir.iterdir())

    shown = run_cli("show", str(out))
    assert shown.returncode == 0 and f"{run_dir.name}: interrupted.json is damaged (JSONDecodeError" in shown.stderr, (
        shown.stderr
    )
    assert_one_line_error(run_cli(*command), str(marker), "damaged", "delete it")
    # nothing trained, nothing lost
    assert sorted(p.name for p in run_dir.iterdir()) == before and not (out / "results.csv").exists()

    marker.unlink()  # the fix the line gives
    again = run_cli(*command)
    assert again.returncode == 0 and f"resumed interrupted run {run_dir.name} from step {step}/12" in again.stderr, (
        again.stderr
    )
    assert [row["run_id"] for row in rows(out)] == [run_dir.name]


def test_clean_removes_unfinished_folders_only_and_dry_run_only_lists_them(tmp_path):
    out = tmp_path / "out"
    assert run_cli(*mlp_command(tmp_path, "--steps", "2", "--seeds", "0")).returncode == 0
    [finished] = [path for path in out.iterdir() if path.is_dir()]
    kill_hard_while_training(
        mlp_command(tmp_path, "--steps", "300", "--seeds", "1"), out, lambda: len(list(out.glob("*/config.json"))) == 2
    )
    [killed] = [path for path in out.iterdir() if path.is_dir() and path != finished]
    table, finished_files = (out / "results.csv").read_bytes(), sorted(p.name for p in finished.iterdir())

    listed = run_cli("clean", str(out), "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert f"would remove {killed}  (killed)" in listed.stdout and str(finished) not in listed.stdout
    assert f"would remove 1 unfinished run folder from {out}" in listed.stdout and killed.is_dir()

    live = start_gbench(*slow_command(tmp_path, "--steps", "200"))  # a run being trained now is never removed
    try:
        wait_for(live, lambda: len(list(out.glob("*/config.json"))) == 3)
        [running] = [path for path in out.iterdir() if path.is_dir() and path not in (finished, killed)]
        cleaned = run_cli("clean", str(out))
        assert cleaned.returncode == 0, cleaned.stderr
        assert (
            f"removed {killed}  (killed)" in cleaned.stdout
            and f"removed 1 unfinished run folder from {out}" in cleaned.stdout
        )
        assert f"kept {running.name}: running now" in cleaned.stderr and running.is_dir()
    finally:
        live.send_signal(signal.SIGKILL)
        live.communicate(timeout=60)
    assert (
        not killed.exists()
        and (out / "results.csv").read_bytes() == table
        and sorted(p.name for p in finished.iterdir()) == finished_files
    )
    assert_one_line_error(run_cli("clean", str(tmp_path / "nowhere")), str(tmp_path / "nowhere"))
