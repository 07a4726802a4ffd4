"""Environment switches, parsed one way everywhere.

A switch is on when set to anything but ``""``, ``0``, ``false``, ``no`` or
``off`` (any case): ``GBENCH_OFFLINE=1`` and ``GBENCH_OFFLINE=yes`` mean the
same, and ``GBENCH_OFFLINE=0`` is off, as users of pytest's and pip's
switches expect.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

_OFF = ("", "0", "false", "no", "off")


def flag(name: str) -> bool:
    """Whether the switch ``name`` is on."""
    return os.environ.get(name, "").strip().lower() not in _OFF


def names_list(name: str) -> list[str]:
    """A comma-separated list variable (``GBENCH_PLUGINS=a,b``) as its non-empty items."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


@contextlib.contextmanager
def kept(names: Iterable[str]) -> Iterator[None]:
    """Put the variables ``names`` back as they were (set to their value, or unset) when the block ends."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
