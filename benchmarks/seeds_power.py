"""The real power of the report's Welch test at the difference
gbench.analysis.stats calls detectable (a simulation, not a timed test).

    python benchmarks/seeds_power.py [--trials 40000] [--seed 0]

For n seeds per setting and equal spreads (sd 1 on both sides), the true
difference is set to ``detectable_difference(1, n, 1, n)``, the difference the
t approximation promises to detect with 80% power; the script draws ``--trials``
pairs of samples of n normal values each and counts how often the two-sided
Welch test at 5% rejects. The docstring of gbench.analysis.stats states what it
prints, and ``seeds_needed`` starts at 3 seeds because of the n = 2 line.

Last line: power_2=... power_3=... power_5=... power_10=...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from gbench.analysis.stats import ALPHA, POWER, detectable_difference

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402  (the benchmarks are scripts side by side, not a package)

SEEDS = (2, 3, 5, 10)


def simulated_power(n: int, trials: int, rng: np.random.Generator) -> tuple[float, float]:
    """(the difference called detectable at n seeds, the share of Welch tests that reject at it)."""
    difference = detectable_difference(1.0, n, 1.0, n)
    assert difference is not None
    a = rng.normal(difference, 1.0, (trials, n))
    b = rng.normal(0.0, 1.0, (trials, n))
    p = stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue
    return difference, float(np.mean(p < ALPHA))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"machine: {cpu_model()}")
    rng = np.random.default_rng(args.seed)
    powers = {}
    for n in SEEDS:
        difference, power = simulated_power(n, args.trials, rng)
        se = 1 / np.sqrt(args.trials) * np.sqrt(power * (1 - power))
        print(
            f"{n:>3} seeds: detectable difference {difference:.3f} sd, promised power "
            f"{POWER:.2f}, simulated {power:.3f} (± {1.96 * se:.3f})"
        )
        powers[n] = power
    print(" ".join(f"power_{n}={p:.3f}" for n, p in powers.items()))


if __name__ == "__main__":
    main()
