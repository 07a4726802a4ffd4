"""How gbench calls a conditional architecture's nets (see :class:`gbench.plugins.registry.Nets`).

- :class:`LabelledDiscriminator`: the discriminator with a step's labels bound, what a loss
  receives as ``D``. A loss written for unconditional nets calls ``D(images)`` and works
  unchanged; one that needs the labels (ACGAN) reads ``D.judge(images)``.
- :class:`FixedLabels`: a conditional generator as a ``generator(z)`` module of one class, for code
  that draws only noise (``gbench sample --label``). Evaluation draws balanced labels itself
  (:func:`gbench.evaluation.conditional.balanced_labels`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def split_output(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A conditional discriminator's output as (score ``(B,)``, class logits ``(B, K)`` or None).

    ``(B,)`` or ``(B, 1)``: a score alone; ``(B, 1 + K)``: column 0 the score, the rest
    an auxiliary classifier's logits over the K classes.
    """
    if output.dim() == 2 and output.shape[1] > 1:
        return output[:, 0], output[:, 1:]
    return output.reshape(-1), None


class LabelledDiscriminator:
    """``discriminator(x, y)`` as the one-argument ``D(x)`` a loss calls, the labels bound.

    ``batches`` pairs each image batch the loop hands the loss with its labels: D(real)
    judges the real images with their own labels, D(fake) the fakes with the labels they were
    generated for. Any other batch (WGAN-GP's interpolates of real and fake) is judged with the
    first pair's labels: the real ones in the discriminator's step, the fake ones in the
    generator's. Batches are told apart by identity (the very tensors the loss received), so
    nothing is compared on the device.
    """

    def __init__(self, discriminator: Any, batches: list[tuple[torch.Tensor, torch.Tensor]]):
        self.discriminator, self.batches = discriminator, batches

    def labels_of(self, images: torch.Tensor) -> torch.Tensor:
        for batch, labels in self.batches:
            if images is batch:
                return labels
        return self.batches[0][1]

    def judge(
        self, images: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(score ``(B,)``, class logits ``(B, K)`` or None when the discriminator has no classifier head)."""
        return split_output(self.discriminator(images, self.labels_of(images) if labels is None else labels))

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.judge(images, labels)[0]


class FixedLabels(nn.Module):
    """``generator(z)`` of a conditional generator: every image of class ``label``."""

    def __init__(self, generator: nn.Module, label: int):
        super().__init__()
        self.generator, self.label = generator, label

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        labels = torch.full((len(z),), self.label, dtype=torch.int64, device=z.device)
        return self.generator(z, labels)
