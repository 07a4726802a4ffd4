"""What --ema costs, as ratios of images/s with and without it, measured in one process (not a timed test).

    GBENCH_DATA=../shared/data python benchmarks/ema_cost.py [--steps 30] [--members 3] [--rounds 20] \
        [--decay 0.999] [--device auto]

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
import sys
from pathlib import Path

import torch

from gbench.config import RunConfig
from gbench.plugins.loading import load_plugins
from gbench.torchtools import resolve_device
from gbench.training.runner import DataCache

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the benchmarks are scripts side by side, not a package
from machine import baseline_images_per_second, cpu_model, paired_ratios  # noqa: E402


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
        f"CPU: {cpu_model()}; device {device}; torch {torch.__version__}; "
        f"{args.steps} steps, {args.rounds} rounds, --ema {args.decay}"
    )
    registry = load_plugins().registry
    data = DataCache().training_tensor(registry, RunConfig(architecture="mlp"), device)

    def measure(members: int, with_ema: bool, steps: int) -> float:
        """The EMA put in at the end is timed too."""
        ema = args.decay if with_ema else None
        return baseline_images_per_second(registry, data, steps, members, device, ema=ema)

    paired_ratios(measure, args.steps, args.members, args.rounds, "with --ema")


if __name__ == "__main__":
    main()
