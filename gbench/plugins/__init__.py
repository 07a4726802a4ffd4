"""The plugin API: the hook specifications (hookspecs), what plugins provide
(registry), loading them (loading), and calling run observers (observers)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gbench.plugins.loading import PluginInfo, Plugins, load_plugins, resolve_target

__all__ = ["PluginInfo", "Plugins", "load_plugins", "resolve_target"]


def __getattr__(name: str) -> Any:
    """The names above, imported on first use: importing a module of this package stays as cheap as that module."""
    if name in __all__:
        return getattr(importlib.import_module("gbench.plugins.loading"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
