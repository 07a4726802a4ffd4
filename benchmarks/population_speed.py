"""Populations against solo runs: combined images per second, fp32 and bf16, in one process.

Cells: S1's baseline MLP GAN (latent 64, hidden 256, batch 100) and one S2
DCGAN cell (latent 16, hidden 16, batch 64), on MNIST. For each population
size N (1, 3, 8, 32 by default) it times N solo runs one after another with
gbench's trainer, and one population of N members with gbench's population
loop; the two are interleaved over rounds (the machine is shared and noisy)
and each takes its best round. The ratio is the population's combined
images/s over the solo runs' combined images/s.

    GBENCH_DATA=../shared/data python benchmarks/population_speed.py
    [--steps 40] [--rounds 2] [--sizes 1,3,8,32] [--quick]

Last line: population_speedup_8=X.XX population_speedup_8_bf16=Y.YY dcgan_population_speedup_8=Z.ZZ
(the bf16 ratio is the bf16 population against fp32 solo runs: what --precision bf16 buys on top).
Measured 2026-12-02 on the 2-core AMD EPYC with nothing else running, --sizes 1,3,8,32 --steps 30 --rounds 3:
seeds_3_cost=3.66, population_speedup_8=1.07 population_speedup_8_bf16=1.77 dcgan_population_speedup_8=1.05
(docs/speed.md has the table); on the 2-core Intel Xeon with AMX, 2026-12-04: seeds_3_cost=2.99,
population_speedup_8=1.29 population_speedup_8_bf16=1.50 dcgan_population_speedup_8=1.02, and after
gbench/memory.py kept freed memory: seeds_3_cost=2.93, 1.43 / 1.72 / 1.06; the AMD EPYC again on
2026-12-04 (5 min 19 s): seeds_3_cost=3.00, 1.11 / 1.89 / 1.03 (bf16 at 32 members 2.96). The MLP step is matmul-bound
on 2 cores and vmap's batched matmuls run at the rate of the same matmuls one by one, so batching saves per-operation
overhead only. Before the last line, ``seeds_3_cost=C.CC``: the training time of 3 seeds as one population over that
of one solo run (3 x the size-1 solo rate over the size-3 population rate; the issue's goal is at most 1.7), and
``seeds_3_cost_bf16``, the same with the population in bf16 (against the same fp32 solo run, as the bf16 ratio of the
last line is); from the 2026-12-04 EPYC run's rates above, 1.84. With 8 among the sizes, ``population_ceiling_8`` and
``population_ceiling_8_bf16`` say what no population of 8 can pass on this machine: the MLP's FLOPs per image (torch's
FlopCounterMode over a solo run, the same as the hand count in ``mlp_flops_per_image``) done at the peak rate of its
largest batched matmul, measured each round, over the rate 8 fp32 solo runs achieved. On a CPU it also prints how long
one fp32 batched matmul of the step's shapes takes against the same matmuls one by one (at 3 members on 2 threads,
0.99-1.23x: torch's bmm gives one thread 2 of the 3 matrices). Measured on the EPYC, 2026-12-04 late, --sizes 1,3,8,32
--steps 30 --rounds 3 (3 min 33 s): population_ceiling_8=1.80 population_ceiling_8_bf16=6.66 seeds_3_cost=3.57
seeds_3_cost_bf16=1.74, population_speedup_8=1.12 population_speedup_8_bf16=2.09 dcgan_population_speedup_8=0.94.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from gbench.config import RunConfig, resolve_params
from gbench.errors import GbenchError
from gbench.memory import keep_freed_memory
from gbench.plugins.loading import load_plugins
from gbench.torchtools import resolve_device
from gbench.training.population.loop import Member, train_population
from gbench.training.runner import DataCache, build
from gbench.training.trainer import TrainSettings, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine, sync  # noqa: E402  (the benchmarks are scripts side by side, not a package)

CELLS: dict[str, dict[str, Any]] = {
    "mlp": {"architecture": "mlp", "params": {"latent_dim": 64, "hidden_dim": 256, "batch_size": 100}},
    "dcgan": {"architecture": "dcgan", "params": {"latent_dim": 16, "hidden_dim": 16, "batch_size": 64}},
}


def configs(registry, cell: str, seeds: range) -> list[RunConfig]:
    out = []
    for seed in seeds:
        config = RunConfig(architecture=CELLS[cell]["architecture"], seed=seed)
        config = dataclasses.replace(config, params=resolve_params(registry, config, CELLS[cell]["params"]))
        out.append(config)
    return out


def settings(config: RunConfig, steps: int, precision: str) -> TrainSettings:
    return TrainSettings(
        steps=steps,
        batch_size=int(config.params["batch_size"]),
        lr=float(config.params["lr"]),
        log_every=steps,
        seed=config.seed,
        precision=precision,
    )


def time_solo(registry, data, cell, size, steps, precision) -> float:
    """Combined images/s of ``size`` solo runs, one after another (building excluded)."""
    seconds, images = 0.0, 0
    for config in configs(registry, cell, range(size)):
        nets, loss, schedule = build(registry, config, data.device)
        sync(data.device)
        started = time.perf_counter()
        result = train(nets, loss, schedule, data, settings(config, steps, precision))
        sync(data.device)
        seconds += time.perf_counter() - started
        images += result.images
    return images / seconds


def time_population(registry, data, cell, size, steps, precision) -> float:
    members, loss = [], None
    for config in configs(registry, cell, range(size)):
        nets, loss, schedule = build(registry, config, data.device)
        members.append(Member(nets, schedule, config.seed))
    sync(data.device)
    started = time.perf_counter()
    results = train_population(members, loss, data, settings(config, steps, precision))
    sync(data.device)
    return sum(result.images for result in results) / (time.perf_counter() - started)


def flops_per_image(registry, data, cell: str, steps: int = 3) -> float:
    """Floating-point operations per training image of one solo run of ``cell``, as torch's FlopCounterMode
    counts them over a few steps (matmuls and convolutions; element-wise work is not counted)."""
    config = configs(registry, cell, range(1))[0]
    nets, loss, schedule = build(registry, config, data.device)
    with FlopCounterMode(display=False) as counter:
        result = train(nets, loss, schedule, data, settings(config, steps, "fp32"))
    return counter.get_total_flops() / result.images


def mlp_flops_per_image(latent: int, hidden: int, pixels: int = 784) -> int:
    """The same count worked out by hand for S1's MLP GAN (3 Linear layers each; one D step, non-saturating loss).

    Per image: G forward g = L*H + H*H + H*P multiply-adds; one D forward d = P*H + H*H + H.
    D step: G forward, D forward on real and fake, their weight gradients and the input gradients of
    D's upper two layers (the images need none). G step: D forward, D's input gradients (its weights frozen),
    G's weight gradients and its upper two layers' input gradients. 2 operations per multiply-add.
    """
    L, H, P = latent, hidden, pixels
    g, d = L * H + H * H + H * P, P * H + H * H + H
    d_step = g + 2 * d + 2 * d + 2 * (H * H + H)
    g_step = d + d + g + (H * H + H * P)
    return 2 * (d_step + g_step)


def best_seconds(call: Any, device: torch.device, repeats: int = 20, rounds: int = 1) -> float:
    """Seconds for ``repeats`` calls of ``call`` after one warm-up call, the best of ``rounds``."""
    call()
    sync(device)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            call()
        sync(device)
        best = min(best, time.perf_counter() - started)
    return best


def bmm_rate(members: int, dtype: torch.dtype, device: torch.device, repeats: int = 20) -> float:
    """FLOP/s of the MLP's largest batched matmul (members x 100 x
    784 x 256) in ``dtype``: this machine's peak for the step."""
    x = torch.randn(members, 100, 784, device=device).to(dtype)
    w = torch.randn(members, 784, 256, device=device).to(dtype)
    return 2 * members * 100 * 784 * 256 * repeats / best_seconds(lambda: torch.bmm(x, w), device, repeats)


