"""What --ema costs, as ratios of images/s with and without it, measured in one process (not a timed test).

    GBENCH_DATA=../shared/data python benchmarks/ema_cost.py [--steps 30] [--members 3] [--rounds 20] [--decay 0.999] [--device auto]

S1's baseline (MLP GAN, latent 64, hidden 256, batch 100, MNIST, fp32), trained
solo and as a population of ``--members`` seeds, each with ``--ema`` (one fused
lerp over the generator's weights after each generator step, gbench.training.ema)
and without. After a warm-up, each round runs the two back to back, in alternating
order; the shared machine's load swings several-fold within minutes, so the figure
is the median over rounds of each pair's ratio (the best rates are printed too).

Last line: solo_ratio=X.XXX population_ratio=Y.YYY (median of images/s with --ema over
images/s without, per round; below 1 is the EMA's cost).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

from gbench.config import RunConfig, resolve_params
from gbench.plugins.loading import load_plugins
from gbench.torchtools import resolve_device
from gbench.training.population.loop import Member, train_population
from gbench.training.runner import DataCache, build
from gbench.training.trainer import TrainSettings, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402  (the benchmarks are scripts side by side, not a package)

BATCH, LR = 100, 2e-4
PARAMS = {"latent_dim": 64, "hidden_dim": 256, "batch_size": BATCH, "lr": LR}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def images_per_second(
    registry, data: torch.Tensor, steps: int, members: int, device: torch.device, ema: float | None
) -> float:
    """One run (``members`` 0) or one population, timed from the first step to the last (the EMA put in at the end included)."""
    settings = TrainSettings(steps=steps, batch_size=BATCH, lr=LR, log_every=100, ema=ema)
    builds = []
    for seed in range(max(members, 1)):
        config = RunConfig(architecture="mlp", seed=seed, params=dict(PARAMS))
        config = dataclasses.replace(config, params=resolve_params(registry, config))
        builds.append(build(registry, config, device))
    sync(device)
    start = time.perf_counter()
    if members == 0:
        nets, loss, schedule = builds[0]
        images = train(nets, loss, schedule, data, settings).images
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
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--decay", type=float, default=0.999)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(
        f"CPU: {cpu_model()}; device {device}; torch {torch.__version__}; {args.steps} steps, {args.rounds} rounds, --ema {args.decay}"
    )
    registry = load_plugins().registry
    data = DataCache().training_tensor(registry, RunConfig(architecture="mlp"), device)

    for members in (
        0,
        args.members,
    ):  # warm-up, untimed: the first run of a process pays for allocations and thread pools
        for ema in (args.decay, None):
            images_per_second(registry, data, 5, members, device, ema)
    best: dict[tuple[str, bool], float] = {}
    ratios: dict[str, list[float]] = {"solo": [], "population": []}
    for round_number in range(args.rounds):
        for kind, members in (("solo", 0), ("population", args.members)):
            rates = {}
            for with_ema in (True, False) if round_number % 2 == 0 else (False, True):  # neither always goes first
                rates[with_ema] = images_per_second(
                    registry, data, args.steps, members, device, args.decay if with_ema else None
                )
                best[kind, with_ema] = max(best.get((kind, with_ema), 0.0), rates[with_ema])
            ratios[kind].append(
                rates[True] / rates[False]
            )  # back to back: the shared machine's load changes less in between
    for kind in ("solo", "population"):
        print(
            f"{kind:10s}  best with --ema {best[kind, True]:7.0f} images/s, without {best[kind, False]:7.0f}; median pair ratio {statistics.median(ratios[kind]):.3f}"
        )
    print(
        f"solo_ratio={statistics.median(ratios['solo']):.3f} population_ratio={statistics.median(ratios['population']):.3f}"
    )


if __name__ == "__main__":
    main()
