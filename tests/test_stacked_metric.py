"""Stacked MNIST's modes as results columns (issue #33 point 3): the built-in metric `stacked_modes`.

A tiny run on stacked-mnist writes `stacked_modes_covered` and `stacked_mode_kl`
equal to an independent recomputation from the run's own generator.pt: the
evaluation's noise drawn again (torch-fidelity's seeded numpy normal), the
channels read as digits by the LeNet, the KL as PacGAN's code takes it
(scipy's entropy(p_gen, uniform)). An MNIST run's row leaves both empty.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from conftest import run_cli
from scipy.stats import entropy

from gbench.data import to_uint8
from gbench.evaluation.stacked_modes import STACKED_MODES, channel_digits
from gbench.results import store
from plugins.mlp import build_mlp

SMALL = [
    "--steps",
    "2",
    "--train-limit",
    "400",
    "--eval-samples",
    "300",
    "--batch-size",
    "50",
    "--set",
    "hidden_dim=32",
    "--device",
    "cpu",
]


def _run_folder(out: Path) -> Path:
    (folder,) = [path for path in out.iterdir() if path.is_dir()]
    return folder


def test_a_stacked_mnist_row_holds_the_modes_of_its_own_samples(tmp_path):
    out = tmp_path / "runs"
    trained = run_cli(
        "run", "plugins.mlp", "--architecture", "mlp", "--dataset", "stacked-mnist", *SMALL, "--out", str(out)
    )
    assert trained.returncode == 0, trained.stderr
    (row,) = store.read_results(out)
    assert row["fid_samples"] in (300, "300")

    # The final evaluation's samples, drawn again: seed = the run's
    # seed, z ~ numpy's RandomState(seed).randn(N, latent_dim).
    config = json.loads((_run_folder(out) / "config.json").read_text())
    nets = build_mlp(config["params"], (3, 28, 28))
    nets.generator.load_state_dict(torch.load(_run_folder(out) / "generator.pt", weights_only=True))
    noise = torch.from_numpy(np.random.RandomState(config["seed"]).randn(300, config["params"]["latent_dim"])).float()
    with torch.no_grad():
        samples = to_uint8(nets.generator.eval()(noise))
    digits = channel_digits(samples).numpy()
    counts = np.bincount(digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2], minlength=STACKED_MODES)
    p = counts / counts.sum()
    assert float(row["stacked_modes_covered"]) == np.count_nonzero(counts)
    assert math.isclose(
        float(row["stacked_mode_kl"]), entropy(p, np.full(STACKED_MODES, 1 / STACKED_MODES)), rel_tol=1e-9
    )
    # neither uniform nor a single mode after 2 steps
    assert 0 < float(row["stacked_mode_kl"]) < math.log(STACKED_MODES)


def test_an_mnist_row_leaves_the_stacked_columns_empty(tmp_path):
    out = tmp_path / "runs"
    trained = run_cli("run", "plugins.mlp", "--architecture", "mlp", *SMALL, "--eval-samples", "60", "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    header = store.read_csv(out / "results.csv")[0]
    assert "stacked_modes_covered" in header and "stacked_mode_kl" in header
    (row,) = store.read_results(out)
    for column in ("stacked_modes_covered", "stacked_mode_kl"):
        value = row.get(column)
        assert value in (None, "") or math.isnan(float(value)), (column, value)
    assert math.isfinite(float(row["fid"]))
