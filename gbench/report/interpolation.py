"""Latent and class interpolation strips (study S4; ``gbench interpolate``).

A finished run's generator walks the straight line between two latent
vectors and beyond it; the strip is written with the store's atomic writer.
A conditional run's generator walks it at one class (class 0 unless asked), or,
with ``labels=(from, to)``, walks between two classes at one fixed z: its label
moves from one class to the other as soft labels (docs/plugins.md), which the
built-in conditional generators embed as the same mix of the two classes' embeddings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from gbench.errors import GbenchError
from gbench.results import store

if TYPE_CHECKING:
    from gbench.plugins.registry import Registry


def interpolation_images(
    generator,
    latent_dim: int,
    steps: int = 10,
    seed: int = 0,
    device: str = "cpu",
    labels: tuple[int, int] | None = None,
    num_classes: int = 0,
):
    """Images along z0 -> z1 (alpha 0..1) and beyond it (alpha -1..2), ``steps`` each.

    Returns ``(images, alphas)``: a ``(2 * steps, C, H, W)`` tensor, the
    interpolation first, then the extrapolation, and the ``2 * steps`` alphas.
    The two latent vectors come from a generator seeded with ``seed``.

    A conditional generator (``num_classes`` > 0) is called ``generator(z, y)``: y is class
    ``labels[0]`` (0 when not given) along the latent line; with ``labels=(a, b)`` z stays at z0
    and y walks from class a (alpha 0) to class b (alpha 1) and beyond, as soft labels
    ``(1 - alpha) * onehot(a) + alpha * onehot(b)``, float ``(B, num_classes)``.
    """
    import torch

    if steps < 2:
        raise GbenchError(f"--steps {steps} is too few; an interpolation needs at least 2 steps, e.g. --steps 10")
    ends = torch.randn(2, latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    # in float64 so that alpha 0 and 1 fall exactly on the grid (-1 + 3 * 3/9 == 0.0)
    alphas = torch.tensor(
        [i / (steps - 1) for i in range(steps)] + [-1 + 3 * i / (steps - 1) for i in range(steps)], dtype=torch.float64
    )
    line = (1 - alphas)[:, None] * ends[0].double().cpu() + alphas[:, None] * ends[1].double().cpu()
    noise = line.float().to(device)
    conditioning: tuple = ()
    if num_classes and labels is not None and len(set(labels)) == 2:  # between two classes, at z0
        noise = ends[0].expand(len(alphas), -1)
        onehot = torch.eye(num_classes, dtype=torch.float64)[list(labels)]
        conditioning = (((1 - alphas)[:, None] * onehot[0] + alphas[:, None] * onehot[1]).float().to(device),)
    elif num_classes:  # along the latent line, at one class
        conditioning = (torch.full((len(alphas),), labels[0] if labels else 0, dtype=torch.int64, device=device),)
    from gbench.torchtools import eval_mode  # torch only once there is a generator to run

    with eval_mode(generator), torch.no_grad():
        images = generator(noise, *conditioning)
    return images, alphas.tolist()


def write_interpolation(
    run_dir: str | os.PathLike,
    path: str | os.PathLike,
    registry: Registry,
    steps: int = 10,
    seed: int = 0,
    scale: int = 1,
    labels: tuple[int, int] | None = None,
) -> Path:
    """Load a finished run's generator and write its interpolation strip.

    ``registry`` rebuilds the generator: the plugins the caller loaded (library
    code never loads plugins itself, so that every part of one command sees
    the same set).

    The PNG has two rows of ``steps`` images with 2 pixels of padding: the
    top row interpolates (alpha 0 to 1), the bottom one extrapolates (alpha
    -1 to 2), so it is ``steps * (W + 2) + 2`` pixels wide and ``2 * (H + 2) + 2`` high;
    ``scale`` enlarges each image that many times (nearest neighbour), for a page. ``labels=(from, to)``:
    a conditional run's class interpolation (see :func:`interpolation_images`); refused in one line for an
    unconditional run, a class out of range, or a generator that does not take soft labels.
    """
    import torch.nn.functional as F

    from gbench.training.runner import load_run

    config, nets = load_run(run_dir, registry)
    if labels is not None:
        _check_labels(labels, nets.num_classes, config.architecture)
    try:
        images, _ = interpolation_images(nets.generator, nets.latent_dim, steps, seed, "cpu", labels, nets.num_classes)
    except (RuntimeError, TypeError, IndexError) as error:  # a conditional generator that takes int labels only
        if labels is None or not nets.num_classes:
            raise
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:120]
        raise GbenchError(
            f"the generator of architecture {config.architecture!r} does not take soft labels, float (B, "
            f"{nets.num_classes}), which --from-label/--to-label need ({reason}); see docs/plugins.md"
        ) from None
    if scale > 1:  # a 28-pixel digit is a speck on a page: the report draws its strips at 3x
        images = F.interpolate(images, scale_factor=scale, mode="nearest")
    path = Path(path)
    store.save_image_grid(path, images, nrow=steps)
    return path


def _check_labels(labels: tuple[int, int], num_classes: int, architecture: str) -> None:
    if not num_classes:
        raise GbenchError(
            f"--from-label/--to-label: the run's architecture {architecture!r} is not conditional, so there are no "
            "classes to move between; leave them out for a latent interpolation"
        )
    for flag, label in zip(("--from-label", "--to-label"), labels):
        if not 0 <= label < num_classes:
            raise GbenchError(f"{flag} {label} is not a class of this run; give one of 0..{num_classes - 1}")
