"""N same-shaped modules as one: stacked weights, called through ``torch.func``.

A population's members are the plugins' own ``nn.Module`` objects, one per
seed, built exactly as a solo run builds them. :class:`Stack` stacks their
parameters and buffers along a new first dimension (``stack_module_state``)
and calls a skeleton copy of the module on member i's slice with
``functional_call`` under ``vmap``: one batched computation, the same math
per member. Buffers (BatchNorm's running statistics, spectral norm's power
iteration vectors) are stacked too, so each member keeps its own, updated in
place through vmap exactly as a solo module updates its own.

:class:`StackedAdam` is torch's Adam formula over the stacked tensors with
a step count per member, so that a member whose update is masked out (a
D step its adaptive schedule does not take, a member that diverged) keeps
exactly the optimizer state its solo run would hold.

:func:`unbatchable_reason` tries the modules as a population on a test batch
and says in one line why not, when not: a Python attribute that changes in a
forward pass (state vmap cannot give each member), an operation vmap cannot
batch, or outputs and buffers that differ from the members' own.

:func:`autocast` is bf16 for a population: torch's autocast plus
:class:`BatchedAutocast`, which makes the casts autocast makes for a solo
run where, under vmap, autocast does not.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.overrides import TorchFunctionMode

#: Batched against member-by-member outputs may differ by float reassociation only.
PROBE_TOLERANCE = 1e-4


class Stack:
    """Members' parameters and buffers stacked; ``call(fn, ...)`` runs ``fn`` per member under vmap."""

    def __init__(self, modules: list[nn.Module]):
        self.members = len(modules)
        params, buffers = stack_module_state(modules)
        self.params: dict[str, torch.Tensor] = params
        self.buffers: dict[str, torch.Tensor] = buffers
        self.skeleton = copy.deepcopy(modules[0]).to("meta")  # its own tensors are never used: each call swaps in a member's
        self.skeleton.train()

    def module(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]) -> Callable[..., Any]:
        """Member-level view for inside a vmapped function: call the skeleton with one member's tensors."""
        return lambda *args: functional_call(self.skeleton, (params, buffers), args)

    def method(self, name: str, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]) -> Callable[..., Any]:
        """Like :meth:`module`, for another method of the module (a VAE's objective)."""
        wrapper = _Method(self.skeleton, name)
        prefixed = {f"module.{key}": value for key, value in {**params, **buffers}.items()}
        return lambda *args: functional_call(wrapper, prefixed, args)

    def member_state(self, index: int) -> dict[str, torch.Tensor]:
        """Member ``index`` as a plain state_dict of the solo module (copies, detached)."""
        return {name: tensor[index].detach().clone() for name, tensor in {**self.params, **self.buffers}.items()}

    def load_member(self, index: int, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, tensor in {**self.params, **self.buffers}.items():
                tensor[index].copy_(state[name])

    def zero_grad(self) -> None:
        for tensor in self.params.values():
            tensor.grad = None

    @contextlib.contextmanager
    def frozen(self) -> Iterator[dict[str, torch.Tensor]]:
        """Detached parameters: the generator's step computes no gradients for D's weights."""
        yield {name: tensor.detach() for name, tensor in self.params.items()}

    @contextlib.contextmanager
    def buffers_kept_unless(self, active: torch.Tensor) -> Iterator[None]:
        """Members not ``active`` keep their buffers through the block (their solo run makes no such call)."""
        if not self.buffers or bool(active.all()):
            yield
            return
        saved = {name: tensor.clone() for name, tensor in self.buffers.items()}
        yield
        # new tensors, not copy_: autograd may have saved the updated buffers for the backward pass
        with torch.no_grad():
            for name, tensor in self.buffers.items():
                self.buffers[name] = torch.where(_per_member(active, tensor), tensor, saved[name])


class _Method(nn.Module):
    def __init__(self, module: nn.Module, name: str):
        super().__init__()
        self.module, self.name = module, name

    def forward(self, *args: Any) -> Any:
        return getattr(self.module, self.name)(*args)


# ---------------------------------------------------------------------------
# bf16 inside vmap
# ---------------------------------------------------------------------------

# torch.autocast does not reach most ops under torch.func.vmap (torch 2.14: convolutions run in float32,
# a bf16 input to batch_norm with float32 statistics fails), so a population applies autocast's policy
# itself, per torch function, for the ops whose cast autocast defines: the same casts a solo run gets.
_LOWER = {F.linear, F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d,
          torch.matmul, torch.mm, torch.bmm, torch.addmm, torch.baddbmm, torch.Tensor.matmul, torch.Tensor.__matmul__}  # fmt: skip
_FLOAT32 = {F.binary_cross_entropy_with_logits, F.binary_cross_entropy, F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.nll_loss,
            F.cross_entropy, F.kl_div, F.layer_norm, F.group_norm}  # fmt: skip


class BatchedAutocast(TorchFunctionMode):
    """Autocast's casts for a vmapped population: bf16 in for matmuls and convolutions, float32 in for losses
    and layer/group norm, and batch norm on a bf16 input computed in float32 (as the mixed-type kernel a solo
    module reaches does) with its output in the input's dtype."""

    def __init__(self, dtype: torch.dtype = torch.bfloat16):
        super().__init__()
        self.dtype = dtype

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _LOWER:
            return func(*_cast(args, self.dtype), **_cast(kwargs, self.dtype))
        if func in _FLOAT32:
            return func(*_cast(args, torch.float32), **_cast(kwargs, torch.float32))
        if func is F.batch_norm and args and isinstance(args[0], torch.Tensor) and args[0].dtype == self.dtype:
            return func(args[0].float(), *args[1:], **kwargs).to(self.dtype)
        return func(*args, **kwargs)


def _cast(values: Any, dtype: torch.dtype) -> Any:
    if isinstance(values, dict):
        return {key: _cast(value, dtype) for key, value in values.items()}
    if isinstance(values, (tuple, list)):
        return type(values)(_cast(value, dtype) for value in values)
    if isinstance(values, torch.Tensor) and values.is_floating_point() and values.dtype != torch.float64:
        return values.to(dtype)
    return values


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """What ``gbench.trainer.autocast`` is to a solo run: torch's autocast, plus its casts under vmap."""
    if precision != "bf16":
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16))
    stack.enter_context(BatchedAutocast(torch.bfloat16))
    return stack


