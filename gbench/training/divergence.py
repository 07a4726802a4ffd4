"""Divergence caught at the step it happens, without a host sync per step.

A NaN or infinite loss never recovers, so a run stops at the first one. Reading
every step's loss on the host would sync the device every step; instead
:class:`DivergenceWatch` keeps, on the device, a flag per run (per member in
a population) and the first step whose loss was non-finite. From that step on
the run's optimizer steps are skipped on the device (:func:`halting_step` for
a solo run's torch Adam, ``StackedAdam.step(..., halted=...)`` for a
population), and the loops read the flag where they sync anyway: at a log row,
a checkpoint or a signal. A healthy run's numbers are unchanged bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class DivergenceWatch:
    """Per run (``count=None``) or per member: halted yet, and the first step whose loss was not finite."""

    def __init__(self, device: torch.device, count: int | None = None):
        shape = () if count is None else (count,)
        # float 0/1: the dtype the fused Adam kernel's found_inf takes, so the solo optimizer reads this very tensor
        self.halted = torch.zeros(shape, device=device)
        self.first_step = torch.zeros(shape, dtype=torch.long, device=device)  # 0: every loss finite so far

    def check(self, loss: torch.Tensor, step: int, taking_part: torch.Tensor | None = None) -> None:
        """Note ``loss`` (one value per run or member) computed in step number ``step`` (1 for the first).

        ``taking_part``: the members whose loss counts (one sitting out computed on stand-in inputs).
        """
        bad = ~torch.isfinite(loss.detach())
        bad = bad if taking_part is None else bad & taking_part
        self.first_step.copy_(torch.where(bad & (self.halted == 0), step, self.first_step))
        torch.maximum(self.halted, bad.to(self.halted.dtype), out=self.halted)

    def alive(self) -> torch.Tensor:
        """True where no loss has gone non-finite yet (a new tensor: the flag moves on with later checks)."""
        return self.halted == 0

    def first_steps(self) -> list[int]:
        """The first non-finite step per member, 0 where none: one host read."""
        return [int(step) for step in self.first_step.reshape(-1).tolist()]


def halting_step(optimizer: torch.optim.Optimizer, halted: torch.Tensor) -> Callable[[], None]:
    """``optimizer.step`` that leaves weights and state as they are once ``halted`` (a 0-d float 0/1) is 1.

    The fused Adam kernel skips itself when its ``found_inf`` is 1, the mechanism
    GradScaler uses, and undoes its step count: nothing else runs, nothing syncs.
    Without the fused kernel, the step's old values are put back with torch.where.
    """
    if optimizer.defaults.get("fused"):
        optimizer.found_inf = halted  # type: ignore[attr-defined]  # read by torch.optim.Adam.step
        return optimizer.step

    def restoring_step() -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        fresh = [p for p in params if not optimizer.state.get(p)]
        tensors = params + [
            v for state in optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)
        ]
        saved = [tensor.detach().clone() for tensor in tensors]
        optimizer.step()
        with torch.no_grad():
            for tensor, old in zip(tensors, saved):
                tensor.copy_(torch.where(halted == 1, old.to(tensor.dtype), tensor))
            for param in fresh:  # state made by this step: zeros and step 0 are what a fresh Adam starts from
                for value in optimizer.state[param].values():
                    if isinstance(value, torch.Tensor):
                        value.copy_(torch.where(halted == 1, torch.zeros_like(value), value))

    return restoring_step


class KeptWeights:
    """A population's stacked weights as each member had them before its first halted step.

    The fused Adam step updates every member at once and cannot leave one out
    without a host sync, so after each step (fused or masked) the weights are
    kept here except where a member is halted; :meth:`put_back` restores those
    members when the loop reads the flags. One torch.where per weight per step.
    A halted member's Adam moments are not kept: it stops at that read and
    saves no checkpoint, so nothing reads them again.
    """

    def __init__(self, params: dict[str, torch.Tensor]):
        self.params = params  # the stack's own dict: a weight laid out anew is the one kept
        self.kept = {name: param.detach().clone() for name, param in params.items()}

    @torch.no_grad()
    def after_step(self, halted: torch.Tensor) -> None:
        for name, param in self.params.items():
            self.kept[name].copy_(torch.where(_per_member(halted == 1, param), self.kept[name], param))

    @torch.no_grad()
    def put_back(self, halted: torch.Tensor) -> None:
        for name, param in self.params.items():
            param.copy_(torch.where(_per_member(halted == 1, param), self.kept[name], param))


def _per_member(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))
