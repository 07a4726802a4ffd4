"""Reduced-budget suites: ``budget = FRACTION`` and ``full = "FILE"`` make a suite the full study's at a fraction
of its training length (see docs/sweeps.md), so that the two cannot drift apart."""

from __future__ import annotations

import copy
from fractions import Fraction
from pathlib import Path
from typing import Any

from gbench.config import read_toml
from gbench.errors import GbenchError

#: What budget = FRACTION scales in [base], the variants and the grid: the training length.
BUDGET_KEYS = ("epochs", "steps")


def _scaled(value: Any, budget: float, where: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GbenchError(f"{where}: {value!r} must be a number to scale by budget")
    return max(1, round(value * budget))


def _scale_training(table: dict[str, Any], budget: float, where: str) -> None:
    for key in BUDGET_KEYS:
        if key in table:
            table[key] = _scaled(table[key], budget, f"{where} {key}")


def budget_text(budget: float) -> str:
    """0.25 as "1/4": how reports and titles name a fraction of a budget."""
    fraction = Fraction(budget).limit_denominator(1000)
    return f"{fraction.numerator}/{fraction.denominator}"


def reduced(data: dict[str, Any], path: Path | None, where: str, base: dict[str, Any]) -> dict[str, Any]:
    """A ``budget = FRACTION`` suite as the full suite it names (``full``), its training length scaled.

    The reduced file holds only what differs: its [suite] keys replace the full
    suite's, its [base] keys are set after scaling (e.g. eval_every), and its
    [[claims]], when it has any, replace the full suite's; so do its [search]
    keys (e.g. fewer trials). Variants, grid and [quick] are the full suite's,
    so the two cannot drift apart. ``base``: this file's checked [base] table.
    """
    head = data["suite"]
    budget = head["budget"]
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget <= 1:
        raise GbenchError(
            f"{where}: budget = {budget!r} must be a fraction of the full study's training length, 0 < budget <= 1, "
            "e.g. budget = 0.25"
        )
    if "name" not in head:
        raise GbenchError(
            f'{where}: a budget = {budget!r} suite needs its own name = "..." in [suite], so that its runs do not '
            "join the full study's"
        )
    if not head.get("full") or path is None:
        raise GbenchError(
            f"{where}: budget = {budget!r} scales the full study; name its suite file beside this one, e.g. full = "
            '"s1_mlp_capacity.toml"'
        )
    for key in ("variants", "grid", "quick"):
        if key in data:
            raise GbenchError(
                f"{where}: a budget = {budget!r} suite takes its [{key}] from {head['full']!r}; remove [{key}] here "
                "(or remove budget)"
            )
    full_path = path.parent / str(head["full"])
    full = read_toml(full_path, "suite file", "the full study's suite .toml, beside this one")
    if "budget" in full.get("suite", {}):
        raise GbenchError(f"{where}: full = {head['full']!r} is itself a budget suite; name the full study's file")
    merged = copy.deepcopy(full)
    merged["suite"] = {**merged.get("suite", {}), **{k: v for k, v in head.items() if k != "budget"}}
    if "title" not in head:
        merged["suite"]["title"] = (
            f"{full.get('suite', {}).get('title', head['name'])} (at {budget_text(budget)} of its budget)"
        )
    _scale_training(merged.setdefault("base", {}), budget, f"{where} [base]")
    for variant in merged.get("variants", []) if isinstance(merged.get("variants"), list) else []:
        if isinstance(variant, dict):
            _scale_training(variant, budget, f"{where} variant {variant.get('name')!r}")
    for axis in BUDGET_KEYS:
        if isinstance(merged.get("grid"), dict) and isinstance(merged["grid"].get(axis), list):
            merged["grid"][axis] = [_scaled(v, budget, f"{where} [grid] {axis}") for v in merged["grid"][axis]]
    apply_changes(merged["base"], base)
    if isinstance(data.get("search"), dict) and isinstance(merged.get("search"), dict):
        merged["search"] = {**merged["search"], **data["search"]}
    elif "search" in data:
        merged["search"] = data["search"]
    if "claims" in data:
        merged["claims"] = data["claims"]
    return merged


def apply_changes(settings: dict[str, Any], changes: dict[str, Any]) -> None:
    """Set ``changes``' keys in ``settings``; params merge by hyperparameter, as a variant's do over [base]."""
    for key, value in changes.items():
        if key == "params":
            settings.setdefault("params", {}).update(value)
        else:
            settings[key] = value
