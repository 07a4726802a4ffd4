"""gbench.memory: freed large blocks stay in the heap, so a loop of same-sized allocations stops page-faulting.

Each case runs in a fresh interpreter: mallopt changes the whole process, and
the test process's own heap history would blur the fault counts.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

# 100 rounds of what a training step does with a population's stacked 8 x 256 x 784 float32 weights: several
# 6.4 MB blocks (weights' casts, gradients) alive at once, then all freed. With glibc's defaults the freed top of
# the heap exceeds the (dynamic) trim threshold and goes back to the kernel, so every round faults on every page.
PROGRAM = """
import resource, sys
from gbench.memory import keep_freed_memory
kept = keep_freed_memory()
def faults(): return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = 8 * 256 * 784 * 4
start = faults()
for _ in range(100):
    buffers = [bytearray(block) for _ in range(4)]   # zeroed: every page touched
    del buffers
print(kept, faults() - start)
"""


def faults(**env: str) -> tuple[bool, int]:
    environment = {
        key: value for key, value in os.environ.items() if key not in ("GLIBC_TUNABLES", "GBENCH_MALLOC")
    } | env
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=environment, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1])


def test_kept_memory_avoids_a_page_fault_per_page_per_allocation() -> None:
    kept, with_it = faults()
    system, without = faults(GBENCH_MALLOC="system")
    assert kept and not system
    pages = 100 * 4 * (8 * 256 * 784 * 4) // 4096
    assert without > pages // 2, f"glibc's defaults should fault on each fresh block ({without} faults)"
    assert with_it < without // 10, f"kept memory should be reused ({with_it} faults against {without})"


def test_a_users_own_malloc_settings_are_left_alone() -> None:
    kept, _ = faults(GLIBC_TUNABLES="glibc.malloc.mmap_threshold=131072")
    assert not kept


def test_a_misspelt_gbench_malloc_is_one_line_and_exit_2() -> None:
    environment = {**os.environ, "GBENCH_MALLOC": "sytem"}
    result = subprocess.run(
        [sys.executable, "-m", "gbench", "plugins"], capture_output=True, text=True, env=environment
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "gbench plugins: error: GBENCH_MALLOC='sytem' is not a malloc setting; unset it (freed "
        "memory kept for reuse) or set GBENCH_MALLOC=system (glibc's defaults)"
    ]


def test_gbench_malloc_kept_is_the_default_spelt_out() -> None:
    assert faults(GBENCH_MALLOC="kept")[0] and faults(GBENCH_MALLOC="")[0]
