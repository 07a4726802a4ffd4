"""Can these modules train as a population? A probe that says why not, in one line.

:func:`unbatchable_reason` tries one module per member as a :class:`gbench.training.population.stack.Stack`
on a test batch, batched and member by member, and compares what they give:
a Python attribute that changes in a forward pass (state vmap cannot give each
member), an operation vmap cannot batch, or outputs, gradients and buffers that
differ from the members' own. docs/plugins.md says what makes a module batchable.
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

from gbench.training.population.stack import Stack, batched

#: Batched against member-by-member outputs may differ by float reassociation only.
PROBE_TOLERANCE = 1e-4


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
        changed = [
            path
            for module, state in zip(solo, before)
            for path, value in _python_state(module).items()
            if state.get(path) != value
        ]
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
