"""N same-shaped modules as one: stacked weights, called through ``torch.func``.

A population's members are the plugins' own ``nn.Module`` objects, one per
seed, built exactly as a solo run builds them. :class:`Stack` stacks their
parameters and buffers along a new first dimension (``stack_module_state``)
and calls a skeleton copy of the module on member i's slice with
``functional_call`` under ``vmap``: one batched computation, the same math
per member. Buffers (BatchNorm's running statistics, spectral norm's power
iteration vectors) are stacked too, so each member keeps its own, updated in
place through vmap exactly as a solo module updates its own.

Its optimizer is :class:`gbench.training.population.adam.StackedAdam`.

Each stacked parameter is stored in the layout its gradient arrives in
(:meth:`Stack.lay_out_for_gradients`), so that autograd and the fused Adam
kernel take gradients as they come instead of copying them every step.

Whether modules can be stacked at all is :mod:`gbench.training.population.batchable`'s question.

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
from torch.utils import _pytree as pytree


class Stack:
    """Members' parameters and buffers stacked; :meth:`module` calls one member's slice inside a vmapped function.

    ``leaves`` are the tensors trained (what the optimizer updates); ``params``
    are the same tensors shaped as the module's parameters, member first. They
    are the leaves themselves until :meth:`lay_out_for_gradients` stores a
    leaf in the layout its gradient arrives in, and ``params`` a view of it.
    """

    def __init__(self, modules: list[nn.Module]):
        self.members = len(modules)
        params, buffers = stack_module_state(modules)
        self.leaves: dict[str, torch.Tensor] = params
        self.buffers: dict[str, torch.Tensor] = buffers
        self.orders: dict[
            str, tuple[int, ...]
        ] = {}  # leaf name -> the permute that shapes it as the module's parameter
        self.skeleton = copy.deepcopy(modules[0]).to(
            "meta"
        )  # its own tensors are never used: each call swaps in a member's
        self.skeleton.train()

    @property
    def params(self) -> dict[str, torch.Tensor]:
        return {name: self.shaped(name, leaf) for name, leaf in self.leaves.items()}

    def shaped(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor``, laid out as leaf ``name`` is (its Adam moments too), as a view shaped like the module's
        parameter."""
        order = self.orders.get(name)
        return tensor if order is None else tensor.permute(order)

    def lay_out_for_gradients(self, inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> None:
        """Store each parameter in the layout its gradient arrives in, found by one forward and backward on
        ``inputs`` (members first; a tuple of the arguments for a module that takes several: (x, y) conditional).

        A batched F.linear's weight gradient arrives as the transpose of a contiguous
        matrix; held in the module's own layout, autograd copied every such gradient
        into it and fused Adam copied again, each step (about a fifth of an fp32 MLP
        population step). A leaf in the arrival layout takes the gradient as it comes.
        Values are untouched; buffers, gradients and the random state are left as they were.
        """
        arrived: dict[str, tuple[int, ...]] = {}

        def arrival(name: str) -> Callable[[torch.Tensor], None]:
            def record(grad: torch.Tensor) -> None:  # returns None: the gradient itself is left alone
                arrived.setdefault(name, grad.stride())

            return record

        hooks = [leaf.register_hook(arrival(name)) for name, leaf in self.leaves.items()]
        buffers = {name: buffer.clone() for name, buffer in self.buffers.items()}
        try:
            arguments = inputs if isinstance(inputs, tuple) else (inputs,)
            device = arguments[0].device
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                outputs = batched(lambda p, b, args: self.module(p, b)(*args))(self.leaves, buffers, arguments)
                torch.stack(
                    [
                        out.float().sum()
                        for out in pytree.tree_leaves(outputs)
                        if isinstance(out, torch.Tensor) and out.requires_grad
                    ]
                ).sum().backward()
        except Exception:  # only speed rides on this: a module this probe cannot drive keeps the plain layout
            arrived = {}
        finally:
            for hook in hooks:
                hook.remove()
            self.zero_grad()
        for name, strides in arrived.items():
            leaf = self.leaves[name]
            order = sorted(
                range(leaf.dim()), key=lambda dim: (-strides[dim], dim)
            )  # the arrival layout's dimensions, outermost first
            if _same_layout(leaf.shape, strides, leaf.stride()) or not _dense(leaf.shape, strides) or order[0] != 0:
                continue  # already so, not a plain layout, or the member dimension not outermost (masks index it first)
            self.leaves[name] = leaf.detach().permute(order).contiguous().requires_grad_(leaf.requires_grad)
            self.orders[name] = tuple(order.index(dim) for dim in range(leaf.dim()))

    def module(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]) -> Callable[..., Any]:
        """Member-level view for inside a vmapped function: call the skeleton with one member's tensors."""
        return lambda *args: functional_call(self.skeleton, (params, buffers), args)

    def method(
        self, name: str, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]
    ) -> Callable[..., Any]:
        """Like :meth:`module`, for another method of the module (a VAE's objective)."""
        wrapper = _Method(self.skeleton, name)
        prefixed = {f"module.{key}": value for key, value in {**params, **buffers}.items()}
        return lambda *args: functional_call(wrapper, prefixed, args)

    def member_state(self, index: int) -> dict[str, torch.Tensor]:
        """Member ``index`` as a plain state_dict of the solo module (copies, detached, in the module's own layout)."""
        return {name: contiguous_copy(tensor[index]) for name, tensor in {**self.params, **self.buffers}.items()}

    def load_member(self, index: int, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, tensor in {**self.params, **self.buffers}.items():
                tensor[index].copy_(state[name])

    def zero_grad(self) -> None:
        for tensor in self.leaves.values():
            tensor.grad = None

    @contextlib.contextmanager
    def frozen(self) -> Iterator[dict[str, torch.Tensor]]:
        """Detached parameters: the generator's step computes no gradients for D's weights."""
        yield {name: tensor.detach() for name, tensor in self.params.items()}

    @contextlib.contextmanager
    def buffers_kept_unless(self, active: torch.Tensor, all_active: bool) -> Iterator[None]:
        """Members not ``active`` keep their buffers through the block (their solo run makes no such call).

        ``all_active`` is known on the host, as in :meth:`StackedAdam.step`: reading ``active`` would sync the
        device every step.
        """
        if not self.buffers or all_active:
            yield
            return
        saved = {name: tensor.clone() for name, tensor in self.buffers.items()}
        yield
        # new tensors, not copy_: autograd may have saved the updated buffers for the backward pass
        with torch.no_grad():
            for name, tensor in self.buffers.items():
                self.buffers[name] = torch.where(per_member(active, tensor), tensor, saved[name])


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
_LOWER = {
    *(F.linear, F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d),
    *(torch.matmul, torch.mm, torch.bmm, torch.addmm, torch.baddbmm, torch.Tensor.matmul, torch.Tensor.__matmul__),
}
# Left in float32 by autocast (mv and addmv on the CPU only), but batched by vmap into ops that autocast does cast
# (bmm, linalg_vecdot): run as the solo run runs them (spectral norm's sigma, vdot(u, mv(W, v)), stays float32).
_KEPT = {torch.dot, torch.vdot, torch.Tensor.dot, torch.Tensor.vdot}
_KEPT_ON_CPU = {torch.mv, torch.Tensor.mv, torch.addmv, torch.Tensor.addmv}
_FLOAT32 = {
    *(F.binary_cross_entropy_with_logits, F.binary_cross_entropy, F.mse_loss, F.l1_loss, F.smooth_l1_loss),
    *(F.nll_loss, F.cross_entropy, F.kl_div, F.layer_norm, F.group_norm),
}


class BatchedAutocast(TorchFunctionMode):
    """Autocast's casts for a vmapped population: bf16 in for matmuls and convolutions, float32 in for losses
    and layer/group norm, and batch norm on a bf16 input computed in float32 (as the mixed-type kernel a solo
    module reaches does) with its output in the input's dtype; and float32 for the products a solo run's
    autocast leaves alone but which vmap turns into ones it casts (``_KEPT``).

    As torch's autocast caches a solo module's weight casts for its region (D's weights are cast once for
    D(real) and D(fake), and their two gradients summed in bf16 before the one cast back), a stacked weight
    is cast once per region too: the solo run's arithmetic, and two fewer passes over D's weights per step.
    """

    def __init__(self, dtype: torch.dtype = torch.bfloat16, device_type: str = "cpu"):
        super().__init__()
        self.dtype, self.device_type = dtype, device_type
        self.weights: dict[int, tuple[torch.Tensor, int, torch.Tensor]] = {}  # id -> (weight, its version, its cast)

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func in _LOWER:
            return func(*self._lower(args), **self._lower(kwargs))
        if func in _FLOAT32:
            return func(*_cast(args, torch.float32), **_cast(kwargs, torch.float32))
        if func is F.batch_norm and args and isinstance(args[0], torch.Tensor) and args[0].dtype == self.dtype:
            return func(args[0].float(), *args[1:], **kwargs).to(self.dtype)
        if func in _KEPT or (func in _KEPT_ON_CPU and self.device_type == "cpu"):
            with torch.autocast(self.device_type, enabled=False):
                return func(*args, **kwargs)
        return func(*args, **kwargs)

    def _lower(self, values: Any) -> Any:
        return _cast(values, self.dtype, weight_cast=self._weight_cast)

    def _weight_cast(self, weight: torch.Tensor) -> torch.Tensor:
        cached = self.weights.get(id(weight))
        if cached is None or cached[1] != weight._version:
            cached = (weight, weight._version, weight.to(self.dtype))  # holding the weight keeps its id unique
            self.weights[id(weight)] = cached
        return cached[2]


def _is_stacked_weight(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` is, under vmap, a trained weight: what torch's autocast caches (a leaf that
    requires grad), or a view of one (a stack's leaf in its gradients' layout, :meth:`Stack.params`)."""
    while torch._C._functorch.is_batchedtensor(tensor):
        tensor = torch._C._functorch.get_unwrapped(tensor)
    base = tensor if tensor._base is None else tensor._base
    return tensor.requires_grad and base.is_leaf


def _cast(values: Any, dtype: torch.dtype, weight_cast: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Any:
    """Floating tensors in ``values`` (nested in dicts, tuples, lists) to ``dtype``; a trained float32 weight
    through ``weight_cast`` when given (:class:`BatchedAutocast`'s one cast per region)."""
    if isinstance(values, dict):
        return {key: _cast(value, dtype, weight_cast) for key, value in values.items()}
    if isinstance(values, (tuple, list)):
        return type(values)(_cast(value, dtype, weight_cast) for value in values)
    if (
        weight_cast is not None
        and isinstance(values, torch.Tensor)
        and values.dtype == torch.float32
        and _is_stacked_weight(values)
    ):
        return weight_cast(values)
    if isinstance(values, torch.Tensor) and values.is_floating_point() and values.dtype != torch.float64:
        return values.to(dtype)
    return values


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """What ``gbench.training.trainer.autocast`` is to a solo run: torch's autocast, plus its casts under vmap."""
    if precision != "bf16":
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16))
    stack.enter_context(BatchedAutocast(torch.bfloat16, device.type))
    return stack


def batched(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` over the members: randomness inside it (WGAN-GP's mix, a VAE's sample) differs per member."""
    return vmap(fn, randomness="different")


def per_member(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.view(-1, *([1] * (like.dim() - 1)))


def contiguous_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A detached copy in the plain layout a solo module's state_dict holds, whatever the stack's layout."""
    return tensor.detach().clone(memory_format=torch.contiguous_format)


def _same_layout(shape: torch.Size, strides: tuple[int, ...], other: tuple[int, ...]) -> bool:
    return all(
        a == b for size, a, b in zip(shape, strides, other) if size != 1
    )  # a size-1 dimension's stride means nothing


def _dense(shape: torch.Size, strides: tuple[int, ...]) -> bool:
    """Whether ``strides`` lay ``shape`` out without gaps or overlaps (a permutation of a contiguous layout)."""
    expected = 1
    for size, stride in sorted(zip(shape, strides), key=lambda pair: pair[1]):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


def bf16_note(device: torch.device) -> str | None:
    """One line when this hardware has no fast bfloat16 (bf16 still runs, emulated, usually slower)."""
    if device.type == "cuda":
        return (
            None
            if torch.cuda.is_bf16_supported()
            else f"note: {torch.cuda.get_device_name(device)} has no fast bfloat16; --precision bf16 will be slow"
        )
    if device.type == "cpu":
        try:
            flags = open("/proc/cpuinfo").read()
        except OSError:
            return None
        if "avx512_bf16" not in flags and "amx_bf16" not in flags:
            return (
                "note: this CPU has no bfloat16 instructions (avx512_bf16/amx_bf16); "
                "--precision bf16 is emulated and likely slower than fp32"
            )
    return None


class Masks:
    """Member masks as device tensors, made once per pattern: no host-to-device copy per step."""

    def __init__(self, device: torch.device, limit: int = 256):
        self.device, self.limit = device, limit
        self.made: dict[tuple[bool, ...], torch.Tensor] = {}

    def of(self, active: list[bool]) -> torch.Tensor:
        key = tuple(active)
        if key not in self.made:
            if len(self.made) >= self.limit:
                self.made.clear()
            self.made[key] = torch.tensor(key, device=self.device)
        return self.made[key]
