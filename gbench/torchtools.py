"""Small torch helpers every stage needs: choosing a device, eval mode for a while."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from gbench.errors import GbenchError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``,
    checked against what this torch build and machine have."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise GbenchError(f"--device {name!r} is not one of {DEVICE_CHOICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GbenchError(
                f"--device {name} was asked for but torch sees no CUDA device; use --device cpu or --device auto"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise GbenchError(f"--device {name}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    elif device.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise GbenchError(
                f"--device {name} was asked for but this torch build or machine has no "
                "MPS (Apple-silicon) support; use --device cpu"
            )
    elif device.type != "cpu":
        raise GbenchError(f"--device {name!r} is not one of {DEVICE_CHOICES}")
    return device


@contextmanager
def eval_mode(*modules: torch.nn.Module | None) -> Iterator[None]:
    """Put modules (and every submodule) in eval mode, then restore each one's own mode.

    Restoring per submodule matters: a plugin may keep a part frozen in eval
    mode on purpose, and ``module.train(previous)`` would flip it back.
    """
    modes = [(m, m.training) for module in modules if module is not None for m in module.modules()]
    for module in modules:
        if module is not None:
            module.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
