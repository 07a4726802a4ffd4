"""What a run ran on and with: the hardware (GPU name, or CPU model and threads) and gbench's version and commit.

Written into every results row (``hardware``, ``gbench_version``) so that a report names the machine its
numbers come from, and used by the report for the machine that wrote it.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from gbench import __version__


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name, e.g. 'AMD EPYC 9R14'."""
    try:
        with open("/proc/cpuinfo") as lines:
            for line in lines:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def hardware(device: Any = None) -> str:
    """The GPU's name on CUDA, else the CPU's model with torch's threads and the logical CPUs, in one line."""
    import torch

    if device is not None and torch.device(device).type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (GPU)"
    return f"{cpu_model()}, {torch.get_num_threads()} threads of {os.cpu_count()} logical CPUs"


@functools.lru_cache(maxsize=1)
def gbench_version() -> str:
    """``0.1.0 (commit 69e62ce)``, ``-dirty`` when the checkout
    has changes; the version alone outside a git checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        described = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return __version__
    commit = described.stdout.strip()
    return f"{__version__} (commit {commit})" if described.returncode == 0 and commit else __version__


def columns(device: Any) -> dict[str, str]:
    """A results row's provenance columns for a run trained on ``device``."""
    return {"hardware": hardware(device), "gbench_version": gbench_version()}
