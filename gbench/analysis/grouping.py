"""How a study's records group: each run's setting (the name its comparisons use) and what its FID was measured with.

Runs of one setting over seeds are the unit every comparison and claim works on; FIDs of different extractors or
sample counts are different quantities, so records are also grouped by their FID's basis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gbench.analysis.stats import finite
from gbench.analysis.transitions import MEASURES
from gbench.results import schema


def is_setting_column(key: str) -> bool:
    """Whether a row's column says what its run set up (schema.is_setting_column), and is not one of the measures a
    report adds to the row (S4's walk measures, gbench.report.walks), which the schema cannot know as metrics."""
    return schema.is_setting_column(key) and key not in MEASURES


def setting_names(records: Sequence[Any]) -> list[str]:
    """A name per record: its variant, or for plain runs the settings that tell it apart.

    Plain ``gbench run`` results have no variant name; they are named by the
    set-up keys and hyperparameters whose values differ among the records
    ("architecture=mlp,latent_dim=16"), or by the architecture when none do.
    """
    if all(record.variant for record in records):
        return [record.variant for record in records]
    keys: list[str] = []
    for record in records:
        for key in record.row:
            if is_setting_column(key) and key not in keys:
                keys.append(key)
    varying = [key for key in keys if len({_text(record.row.get(key)) for record in records}) > 1]
    names = []
    for record in records:
        if record.variant:
            names.append(record.variant)
        elif varying:
            names.append(",".join(f"{key}={_text(record.row.get(key))}" for key in varying))
        else:
            names.append(str(record.row.get("architecture") or "run"))
    return names


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return "-" if value is None else str(value)


def extractor_of(record: Any) -> str | None:
    """The feature extractor of a record's FID, None when it has no FID."""
    if not finite([record.row.get("fid")]):
        return None
    return str(record.row.get("fid_extractor") or "unknown extractor")


def fid_basis(record: Any) -> tuple[str, int | None] | None:
    """What a record's FID was measured with: its extractor and its generated sample count.

    FID falls as the sample count grows (Chong and Forsyth 2020), so FIDs of
    different counts are different quantities, like FIDs of different
    extractors: each basis gets its own table. None: no FID; count None: a
    row from before gbench recorded ``fid_samples``.
    """
    extractor = extractor_of(record)
    if extractor is None:
        return None
    samples = finite([record.row.get("fid_samples")])
    return extractor, int(samples[0]) if samples else None
