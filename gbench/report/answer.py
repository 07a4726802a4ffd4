"""A study's answer in a few sentences, from its numbers alone: :func:`answer`.

It says which setting has the lowest mean FID, which settings differ from the
reference beyond seed noise and which do not, and how the claims fared; a study
about D(x) and D(G(z)) (S3) opens with their distance from 1/2, a headline
study (S4, S5, S7: gbench.report.headline) with its own metric. ``gbench report``
writes it into ``study.json`` and the report's answer box.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from gbench.analysis.claims import ClaimResult
from gbench.analysis.claimtypes import CONFIRMED, CONTRADICTED, NO_TEST, verdict_kind
from gbench.analysis.comparisons import StudyTable
from gbench.analysis.pairing import UNPAIRED
from gbench.analysis.sequential import PROCEDURE, UNDECIDED
from gbench.results.flags import D_WINS_TEXT


def _fid(row: Any) -> str:
    spread = f" ± {row.fid.sd:.1f}" if row.fid.sd is not None else ""
    return f"{row.fid.mean:.1f}{spread}"


#: An answer names at most this many settings in one list; longer lists give a count and the first few.
NAMES_SHOWN = 6


def _names(names: Sequence[str]) -> str:
    if len(names) <= NAMES_SHOWN:
        return ", ".join(names)
    return f"{len(names)} settings ({', '.join(names[:3])}, ...)"


def _marginal(table: StudyTable, axis: str) -> dict[str, float]:
    """Mean of the settings' mean FIDs for each value of a grid axis (averaged over the other axes), in value order."""
    by_value: dict[str, list[float]] = {}
    for row in table.settings:
        if row.fid.mean is not None and axis in row.params:
            by_value.setdefault(str(row.params[axis]), []).append(row.fid.mean)
    order = sorted(
        by_value, key=lambda v: (float(v), v) if v.replace(".", "", 1).lstrip("-").isdigit() else (math.inf, v)
    )
    return {value: sum(by_value[value]) / len(by_value[value]) for value in order}


def _grid_sentence(table: StudyTable, axes: Sequence[str]) -> str:
    spans = []
    for axis in axes:
        means = _marginal(table, axis)
        if len(means) >= 2:
            spans.append((max(means.values()) - min(means.values()), axis, means))
    if not spans:
        return ""
    parts = [
        f"by {axis}: {', '.join(f'{v} {m:.1f}' for v, m in means.items())} (spread {spread:.1f})"
        for spread, axis, means in spans
    ]
    widest = max(spans)[1]
    return f"Mean FID over the grid {'; '.join(parts)}; {widest} moves FID most."


def _method(table: StudyTable, sequential: bool) -> str:
    """How the verdicts were reached, for the answer: the test(s), the correction and its family, or the sequential
    procedure."""
    if sequential:
        return f"{PROCEDURE}, 5% overall"
    tests = sorted({row.test for row in table.settings if row.test}, key=lambda t: t != UNPAIRED)
    family = max((row.family for row in table.settings), default=0)
    return (
        f"{' and '.join(tests) or 'Welch'}, {table.correction} over the report's {family} "
        f"comparison{'s' if family != 1 else ''}, 5%"
    )


#: The discriminator outputs whose distance from the equilibrium 1/2 a study asks about (S3); claims on them make it
#: the answer's lead.
EQUILIBRIUM = ("d_real", "d_fake")


def asks_equilibrium(claims: Sequence[ClaimResult]) -> bool:
    """Whether a study asks about D(x) and D(G(z)) (S3): a claim on either makes their distance from 1/2 its lead."""
    return any(result.claim.metric in EQUILIBRIUM for result in claims)


def _equilibrium_rows(table: StudyTable) -> list[tuple[float, str, float, float]]:
    """(distance, setting, mean D(x), mean D(G(z))) for each setting with both, nearest the equilibrium first; the
    distance is the larger of the two means' distances from 0.5."""
    rows = []
    for row in table.settings:
        real, fake = row.means.get("d_real"), row.means.get("d_fake")
        if real is not None and fake is not None:
            rows.append((max(abs(real - 0.5), abs(fake - 0.5)), row.name, real, fake))
    return sorted(rows)


def _equilibrium_sentence(table: StudyTable) -> str:
    """Each setting's final mean D(x) and D(G(z)) and their distance from 0.5, nearest the equilibrium first."""
    rows = _equilibrium_rows(table)
    if not rows:
        return ""
    shown = [f"{name} {real:.2f} / {fake:.2f} ({distance:.2f})" for distance, name, real, fake in rows[:NAMES_SHOWN]]
    more = f", and {len(rows) - NAMES_SHOWN} more" if len(rows) > NAMES_SHOWN else ""
    return (
        "Distance from the equilibrium D = 0.5 at the end of training, mean D(x) / D(G(z)) over seeds and the larger "
        "of their distances from 0.5, "
        f"nearest first: {'; '.join(shown)}{more}. Nearest: {rows[0][1]}; farthest: {rows[-1][1]}."
    )


def equilibrium_brief(table: StudyTable | None) -> str:
    """The studies index's line for an S3-like study: the settings nearest to and farthest from D = 0.5."""
    rows = _equilibrium_rows(table) if table is not None else []
    if not rows:
        return ""
    (_, near, near_real, near_fake), (_, far, far_real, far_fake) = rows[0], rows[-1]
    return (
        f"nearest D = 0.5, D(x) / D(G(z)): {near} {near_real:.2f} / {near_fake:.2f}; "
        f"farthest: {far} {far_real:.2f} / {far_fake:.2f}"
    )


