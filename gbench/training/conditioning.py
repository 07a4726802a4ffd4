"""Class-conditional training: the labels that go with real batches and those drawn for fake ones.

Both loops (the solo :mod:`gbench.training.trainer` and the population's
:mod:`gbench.training.population.loop`) call the same functions here, so that a
member conditions exactly as its solo run does. Real batches bring their own labels
(the batch stream indexes images and labels with one permutation); a fake batch's
labels are drawn from the training labels' class frequencies with the run's noise
generator, right after that batch's noise, so the same seed gives the same labels and
a checkpoint (which holds that generator's state) resumes them bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gbench.plugins.labels import LabelledDiscriminator
from gbench.plugins.registry import LossTerms


@dataclass(frozen=True)
class Conditioning:
    """What a conditional run trains with: the training labels (on the device, in the data's order)
    and whether the loss takes them itself (:attr:`gbench.plugins.registry.Loss.needs_labels`)."""

    labels: torch.Tensor
    num_classes: int
    loss_takes_labels: bool = False

    @property
    def frequencies(self) -> torch.Tensor:
        """Each class's count among the training labels, as float weights of the draw."""
        return torch.bincount(self.labels, minlength=self.num_classes).float()

    def draw(self, count: int, generator: torch.Generator, weights: torch.Tensor) -> torch.Tensor:
        """``count`` labels drawn with replacement from the class frequencies (``weights``, made once)."""
        return torch.multinomial(weights, count, replacement=True, generator=generator)


def generate(generator: Any, noise: torch.Tensor, labels: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """``generator(z)``, or ``generator(z, y)`` when ``labels`` is ``(y,)`` (a tuple, so that vmap takes none)."""
    return generator(noise, *labels)


def discriminator_terms(
    loss: Any,
    discriminator: Any,
    real: torch.Tensor,
    fake: torch.Tensor,
    labels: tuple[torch.Tensor, ...],
    takes_labels: bool,
) -> LossTerms:
    """The loss's ``discriminator_loss``; conditional (``labels`` = (real labels, fake labels)):
    ``D`` with the labels bound, and the labels as keywords for a loss that takes them."""
    if not labels:
        return loss.discriminator_loss(discriminator, real, fake)
    real_labels, fake_labels = labels
    judge = LabelledDiscriminator(discriminator, [(real, real_labels), (fake, fake_labels)])
    if takes_labels:
        return loss.discriminator_loss(judge, real, fake, real_labels=real_labels, fake_labels=fake_labels)
    return loss.discriminator_loss(judge, real, fake)


def generator_terms(
    loss: Any, discriminator: Any, fake: torch.Tensor, labels: tuple[torch.Tensor, ...], takes_labels: bool
) -> LossTerms:
    """The loss's ``generator_loss``; conditional (``labels`` = (fake labels,)): ``D`` with them bound."""
    if not labels:
        return loss.generator_loss(discriminator, fake)
    (fake_labels,) = labels
    judge = LabelledDiscriminator(discriminator, [(fake, fake_labels)])
    if takes_labels:
        return loss.generator_loss(judge, fake, fake_labels=fake_labels)
    return loss.generator_loss(judge, fake)
