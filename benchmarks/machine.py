"""What every benchmark prints first: the machine its figures come from (ratios compare only within one run);
and the timing the benchmarks share: S1's baseline trained and timed, a feature's cost as paired ratios."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def cpu_model() -> str:
    """The CPU's model name and the logical CPUs this process sees, e.g. 'AMD EPYC 9R14 (2 logical CPUs)'."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(device: Any) -> str:  # a torch.device: torch is imported when this is called, not for cpu_model
    """The GPU's name on CUDA, else the CPU's model and torch's threads."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model().rsplit(" (", 1)[0] + f" ({torch.get_num_threads()} threads)"


def best_seconds(work: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` calls of ``work``, in seconds: the one least slowed by the shared machine's load."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def timed_metric(metric: Any, seconds: dict[str, float]) -> Any:
    """The same gbench Metric with its compute timed: the best time over calls goes to ``seconds[metric.name]``."""
    import dataclasses

    def compute(inputs: Any) -> Any:
        started = time.perf_counter()
        values = metric.compute(inputs)
        seconds[metric.name] = min(seconds.get(metric.name, float("inf")), time.perf_counter() - started)
        return values

    return dataclasses.replace(metric, compute=compute)


def sync(device: Any) -> None:
    """Wait for the GPU's queued work (a no-op on CPU): a timer read after it counts the work done."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: S1's baseline: MLP GAN, latent 64, hidden 256, batch 100, MNIST, fp32.
BATCH, LR = 100, 2e-4
BASELINE_PARAMS = {"latent_dim": 64, "hidden_dim": 256, "batch_size": BATCH, "lr": LR}


def baseline_images_per_second(
    registry: Any, data: Any, steps: int, members: int, device: Any, **settings: Any
) -> float:
    """S1's baseline trained solo (``members`` 0) or as a population of ``members`` seeds, timed from the first step
    to the last; ``settings``: more TrainSettings fields (``ema=0.999``)."""
    import dataclasses

    from gbench.config import RunConfig, resolve_params
    from gbench.training.population.loop import Member, train_population
    from gbench.training.runner import build
    from gbench.training.trainer import TrainSettings, train

    train_settings = TrainSettings(steps=steps, batch_size=BATCH, lr=LR, log_every=100, **settings)
    builds = []
    for seed in range(max(members, 1)):
        config = RunConfig(architecture="mlp", seed=seed, params=dict(BASELINE_PARAMS))
        config = dataclasses.replace(config, params=resolve_params(registry, config))
        builds.append(build(registry, config, device))
    sync(device)
    start = time.perf_counter()
    if members == 0:
        nets, loss, schedule = builds[0]
        images = train(nets, loss, schedule, data, train_settings).images
    else:
        population = [Member(nets, schedule, seed) for seed, (nets, _, schedule) in enumerate(builds)]
        images = sum(result.images for result in train_population(population, builds[0][1], data, train_settings))
    sync(device)
    assert images == steps * BATCH * max(members, 1)  # healthy: every step taken
    return images / (time.perf_counter() - start)


def paired_ratios(
    measure: Callable[[int, bool, int], float], steps: int, members: int, rounds: int, label: str
) -> None:
    """Print the median over rounds of images/s with a feature over images/s without, solo and as a population.

    ``measure(members, with_feature, steps)``: images/s of one run (``members`` 0) or one population. After an
    untimed warm-up, each round runs the two back to back, in alternating order: the shared machine's load swings
    several-fold within minutes, so the figure is the median of each pair's ratio (the best rates are printed too).
    Last line: ``solo_ratio=X.XXX population_ratio=Y.YYY``; below 1 is the feature's cost.
    """
    # warm-up, untimed: the first run of a process pays for allocations and thread pools
    for kind_members in (0, members):
        for with_feature in (True, False):
            measure(kind_members, with_feature, 5)
    best: dict[tuple[str, bool], float] = {}
    ratios: dict[str, list[float]] = {"solo": [], "population": []}
    for round_number in range(rounds):
        for kind, kind_members in (("solo", 0), ("population", members)):
            rates = {}
            # neither always goes first
            for with_feature in (True, False) if round_number % 2 == 0 else (False, True):
                rates[with_feature] = measure(kind_members, with_feature, steps)
                best[kind, with_feature] = max(best.get((kind, with_feature), 0.0), rates[with_feature])
            # back to back: the shared machine's load changes less in between
            ratios[kind].append(rates[True] / rates[False])
    for kind in ("solo", "population"):
        print(
            f"{kind:10s}  best {label} {best[kind, True]:7.0f} images/s, without {best[kind, False]:7.0f}; "
            f"median pair ratio {statistics.median(ratios[kind]):.3f}"
        )
    print(
        f"solo_ratio={statistics.median(ratios['solo']):.3f} "
        f"population_ratio={statistics.median(ratios['population']):.3f}"
    )
