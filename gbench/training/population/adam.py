"""Adam over a population's stacked weights (:class:`gbench.training.population.stack.Stack`).

:class:`StackedAdam` is torch's Adam formula over the stacked tensors with
a step count per member, so that a member whose update is masked out (a
D step its adaptive schedule does not take, a member that diverged) keeps
exactly the optimizer state its solo run would hold.
"""

from __future__ import annotations

from typing import Any

import torch

from gbench.training.population.stack import Stack, contiguous_copy, per_member


class StackedAdam:
    """Adam (Kingma & Ba) over a :class:`Stack`'s leaves, a step count per member.

    The update is torch.optim.Adam's (no weight decay, no amsgrad): elementwise,
    so each member's slice gets what its solo optimizer would compute, up to
    floating-point reassociation. ``step(active)`` updates only the members in
    ``active``; the others' weights, moments and step counts stay as they are.
    """

    def __init__(self, stack: Stack, lr: float, betas: tuple[float, float], eps: float = 1e-8):
        params = stack.leaves  # the dict itself: a leaf the stack lays out anew is the one updated
        self.params, self.shaped, self.lr, self.betas, self.eps = params, stack.shaped, lr, betas, eps
        self.exp_avg = {name: torch.zeros_like(p) for name, p in params.items()}
        self.exp_avg_sq = {name: torch.zeros_like(p) for name, p in params.items()}
        any_param = next(iter(params.values()))
        self.steps = torch.zeros(any_param.shape[0], device=any_param.device)
        # While every member has stepped equally often (k-steps, ttur, no divergence), one fused
        # torch kernel does the update: the step counts it keeps live on the device, no host sync.
        self.in_step = True  # all members always active so far
        self.fused_steps = [torch.zeros((), device=any_param.device) for _ in params]

    @torch.no_grad()
    def step(self, active: torch.Tensor, all_active: bool = False, halted: torch.Tensor | None = None) -> None:
        """Update the members in ``active``; ``all_active`` (known on the host) allows the fused path. The masked
        path leaves ``halted`` members (on the device) out; the fused one moves them, and divergence.KeptWeights
        puts them back."""
        if all_active and self.in_step and self._fused():
            return
        self.in_step = False
        active = active if halted is None else active & (halted == 0)
        beta1, beta2 = self.betas
        self.steps += active
        step_size = self.lr / (1 - beta1**self.steps)  # inf where a member has not stepped yet: masked below
        bias_correction2_sqrt = (1 - beta2**self.steps).sqrt()
        for name, param in self.params.items():
            grad = param.grad
            if grad is None:
                continue
            mask = per_member(active, param)
            exp_avg = self.exp_avg[name].lerp(grad, 1 - beta1)
            exp_avg_sq = self.exp_avg_sq[name].mul(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / per_member(bias_correction2_sqrt, param)).add_(self.eps)
            updated = param - per_member(step_size, param) * exp_avg / denom
            param.copy_(torch.where(mask, updated, param))
            self.exp_avg[name].copy_(torch.where(mask, exp_avg, self.exp_avg[name]))
            self.exp_avg_sq[name].copy_(torch.where(mask, exp_avg_sq, self.exp_avg_sq[name]))

    def _fused(self) -> bool:
        names = [name for name, p in self.params.items() if p.grad is not None]
        if len(names) != len(self.params):
            return False
        torch._foreach_add_(self.fused_steps, 1)  # as torch.optim.Adam does: the kernel reads, not counts, the step
        try:
            grads: list[torch.Tensor] = [self.params[n].grad for n in names]  # type: ignore[misc]
            torch._fused_adam_(
                [self.params[n] for n in names],
                grads,
                [self.exp_avg[n] for n in names],
                [self.exp_avg_sq[n] for n in names],
                [],
                self.fused_steps,
                amsgrad=False,
                lr=self.lr,
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=0.0,
                eps=self.eps,
                maximize=False,
            )
        except (RuntimeError, TypeError):  # a device or dtype without the fused kernel
            torch._foreach_add_(self.fused_steps, -1)
            return False
        self.steps += 1
        return True

    def member_state(self, index: int, template: torch.optim.Optimizer) -> dict[str, Any]:
        """Member ``index``'s moments as the state_dict of ``template`` (a fresh solo Adam over the member's module)."""
        state = template.state_dict()
        steps = float(self.steps[index])
        state["state"] = (
            {}
            if steps == 0
            else {
                position: {
                    "step": torch.tensor(steps),
                    "exp_avg": self._member(self.exp_avg, name, index),
                    "exp_avg_sq": self._member(self.exp_avg_sq, name, index),
                }
                for position, name in enumerate(self.params)
            }
        )
        return state

    def load_member(self, index: int, state: dict[str, Any]) -> None:
        """Take member ``index``'s moments from a solo Adam's state_dict (a solo run's checkpoint)."""
        moments = state["state"]
        with torch.no_grad():
            for position, name in enumerate(self.params):
                if position in moments:
                    self.shaped(name, self.exp_avg[name])[index].copy_(moments[position]["exp_avg"])
                    self.shaped(name, self.exp_avg_sq[name])[index].copy_(moments[position]["exp_avg_sq"])
            self.steps[index] = float(moments[0]["step"]) if 0 in moments else 0.0
        # resumed members may have stepped unequally (adaptive): the masked path, unless settle() finds otherwise
        self.in_step = False

    def _member(self, moments: dict[str, torch.Tensor], name: str, index: int) -> torch.Tensor:
        return contiguous_copy(self.shaped(name, moments[name])[index])

    def settle(self) -> None:
        """After loading members: when all stepped equally often, the fused kernel again (one host sync).

        The masked path differs from the fused kernel by reassociation, so without this
        a population resumed from its checkpoints would not end where an uninterrupted one does.
        """
        if bool((self.steps == self.steps[0]).all()):
            self.in_step = True
            for fused_step in self.fused_steps:
                fused_step.fill_(float(self.steps[0]))