def bmm_against_mm(members: int, repeats: int = 20, rounds: int = 3) -> list[float]:
    """fp32 time of one batched matmul over that of the same ``members`` matmuls one by one (best of ``rounds``),
    per shape of the MLP step's (D's first layer forward and its weight gradient, a hidden layer, G's last layer)."""
    cpu, ratios = torch.device("cpu"), []
    for m, k, n in ((100, 784, 256), (100, 256, 256), (784, 100, 256), (256, 100, 784)):
        x, w = torch.randn(members, m, k), torch.randn(members, k, n)
        batched = best_seconds(lambda x=x, w=w: torch.bmm(x, w), cpu, repeats, rounds)
        ratios.append(
            batched
            / best_seconds(lambda x=x, w=w: [torch.mm(x[i], w[i]) for i in range(members)], cpu, repeats, rounds)
        )
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="generator steps per timed run (after a warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; each figure is its best round")
    parser.add_argument("--sizes", default="1,3,8,32", help="population sizes to time")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--quick", action="store_true", help="sizes 1,8, 20 steps, one round: a smoke test of the script"
    )
    args = parser.parse_args()
    try:
        kept = keep_freed_memory()  # as the gbench command does: what users get
    except GbenchError as error:
        parser.error(str(error))  # one line, exit 2
    if args.quick:
        args.sizes, args.steps, args.rounds = "1,8", 20, 1
    try:
        sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes {args.sizes!r}: give population sizes as whole numbers, e.g. 1,3,8,32")
    if min(sizes) < 1 or args.steps < 1 or args.rounds < 1:
        parser.error("--sizes, --steps and --rounds must be at least 1")
    device = resolve_device(args.device)
    registry = load_plugins().registry
    data = DataCache().training_tensor(registry, RunConfig(architecture="mlp", train_limit=10_000), device)
    print(
        f"machine: {machine(device)}; torch {torch.__version__}; {args.steps} steps "
        f"per run, best of {args.rounds} interleaved rounds; "
        f"malloc: {'freed memory kept (gbench/memory.py)' if kept else 'system defaults'}",
        flush=True,
    )

    for cell in CELLS:  # warm-up: first calls pay for allocation and kernel selection
        for precision in ("fp32", "bf16"):
            time_solo(registry, data, cell, 1, 3, precision)
            time_population(registry, data, cell, 2, 3, precision)

    per_image = flops_per_image(registry, data, "mlp")
    peaks = {"fp32": 0.0, "bf16": 0.0}
    best: dict[tuple[str, str, str, int], float] = {}
    jobs = [(cell, precision, size) for cell in CELLS for size in sizes for precision in ("fp32", "bf16")]
    for round_number in range(args.rounds):
        for cell, precision, size in jobs:
            for kind, timer in (("solo", time_solo), ("population", time_population)):
                rate = timer(registry, data, cell, size, args.steps, precision)
                key = (cell, precision, kind, size)
                best[key] = max(best.get(key, 0.0), rate)
        for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            peaks[precision] = max(peaks[precision], bmm_rate(8, dtype, device))
        print(f"round {round_number + 1}/{args.rounds} done", flush=True)

    print(
        f"{'cell':6} {'precision':9} {'members':>7} {'solo img/s':>11} "
        f"{'population img/s':>17} {'ratio':>6} {'vs fp32 solo':>12}"
    )
    for cell, precision, size in jobs:
        solo, population = best[(cell, precision, "solo", size)], best[(cell, precision, "population", size)]
        fp32_solo = best[(cell, "fp32", "solo", size)]
        print(
            f"{cell:6} {precision:9} {size:7d} {solo:11.0f} {population:17.0f} "
            f"{population / solo:6.2f} {population / fp32_solo:12.2f}"
        )

    def ratio(cell: str, precision: str) -> float:
        return best.get((cell, precision, "population", 8), float("nan")) / best.get(
            (cell, "fp32", "solo", 8), float("nan")
        )

    if 8 in sizes:  # what no population of 8 can pass here: every counted FLOP at the batched matmul's peak
        solo_rate = best[("mlp", "fp32", "solo", 8)] * per_image
        print(
            f"ceiling: the MLP's {per_image / 1e6:.2f} MFLOP per image; 8 fp32 "
            f"solo runs did {solo_rate / 1e9:.0f} GFLOP/s; "
            f"peak batched matmul {peaks['fp32'] / 1e9:.0f} GFLOP/s fp32, {peaks['bf16'] / 1e9:.0f} bf16"
        )
        print(
            f"population_ceiling_8={peaks['fp32'] / solo_rate:.2f} "
            f"population_ceiling_8_bf16={peaks['bf16'] / solo_rate:.2f}"
        )
    # why small populations can lose on a CPU: how torch's bmm shares a batch among threads
    if data.device.type == "cpu":
        ratios = {size: bmm_against_mm(size) for size in sizes if size <= 8}
        print(
            "fp32 bmm over the same matmuls one by one, MLP shapes: "
            + "; ".join(f"{size} members {min(r):.2f}-{max(r):.2f}" for size, r in ratios.items())
        )
    if 1 in sizes and 3 in sizes:
        one_seed = best[("mlp", "fp32", "solo", 1)]
        print(
            f"seeds_3_cost={3 * one_seed / best[('mlp', 'fp32', 'population', 3)]:.2f} "
            f"seeds_3_cost_bf16={3 * one_seed / best[('mlp', 'bf16', 'population', 3)]:.2f}"
        )
    print(
        f"population_speedup_8={ratio('mlp', 'fp32'):.2f} population_speedup_8_bf16={ratio('mlp', 'bf16'):.2f} "
        f"dcgan_population_speedup_8={ratio('dcgan', 'fp32'):.2f}"
    )


if __name__ == "__main__":
    main()
