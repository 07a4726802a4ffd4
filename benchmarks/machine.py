"""What every benchmark prints first: the machine its figures come from (ratios compare only within one run)."""

from __future__ import annotations

import os
import platform
from typing import Any


def cpu_model() -> str:
    """The CPU's model name and the logical CPUs this process sees, e.g. 'AMD EPYC 9R14 (2 logical CPUs)'."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(device: Any) -> str:  # a torch.device: torch is imported when this is called, not for cpu_model
    """The GPU's name on CUDA, else the CPU's model and torch's threads."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model().rsplit(" (", 1)[0] + f" ({torch.get_num_threads()} threads)"