def batched(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` over the members: randomness inside it (WGAN-GP's mix, a VAE's sample) differs per member."""
    return vmap(fn, randomness="different")


def _per_member(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


class StackedAdam:
    """Adam (Kingma & Ba) over stacked parameters, a step count per member.

    The update is torch.optim.Adam's (no weight decay, no amsgrad): elementwise,
    so each member's slice gets what its solo optimizer would compute, up to
    floating-point reassociation. ``step(active)`` updates only the members in
    ``active``; the others' weights, moments and step counts stay as they are.
    """

    def __init__(self, params: dict[str, torch.Tensor], lr: float, betas: tuple[float, float], eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.exp_avg = {name: torch.zeros_like(p) for name, p in params.items()}
        self.exp_avg_sq = {name: torch.zeros_like(p) for name, p in params.items()}
        any_param = next(iter(params.values()))
        self.steps = torch.zeros(any_param.shape[0], device=any_param.device)
        # While every member has stepped equally often (k-steps, ttur, no divergence), one fused
        # torch kernel does the update: the step counts it keeps live on the device, no host sync.
        self.in_step = True  # all members always active so far
        self.fused_steps = [torch.zeros((), device=any_param.device) for _ in params]

    @torch.no_grad()
    def step(self, active: torch.Tensor, all_active: bool = False) -> None:
        """Update the members in ``active``; ``all_active`` (known on the host) allows the fused path."""
        if all_active and self.in_step and self._fused():
            return
        self.in_step = False
        beta1, beta2 = self.betas
        self.steps += active
        step_size = self.lr / (1 - beta1**self.steps)  # inf where a member has not stepped yet: masked below
        bias_correction2_sqrt = (1 - beta2**self.steps).sqrt()
        for name, param in self.params.items():
            grad = param.grad
            if grad is None:
                continue
            mask = _per_member(active, param)
            exp_avg = self.exp_avg[name].lerp(grad, 1 - beta1)
            exp_avg_sq = self.exp_avg_sq[name].mul(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / _per_member(bias_correction2_sqrt, param)).add_(self.eps)
            updated = param - _per_member(step_size, param) * exp_avg / denom
            param.copy_(torch.where(mask, updated, param))
            self.exp_avg[name].copy_(torch.where(mask, exp_avg, self.exp_avg[name]))
            self.exp_avg_sq[name].copy_(torch.where(mask, exp_avg_sq, self.exp_avg_sq[name]))

    def _fused(self) -> bool:
        names = [name for name, p in self.params.items() if p.grad is not None]
        if len(names) != len(self.params):
            return False
        torch._foreach_add_(self.fused_steps, 1)  # as torch.optim.Adam does: the kernel reads, not counts, the step
        try:
            torch._fused_adam_(
                [self.params[n] for n in names], [self.params[n].grad for n in names], [self.exp_avg[n] for n in names],  # type: ignore[misc]
                [self.exp_avg_sq[n] for n in names], [], self.fused_steps, amsgrad=False, lr=self.lr, beta1=self.betas[0], beta2=self.betas[1],
                weight_decay=0.0, eps=self.eps, maximize=False,
            )  # fmt: skip
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
                position: {"step": torch.tensor(steps), "exp_avg": self.exp_avg[name][index].clone(), "exp_avg_sq": self.exp_avg_sq[name][index].clone()}
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
                    self.exp_avg[name][index].copy_(moments[position]["exp_avg"])
                    self.exp_avg_sq[name][index].copy_(moments[position]["exp_avg_sq"])
            self.steps[index] = float(moments[0]["step"]) if 0 in moments else 0.0
        self.in_step = False  # resumed members may have stepped unequally (adaptive): the masked path, unless settle() finds otherwise

    def settle(self) -> None:
        """After loading members: when all stepped equally often, the fused kernel again (one host sync).

        The masked path differs from the fused kernel by reassociation, so without this
        a population resumed from its checkpoints would not end where an uninterrupted one does.
        """
        if bool((self.steps == self.steps[0]).all()):
            self.in_step = True
            for fused_step in self.fused_steps:
                fused_step.fill_(float(self.steps[0]))


# ---------------------------------------------------------------------------
# Can these modules train as a population?
# ---------------------------------------------------------------------------


def unbatchable_reason(modules: list[nn.Module], inputs: torch.Tensor, name: str) -> str | None:
    """Why ``modules`` (one per member) cannot be trained as a stack, in one line; None when they can.

    Works on copies: runs two train-mode forward passes and a backward pass
    batched and member by member on ``inputs`` (members x batch x ...) and
    compares outputs, gradients and buffers.
    """
    solo = [copy.deepcopy(module).train() for module in modules]
    try:
        stack = Stack([copy.deepcopy(module).train() for module in modules])
    except Exception as error:
        return f"its {name}'s weights cannot be stacked ({_first_line(error)})"
    for attempt in range(2):
        before = [_python_state(module) for module in solo]
        expected = [module(x) for module, x in zip(solo, inputs)]
        changed = [path for module, state in zip(solo, before) for path, value in _python_state(module).items() if state.get(path) != value]
        if changed:
            return f"its {name} changes the Python attribute {changed[0]!r} in a forward pass (state a stacked module cannot keep per member)"
        try:
            got = batched(lambda p, b, x: stack.module(p, b)(x))(stack.params, stack.buffers, inputs)
        except Exception as error:
            return f"its {name} cannot run under torch.func.vmap ({_first_line(error)})"
        if not isinstance(got, torch.Tensor) or not all(isinstance(e, torch.Tensor) for e in expected):
            return f"its {name} does not return one tensor"
        if not torch.allclose(got, torch.stack(expected), rtol=PROBE_TOLERANCE, atol=PROBE_TOLERANCE):
            return f"its {name} gives different outputs batched than member by member"
        if attempt == 0:
            torch.stack(expected).square().sum().backward()
            got.square().sum().backward()
            for param_name, tensor in stack.params.items():
                reference = [dict(module.named_parameters())[param_name].grad for module in solo]
                if tensor.grad is None or any(g is None for g in reference):
                    continue
                if not torch.allclose(tensor.grad, torch.stack(reference), rtol=PROBE_TOLERANCE, atol=PROBE_TOLERANCE):  # type: ignore[arg-type]
                    return f"its {name}'s gradients for {param_name!r} differ batched from member by member"
        for buffer_name, tensor in stack.buffers.items():
            solo_buffers = torch.stack([dict(module.named_buffers())[buffer_name] for module in solo])
            if not torch.allclose(tensor.to(solo_buffers.dtype), solo_buffers, rtol=PROBE_TOLERANCE, atol=PROBE_TOLERANCE):
                return f"its {name} updates the buffer {buffer_name!r} differently batched than member by member"
    return None


def _python_state(module: nn.Module) -> dict[str, str]:
    """Each submodule's plain Python attributes (not tensors, submodules or hooks), as text to compare."""
    skip = {"_parameters", "_buffers", "_modules", "training"}
    state = {}
    for path, submodule in module.named_modules():
        for key, value in vars(submodule).items():
            if key in skip or key.startswith("_") and key.endswith("hooks") or isinstance(value, (torch.Tensor, nn.Module)):
                continue
            with contextlib.suppress(Exception):
                state[f"{path}.{key}" if path else key] = repr(value)
    return state


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:200]


def bf16_note(device: torch.device) -> str | None:
    """One line when this hardware has no fast bfloat16 (bf16 still runs, emulated, usually slower)."""
    if device.type == "cuda":
        return None if torch.cuda.is_bf16_supported() else f"note: {torch.cuda.get_device_name(device)} has no fast bfloat16; --precision bf16 will be slow"
    if device.type == "cpu":
        try:
            flags = open("/proc/cpuinfo").read()
        except OSError:
            return None
        if "avx512_bf16" not in flags and "amx_bf16" not in flags:
            return "note: this CPU has no bfloat16 instructions (avx512_bf16/amx_bf16); --precision bf16 is emulated and likely slower than fp32"
    return None
