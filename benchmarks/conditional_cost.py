"""What conditioning costs, as ratios of images/s of a conditional architecture over its unconditional
twin, measured in one process (not a timed test).

    GBENCH_DATA=../shared/data python benchmarks/conditional_cost.py [--steps 30] [--members 3] [--rounds 10]

Pairs at S1's and S2's settings, MNIST, fp32, the default loss: `mlp` against `cmlp`
(discriminator=concat: the label embedding concatenated to z and to the image) and `dcgan`
against `cdcgan` (discriminator=projection), each solo and as a population of ``--members``
seeds. A conditional step adds a label lookup per batch, the labels' draw from the class
frequencies (one multinomial per fake batch) and the embeddings. After a warm-up, each round
runs the two of a pair back to back in alternating order; the shared machine's load swings
within minutes, so the figure is the median over rounds of each pair's ratio.

Last line: one name=ratio per pair and mode (below 1 is conditioning's cost).
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
from gbench.training import runner
from gbench.training.nets import build
from gbench.training.population.loop import Member, train_population
from gbench.training.trainer import TrainSettings, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402  (the benchmarks are scripts side by side, not a package)

PAIRS = {  # name: (unconditional, conditional, their shared params, the conditional one's own)
    "mlp": ("mlp", "cmlp", {"latent_dim": 64, "hidden_dim": 256, "batch_size": 100}, {"discriminator": "concat"}),
    "dcgan": ("dcgan", "cdcgan", {"latent_dim": 64, "hidden_dim": 32, "batch_size": 64}, {}),
}


def images_per_second(registry, cache, architecture, params, steps, members, device) -> float:
    """One run (``members`` 0) or one population, timed from the first step to the last."""
    configs = []
    for seed in range(max(members, 1)):
        config = RunConfig(architecture=architecture, seed=seed, train_limit=10_000)
        configs.append(dataclasses.replace(config, params=resolve_params(registry, config, params)))
    data = cache.training_tensor(registry, configs[0], device)
    conditioning = (
        runner.conditioning(registry, configs[0], cache, device)
        if registry.architecture(architecture).conditional
        else None
    )
    builds = [build(registry, config, device) for config in configs]
    batch = int(configs[0].params["batch_size"])
    settings = TrainSettings(steps=steps, batch_size=batch, lr=2e-4, log_every=100)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    if members == 0:
        nets, loss, schedule = builds[0]
        images = train(nets, loss, schedule, data, settings, conditioning=conditioning).images
    else:
        population = [Member(nets, schedule, seed) for seed, (nets, _, schedule) in enumerate(builds)]
        images = sum(r.images for r in train_population(population, builds[0][1], data, settings, conditioning))
    if device.type == "cuda":
        torch.cuda.synchronize()
    assert images == steps * batch * max(members, 1)  # healthy: every step taken
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"CPU: {cpu_model()}; device {device}; torch {torch.__version__}; {args.steps} steps, {args.rounds} rounds")
    registry = load_plugins(extra=["plugins.conditional"]).registry
    cache = runner.DataCache()
    ratios: dict[str, list[float]] = {}
    for name, (plain, conditional, shared, own) in PAIRS.items():
        for mode, members in (("solo", 0), ("population", args.members)):
            for architecture, params in ((plain, shared), (conditional, {**shared, **own})):  # warm-up, untimed
                images_per_second(registry, cache, architecture, params, 3, members, device)
            for round_number in range(args.rounds):
                rates = {}
                order = (False, True) if round_number % 2 == 0 else (True, False)  # neither always goes first
                for conditioned in order:
                    architecture, params = (conditional, {**shared, **own}) if conditioned else (plain, shared)
                    rates[conditioned] = images_per_second(
                        registry, cache, architecture, params, args.steps, members, device
                    )
                ratios.setdefault(f"{name}_{mode}", []).append(rates[True] / rates[False])
            median = statistics.median(ratios[f"{name}_{mode}"])
            print(f"{conditional} over {plain}, {mode}: median images/s ratio {median:.3f}", flush=True)
    print(" ".join(f"{key}={statistics.median(values):.3f}" for key, values in ratios.items()))


if __name__ == "__main__":
    main()
