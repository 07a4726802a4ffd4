"""Values a report derives from a results row, defined once: the winning-discriminator flag, a run's own
training seconds, and the two counts of classes a generator produces.

**Classes covered**: classes that get at least :data:`COVERED_SHARE` (half) of
their expected share of the generated samples, the expected share being the
class's share of the dataset's test split (results.csv's ``classes_covered``,
gbench.evaluation.classmetrics). **Classes present**: classes with at least
one generated sample, a much weaker count (one sample in 50,000 is present).

**Discriminator wins**: at the end of training the discriminator tells real
from generated almost perfectly: D(x) >= :data:`D_WINS_REAL` and d_loss <=
:data:`D_WINS_LOSS`. The generator gets next to no gradient from such a
discriminator, so FID stops improving; the generator may still cover every
class, so this is a flag beside the status, not the status ``collapsed``.
Only for probability scores (BCE losses): a critic's outputs have no such scale.
Of the 470 runs published in docs/studies, 42 cross both thresholds (12 of
them with status ok, which prompted the flag); the state is a continuum (a few
collapsed runs end just outside, at D(x) 0.99 with d_loss 0.03), so the
thresholds mark a discriminator that is right on essentially every sample.

**A run's own seconds**: the members of a population train in one loop, so
its wall time belongs to all of them. ``population_seconds`` holds that wall
time and ``train_seconds`` each member's share (population seconds / members,
an equal split, not a measurement per member); for a run trained alone both
are its own wall time. Rows written before ``population_seconds`` existed hold
the population's wall time in ``train_seconds``: :func:`run_seconds` divides it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: A class is *covered* when it gets at least this fraction of
#: its expected share of the samples (the report's glossary).
COVERED_SHARE = 0.5


def covered_classes(counts: Sequence[float], expected_shares: Sequence[float]) -> int:
    """Classes covered: those whose count is at least
    :data:`COVERED_SHARE` of their expected share of all the counts."""
    total = sum(counts)
    return sum(
        1 for count, share in zip(counts, expected_shares) if share > 0 and count >= COVERED_SHARE * share * total
    )


def present_classes(counts: Sequence[float]) -> int:
    """Classes present: those with at least one sample (a weaker count than :func:`covered_classes`)."""
    return sum(1 for count in counts if count > 0)


#: The flag's thresholds (docs/results.md): D(x) at least this, d_loss at most that.
D_WINS_REAL = 0.99
D_WINS_LOSS = 0.02
D_WINS_TEXT = f"discriminator wins (D(x) >= {D_WINS_REAL} and d_loss <= {D_WINS_LOSS} at the end of training)"


def finite_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def discriminator_wins(d_real: Any, d_loss: Any, score: Any = "probability") -> bool | None:
    """Whether the discriminator won by the end (see the module's docstring); None when it cannot be told
    (no D(x) or d_loss, or critic outputs)."""
    real, loss = finite_number(d_real), finite_number(d_loss)
    if real is None or loss is None or score == "critic":
        return None
    return real >= D_WINS_REAL and loss <= D_WINS_LOSS


def row_discriminator_wins(row: Mapping[str, Any]) -> bool:
    """A results row's flag: its ``discriminator_wins`` column, else (older rows) computed from its D(x) and d_loss."""
    stored = row.get("discriminator_wins")
    if isinstance(stored, bool):
        return stored
    if isinstance(stored, (int, float)) or (isinstance(stored, str) and stored.strip().lower() in ("true", "false")):
        return str(stored).strip().lower() in ("1", "1.0", "true")
    return bool(discriminator_wins(row.get("d_real"), row.get("d_loss"), row.get("score") or "probability"))


def run_seconds(row: Mapping[str, Any]) -> float | None:
    """A run's own share of training wall time (see the module's docstring); None without ``train_seconds``."""
    seconds = finite_number(row.get("train_seconds"))
    if seconds is None:
        return None
    if "population_seconds" in row and row.get("population_seconds") is not None:
        return seconds  # written as the member's share already
    members = finite_number(row.get("population")) or 1.0
    return seconds / max(1.0, members)


def population_seconds(row: Mapping[str, Any]) -> float | None:
    """The wall time of the training loop a run was part of (its own for a run trained alone)."""
    stored = finite_number(row.get("population_seconds"))
    if stored is not None:
        return stored
    return finite_number(row.get("train_seconds"))  # older rows: train_seconds held the population's wall time
