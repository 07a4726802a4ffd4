"""Do populations and bf16 change the answer? FIDs over seeds, Welch-tested, in one process.

Two comparisons on S1's baseline MLP GAN (latent 64, hidden 256, batch 100,
Adam 2e-4, MNIST), each run an ordinary gbench run with its evaluation
(the dataset's LeNet features, --eval-samples images):

- population: seeds 0..N-1 (default 8) trained as one fp32 population against
  the same seeds trained solo, one after another (the issue's point 2);
- precision: seeds 0..M-1 (default 5) as one population, fp32 against bf16
  autocast (point 5), with the training seconds of each.

Each prints the mean FID ± sd of both sides, the difference with Welch's 95%
interval and p (gbench.analysis.stats, checked here against scipy's own ttest_ind),
and the last line reads:

    population_fid_diff=D p=P bf16_fid_diff=D p=P bf16_train_speedup=S

    GBENCH_DATA=../shared/data python benchmarks/seed_equivalence.py [--steps 1200] [--eval-samples 10000]

The budget is a fraction of S1's 200 epochs (default 1,200 steps, 2 epochs) so
that it fits beside other work on 2 cores; it prints the CPU model (or GPU).
Measured with --steps 600 --eval-samples 5000 on 2026-12-04 (AMD EPYC, 2 threads,
nothing else running, 2 min): population_fid_diff=-1.69 p=0.546
bf16_fid_diff=-2.89 p=0.347 bf16_train_speedup=1.79, and later that day, with one cast per weight
(gbench.training.population.stack.BatchedAutocast): -1.69 p=0.546, -0.28 p=0.933, 2.16; on 2026-12-02 (Intel Xeon
with AMX, 1 thread beside a running study, before the population bf16 casts):
-0.62 p=0.844, +3.77 p=0.067, 1.14.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from scipy import stats as scipy_stats

from gbench.analysis.stats import welch_difference
from gbench.config import EvalOptions, RunConfig, resolve_params
from gbench.plugins.loading import load_plugins
from gbench.torchtools import resolve_device
from gbench.training.population.run import execute_population
from gbench.training.runner import DataCache, execute

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402  (the benchmarks are scripts side by side, not a package)


def compare(name: str, left: str, a: list[float], right: str, b: list[float]) -> tuple[float, float]:
    diff, low, high = welch_difference(b, a)
    p = float(scipy_stats.ttest_ind(b, a, equal_var=False).pvalue)  # scipy's own test, beside gbench's interval
    verdict = "not distinguishable from seed noise" if p >= 0.05 else "a real difference (p < 0.05)"
    print(
        f"{name}: {left} {statistics.mean(a):.2f} ± {statistics.stdev(a):.2f}, {right} "
        f"{statistics.mean(b):.2f} ± {statistics.stdev(b):.2f} (n {len(a)} each)"
    )
    print(f"  {right} - {left}: {diff:+.2f} FID, Welch 95% [{low:+.2f}, {high:+.2f}], p {p:.3f}: {verdict}")
    return diff, p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--eval-samples", type=int, default=10000)
    parser.add_argument("--population-seeds", type=int, default=8)
    parser.add_argument("--precision-seeds", type=int, default=5)
    args = parser.parse_args()

    registry = load_plugins().registry
    device = resolve_device("auto")
    print(
        f"device: {machine(device)}; torch {torch.__version__}; S1 baseline, "
        f"{args.steps} steps, FID on {args.eval_samples:,} samples"
    )
    cache = DataCache()

    def config(seed: int, precision: str = "fp32") -> RunConfig:
        base = RunConfig(
            architecture="mlp",
            seed=seed,
            steps=args.steps,
            eval=EvalOptions(samples=args.eval_samples),
            log_every=args.steps,
            precision=precision,
        )
        base = dataclasses.replace(
            base,
            params=resolve_params(
                registry, base, {"latent_dim": 64, "hidden_dim": 256, "batch_size": 100, "lr": 0.0002}
            ),
        )
        return base

    with tempfile.TemporaryDirectory() as out:
        seeds = range(args.population_seeds)
        together, _ = execute_population([config(s) for s in seeds], registry, out + "/population", cache=cache)
        alone = [execute(dataclasses.replace(config(s)), registry, out + "/solo", cache=cache) for s in seeds]
        pop_diff, pop_p = compare(
            "population against solo", "solo", [r["fid"] for r in alone], "population", [r["fid"] for r in together]
        )

        seeds = range(args.precision_seeds)
        timed = {}
        fids = {}
        for precision in ("fp32", "bf16"):
            started = time.perf_counter()
            rows, reason = execute_population(
                [config(s, precision) for s in seeds], registry, f"{out}/{precision}", cache=cache
            )
            timed[precision] = sum(r["train_seconds"] for r in rows) / len(rows)
            fids[precision] = [r["fid"] for r in rows]
            print(
                f"{precision}: train seconds per member {timed[precision]:.1f} (wall "
                f"{time.perf_counter() - started:.1f} s){'; ' + reason if reason else ''}"
            )
        bf16_diff, bf16_p = compare("bf16 against fp32", "fp32", fids["fp32"], "bf16", fids["bf16"])
    print(
        f"population_fid_diff={pop_diff:+.2f} p={pop_p:.3f} bf16_fid_diff={bf16_diff:+.2f} p={bf16_p:.3f} "
        f"bf16_train_speedup={timed['fp32'] / timed['bf16']:.2f}"
    )


if __name__ == "__main__":
    main()
