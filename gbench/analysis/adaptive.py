"""``gbench sweep --seeds auto[:MAX]``: seeds in rounds, only where a comparison is still undecided.

The statistics are :mod:`gbench.analysis.sequential`'s; this module turns them into
work. A :class:`Schedule` is computed from the finished runs alone (FID per
``variant|seed``), never from what a worker remembers:

- round 1 wants seeds ``0 .. start-1`` of every setting;
- once every wanted run has a result, each non-baseline setting's course is
  replayed (:func:`gbench.analysis.sequential.replay`, seeds in order); the settings
  still undecided, and the baseline, want one seed more;
- until none is undecided (each is ``different`` or ``not distinguishable``
  at MAX seeds).

Because the schedule depends only on results by seed order, any worker at
any time computes the same one: a resumed sweep, a second machine and the
report (:func:`seeds_grid`) all agree without storing decisions anywhere. A
diverged run counts as NaN, which the replayed test drops from its look.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gbench.analysis.sequential import UNDECIDED, Design, Outcome, parse_auto, replay
from gbench.errors import GbenchError

#: results.csv column (bookkeeping) naming the design of an auto-seeded sweep's runs, e.g. "auto:10"
COLUMN = "seeds_auto"


def design_text(design: Design) -> str:
    return f"auto:{design.max_seeds}"


def key(setting: str, seed: int) -> str:
    """A sweep trial's key, as :attr:`gbench.studies.sweep.suite.Run.key`."""
    return f"{setting}|{seed}"


@dataclass
class Schedule:
    """The runs an auto-seeded sweep wants now, and where each comparison stands."""

    design: Design
    baseline: str
    wanted: dict[str, int]  # setting -> seeds 0 .. n-1 it gets so far
    pending: list[str]  # wanted keys without a finished run
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # non-baseline settings, at the last complete look

    @property
    def done(self) -> bool:
        return not self.pending and all(o.decision != UNDECIDED for o in self.outcomes.values())

    def keys(self) -> list[str]:
        """Every wanted key, setting by setting in seed order."""
        return [key(name, seed) for name, count in self.wanted.items() for seed in range(count)]


def schedule(design: Design, settings: Sequence[str], baseline: str, fids: Mapping[str, float]) -> Schedule:
    """The schedule given the finished runs' FIDs (``variant|seed`` -> FID, NaN for a run without one)."""
    if baseline not in settings:
        raise GbenchError(f"seeds auto: the baseline {baseline!r} is not among the settings {', '.join(settings)}")
    wanted = {name: design.start for name in settings}
    outcomes: dict[str, Outcome] = {}
    while True:
        pending = [
            k for k in (key(name, seed) for name, count in wanted.items() for seed in range(count)) if k not in fids
        ]
        if pending:
            return Schedule(design, baseline, wanted, pending, outcomes)

        def series(name: str) -> list[float]:
            return [fids[key(name, seed)] for seed in range(wanted[name])]

        outcomes = {name: replay(design, series(name), series(baseline)) for name in settings if name != baseline}
        undecided = [name for name, outcome in outcomes.items() if outcome.decision == UNDECIDED]
        if not undecided:
            return Schedule(design, baseline, wanted, [], outcomes)
        # an undecided setting has as many seeds as the baseline: both get the next one
        more = wanted[baseline] + 1
        for name in (*undecided, baseline):
            wanted[name] = more


def fid_value(value: Any) -> float:
    """A stored FID as a float, NaN when the run has none (diverged, or evaluation off)."""
    return (
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else math.nan
    )


def fids_of_records(records: Sequence[Any]) -> dict[str, float]:
    return {key(r.variant, int(r.seed)): fid_value(r.row.get("fid")) for r in records if r.variant}


# ---------------------------------------------------------------------------
# What the report reads (gbench.report.grids.seeds_section draws it)
# ---------------------------------------------------------------------------


def design_of(records: Sequence[Any], suite: Any = None) -> Design | None:
    """The design the records' sweep used: their ``seeds_auto`` column, else the suite's; None for fixed seeds.

    Runs of one study resumed with a larger maximum (auto:4, then auto:8) carry both; the larger one holds.
    """
    designs = [parse_auto(text) for text in {str(r.row.get(COLUMN)) for r in records if r.row.get(COLUMN)}]
    found = [d for d in designs if d is not None]
    if found:
        return max(found, key=lambda d: d.max_seeds)
    return getattr(suite, "seeds_auto", None) if suite is not None else None