def answer(
    table: StudyTable | None,
    claims: Sequence[ClaimResult] = (),
    axes: Sequence[str] = (),
    sequential: bool = False,
    not_trained: str | None = None,
    lead: Sequence[str] = (),
) -> str:
    """The study's answer in plain sentences, from its FID table, its grid axes (if a grid) and checked claims;
    ``sequential``: the verdicts are the ``--seeds auto`` test's decisions. A study whose claims are about D(x) and
    D(G(z)) (S3) is answered first by their distance from 0.5; ``not_trained`` (gbench.analysis.readiness) replaces
    the whole answer when the runs are too far from trained to answer anything (a headline study's ``lead`` follows
    it, marked as read on those samples). ``lead``: a headline study's
    sentences about its own metric (gbench.report.headline), before FID's."""
    if not_trained:
        if not lead:
            return not_trained
        # a headline study (S7's modes) measures its metric on the same unformed samples: say what it read, as such
        return f"{not_trained} What its own metric reads on these samples, for the record: {' '.join(lead)}"
    sentences: list[str] = list(lead)
    if table is not None and asks_equilibrium(claims):
        equilibrium = _equilibrium_sentence(table)
        if equilibrium:
            sentences.append(equilibrium)
    if table is not None and table.extractor is not None:
        rows = [row for row in table.settings if row.fid.mean is not None]
        if rows:
            best = min(rows, key=lambda row: row.fid.mean if row.fid.mean is not None else math.inf)
            sentences.append(f"Lowest mean FID ({table.fid_label}): {best.name}, {_fid(best)} over {best.fid.n} seeds.")
        grid = _grid_sentence(table, axes)
        if grid:
            sentences.append(grid)
        if table.reference is not None and table.tests:
            reference = table.setting(table.reference)
            lower = [row.name for row in table.settings if row.verdict == "lower FID"]
            higher = [row.name for row in table.settings if row.verdict == "higher FID"]
            undecided = [
                row.name for row in table.settings if row.sequential == UNDECIDED
            ]  # seeds auto, sweep unfinished
            neither = [
                row.name
                for row in table.settings
                if (row.p_adjusted is not None or row.sequential) and not row.significant and row.name not in undecided
            ]
            named = "" if reference.name == table.reference_kind else f" {reference.name}"
            against = f"the {table.reference_kind}{named} ({_fid(reference)})"
            parts = []
            if lower:
                parts.append(f"lower than {against}: {_names(lower)}")
            if higher:
                parts.append(f"higher{'' if lower else f' than {against}'}: {_names(higher)}")
            if neither:
                parts.append(f"not distinguishable from {'it' if lower or higher else against}: {_names(neither)}")
            if undecided:
                parts.append(f"undecided (the sweep is unfinished): {_names(undecided)}")
            sentences.append(f"FID beyond seed noise ({_method(table, sequential)}), {'; '.join(parts)}.")
        collapsed = [row.name for row in table.settings if row.status.get("collapsed") or row.status.get("diverged")]
        if collapsed:
            sentences.append(f"Collapsed or diverged runs in: {_names(collapsed)}.")
        cost = _cost_sentence(table)
        if cost:
            sentences.append(cost)
        won = [
            f"{row.name} ({row.discriminator_wins} of {row.runs} runs)"
            for row in table.settings
            if row.discriminator_wins
        ]
        if won:
            sentences.append(f"The {D_WINS_TEXT} in: {_names(won)}.")
    if claims:
        sentences.append(claims_sentence(claims))
    return " ".join(sentences) or "No FID to compare."


def _cost_sentence(table: StudyTable) -> str:
    """ "At what cost": each setting's mean training seconds a run over the reference's, the cheapest and the
    dearest named (train s: a run's own time, a population member's share; evaluation excluded)."""
    if table.reference is None:
        return ""
    reference = table.setting(table.reference)
    base = reference.means.get("train_seconds")
    if not base or not math.isfinite(base) or base <= 0:
        return ""
    ratios = sorted(
        (seconds / base, row.name)
        for row in table.settings
        if row is not reference and (seconds := row.means.get("train_seconds")) is not None and math.isfinite(seconds)
    )
    if not ratios:
        return ""
    (low, cheapest), (high, dearest) = ratios[0], ratios[-1]
    span = f"{cheapest} {low:.2f}x" if len(ratios) == 1 else f"from {low:.2f}x ({cheapest}) to {high:.2f}x ({dearest})"
    return f"Training time a run against {reference.name}'s {base:,.1f} s: {span}."


def claims_sentence(claims: Sequence[ClaimResult]) -> str:
    """How the claims fared, counted, then the decided ones by name (the undecided are the claims table's to list)."""
    verdicts = Counter(verdict_kind(result.verdict) for result in claims)
    text = "Claims checked: " + ", ".join(f"{n} {verdict}" for verdict, n in verdicts.most_common()) + "."
    for verdict in (CONFIRMED, CONTRADICTED, NO_TEST):
        named = [f'"{result.claim.text}"' for result in claims if verdict_kind(result.verdict) == verdict]
        if named:
            why = " (the claims table says why)" if verdict == NO_TEST else ""
            text += f" {verdict.capitalize()}: {'; '.join(named)}{why}."
    return text


def answer_by_table(
    tables: Sequence[StudyTable],
    refusals: Sequence[str | None],
    names: Sequence[str],
    claims: Sequence[ClaimResult] = (),
    sequential: bool = False,
) -> str:
    """The answer of a report with several FID tables (data sets compared apart, S8): one answer per table, each
    under its own name and with its own refusal when that table's runs are too far from trained
    (gbench.analysis.readiness), then the claims once."""
    parts = [
        f"On {name}: {answer(table, (), (), sequential, refusal)}"
        for table, refusal, name in zip(tables, refusals, names)
    ]
    if claims:
        parts.append(claims_sentence(claims))
    return " ".join(parts)
