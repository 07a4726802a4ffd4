"""Latent interpolation strips (study S4; ``gbench interpolate``).

A finished run's generator walks the straight line between two latent
vectors and beyond it; the strip is written with the store's atomic writer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from gbench.errors import GbenchError
from gbench.results import store

if TYPE_CHECKING:
    from gbench.plugins.registry import Registry


def interpolation_images(generator, latent_dim: int, steps: int = 10, seed: int = 0, device: str = "cpu"):
    """Images along z0 -> z1 (alpha 0..1) and beyond it (alpha -1..2), ``steps`` each.

    Returns ``(images, alphas)``: a ``(2 * steps, C, H, W)`` tensor, the
    interpolation first, then the extrapolation, and the ``2 * steps`` alphas.
    The two latent vectors come from a generator seeded with ``seed``.
    """
    import torch

    if steps < 2:
        raise GbenchError(f"--steps {steps} is too few; an interpolation needs at least 2 steps, e.g. --steps 10")
    ends = torch.randn(2, latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    # in float64 so that alpha 0 and 1 fall exactly on the grid (-1 + 3 * 3/9 == 0.0)
    alphas = torch.tensor(
        [i / (steps - 1) for i in range(steps)] + [-1 + 3 * i / (steps - 1) for i in range(steps)], dtype=torch.float64
    )
    noise = (
        ((1 - alphas)[:, None] * ends[0].double().cpu() + alphas[:, None] * ends[1].double().cpu()).float().to(device)
    )
    from gbench.torchtools import eval_mode  # torch only once there is a generator to run

    with eval_mode(generator), torch.no_grad():
        images = generator(noise)
    return images, alphas.tolist()


def write_interpolation(
    run_dir: str | os.PathLike,
    path: str | os.PathLike,
    registry: Registry,
    steps: int = 10,
    seed: int = 0,
    scale: int = 1,
) -> Path:
    """Load a finished run's generator and write its interpolation strip.

    ``registry`` rebuilds the generator: the plugins the caller loaded (library
    code never loads plugins itself, so that every part of one command sees
    the same set).

    The PNG has two rows of ``steps`` images with 2 pixels of padding: the
    top row interpolates (alpha 0 to 1), the bottom one extrapolates (alpha
    -1 to 2), so it is ``steps * (W + 2) + 2`` pixels wide and ``2 * (H + 2) + 2`` high;
    ``scale`` enlarges each image that many times (nearest neighbour), for a page.
    """
    import torch.nn.functional as F

    from gbench.training.runner import load_run

    _, nets = load_run(run_dir, registry)
    images, _ = interpolation_images(nets.generator, nets.latent_dim, steps, seed)
    if scale > 1:  # a 28-pixel digit is a speck on a page: the report draws its strips at 3x
        images = F.interpolate(images, scale_factor=scale, mode="nearest")
    path = Path(path)
    store.save_image_grid(path, images, nrow=steps)
    return path
