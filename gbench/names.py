"""The "unknown name, did you mean" message, written once for every table of names."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path

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


def missing_file(what: str, path: str, folders: Iterable[Path] = (), example: str = "") -> GbenchError:
    """The error for a file that does not exist: the closest file of its suffix beside it or in ``folders``
    (``s3_dynamic_short.toml``: benchmarks/suites/s3_dynamics_short.toml),
    else the files in ``folders`` (or beside it)."""
    wanted = Path(path).expanduser()
    folders = list(folders)

    def files(places: list[Path]) -> dict[str, str]:  # as shown (relative to here when under it) -> file name
        found = (
            file
            for place in places
            if place.is_dir()
            for file in sorted(place.glob(f"*{wanted.suffix or '.*'}"))
            if file.is_file()
        )
        return {
            (os.path.relpath(file) if file.resolve().is_relative_to(Path.cwd()) else str(file)): file.name
            for file in found
        }

    candidates = files([wanted.parent, *folders])
    close = difflib.get_close_matches(wanted.name, list(candidates.values()), n=1)
    if close:
        hint = f" (did you mean {next(shown for shown, name in candidates.items() if name == close[0])!r}?)"
    else:
        listed = list(files(folders or [wanted.parent]))
        hint = f"; there: {', '.join(listed[:20])}{' ...' if len(listed) > 20 else ''}" if listed else ""
    return GbenchError(f"{what} {path!r} does not exist{hint}{'; give the path of ' + example if example else ''}")
