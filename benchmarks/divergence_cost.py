"""What catching divergence at its step costs a healthy run, as ratios measured in one process (not a timed test).

    GBENCH_DATA=../shared/data python benchmarks/divergence_cost.py [--steps 30] [--members 3] [--rounds 30] \
        [--device auto]

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
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import torch

from gbench.config import RunConfig
from gbench.plugins.loading import load_plugins
from gbench.torchtools import resolve_device
from gbench.training import trainer
from gbench.training.divergence import DivergenceWatch, KeptWeights
from gbench.training.runner import DataCache

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the benchmarks are scripts side by side, not a package
from machine import baseline_images_per_second, cpu_model, paired_ratios  # noqa: E402


@contextlib.contextmanager
def flag_off() -> Iterator[None]:
    """The flag's per-step work as no-ops: no check, a plain optimizer step, no kept weights."""
    with (
        mock.patch.object(DivergenceWatch, "check", lambda self, *args: None),
        mock.patch.object(trainer, "halting_step", lambda optimizer, halted: optimizer.step),
        mock.patch.object(KeptWeights, "after_step", lambda self, halted: None),
    ):
        yield


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
        f"CPU: {cpu_model()}; device {device}; torch {torch.__version__}; "
        f"{args.steps} steps, best of {args.rounds} rounds"
    )

    def measure(members: int, flag: bool, steps: int) -> float:
        with contextlib.nullcontext() if flag else flag_off():
            return baseline_images_per_second(registry, data, steps, members, device)

    paired_ratios(measure, args.steps, args.members, args.rounds, "with the flag")


if __name__ == "__main__":
    main()
