"""Keep freed memory for reuse: glibc's malloc otherwise hands each large tensor back to the kernel.

glibc serves an allocation above its mmap threshold (128 KiB, raised dynamically
up to 32 MiB) with a fresh mmap and unmaps it when freed, so a training step
that allocates the same multi-megabyte tensors every step (a population's
stacked weights, gradients and their bf16 casts) page-faults on every byte of
them, every step: the S2 2 x 2 quarter sweep took 70 million minor faults. With
a fixed high mmap threshold and trim threshold, freed blocks stay in the heap
and the next step reuses them. Measured with benchmarks/population_speed.py's
MLP cell on the 2-core Intel Xeon with AMX: a population of 8 went from
1.24-1.33x to 1.38-1.41x the images/s of solo runs in fp32, from 1.50-1.55x to
1.71-1.78x in bf16; solo runs did not change (their tensors are small). This is
what PyTorch's CPU tuning guide gets from jemalloc or tcmalloc, without
preloading a library.

A user who sets GLIBC_TUNABLES or MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_
keeps their own choice; GBENCH_MALLOC=system turns this off (any value but
system, kept or empty is an error, so a typo does not pass unnoticed). Not glibc (macOS,
musl): nothing happens.
"""

from __future__ import annotations

import ctypes
import os

from gbench.errors import GbenchError

# mallopt's parameter numbers, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap and stay there when freed (glibc's ceiling for the mmap threshold
#: on 64-bit is 32 MiB: larger values are refused, so a larger tensor still gets its own mmap).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of the heap beyond this is returned to the kernel.
TRIM_THRESHOLD = 1 << 30

_USER_SETTINGS = ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True when they were set."""
    choice = os.environ.get("GBENCH_MALLOC", "")
    if choice.lower() not in ("", "system", "kept"):
        raise GbenchError(
            f"GBENCH_MALLOC={choice!r} is not a malloc setting; unset it (freed memory kept "
            "for reuse) or set GBENCH_MALLOC=system (glibc's defaults)"
        )
    if choice.lower() == "system" or any(name in os.environ for name in _USER_SETTINGS):
        return False
    try:  # the symbols already loaded into this process: no library search (find_library runs ldconfig)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no mallopt: not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
