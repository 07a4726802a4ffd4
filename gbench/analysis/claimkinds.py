"""The kinds of claim a suite's ``[[claims]]`` may make: one entry of :data:`KINDS` each.

A kind names the relation keys that select it, reads its claim from the suite's
table (:class:`ClaimContext` says what the suite has) and tests it on the runs,
and gives the sentence the report's caption adds when a claim of its kind is
checked. A new kind of claim is one more entry here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats as _scipy

from gbench.analysis.claimtypes import Claim, ClaimResult, by_seed, chosen, metric_value, setting_values
from gbench.analysis.curves import (
    NOISE_AUTOCORRELATION,
    TREND_ROWS,
    curve_claim_value,
    reference,
    run_value,
    too_short,
)
from gbench.analysis.grouping import fid_basis
from gbench.analysis.pairing import PAIRED, UNPAIRED, pairing, pairs
from gbench.analysis.spreads import compare_spreads
from gbench.analysis.stats import (
    BOOTSTRAP_RESAMPLES,
    CONFIDENCE,
    finite,
    paired_difference,
    paired_t,
    summarize,
    welch_difference,
)
from gbench.analysis.variance import claimed_share, seed_share_interval
from gbench.errors import GbenchError
from gbench.names import suggestion

MIXED_FIDS = "FIDs of different extractors or sample counts"


@dataclass(frozen=True)
class ClaimContext:
    """What a claim is read against: where it stands (for messages), the suite's variants and its grid axes."""

    at: str
    settings: Sequence[str]
    axes: Sequence[str]


@dataclass(frozen=True)
class ClaimKind:
    relations: tuple[str, ...]  # the keys that select the kind; the ones marked by "one" take exactly one of them
    parse: Callable[[dict[str, Any], Claim, ClaimContext], Claim]  # the common fields filled in -> the claim
    test: Callable[[Sequence[Any], list[str], Claim], ClaimResult]  # (records, their settings, claim) -> result
    caption: str  # what the report's claims caption adds when a claim of this kind is checked
    one: bool = True  # exactly one of the relation keys (else all of them, as axis and more_than)


def _setting(table: dict[str, Any], claim: Claim, context: ClaimContext) -> str:
    setting, settings = table.get("setting"), context.settings
    if setting not in settings:
        raise GbenchError(
            f"{context.at}: setting = {setting!r} names no variant{suggestion(str(setting), settings)}; "
            f"variants: {', '.join(settings)}"
        )
    return str(setting)


def _relation(table: dict[str, Any], kind: ClaimKind) -> tuple[str, Any]:
    relation = next(key for key in kind.relations if key in table)
    return relation, table[relation]


# --- against another setting: Welch's t-test, or paired by seed -----------------------------------------------------


def _parse_against_setting(table: dict[str, Any], claim: Claim, context: ClaimContext, kind: str = "setting") -> Claim:
    setting = _setting(table, claim, context)
    relation, other = _relation(table, KINDS[kind])
    if other not in context.settings or other == setting:
        raise GbenchError(
            f"{context.at}: {relation} = {other!r} must name another "
            f"variant{suggestion(str(other), context.settings)}; "
            f"variants: {', '.join(context.settings)}"
        )
    return _with(claim, setting, relation, str(other))


def _test_against_setting(records: Sequence[Any], names: list[str], claim: Claim) -> ClaimResult:
    """Welch's (or the paired) t-test of the setting's values, less the claim's shift (a margin), against the
    other's."""
    values, bases = setting_values(records, names, claim.setting, claim.metric)
    others, other_bases = setting_values(records, names, str(claim.other), claim.metric)
    if len(bases | other_bases) > 1:
        return ClaimResult(claim, values, others, None, None, None, note=MIXED_FIDS)
    if len(values) < 2 or len(others) < 2:
        return ClaimResult(claim, values, others, None, None, None, note="fewer than two runs with a value")
    shifted = [v - claim.shift for v in values]
    if np.std(values) == 0 and np.std(others) == 0:
        difference = float(np.mean(shifted) - np.mean(others))
        return ClaimResult(claim, values, others, difference, (difference, difference), 0.0 if difference else 1.0)
    mine, theirs = chosen(records, names, claim.setting), chosen(records, names, str(claim.other))
    paired, why = pairing([r.row for r in mine], [r.row for r in theirs])
    mine_by_seed = {seed: v - claim.shift for seed, v in by_seed(mine, claim.metric).items()}
    a, b = pairs(mine_by_seed, by_seed(theirs, claim.metric)) if paired else (shifted, others)
    if paired and len(a) >= 2:
        difference, low, high = paired_difference(a, b, CONFIDENCE)
        p = paired_t(a, b)[1]
    else:
        paired = False
        difference, low, high = welch_difference(shifted, others, CONFIDENCE)
        p = float(_scipy.ttest_ind(shifted, others, equal_var=False).pvalue)
    return ClaimResult(
        claim,
        values,
        others,
        difference,
        (low, high),
        p,
        test=PAIRED if paired else UNPAIRED,
        paired_because=why if paired else "",
    )


