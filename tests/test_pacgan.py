"""Packing (PacGAN, issue #33 point 7): docs/examples/pacgan.py as a plugin file.

pacdcgan2 trains on stacked-mnist from the command line as a population of two;
its inner discriminator sees (B/2, 6, 28, 28) in a solo run; a population member
ends where its solo run does (tests/test_population.py's tolerance); a batch size
that is not a multiple of the packing is one line, exit 2, before anything trains.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, run_cli
from test_population import _assert_close_to_solo, _settings

from gbench.config import RunConfig, resolve_params
from gbench.plugins.loading import load_plugins
from gbench.results import store
from gbench.training.population.loop import Member, train_population
from gbench.training.runner import DataCache, build
from gbench.training.trainer import train

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "pacgan.py"
CPU = torch.device("cpu")
STEPS = 4
TINY = {"latent_dim": 8, "hidden_dim": 8, "batch_size": 8}


@pytest.fixture(scope="module")
def pac_registry():
    return load_plugins([str(EXAMPLE)]).registry


@pytest.fixture(scope="module")
def stacked(pac_registry):
    return DataCache().training_tensor(
        pac_registry, RunConfig(architecture="pacdcgan2", dataset="stacked-mnist", train_limit=200), CPU
    )


def _config(registry, seed: int, architecture: str = "pacdcgan2") -> RunConfig:
    config = RunConfig(architecture=architecture, dataset="stacked-mnist", seed=seed)
    return dataclasses.replace(config, params=resolve_params(registry, config, TINY))


@pytest.mark.parametrize("architecture", ["pacdcgan2", "pacmlp2"])
def test_the_inner_discriminator_sees_packs_along_channels(pac_registry, stacked, architecture):
    config = _config(pac_registry, 0, architecture)
    nets, loss, schedule = build(pac_registry, config, CPU)
    seen = []
    nets.discriminator.discriminator.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach().clone())
    )
    result = train(nets, loss, schedule, stacked, _settings(config, 2))
    assert result.status == "ok" and seen and {tuple(x.shape) for x in seen} == {(4, 6, 28, 28)}
    # one logit per image, its pack's: the pack is two consecutive images side by side along channels
    seen.clear()
    images = stacked[:8]
    logits = nets.discriminator(images)
    assert logits.shape == (8,) and torch.equal(logits[0::2], logits[1::2])
    assert torch.equal(seen[0][1], torch.cat([images[2], images[3]]))


def test_a_population_member_ends_where_its_solo_run_does(pac_registry, stacked):
    solo, members = [], []
    for seed in (0, 1):
        config = _config(pac_registry, seed)
        nets, loss, schedule = build(pac_registry, config, CPU)
        solo.append((nets, train(nets, loss, schedule, stacked, _settings(config, STEPS))))
        nets, loss, schedule = build(pac_registry, config, CPU)
        members.append(Member(nets, schedule, seed))
    results = train_population(members, loss, stacked, _settings(config, STEPS))
    _assert_close_to_solo(solo, members, results, steps=STEPS)


def test_pacdcgan2_trains_as_a_population_from_the_plugin_file(tmp_path):
    out = tmp_path / "runs"
    args = [
        "--dataset",
        "stacked-mnist",
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--train-limit",
        "200",
        "--eval-samples",
        "0",
        "--set",
        "hidden_dim=8",
    ]
    result = run_cli(
        "run",
        str(EXAMPLE),
        "--architecture",
        "pacdcgan2",
        *args,
        "--seeds",
        "0,1",
        "--population",
        "on",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "not as a population" not in result.stdout + result.stderr
    rows = store.read_results(out)
    assert (
        sorted((row["architecture"], str(row["population"]), row["status"]) for row in rows)
        == [("pacdcgan2", "2", "ok")] * 2
    )


def test_a_batch_size_not_a_multiple_of_the_packing_is_one_line_before_training(tmp_path):
    out = tmp_path / "runs"
    result = run_cli(
        "run",
        str(EXAMPLE),
        "--architecture",
        "pacdcgan3",
        "--dataset",
        "stacked-mnist",
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--out",
        str(out),
    )
    assert_one_line_error(result, "pacdcgan3", "batch_size 8 is not a multiple of its packing 3", "--batch-size 6")
    assert not (out / "results.csv").exists() and not any(out.glob("*/generator.pt"))
