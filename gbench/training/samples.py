"""The picture of a run's generator: samples.png, and the samples observers get at each evaluation.

The noise is fixed (:data:`SAMPLE_GRID_SEED`), independent of the run's seed, so grids of
different runs and steps show the same z. An unconditional run's grid is 8 x 8 samples; a
conditional run's has one row per class, 8 columns, the same z down each column: a row
shows what its class looks like, a column what the label alone changes.
"""

from __future__ import annotations

import torch

from gbench import torchtools
from gbench.plugins.registry import Nets

SAMPLE_GRID_SEED = 1234  # fixed noise for samples.png, independent of the run's seed
COLUMNS = 8  # images per row of the grid


def fixed_noise(latent_dim: int, count: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(SAMPLE_GRID_SEED)
    return torch.randn(count, latent_dim, generator=generator).to(device)


@torch.no_grad()
def sample_images(nets: Nets, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    with torchtools.eval_mode(nets.generator):
        return nets.generator(noise) if labels is None else nets.generator(noise, labels)


def sample_grid(nets: Nets, device: torch.device) -> torch.Tensor:
    """The grid's images in row order (:data:`COLUMNS` per row): 64 samples, or one row per class."""
    if not nets.num_classes:
        return sample_images(nets, fixed_noise(nets.latent_dim, COLUMNS * COLUMNS, device))
    noise = fixed_noise(nets.latent_dim, COLUMNS, device).repeat(nets.num_classes, 1)  # row c: every column's z
    labels = torch.arange(nets.num_classes, device=device).repeat_interleave(COLUMNS)
    return sample_images(nets, noise, labels)