# --- against another setting within a margin: the same test of the difference less the margin ------------------------


def _parse_margin(table: dict[str, Any], claim: Claim, context: ClaimContext) -> Claim:
    margin = table.get("margin")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin < 0:
        raise GbenchError(
            f"{context.at}: a claim of no more (or no less) than another setting needs margin = VALUE >= 0, how far "
            f"past it still counts, in the metric's units (got {margin!r}), e.g. margin = 0.05"
        )
    return replace(_parse_against_setting(table, claim, context, "margin"), margin=float(margin))


# --- against a value: the one-sample t-test -------------------------------------------------------------------------


def _parse_against_value(table: dict[str, Any], claim: Claim, context: ClaimContext) -> Claim:
    setting = _setting(table, claim, context)
    relation, value = _relation(table, KINDS["value"])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GbenchError(f"{context.at}: {relation} = {value!r} must be a number, e.g. {relation} = 0.9")
    return _with(claim, setting, relation, float(value))


def one_sample(values: list[float], value: float) -> tuple[float, tuple[float, float], float]:
    """mean - value, the Student-t interval of it, and the two-sided one-sample t-test's p (exact when the values
    do not vary)."""
    summary = summarize(values)
    assert summary.mean is not None and summary.ci_low is not None and summary.ci_high is not None
    difference = summary.mean - value
    if summary.sd == 0:
        return difference, (difference, difference), 0.0 if difference != 0 else 1.0
    p = float(_scipy.ttest_1samp(np.asarray(values), value).pvalue)
    return difference, (summary.ci_low - value, summary.ci_high - value), p


def _test_against_value(records: Sequence[Any], names: list[str], claim: Claim) -> ClaimResult:
    values, bases = setting_values(records, names, claim.setting, claim.metric)
    if len(bases) > 1:
        return ClaimResult(claim, values, [], None, None, None, note=MIXED_FIDS)
    if len(values) < 2:
        return ClaimResult(claim, values, [], None, None, None, note="fewer than two runs with a value")
    difference, interval, p = one_sample(values, float(claim.other))
    return ClaimResult(claim, values, [], difference, interval, p)


# --- a run's curve (gbench.analysis.curves): one number per run against its reference -------------------------------


def _parse_curve(table: dict[str, Any], claim: Claim, context: ClaimContext) -> Claim:
    setting = _setting(table, claim, context)
    relation, value = _relation(table, KINDS["curve"])
    return _with(claim, setting, relation, curve_claim_value(relation, value, claim.metric, context.at))


def _test_curve(records: Sequence[Any], names: list[str], claim: Claim) -> ClaimResult:
    runs = chosen(records, names, claim.setting)
    values = finite(run_value(r.history, claim.relation, claim.metric, claim.other) for r in runs)
    if len(values) < 2:
        return ClaimResult(claim, values, [], None, None, None, note=too_short(claim.relation, claim.other))
    difference, interval, p = one_sample(values, reference(claim.relation))
    return ClaimResult(claim, values, [], difference, interval, p)


# --- two grid axes: the difference of their main-effect spreads, bootstrapped over seeds ----------------------------


def _parse_axes(table: dict[str, Any], claim: Claim, context: ClaimContext) -> Claim:
    if "setting" in table:
        raise GbenchError(f'{context.at}: a claim about grid axes takes axis = "..." and more_than = "...", no setting')
    known = ", ".join(context.axes) or "none (the suite has no [grid])"
    for key in ("axis", "more_than"):
        value = table.get(key)
        if value is None:
            raise GbenchError(f'{context.at}: give {key} = "AXIS", one of the grid axes: {known}')
        if value not in context.axes:
            raise GbenchError(
                f"{context.at}: {key} = {value!r} names no grid axis{suggestion(str(value), context.axes)}; "
                f"grid axes: {known}"
            )
    if table["axis"] == table["more_than"]:
        raise GbenchError(
            f"{context.at}: more_than = {table['more_than']!r} must name another grid axis than "
            f"axis = {table['axis']!r}"
        )
    return _with(claim, str(table["axis"]), "more_than", str(table["more_than"]))


