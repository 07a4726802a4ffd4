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
    threads = torch.get_num_threads()
    return f"{cpu_model()}, {threads} thread{'' if threads == 1 else 's'} of {os.cpu_count()} logical CPUs"


#: What "-dirty" looks at: the code that trains and reports. Reports, results and docs written into the
#: checkout do not count (republishing one report would otherwise mark the next as written by changed code).
CODE_PATHS = ("gbench", "plugins", "pyproject.toml")


@functools.lru_cache(maxsize=1)
def gbench_version() -> str:
    """``0.1.0 (commit 69e62ce8a0b1)``, ``-dirty`` when gbench's code (:data:`CODE_PATHS`) has uncommitted
    changes; the version alone outside a git checkout."""
    root = Path(__file__).resolve().parents[2]

    def git(*arguments: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *arguments], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short=12", "HEAD")
    if not commit:
        return __version__
    changed = git("status", "--porcelain", "--", *CODE_PATHS)
    return f"{__version__} (commit {commit}{'-dirty' if changed else ''})"


def columns(device: Any) -> dict[str, str]:
    """A results row's provenance columns for a run trained on ``device``."""
    return {"hardware": hardware(device), "gbench_version": gbench_version()}
