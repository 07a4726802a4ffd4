"""The benchmarks' own arithmetic: what they print besides timings must be right."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from gbench.config import RunConfig
from gbench.training.runner import DataCache


def _benchmark(name: str):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_ceilings_flop_count_is_the_hand_count_of_an_mlp_gan_step(registry):
    """population_speed's ceiling divides a peak matmul rate by the FLOPs a solo run does per image;
    torch's counter over gbench's real trainer must give what the step's layers add up to by hand."""
    speed = _benchmark("population_speed")
    data = DataCache().training_tensor(registry, RunConfig(architecture="mlp", train_limit=600), torch.device("cpu"))
    params = speed.CELLS["mlp"]["params"]
    assert speed.flops_per_image(registry, data, "mlp") == speed.mlp_flops_per_image(params["latent_dim"], params["hidden_dim"])
    assert speed.mlp_flops_per_image(64, 256) == 5_124_096  # 512,409,600 per step of 100 images
    assert speed.mlp_flops_per_image(64, 512) > speed.mlp_flops_per_image(64, 256)


def test_the_profile_counts_every_matmul_of_a_population_step_in_its_matmul_group(registry):
    """population_profile's shares are only as right as its grouping: an S1 MLP GAN step has 30 batched
    matmuls by hand (D step: G forward 3, D forward on real and fake 6, their backward 10 = weight gradients
    3 + 3 and the input gradients of D's upper two layers 2 + 2; G step: D forward 3, D's input gradients 3,
    G's weight gradients 3 and its upper layers' input gradients 2). Two runs' difference cancels the
    one-off layout probe; a cast or Adam counted as a matmul, or a matmul missed, changes the count."""
    profile = _benchmark("population_profile")
    data = DataCache().training_tensor(registry, RunConfig(architecture="mlp", train_limit=600), torch.device("cpu"))
    short, long = (profile.profile_population(registry, data, "mlp", 2, steps, "bf16") for steps in (2, 5))
    assert long.calls["matmul"] - short.calls["matmul"] == 30 * 3
    assert long.calls["optimizer"] - short.calls["optimizer"] == 4 * 3  # for G and for D: one fused Adam, one step-count add
    assert long.calls["cast"] > short.calls["cast"]  # bf16: every weight is cast once per use
    assert all(seconds >= 0 for seconds in long.seconds.values()) and long.seconds["matmul"] > 0
    assert profile.group_of("bmm") == "matmul" and profile.group_of("_to_copy") == "cast" and profile.group_of("_fused_adam_") == "optimizer"
    assert profile.group_of("relu") == "other"
