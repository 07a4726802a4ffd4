"""An exponential moving average (EMA) of the generator's weights (``--ema DECAY``).

After each generator step ``t`` (0 for the first)::

    decay_t = min(decay, (1 + t) / (10 + t))
    ema     = decay_t * ema + (1 - decay_t) * weights        (torch.lerp(ema, weights, 1 - decay_t))

The warm-up ``(1 + t) / (10 + t)`` is TensorFlow's ``tf.train.ExponentialMovingAverage``
with ``num_updates``: early on the average follows the weights closely (decay 0.1 at the first
step, 0.5 at the ninth, 0.9 at the 81st) so that it does not keep the random initial weights
for thousands of steps; it is ``decay`` from ``t = (10 * decay - 1) / (1 - decay)`` on
(8,990 for 0.999). StudioGAN (src/utils/ema.py) instead copies the weights until a
configured start step; one option, no second knob, is why gbench takes TensorFlow's ramp.

Only parameters are averaged. Buffers (BatchNorm's running statistics, spectral norm's
vectors) are the generator's own, taken as they are whenever the EMA weights are used,
as StudioGAN copies them at each update.

``decay_t`` is computed on the host from the step number, so an update is one
``torch._foreach_lerp_`` over the weights, with no host sync. The solo loop averages its
module's parameters (:class:`GeneratorEMA`); a population averages its stacked weights,
one EMA per member, with the same call on the stacked tensors (:class:`StackedEMA`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from gbench.errors import GbenchError

#: The warm-up's constants: decay_t = min(decay, (RAMP_START + t) / (RAMP_END + t)).
RAMP_START, RAMP_END = 1.0, 10.0


def decay_at(decay: float, step: int) -> float:
    """The decay applied after generator step ``step`` (0 for the first step)."""
    return min(decay, (RAMP_START + step) / (RAMP_END + step))


def lerp_all(averages: list[torch.Tensor], weights: list[torch.Tensor], decay: float, step: int) -> None:
    """``averages = decay_t * averages + (1 - decay_t) * weights``, in place, one fused call."""
    torch._foreach_lerp_(averages, weights, 1.0 - decay_at(decay, step))


def check_saved(average: dict[str, torch.Tensor], saved: dict[str, torch.Tensor]) -> None:
    """A checkpoint's EMA names every averaged weight (one saved without
    --ema has none: its config's hash differs, so only damage gets here)."""
    missing = sorted(set(average) - set(saved))
    if missing:
        raise GbenchError(
            "the checkpoint holds no EMA for generator weights "
            f"{', '.join(missing[:3])}; delete checkpoint.pt to start the run over"
        )


class GeneratorEMA:
    """The EMA of one generator module's parameters (a solo run)."""

    def __init__(self, generator: nn.Module, decay: float, saved: dict[str, torch.Tensor] | None = None):
        self.generator, self.decay = generator, decay
        self.live = dict(generator.named_parameters())
        self.average = {name: param.detach().clone() for name, param in self.live.items()}
        if saved is not None:  # from a checkpoint: a solo run's or a population member's, the same names
            check_saved(self.average, saved)
            with torch.no_grad():
                for name, tensor in self.average.items():
                    tensor.copy_(saved[name])

    @torch.no_grad()
    def update(self, step: int) -> None:
        """After generator step ``step`` (0 for the first)."""
        lerp_all(list(self.average.values()), [param.detach() for param in self.live.values()], self.decay, step)

    def state(self) -> dict[str, torch.Tensor]:
        """The averaged parameters (copies: training goes on changing them), for a checkpoint."""
        return {name: tensor.clone() for name, tensor in self.average.items()}

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """The generator holds the EMA weights inside the block (an evaluation during training), its own after it."""
        own = {name: param.detach().clone() for name, param in self.live.items()}
        self.put_in()
        try:
            yield
        finally:
            with torch.no_grad():
                for name, param in self.live.items():
                    param.copy_(own[name])

    @torch.no_grad()
    def put_in(self) -> None:
        """Replace the generator's parameters by the EMA (the end of training: evaluation, samples, generator.pt)."""
        for name, param in self.live.items():
            param.copy_(self.average[name])


class StackedEMA:
    """One EMA per member of a population, over the stacked generator weights, in their layout.

    ``targets`` is the dict the EMA follows: the stack's leaves, or what
    ``divergence.KeptWeights`` keeps of them (a halted member's weights from
    before its bad step, as its solo run's generator stays at them).
    """

    def __init__(
        self, leaves: dict[str, torch.Tensor], shaped: Callable[[str, torch.Tensor], torch.Tensor], decay: float
    ):
        self.decay, self.shaped = decay, shaped  # shaped: Stack.shaped, a leaf-layout tensor as the module's parameter
        self.average = {name: leaf.detach().clone() for name, leaf in leaves.items()}  # clone keeps the leaf's layout

    @torch.no_grad()
    def update(self, targets: dict[str, torch.Tensor], step: int, running: torch.Tensor | None = None) -> None:
        """After generator step ``step``; ``running`` (a device mask, None: all) leaves
        the stopped members' EMA as it is, as their solo runs stop updating it."""
        averages, weights = list(self.average.values()), [targets[name].detach() for name in self.average]
        if running is None:
            lerp_all(averages, weights, self.decay, step)
            return
        # 0 for a stopped member: lerp leaves it exactly
        rate = running.to(averages[0].dtype) * (1.0 - decay_at(self.decay, step))
        for average, weight in zip(averages, weights):
            average.lerp_(weight, rate.view(-1, *([1] * (average.dim() - 1))))

    def member(self, index: int) -> dict[str, torch.Tensor]:
        """Member ``index``'s EMA as a solo run's (named like the module's parameters, in their plain layout)."""
        return {
            name: self.shaped(name, tensor)[index].detach().clone(memory_format=torch.contiguous_format)
            for name, tensor in self.average.items()
        }

    @torch.no_grad()
    def load_member(self, index: int, saved: dict[str, torch.Tensor]) -> None:
        check_saved(self.average, saved)
        for name, tensor in self.average.items():
            self.shaped(name, tensor)[index].copy_(saved[name])
