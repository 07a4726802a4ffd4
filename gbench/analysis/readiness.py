"""Whether a study's runs trained far enough for its report to answer anything.

A study cut to a small budget can stop while every generator still draws
noise. Its FIDs still differ, and the tests still find some differences, but
they rank kinds of noise, not the settings the study asks about. The rule here
decides that from the numbers each run records, before the answer is written.

**The rule**: the report answers only when at least one setting's mean
``coverage`` (Naeem et al. 2020, results.csv's prdc coverage: the share of real
test images that have a generated sample within their 5th-nearest-neighbour
radius in the extractor's feature space) reaches :data:`TRAINED_COVERAGE`.
Coverage is the per-run column with a scale that does not depend on the
extractor: samples drawn from the data itself score about 1 - 2**-5 = 0.97,
samples off the data manifold (noise, blobs) score 0, whatever the FID's units.
A threshold of 0.02 asks that one real image in 50 has a generated sample
near it. Of the reports published in docs/studies, only the S2 6 x 6 at 1/25
budget stays below it (its best setting: 0.017, recall 0.005, samples that are
noise to the eye); the next lowest study, S2 2 x 2 at 1/20, reaches 0.035 and
its samples are recognisable digits. Without a coverage column (the metric was
not run) the rule says nothing and the report answers as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gbench.analysis.grouping import setting_names
from gbench.results.flags import finite_number

#: A study answers only when some setting's mean prdc coverage reaches this (docs/reports.md).
TRAINED_COVERAGE = 0.02
NOT_TRAINED = "not trained enough to answer"


def best_coverage(records: Sequence[Any]) -> tuple[str, float] | None:
    """The setting with the highest mean coverage over its runs, and that mean; None when no run records coverage."""
    by_setting: dict[str, list[float]] = {}
    for name, record in zip(setting_names(records), records):
        value = finite_number(record.row.get("coverage"))
        if value is not None:
            by_setting.setdefault(name, []).append(value)
    if not by_setting:
        return None
    return max(((name, sum(values) / len(values)) for name, values in by_setting.items()), key=lambda pair: pair[1])


def not_trained_text(records: Sequence[Any], budget: float | None = None, full: str | None = None) -> str | None:
    """The answer that replaces a report's when no setting reaches TRAINED_COVERAGE; None when one does (or none was
    measured)."""
    best = best_coverage(records)
    if best is None or best[1] >= TRAINED_COVERAGE:
        return None
    name, coverage = best
    if budget is not None and budget < 1:
        # Coverage does not grow in proportion to steps, so no budget can be promised;
        # the full study's is the one to try.
        advice = f"run at budget > {budget:g}{f' (the full study: {full})' if full else ''}"
    else:
        advice = "run at a larger budget (more epochs or steps)"
    return (
        f"{NOT_TRAINED.capitalize()}; {advice}. No setting's samples reach coverage {TRAINED_COVERAGE:g} "
        f"(the best, {name}: {coverage:.4f}), so the FIDs below rank noise, not the settings."
    )
