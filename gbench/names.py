"""The "unknown name, did you mean" message, written once for every table of names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from gbench.errors import GbenchError


def closest(name: object, known: Iterable[object]) -> str | None:
    """The known name closest to ``name``, or None when none is close."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    return close[0] if close else None


def suggestion(name: object, known: Iterable[object]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or ``""`` when none is close."""
    close = closest(name, known)
    return f" (did you mean {close!r}?)" if close else ""


def unknown(what: str, name: object, known: Iterable[object], fix: str = "") -> GbenchError:
    """The error for a name that is not among ``known``: it lists them and suggests the closest.

    ``what`` names the table (``"architecture"``, ``"suite key"``); ``fix`` is
    an optional last clause (``"; pass the plugin file as TARGET"``).
    """
    known = sorted({str(k) for k in known})
    listed = ", ".join(known) or "none"
    return GbenchError(f"unknown {what} {str(name)!r}{suggestion(name, known)}; known: {listed}{fix}")


def with_article(word: str) -> str:
    """``"an int"``, ``"an architecture"``, ``"a loss"``: the indefinite article generated messages need."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