def _test_axes(records: Sequence[Any], names: list[str], claim: Claim) -> ClaimResult:
    """spread(axis) - spread(more_than) over the settings' means, tested by gbench.analysis.spreads."""
    cells: dict[str, list[float]] = {}
    levels: dict[str, tuple[Any, Any]] = {}
    bases = set()
    for record, name in zip(records, names):
        value = finite([metric_value(record.row, claim.metric)])
        if value and claim.setting in record.row and claim.other in record.row:
            cells.setdefault(name, []).append(value[0])
            levels[name] = (record.row[claim.setting], record.row[claim.other])
            bases |= {fid_basis(record)} if claim.metric == "fid" else set()
    note = ""
    if len(bases) > 1:
        note = MIXED_FIDS
    elif any(len({pair[i] for pair in levels.values()}) < 2 for i in (0, 1)):
        note = "fewer than two values of an axis with a value"
    elif any(len(values) < 2 for values in cells.values()):
        note = "a setting with fewer than two runs with a value"
    if note:
        return ClaimResult(claim, [], [], None, None, None, note=note)
    settings = list(cells)
    axis, other = [levels[n][0] for n in settings], [levels[n][1] for n in settings]
    test = compare_spreads([cells[n] for n in settings], axis, other, BOOTSTRAP_RESAMPLES, CONFIDENCE)
    spreads = (test.spread_axis, test.spread_other)
    return ClaimResult(claim, [], [], test.difference, test.interval, test.p, spreads=spreads)


# --- seeds' share of the variance over the whole study (gbench.analysis.variance) -----------------------------------


def _parse_seed_share(table: dict[str, Any], claim: Claim, context: ClaimContext) -> Claim:
    if "setting" in table:
        raise GbenchError(
            f"{context.at}: a claim about seed noise over the whole study takes seed_share_above = VALUE alone, "
            "no setting"
        )
    return _with(claim, "", "seed_share_above", claimed_share(table["seed_share_above"], context.at))


def _test_seed_share(records: Sequence[Any], names: list[str], claim: Claim) -> ClaimResult:
    """Seeds' share of the variance minus the claimed share, with its exact (noncentral F) interval and p."""
    cells: dict[str, list[float]] = {}
    for record, name in zip(records, names):
        cells.setdefault(name, []).extend(finite([metric_value(record.row, claim.metric)]))
    bases = {fid_basis(r) for r in records if r.row.get("fid") is not None} if claim.metric == "fid" else set()
    values = [cell for cell in cells.values() if cell]
    if len(bases) > 1 or len(values) < 2 or any(len(cell) < 2 for cell in values):
        note = (
            MIXED_FIDS if len(bases) > 1 else "fewer than two settings, or a setting with under two runs with a value"
        )
        return ClaimResult(claim, [], [], None, None, None, note=note)
    claimed = float(claim.other)
    share, (low, high), p = seed_share_interval(values, claimed, CONFIDENCE)
    return ClaimResult(claim, [share], [], share - claimed, (low - claimed, high - claimed), p)


def _with(claim: Claim, setting: str, relation: str, other: str | float) -> Claim:
    return replace(claim, setting=setting, relation=relation, other=other)


KINDS: dict[str, ClaimKind] = {
    "setting": ClaimKind(("lower_than", "higher_than"), _parse_against_setting, _test_against_setting, ""),
    "margin": ClaimKind(
        ("no_more_than", "no_less_than"),
        _parse_margin,
        _test_against_setting,
        "No more (less) than another setting within a margin: the same test of the difference less (plus) the "
        "margin against 0, confirmed when the difference stays below (above) the margin beyond seed noise. ",
    ),
    "value": ClaimKind(("above", "below"), _parse_against_value, _test_against_value, ""),
    "curve": ClaimKind(
        ("falls_over_last", "oscillates"),
        _parse_curve,
        _test_curve,
        "A claim about a curve tests one number per run from its metrics.csv (one-sample t-test): the slope over "
        "the last evaluations (at most the run's second half) against 0 (still falling), or the lag-1 "
        f"autocorrelation about a {TREND_ROWS}-row moving average against white noise's "
        f"{NOISE_AUTOCORRELATION:.3f} (oscillates). ",
    ),
    "axes": ClaimKind(
        ("axis", "more_than"),
        _parse_axes,
        _test_axes,
        "A claim about two grid axes compares their spreads (the largest minus the smallest mean over each value "
        "of the axis, averaged over the other settings): a t-test of the difference, its standard error from "
        f"{BOOTSTRAP_RESAMPLES:,} bootstrap resamples of each setting's residuals over seeds (scaled to keep their "
        "variance), its degrees of freedom Welch-Satterthwaite's for the settings that decide the spreads. ",
        one=False,
    ),
    "seed share": ClaimKind(
        ("seed_share_above",),
        _parse_seed_share,
        _test_seed_share,
        "Seeds' share of the variance: the within-setting (between-seed) variance over it plus the "
        "between-setting variance (one-way ANOVA), its interval and p from the noncentral F distribution of the "
        "ANOVA's F (exact for normal seed noise and equal runs per setting). ",
    ),
}
#: Each relation key's kind.
KIND_OF: dict[str, ClaimKind] = {relation: kind for kind in KINDS.values() for relation in kind.relations}
