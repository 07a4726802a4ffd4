"""Stacked MNIST: three MNIST digits stacked as the R, G, B channels, so 1,000 modes.

The protocol of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018):
a training set of 128,000 images, each channel an MNIST training digit drawn
uniformly and independently, and the label of an image is its mode
``100 * d0 + 10 * d1 + d2``. The draw is seeded, so every gbench user trains
on the same 128,000 images; the test split draws 10,000 triples from MNIST's
test digits the same way. Built in memory from MNIST's files on each load (a
gather, well under a second; 301 MB for the training split), nothing cached.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gbench.plugins.registry import Dataset

__all__ = ["STACKED_COUNTS", "STACKED_SEEDS", "stack_digits", "stacked_indices", "stacked_mnist_dataset"]

#: Images per split: 128,000 for training as in VEEGAN and PacGAN; 10,000 for testing.
STACKED_COUNTS = {"train": 128_000, "test": 10_000}
#: The fixed seed of each split's draw.
STACKED_SEEDS = {"train": 0, "test": 1}


def stacked_indices(source_size: int, count: int, seed: int) -> torch.Tensor:
    """``(count, 3)`` indices into the source digits, uniform with
    replacement, from ``seed`` (CPU generator: the same everywhere)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, source_size, (count, 3), generator=generator)


def stack_digits(
    images: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``(N, 3, 28, 28)`` images whose channel c is digit
    ``indices[:, c]``, and their modes ``100*d0 + 10*d1 + d2``."""
    stacked = images[:, 0][indices]  # (N, 3, 28, 28): a gather, no copy per channel
    digits = labels[indices]
    return stacked, digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]


def stacked_mnist_dataset(mnist: Dataset, name: str = "stacked-mnist") -> Dataset:
    """The Stacked MNIST :class:`Dataset` built from the ``mnist`` dataset's files (wherever it finds them)."""

    def load(split: str, roots: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = mnist.load(split, roots)  # unknown split or missing files: mnist's own error line
        return stack_digits(images, labels, stacked_indices(len(images), STACKED_COUNTS[split], STACKED_SEEDS[split]))

    return Dataset(
        name=name,
        load=load,
        image_shape=(3, 28, 28),
        num_classes=1000,
        class_names=tuple(f"{mode:03d}" for mode in range(1000)),
        description=(
            "Stacked MNIST (VEEGAN/PacGAN): 3 MNIST digits as RGB, 1,000 modes; "
            "seeded 128,000 train + 10,000 test, 3x28x28"
        ),
    )
