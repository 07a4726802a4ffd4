"""A pickle reader that cannot run code: only numpy's array names resolve.

CIFAR's python batches are pickles. An ordinary ``pickle.load`` calls any
global the file names (``os.system`` in a planted file would run), so they go
through :class:`ArrayUnpickler`, which resolves numpy's array reconstruction
names and refuses every other global: a planted file is one error line, never
a call.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from gbench.errors import GbenchError

__all__ = ["ArrayUnpickler", "safe_unpickle"]

#: The only globals a CIFAR batch needs: numpy's ndarray pickling (numpy 1.x and 2.x module names).
_ARRAY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    # Python 3's protocol-2 pickles spell bytes as _codecs.encode(text, "latin1"): a pure conversion that runs nothing.
    ("_codecs", "encode"),
}


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, bytes, numbers and numpy arrays; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ARRAY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def safe_unpickle(path: Path, fix: str) -> Any:
    """A pickle of plain data and numpy arrays (latin-1 strings, as Python 2 wrote CIFAR); GbenchError otherwise."""
    try:
        with open(path, "rb") as handle:
            return ArrayUnpickler(handle, encoding="latin1").load()
    except pickle.UnpicklingError as error:
        raise GbenchError(
            f"{str(path)!r} holds objects other than plain data and numpy arrays ({error}), "
            f"so gbench will not load it; {fix}"
        ) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as error:
        raise GbenchError(f"{str(path)!r} is damaged ({type(error).__name__}: {str(error)[:80]}); {fix}") from None
