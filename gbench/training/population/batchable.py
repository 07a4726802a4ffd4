"""Can these modules train as a population? Probes that say why not, in one line.

:func:`unbatchable_reason` tries one module per member as a :class:`gbench.training.population.stack.Stack`
on a test batch, batched and member by member, and compares what they give:
a Python attribute that changes in a forward pass (state vmap cannot give each
member), an operation vmap cannot batch, or outputs, gradients and buffers that
differ from the members' own. :func:`trial_step_failure` then trains copies one step
as a population, for what a module probe cannot see (a loss that does not run batched).
docs/plugins.md says what makes a module batchable.
"""

from __future__ import annotations

import contextlib
import copy
import textwrap
from typing import Any

import torch
from torch import nn

from gbench.training.conditioning import Conditioning
from gbench.training.population.loop import Member, train_population
from gbench.training.population.stack import Stack, batched
from gbench.training.trainer import TrainSettings

Inputs = torch.Tensor | tuple[torch.Tensor, ...]  # a module's arguments, members first: (x,) or (x, y) when conditional

#: Batched against member-by-member outputs may differ by float reassociation only.
PROBE_TOLERANCE = 1e-4


def unbatchable_reason(modules: list[nn.Module], inputs: Inputs, name: str) -> str | None:
    """Why ``modules`` (one per member) cannot be trained as a stack, in one line; None when they can.

    Works on copies: runs two train-mode forward passes and a backward pass
    batched and member by member on ``inputs`` (members x batch x ..., a tuple of the
    arguments for a module that takes several) and compares outputs, gradients and buffers.
    """
    arguments = inputs if isinstance(inputs, tuple) else (inputs,)
    solo = [copy.deepcopy(module).train() for module in modules]
    try:
        stack = Stack([copy.deepcopy(module).train() for module in modules])
    except Exception as error:
        return f"its {name}'s weights cannot be stacked ({_first_line(error)})"
    for attempt in range(2):
        before = [_python_state(module) for module in solo]
        expected = [module(*member) for module, member in zip(solo, zip(*arguments))]
        changed = [
            path
            for module, state in zip(solo, before)
            for path, value in _python_state(module).items()
            if state.get(path) != value
        ]
        if changed:
            return (
                f"its {name} changes the Python attribute {changed[0]!r} in a forward pass "
                "(state a stacked module cannot keep per member)"
            )
        try:
            got = batched(lambda p, b, args: stack.module(p, b)(*args))(stack.params, stack.buffers, arguments)
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
                stacked = torch.stack(reference)  # type: ignore[arg-type]
                if not torch.allclose(tensor.grad, stacked, rtol=PROBE_TOLERANCE, atol=PROBE_TOLERANCE):
                    return f"its {name}'s gradients for {param_name!r} differ batched from member by member"
        for buffer_name, tensor in stack.buffers.items():
            solo_buffers = torch.stack([dict(module.named_buffers())[buffer_name] for module in solo])
            if not torch.allclose(
                tensor.to(solo_buffers.dtype), solo_buffers, rtol=PROBE_TOLERANCE, atol=PROBE_TOLERANCE
            ):
                return f"its {name} updates the buffer {buffer_name!r} differently batched than member by member"
    return None


def _python_state(module: nn.Module) -> dict[str, str]:
    """Each submodule's plain Python attributes (not tensors, submodules or hooks), as text to compare."""
    skip = {"_parameters", "_buffers", "_modules", "training"}
    state = {}
    for path, submodule in module.named_modules():
        for key, value in vars(submodule).items():
            if (
                key in skip
                or key.startswith("_")
                and key.endswith("hooks")
                or isinstance(value, (torch.Tensor, nn.Module))
            ):
                continue
            with contextlib.suppress(Exception):
                state[f"{path}.{key}" if path else key] = repr(value)
    return state


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:200]


def trial_step_failure(
    members: list[Member],
    loss: Any,
    data: torch.Tensor,
    settings: TrainSettings,
    conditioning: Conditioning | None = None,
) -> str | None:
    """Train copies of the members one step as a population; the error in one line if that fails.

    Catches what a module probe cannot see: a loss, objective or schedule
    that does not run batched. The copies leave the members, and torch's
    global random state, as they were.
    """
    copies = [Member(copy.deepcopy(member.nets), member.schedule, member.seed) for member in members]
    devices = [data.device] if data.device.type == "cuda" else []
    one_step = TrainSettings(steps=1, batch_size=settings.batch_size, lr=settings.lr, precision=settings.precision)
    try:
        with torch.random.fork_rng(devices=devices):
            train_population(copies, loss, data, one_step, conditioning)
    except Exception as error:
        text = str(error).strip().splitlines()
        # torch's messages run long: cut at a word, and say so
        first = textwrap.shorten(text[0], 164, placeholder=" ...") if text else ""
        return f"one batched training step failed ({type(error).__name__}: {first})"
    return None
