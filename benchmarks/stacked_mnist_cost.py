"""What Stacked MNIST costs beside MNIST: building its 128,000
training images in memory, and its 26,000-sample mode metrics.

Prints the CPU first, then each figure as a ratio to loading MNIST's 60,000
training images from their IDX files in the same run (ratios compare only
within one run). Usage: GBENCH_DATA=../shared/data python benchmarks/stacked_mnist_cost.py
"""

from __future__ import annotations

import torch
from machine import best_seconds, cpu_model

from gbench.data import load_split
from gbench.evaluation.stacked_modes import STACKED_SAMPLES, stacked_mnist_modes
from gbench.plugins.loading import load_plugins
from gbench.stacked_mnist import stack_digits, stacked_indices


def main() -> None:
    print(cpu_model(), f"torch threads {torch.get_num_threads()}")
    registry = load_plugins().registry
    mnist, stacked = registry.dataset("mnist"), registry.dataset("stacked-mnist")
    load_split(mnist, "train")  # warm the page cache: both sides read the same files
    mnist_s = best_seconds(lambda: load_split(mnist, "train"), 3)
    stacked_s = best_seconds(lambda: load_split(stacked, "train"), 3)
    print(f"load MNIST train (60,000 x 1x28x28): {mnist_s:.3f} s")
    print(
        "build Stacked MNIST train (128,000 x 3x28x28, 301 MB): "
        f"{stacked_s:.3f} s = {stacked_s / mnist_s:.1f}x the MNIST load"
    )
    images, labels = load_split(mnist, "test")
    samples, _ = stack_digits(images, labels, stacked_indices(len(images), STACKED_SAMPLES, seed=2))
    modes_s = best_seconds(lambda: stacked_mnist_modes(samples), 1)
    print(
        f"modes covered + KL on {STACKED_SAMPLES:,} samples (78,000 LeNet digits): "
        f"{modes_s:.2f} s = {modes_s / mnist_s:.1f}x the MNIST load"
    )


if __name__ == "__main__":
    main()
