"""Reading a suite file's tables: each value checked where it is read, each problem one line naming the key and
the fix (gbench.errors.GbenchError), before anything trains."""

from __future__ import annotations

from typing import Any

from gbench.analysis.sequential import Design, parse_auto
from gbench.errors import GbenchError
from gbench.names import suggestion
from gbench.options import suite_keys


def unknown(keys: Any, allowed: tuple[str, ...], where: str) -> None:
    for key in keys:
        if key not in allowed:
            raise GbenchError(
                f"{where}: unknown key {key!r}{suggestion(key, allowed)}; valid keys: {', '.join(allowed)}"
            )


def table_of(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise GbenchError(
            f"{where}: [{key}] must be a table, e.g. [{key}] on a line of its own followed by key = value lines"
        )
    return value


def changes_of(table: dict[str, Any], where: str, quick: bool = False) -> dict[str, Any]:
    """[base], a variant or [quick] (which may also set the seeds): the run options that are suite keys
    (gbench.options.suite_keys)."""
    unknown(table, (*suite_keys(), "seeds") if quick else suite_keys(), where)
    if "params" in table and not isinstance(table["params"], dict):
        raise GbenchError(f"{where}: params must be a table of hyperparameters, e.g. params = {{ hidden_dim = 512 }}")
    return dict(table)


def seeds_auto_of(value: Any, where: str) -> Design | None:
    """seeds = "auto" or "auto:MAX" as a Design; None for a list."""
    if not isinstance(value, str):
        return None
    try:
        design = parse_auto(value)
    except GbenchError as error:
        raise GbenchError(f"{where}: {error}") from None
    if design is None:
        raise GbenchError(
            f'{where}: seeds = {value!r} must be a list of seeds, e.g. seeds = [0, 1, 2], or "auto" / "auto:MAX" '
            "(seeds added while undecided)"
        )
    return design


def seeds_of(value: Any, where: str) -> list[int]:
    if (
        not isinstance(value, list)
        or not value
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in value)
    ):
        raise GbenchError(
            f"{where}: seeds = {value!r} must be a non-empty list of non-negative integers, e.g. seeds = [0, 1, 2]"
        )
    if len(set(value)) != len(value):
        raise GbenchError(f"{where}: seeds = {value!r} repeats a seed")
    return list(value)
