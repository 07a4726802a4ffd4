"""When two settings' runs are paired by seed, and the paired comparison's numbers.

A seed fixes a run's initial weights, its noise and its batch order. Two
settings with the same set-up and hyperparameters that differ only in how
long they trained (S1's ``epochs-100`` against its 200-epoch baseline) are
then the same runs stopped at different points: seed 3 of one and seed 3 of
the other share everything up to the shorter one's end, so their FIDs are
correlated and the comparison is paired (a paired t-test on the seed-by-seed
differences). Settings that differ in set-up or hyperparameters (another
width, another latent size) draw other weights from the same seed, so
nothing pairs them and Welch's unpaired test holds. Settings that differ only
in ``ema`` are paired too: the moving average is kept beside training and never
fed back (gbench.training.ema), so seed 3 with and without it is the same
training, evaluated from other weights (S8's mlp and mlp-ema record the same
losses to the last digit).

:func:`pairing` decides from the runs' rows alone and gives the reason
either way, in words a report prints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from gbench.analysis.grouping import is_setting_column
from gbench.analysis.stats import (
    bootstrap_difference,
    paired_detectable_difference,
    paired_difference,
    paired_seeds_needed,
    probability_of_improvement,
    summarize,
)

#: Bookkeeping columns that say how long a run trained.
LENGTH_COLUMNS = ("steps", "epochs")
#: Set-up columns that change which weights are evaluated but not the training itself.
OBSERVING_COLUMNS = ("ema",)
PAIRED, UNPAIRED = "paired t", "Welch"


def _setting_of(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {k: v for k, v in rows[0].items() if is_setting_column(k)} if rows else {}


def _lengths(rows: Sequence[Mapping[str, Any]]) -> set[tuple[Any, ...]]:
    return {tuple(row.get(column) for column in LENGTH_COLUMNS) for row in rows}


def _differences(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]]) -> list[str]:
    setting_a, setting_b = _setting_of(rows_a), _setting_of(rows_b)
    return sorted(k for k in set(setting_a) | set(setting_b) if str(setting_a.get(k)) != str(setting_b.get(k)))


def trained_differences(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]]) -> list[str]:
    """The setting columns two settings differ in that change the training itself (any but OBSERVING_COLUMNS):
    where there is one, a seed draws each setting its own initial weights and nothing pairs them."""
    return [k for k in _differences(rows_a, rows_b) if k not in OBSERVING_COLUMNS]


def pairing(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]]) -> tuple[bool, str]:
    """(whether the two settings' runs pair by seed, why or why not, one clause)."""
    observing = [k for k in _differences(rows_a, rows_b) if k in OBSERVING_COLUMNS]
    if trained := trained_differences(rows_a, rows_b):
        return False, f"they differ in {', '.join(trained)}, so a seed draws each its own initial weights"
    if not observing and _lengths(rows_a) == _lengths(rows_b):
        return (
            False,
            "their recorded set-up and length are the same, so what tells them apart is not recorded and pairing is "
            "not assumed",
        )
    seeds_a, seeds_b = {int(row.get("seed") or 0) for row in rows_a}, {int(row.get("seed") or 0) for row in rows_b}
    if seeds_a != seeds_b:
        return False, "they ran different seeds"
    if observing:
        return (
            True,
            f"they differ only in {', '.join(observing)}, an average of the generator's weights kept beside training, "
            "so seed by seed they are the same training evaluated from other weights",
        )
    return (
        True,
        "the same runs (set-up, hyperparameters, seeds) trained for different lengths share initial weights and batch "
        "order seed by seed",
    )


def pairs(values_a: Mapping[int, float], values_b: Mapping[int, float]) -> tuple[list[float], list[float]]:
    """The values of the seeds both sides have a finite value for, in seed order."""
    seeds = sorted(
        s for s in set(values_a) & set(values_b) if math.isfinite(values_a[s]) and math.isfinite(values_b[s])
    )
    return [values_a[s] for s in seeds], [values_b[s] for s in seeds]


def describe_paired(row: Any, reference: Any, relevant: float | None, a: list[float], b: list[float]) -> None:
    """:func:`gbench.analysis.comparisons._describe_difference` for a paired comparison: the paired interval, a
    bootstrap of seeds drawn for both sides at once, and power from the sd of the seed-by-seed differences."""
    row.diff, low, high = paired_difference(a, b)
    row.diff_welch = (low, high)
    row.diff_bootstrap = bootstrap_difference(a, b, paired=True)
    row.p_better, *interval = probability_of_improvement(a, b)
    row.p_better_interval = (interval[0], interval[1])
    sd_differences = summarize([x - y for x, y in zip(a, b)]).sd or 0.0
    row.detectable = paired_detectable_difference(sd_differences, len(a))
    row.seeds_needed = paired_seeds_needed(row.diff, sd_differences)
    row.relevant = relevant
