"""What catching divergence at its step costs a healthy run, as ratios measured in one process (not a timed test).

    GBENCH_DATA=../shared/data python benchmarks/divergence_cost.py [--steps 30] [--members 3] [--rounds 30] [--device auto]

S1's baseline (MLP GAN, latent 64, hidden 256, batch 100, MNIST, fp32), trained
solo and as a population of ``--members`` seeds, each twice: as gbench trains
it (the flag on the device: a finiteness check per loss, the solo Adam's
``found_inf``, the population's kept weights, gbench.training.divergence) and
with the flag's per-step work patched out in this process (the loops as they
were before it, but for the row sums' torch.where on four numbers). After a
warm-up, each round runs the two back to back, in alternating order; the
shared machine's load swings several-fold within minutes, so the figure is
the median over rounds of each pair's ratio (the best rates are printed too).

Last line: solo_ratio=X.XXX population_ratio=Y.YYY (median of images/s with the
flag over images/s without, per round; below 1 is the flag's cost).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import torch

from gbench.config import RunConfig, resolve_params
from gbench.plugins.loading import load_plugins
from gbench.torchtools import resolve_device
from gbench.training import trainer
from gbench.training.divergence import DivergenceWatch, KeptWeights
from gbench.training.population.loop import Member, train_population
from gbench.training.runner import DataCache, build
from gbench.training.trainer import TrainSettings, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402  (the benchmarks are scripts side by side, not a package)

BATCH, LR = 100, 2e-4
PARAMS = {"latent_dim": 64, "hidden_dim": 256, "batch_size": BATCH, "lr": LR}


@contextlib.contextmanager
def flag_off() -> Iterator[None]:
    """The flag's per-step work as no-ops: no check, a plain optimizer step, no kept weights."""
    with (
        mock.patch.object(DivergenceWatch, "check", lambda self, *args: None),
        mock.patch.object(trainer, "halting_step", lambda optimizer, halted: optimizer.step),
        mock.patch.object(KeptWeights, "after_step", lambda self, halted: None),
    ):
        yield


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def images_per_second(registry, data: torch.Tensor, steps: int, members: int, device: torch.device) -> float:
    """One run (``members`` 0) or one population, timed from the first step to the last."""
    settings = TrainSettings(steps=steps, batch_size=BATCH, lr=LR, log_every=100)
    builds = []
    for seed in range(max(members, 1)):
        config = RunConfig(architecture="mlp", seed=seed, params=dict(PARAMS))
        config = dataclasses.replace(config, params=resolve_params(registry, config))
        builds.append(build(registry, config, device))
    sync(device)
    start = time.perf_counter()
    if members == 0:
        nets, loss, schedule = builds[0]
        result = train(nets, loss, schedule, data, settings)
        images = result.images
    else:
        results = train_population(
            [Member(nets, schedule, seed) for seed, (nets, _, schedule) in enumerate(builds)],
            builds[0][1],
            data,
            settings,
        )
        images = sum(result.images for result in results)
    sync(device)
    assert images == steps * BATCH * max(members, 1)  # healthy: every step taken
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    registry = load_plugins().registry
    data = DataCache().training_tensor(registry, RunConfig(architecture="mlp"), device)
    print(
        f"CPU: {cpu_model()}; device {device}; torch {torch.__version__}; {args.steps} steps, best of {args.rounds} rounds"
    )

    for members in (
        0,
        args.members,
    ):  # warm-up, untimed: the first run of a process pays for allocations and thread pools
        images_per_second(registry, data, 5, members, device)
    best: dict[tuple[str, bool], float] = {}
    ratios: dict[str, list[float]] = {"solo": [], "population": []}
    for round_number in range(args.rounds):
        for kind, members in (("solo", 0), ("population", args.members)):
            rates = {}
            for flag in (True, False) if round_number % 2 == 0 else (False, True):  # neither always goes first
                with contextlib.nullcontext() if flag else flag_off():
                    rates[flag] = images_per_second(registry, data, args.steps, members, device)
                best[kind, flag] = max(best.get((kind, flag), 0.0), rates[flag])
            ratios[kind].append(
                rates[True] / rates[False]
            )  # back to back: the shared machine's load changes less in between
    for kind in ("solo", "population"):
        print(
            f"{kind:10s}  best with the flag {best[kind, True]:7.0f} images/s, without {best[kind, False]:7.0f}; median pair ratio {statistics.median(ratios[kind]):.3f}"
        )
    print(
        f"solo_ratio={statistics.median(ratios['solo']):.3f} population_ratio={statistics.median(ratios['population']):.3f}"
    )


if __name__ == "__main__":
    main()
