"""A run's nets: built by the architecture's plugin for the run's data, and checked before any training.

:func:`check_nets` runs them once on a test batch, so that a plugin's mistake (a wrong shape,
images outside [-1, 1]) is one line naming the plugin, not an error deep in training. A
conditional architecture's nets get the data's class count and are checked with labels.
"""

from __future__ import annotations

from typing import Any, cast

import torch

from gbench import owndata, torchtools
from gbench.config import RunConfig
from gbench.errors import GbenchError
from gbench.plugins.registry import Nets, Registry


def build(registry: Registry, config: RunConfig, device: torch.device) -> tuple[Nets, Any, Any]:
    """Build the nets (checked against the dataset's shape), loss and schedule; a conditional
    architecture's for the dataset's classes (``nets.num_classes``)."""
    params = config.params
    dataset = owndata.dataset_for(registry, config)  # a finished run's own data: scanned again
    image_shape = cast(tuple[int, int, int], tuple(dataset.image_shape))
    architecture = registry.architecture(config.architecture)  # not loaded: one line naming what is
    owner = registry.owners[("architecture", config.architecture)]
    classes = {"num_classes": dataset.num_classes} if architecture.conditional else {}
    who = f"plugin {owner!r}, architecture {config.architecture!r}"
    torch.manual_seed(config.seed)
    try:
        nets = architecture.build(params, image_shape, **classes)
    except Exception as error:
        raise GbenchError(f"{who}: build failed: {type(error).__name__}: {error}") from None
    if isinstance(nets, Nets):
        nets.num_classes = classes.get("num_classes", 0)  # gbench's to set: the data's class count, or 0
    check_nets(nets, image_shape, who)
    nets.generator.to(device)
    if nets.discriminator is not None:
        nets.discriminator.to(device)
    loss = registry.loss(config.loss).build(params)
    schedule = registry.schedule(config.schedule).build(params)
    torch.manual_seed(config.seed)  # the shape check drew noise: start training from the seed itself
    return nets, loss, schedule


def check_nets(nets: Nets, image_shape: tuple[int, ...], who: str) -> None:
    """Generator gives a batch of the dataset's images; discriminator one logit per image."""
    if not isinstance(nets, Nets):
        raise GbenchError(f"{who}: build returned {type(nets).__name__}, expected gbench.plugins.registry.Nets")
    if nets.discriminator is None and nets.objective is None:
        raise GbenchError(f"{who}: Nets has neither a discriminator nor an objective; give one of them")
    classes = nets.num_classes
    if classes and nets.discriminator is None:
        raise GbenchError(f"{who}: a conditional architecture must build a GAN (a discriminator taking (x, y))")
    labels = (torch.arange(16) % max(classes, 1),) if classes else ()  # every class, when conditional
    try:
        with torch.no_grad(), torchtools.eval_mode(nets.generator, nets.discriminator):
            images = nets.generator(torch.randn(2, nets.latent_dim), *(y[:2] for y in labels))
            if not isinstance(images, torch.Tensor) or tuple(images.shape) != (2, *image_shape):
                shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
                expected = ", ".join(map(str, image_shape))
                raise GbenchError(
                    f"{who}: generator output has shape {shape} for 2 noise vectors; expected (2, {expected})"
                )
            # Far-out noise shows a missing final Tanh at once: an untrained linear-ReLU stack keeps
            # N(0, 1) noise inside [-1, 1] (max ~0.5) but not noise ten times larger (max ~4).
            far_out = nets.generator(10 * torch.randn(16, nets.latent_dim), *labels)
            check_image_range(far_out, who, "for noise vectors of norm ~10x a typical one")
            if nets.discriminator is not None:
                logits = nets.discriminator(images, *(y[:2] for y in labels))
                check_logits(logits, who, classes)
    except GbenchError:
        raise
    except Exception as error:
        raise GbenchError(f"{who}: running the nets on a test batch failed: {type(error).__name__}: {error}") from None


def check_logits(logits: Any, who: str, classes: int) -> None:
    """One logit per image, (2,) or (2, 1); a conditional discriminator may add a class logit per class."""
    if not isinstance(logits, torch.Tensor) or logits.shape[:1] != (2,):
        ok = False
    else:
        ok = logits.numel() == 2 or (classes > 0 and tuple(logits.shape) == (2, 1 + classes))
    if not ok:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        also = f", or (2, {1 + classes}) with class logits" if classes else ""
        raise GbenchError(
            f"{who}: discriminator output has shape {shape} for 2 images; "
            f"expected one logit per image, (2,) or (2, 1){also}"
        )


def check_image_range(images: torch.Tensor, who: str, when: str) -> None:
    """Generated images must lie in [-1, 1], the range of the real ones (the evaluator assumes it)."""
    if not torch.isfinite(images).all() or images.abs().max() > 1 + 1e-4:
        span = f"{float(images.min()):.3g}..{float(images.max()):.3g}"
        raise GbenchError(
            f"{who}: the generator's images span {span} {when}; keep them in [-1, 1] (end with nn.Tanh())"
        )
