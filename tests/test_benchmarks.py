"""The benchmarks' own arithmetic: what they print besides timings must be right."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from gbench.config import RunConfig
from gbench.runner import DataCache


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
