"""gbench: which GAN variant is better, by how much, and at what cost.

The public API is listed in docs/api.md (tests/test_api.py keeps the two in step).
"""

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any

import pluggy

from gbench.errors import GbenchError  # light (no imports of its own): the type gbench.run and the others raise

__version__ = "0.1.0"

#: Decorate plugin functions with this: ``@hookimpl def gbench_register_architectures(register): ...``
hookimpl = pluggy.HookimplMarker("gbench")

#: Import paths that 0.1's docs gave, kept working: each is the same module object as its new home.
#: Only paths the docs used are here; every other module is imported from its package.
MOVED = {
    "gbench.registry": "gbench.plugins.registry",
    "gbench.observers": "gbench.plugins.observers",
    "gbench.evaluate": "gbench.evaluation.evaluate",
    "gbench.extractors": "gbench.evaluation.extractors",
    "gbench.records": "gbench.results.records",
    "gbench.stats": "gbench.analysis.stats",
    "gbench.comparisons": "gbench.analysis.comparisons",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old path to its module on first import, so ``import gbench`` stays cheap (no torch)."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed under its new name


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())

#: The Python API (gbench/api.py), imported on first use: ``import gbench`` loads neither torch nor pandas.
#: By name, not an import statement: the API is an edge that drives the commands, above every layer of the library.
_API = ("run", "load", "sweep", "tune")


def __getattr__(name: str) -> Any:  # Any, not object: a type checker lets a caller call gbench.run(...)
    if name in _API:
        return getattr(importlib.import_module("gbench.api"), name)
    raise AttributeError(f"module 'gbench' has no attribute {name!r}")


__all__ = ["GbenchError", "__version__", "hookimpl", *_API]
