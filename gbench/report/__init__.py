"""Reports: a study's Markdown and HTML report (build), its tables (grids), figures and plots, interpolation strips,
and the index of published studies."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gbench.report.build import report_tables, write_report

__all__ = ["report_tables", "write_report"]


def __getattr__(name: str) -> Any:
    """The names above, imported on first use: importing a module of this package stays as cheap as that module."""
    if name in __all__:
        return getattr(importlib.import_module("gbench.report.build"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
