"""The seeds a ``--seeds auto`` sweep gave each setting and why, and the group-sequential verdicts it implies.

:mod:`gbench.analysis.adaptive` replays the sweep's schedule from its records; this module puts the decisions into a
report's study tables and draws the Seeds section.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gbench.analysis import adaptive
from gbench.analysis.comparisons import StudyTable
from gbench.analysis.sequential import PROCEDURE, UNDECIDED
from gbench.report.grids import suite_attr
from gbench.report.tabular import Grid


def apply_sequential(tables: Sequence[StudyTable], records: Sequence[Any], suite: Any = None) -> bool:
    """Under ``--seeds auto``, each setting's verdict against the baseline is the group-sequential test's decision
    (the fixed-sample p adj. stays for reference); whether any verdict was set."""
    design = adaptive.design_of(records, suite)
    baseline = suite_attr(suite, "baseline")
    if design is None or baseline is None:
        return False
    names = [n for n in dict.fromkeys(r.variant for r in records if r.variant)]
    if baseline not in names:
        return False
    plan = adaptive.schedule(design, names, str(baseline), adaptive.fids_of_records(records))
    applied = False
    for table in tables:
        if table.reference != baseline:
            continue
        for row in table.settings:
            outcome = plan.outcomes.get(row.name)
            if outcome is not None and not row.reference:
                row.sequential, applied = outcome.decision, True
    return applied


def seeds_section(records: Sequence[Any], suite: Any = None) -> tuple[str, Any] | None:
    """(a sentence, a :class:`gbench.report.tabular.Grid`) saying how many seeds each setting got and why;
    None when the runs did not come from ``--seeds auto``."""
    design = adaptive.design_of(records, suite)
    if design is None:
        return None
    names = list(dict.fromkeys(r.variant for r in records if r.variant))
    order = [str(getattr(v, "name", v)) for v in (getattr(suite, "variants", None) or [])]
    names = [n for n in order if n in names] + [n for n in names if n not in order]
    baseline = getattr(suite, "baseline", None) if suite is not None else ("baseline" if "baseline" in names else None)
    head = (
        f"Seeds chosen by the {PROCEDURE} (seeds auto: {design.start} to {design.max_seeds} per setting, alpha "
        f"{design.alpha:g} per comparison)"
    )
    if baseline not in names:
        return (
            f"{head}; the baseline is not known without the suite file, so the decisions are not shown (give "
            "--suite-file).",
            None,
        )
    plan = adaptive.schedule(design, names, str(baseline), adaptive.fids_of_records(records))
    sentence = (
        f"{head}: seeds were added, in order, only to settings whose comparison with the baseline {baseline!r} was "
        "still undecided; "
        f"a setting stops when it crosses the boundary of its look or at {design.max_seeds} seeds."
    )
    if plan.pending:
        sentence += f" The sweep is not finished: {len(plan.pending)} wanted runs have no result yet."
    grid = Grid(
        title="Seeds per setting (seeds auto)", headers=["setting", "seeds", "decision", "why it stopped"], left=4
    )
    for name in names:
        if name == baseline:
            grid.rows.append(
                [
                    name,
                    str(plan.wanted[name]),
                    "baseline",
                    "one seed more with every look that still had an undecided setting",
                ]
            )
            grid.styles.append("reference")
            continue
        outcome = plan.outcomes.get(name)
        if outcome is None:
            grid.rows.append(
                [name, str(plan.wanted[name]), UNDECIDED, f"the first {design.start} seeds are not all finished"]
            )
        else:
            grid.rows.append([name, str(outcome.seeds), outcome.decision, outcome.why])
        grid.styles.append(None)
    grid.caption = sentence
    return sentence, grid
