"""One training state for both loops (gbench.training.state): its file form, and a member's checkpoint resuming
alone."""

from __future__ import annotations

import json
import signal
import time

import pytest
import torch
from conftest import run_cli
from test_failures import ONE_MLP, mlp_config, start_gbench, state_dict, wait_until_training

from gbench.errors import GbenchError
from gbench.training.state import LastLosses, LogWindow, TrainState


def a_state() -> TrainState:
    return TrainState(
        generator={"w": torch.ones(2)},
        g_opt={"state": {}, "param_groups": []},
        discriminator=None,
        d_opt=None,
        batches={"order": torch.arange(4), "position": 1, "epochs_done": 0},
        rng_noise=torch.zeros(8, dtype=torch.uint8),
        rng_order=torch.ones(8, dtype=torch.uint8),
        rng_cpu=torch.get_rng_state(),
        rng_cuda=None,
        step=7,
        history=[{"step": 5, "g_loss": 1.0}],
        seconds=1.5,
        images=700,
        window=LogWindow(torch.arange(4.0), 2, {"kl": torch.tensor(3.0)}, LastLosses(None, torch.tensor(0.5))),
        extra={"collapse_low_since": None},
    )


def test_the_file_form_round_trips_and_loads_without_code(tmp_path):
    path = tmp_path / "checkpoint.pt"
    a_state().save(path)
    raw = torch.load(path, weights_only=True)  # tensors and plain types only
    assert raw["step"] == 7 and raw["window_steps"] == 2 and raw["last_d"] is None and "collapse_low_since" in raw
    back = TrainState.load(path)
    assert back.step == 7 and back.images == 700 and back.history == [{"step": 5, "g_loss": 1.0}]
    assert torch.equal(back.window.totals, torch.arange(4.0)) and back.window.steps == 2
    assert (
        float(back.window.metrics["kl"]) == 3.0
        and float(back.window.last.g_loss) == 0.5
        and back.window.last.d_loss is None
    )
    assert back.extra == {"collapse_low_since": None}


def test_a_checkpoint_saved_before_the_log_window_was_kept_still_loads():
    old = {
        k: v
        for k, v in a_state().to_dict().items()
        if k not in ("window", "window_steps", "metric_window", "last_d", "last_g")
    }
    state = TrainState.from_dict(old)
    assert state.window.steps == 0 and torch.equal(state.window.totals, torch.zeros(4)) and state.window.metrics == {}


def test_a_foreign_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"step": 3, "weights": torch.ones(1)}, path)
    with pytest.raises(GbenchError) as error:
        TrainState.load(path, fix="delete it to start over")
    message = str(error.value)
    assert (
        "\n" not in message
        and str(path) in message
        and "not a gbench training checkpoint" in message
        and "delete it" in message
    )


@pytest.mark.slow
def test_a_population_member_stopped_mid_run_resumes_alone_to_the_same_weights(tmp_path):
    """SIGTERM a population of 3 mid-run; member 1 resumes alone with --population off from the checkpoint the
    population wrote, and ends within the population tests' tolerance of an uninterrupted population's member 1."""
    steps = 200
    base = ("run", "plugins.mlp", "--config", str(mlp_config(tmp_path)), "--steps", str(steps), *ONE_MLP)
    out = tmp_path / "out"
    process = start_gbench(*base, "--seeds", "0,1,2", "--population", "on", "--out", str(out))
    wait_until_training(process, out)
    # config.json comes before the data and the nets: under load a second later may still be before step 1.
    # metrics.csv gains a row at each log row while the run trains (gbench.training.metrics_log): that is mid-run.
    deadline = time.monotonic() + 180
    while len([f for f in out.glob("*/metrics.csv") if len(f.read_text().splitlines()) > 1]) < 3:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    runs = {json.loads((d / "config.json").read_text())["seed"]: d for d in out.iterdir() if d.is_dir()}
    assert sorted(runs) == [0, 1, 2]
    marker = json.loads((runs[1] / "interrupted.json").read_text())
    assert 0 < marker["step"] < steps and TrainState.load(runs[1] / "checkpoint.pt").step == marker["step"]

    resumed = run_cli(*base, "--seeds", "1", "--population", "off", "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed interrupted run {runs[1].name} from step {marker['step']}/{steps}" in resumed.stderr
    assert (runs[1] / "generator.pt").exists() and not (runs[1] / "checkpoint.pt").exists()
    assert (runs[0] / "checkpoint.pt").exists()  # the others wait for their own resume

    reference = run_cli(*base, "--seeds", "0,1,2", "--population", "on", "--out", str(tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr
    [ref_dir] = [
        d
        for d in (tmp_path / "ref").iterdir()
        if d.is_dir() and json.loads((d / "config.json").read_text())["seed"] == 1
    ]
    mine, theirs = state_dict(runs[1] / "generator.pt"), state_dict(ref_dir / "generator.pt")
    assert mine.keys() == theirs.keys()
    # A member and a solo run differ by reassociation (tests/test_population.py); each moves a weight by at most
    # about lr (2e-4) a step under Adam, so two that drift apart differ by at most 2 lr a step. One lr a step was
    # too tight: the CI's loaded machine measured 0.044 after 200 steps, depending on where SIGTERM landed.
    for name in mine:
        assert (mine[name] - theirs[name]).abs().max() <= 2 * steps * 2e-4, name


def test_population_auto_is_the_faster_choice_for_the_device_and_precision():
    """The rule docs/speed.md's figures back: one by one on a CPU in fp32, one population in bf16 or on a GPU."""
    from gbench.training.batch import population_choice

    together, why = population_choice("auto", "cpu", "fp32")
    assert not together and "one by one on a CPU in fp32" in why and "--population on" in why
    together, why = population_choice("auto", "cpu", "bf16")
    assert together and "bf16" in why
    assert population_choice("on", "cpu", "fp32")[0] and not population_choice("off", "cpu", "bf16")[0]
    with pytest.raises(GbenchError, match="--population 'sometimes'"):
        population_choice("sometimes", "cpu", "fp32")


def test_gbench_run_says_which_population_choice_it_made(tmp_path):
    base = ("run", "plugins.mlp", "--config", str(mlp_config(tmp_path)), "--steps", "5", *ONE_MLP, "--seeds", "0,1")
    fp32 = run_cli(*base, "--out", str(tmp_path / "fp32"))
    assert fp32.returncode == 0, fp32.stderr
    assert fp32.stderr.count("--population auto: seeds train one by one on a CPU in fp32") == 1
    assert {row["population"] for row in _rows(tmp_path / "fp32")} == {"1"}
    bf16 = run_cli(*base, "--precision", "bf16", "--out", str(tmp_path / "bf16"))
    assert bf16.returncode == 0, bf16.stderr
    assert "--population auto: seeds train as one population on a CPU in bf16" in bf16.stderr
    assert {row["population"] for row in _rows(tmp_path / "bf16")} == {"2"}
    alone = run_cli(
        *base[:-2], "--seeds", "0", "--out", str(tmp_path / "one")
    )  # one seed: nothing to choose, nothing said
    assert alone.returncode == 0 and "--population" not in alone.stderr


def _rows(out):
    import csv

    with open(out / "results.csv") as file:
        return list(csv.DictReader(file))
