"""Claims from elsewhere (a hand-made report, a paper), checked against a study's own runs.

A suite may carry ``[[claims]]``: each names one setting, one measured
quantity and what the claim says of it, either against another setting or
against a value::

    [[claims]]
    claim = "hidden 512 lowers FID"           # the words being checked
    source = "hand-made report: 98.6 against 114.3"
    setting = "hidden-512"
    lower_than = "baseline"                   # or higher_than = "SETTING"

    [[claims]]
    claim = "D(x) drifts to about 1"
    setting = "baseline"
    metric = "d_real"                         # any numeric results column, or min_class_share; default fid
    above = 0.9                               # or below = VALUE

    [[claims]]
    claim = "hidden size matters more than latent size"
    axis = "hidden_dim"                       # two axes of the suite's [grid]
    more_than = "latent_dim"

    # also: setting = "baseline" with falls_over_last = 5, or metric = "d_loss" with oscillates = true
    # (a curve in metrics.csv, gbench.analysis.curves); seed_share_above = 0.25 alone (gbench.analysis.variance)

:func:`check_claims` tests each one on the runs' final values over seeds:
Welch's t-test of the two settings (two-sided; the paired t-test when they are
the same runs trained for different lengths, :mod:`gbench.analysis.pairing`), or the one-sample t-test of
the setting against the value; for two grid axes, the difference of their
main-effect spreads (the largest minus the smallest mean over each value of
the axis) with a stratified bootstrap over seeds. All claims of a report are
Holm-adjusted together; a report adjusts them together with its results
table's comparisons, as one family (:mod:`gbench.analysis.family`).
A claim is **confirmed** when the adjusted p is below 5% and the difference
lies on the claimed side, **contradicted** when it holds on the other side,
and otherwise **not distinguishable from seed noise**. The verdicts are
computed from the same results the report tabulates, so they stay true
when the study is run again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as _scipy

from gbench.analysis.comparisons import fid_basis, setting_names
from gbench.analysis.curves import NOISE_AUTOCORRELATION, TREND_ROWS, curve_claim_value, reference, run_value
from gbench.analysis.pairing import PAIRED, UNPAIRED, pairing, pairs
from gbench.analysis.stats import (
    ALPHA,
    CONFIDENCE,
    CORRECTION,
    finite,
    holm,
    paired_difference,
    paired_t,
    summarize,
    welch_difference,
)
from gbench.analysis.variance import claimed_share, seed_share_interval
from gbench.errors import GbenchError
from gbench.names import suggestion
from gbench.results import schema

CLAIM_KEYS = (
    "claim",
    "source",
    "setting",
    "metric",
    "lower_than",
    "higher_than",
    "above",
    "below",
    "axis",
    "more_than",
    "falls_over_last",
    "oscillates",
    "seed_share_above",
)
#: Quantities a claim may test that are not results columns themselves, each computed from one run's row.
DERIVED = {
    # "every digit present" in a count of N samples: the rarest class is expected at least once when its share is >= 1/N
    "min_class_share": "the share of the generated samples in their rarest class (from class_counts)",
}
RELATIONS = ("lower_than", "higher_than", "above", "below", "falls_over_last", "oscillates")
#: Relations about a run's curve (metrics.csv), each reduced to one number per run by gbench.analysis.curves and tested against 0.
CURVE_RELATIONS = ("falls_over_last", "oscillates")
CONFIRMED, CONTRADICTED, UNDECIDED = "confirmed", "contradicted", "not distinguishable from seed noise"
#: Resamples of an axis claim's bootstrap (seeded, so a report is the same every time it is written); p is at least 2 / (this + 1).
BOOTSTRAP_RESAMPLES = 9999


@dataclass(frozen=True)
class Claim:
    text: str
    setting: str
    relation: str  # one of RELATIONS, or "more_than" (then setting and other are grid axes)
    other: str | float  # the setting (or axis) compared with, or the value
    metric: str = "fid"
    source: str = ""

    @property
    def against_setting(self) -> bool:
        return self.relation in ("lower_than", "higher_than")

    @property
    def expects_lower(self) -> bool:
        return self.relation in ("lower_than", "below", "falls_over_last")

    def describe(self) -> str:
        header = (
            "rarest class share"
            if self.metric == "min_class_share"
            else schema.column(self.metric).header or self.metric
        )
        if self.relation == "more_than":
            return f"spread of mean {header} over {self.setting} larger than over {self.other}"
        if self.relation == "seed_share_above":
            return f"seeds' share of the variance of {header} over all settings above {self.other:g}"
        if self.relation == "falls_over_last":
            return f"slope of {header} of {self.setting} over its last {self.other:g} evaluations below 0 (per 1,000 steps)"
        if self.relation == "oscillates":
            return f"lag-1 autocorrelation of {header} of {self.setting} about its {TREND_ROWS}-row moving average above noise's {NOISE_AUTOCORRELATION:.3f}"
        words = {"lower_than": "lower than", "higher_than": "higher than", "above": "above", "below": "below"}[
            self.relation
        ]
        return f"{header} of {self.setting} {words} {self.other if self.against_setting else format(self.other, 'g')}"


def parse_claims(raw: Any, where: str, settings: Sequence[str], axes: Sequence[str] = ()) -> list[Claim]:
    """A suite's ``[[claims]]`` list, checked: each names known settings (or grid axes), a numeric metric and one relation."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise GbenchError(
            f'{where}: claims must be a list of tables ([[claims]] with claim = "...", setting = "...", lower_than = "baseline")'
        )
    metrics = [*schema.numeric_metrics(), *DERIVED]
    claims = []
    for index, table in enumerate(raw, 1):
        at = f"{where} claim {index}"
        if not isinstance(table, dict):
            raise GbenchError(f"{at} must be a table ([[claims]] followed by key = value lines)")
        for key in table:
            if key not in CLAIM_KEYS:
                raise GbenchError(
                    f"{at}: unknown key {key!r}{suggestion(key, CLAIM_KEYS)}; valid keys: {', '.join(CLAIM_KEYS)}"
                )
        text, setting, metric = table.get("claim"), table.get("setting"), table.get("metric", "fid")
        if not isinstance(text, str) or not text.strip():
            raise GbenchError(f'{at}: give the claim\'s words, e.g. claim = "hidden 512 lowers FID"')
        source = table.get("source", "")
        if not isinstance(source, str):
            raise GbenchError(f"{at}: source must be text")
        if metric not in metrics:
            raise GbenchError(
                f"{at}: metric = {metric!r} is not a numeric results column{suggestion(str(metric), metrics)}; e.g. fid, d_real, d_fake, d_loss"
            )
        if "seed_share_above" in table:
            claims.append(_seed_share_claim(table, at, text.strip(), metric, source))
            continue
        if "axis" in table or "more_than" in table:
            claims.append(_axis_claim(table, at, text.strip(), metric, source, axes))
            continue
        if setting not in settings:
            raise GbenchError(
                f"{at}: setting = {setting!r} names no variant{suggestion(str(setting), settings)}; variants: {', '.join(settings)}"
            )
        given = [key for key in RELATIONS if key in table]
        if len(given) != 1:
            raise GbenchError(f"{at}: give exactly one of {', '.join(RELATIONS)} (got {', '.join(given) or 'none'})")
        relation, other = given[0], table[given[0]]
        if relation in CURVE_RELATIONS:
            claims.append(
                Claim(
                    text.strip(), str(setting), relation, curve_claim_value(relation, other, metric, at), metric, source
                )
            )
            continue
        if relation in ("lower_than", "higher_than"):
            if other not in settings or other == setting:
                raise GbenchError(
                    f"{at}: {relation} = {other!r} must name another variant{suggestion(str(other), settings)}; variants: {', '.join(settings)}"
                )
        elif isinstance(other, bool) or not isinstance(other, (int, float)) or not math.isfinite(other):
            raise GbenchError(f"{at}: {relation} = {other!r} must be a number, e.g. {relation} = 0.9")
        claims.append(
            Claim(
                text.strip(), str(setting), relation, other if isinstance(other, str) else float(other), metric, source
            )
        )
    return claims


def _curve_values(records: Sequence[Any], names: list[str], claim: Claim) -> list[float]:
    """The per-run number a curve claim tests, over the setting's runs that have one."""
    return finite(
        run_value(r.history, claim.relation, claim.metric, claim.other) for r in _chosen(records, names, claim.setting)
    )


def _seed_share_claim(table: dict[str, Any], at: str, text: str, metric: str, source: str) -> Claim:
    """A ``seed_share_above = VALUE`` claim: seeds' share of the metric's variance over the whole study (gbench.analysis.variance)."""
    if "setting" in table or any(
        key in table for key in (*RELATIONS, "axis", "more_than") if key != "seed_share_above"
    ):
        raise GbenchError(
            f"{at}: a claim about seed noise over the whole study takes seed_share_above = VALUE alone, no setting or other relation"
        )
    return Claim(text, "", "seed_share_above", claimed_share(table["seed_share_above"], at), metric, source)


def _seed_share_result(records: Sequence[Any], names: list[str], claim: Claim) -> ClaimResult:
    """Seeds' share of the variance minus the claimed share, with a bootstrap interval and p over the seeds within each setting."""
    cells: dict[str, list[float]] = {}
    for record, name in zip(records, names):
        cells.setdefault(name, []).extend(finite([metric_value(record.row, claim.metric)]))
    bases = {fid_basis(r) for r in records if r.row.get("fid") is not None} if claim.metric == "fid" else set()
    values = [cell for cell in cells.values() if cell]
    if len(bases) > 1 or len(values) < 2 or any(len(cell) < 2 for cell in values):
        note = (
            "FIDs of different extractors or sample counts"
            if len(bases) > 1
            else "fewer than two settings, or a setting with under two runs with a value"
        )
        return ClaimResult(claim, [], [], None, None, None, note=note)
    share, (low, high), p = seed_share_interval(values, float(claim.other), BOOTSTRAP_RESAMPLES, CONFIDENCE)
    return ClaimResult(
        claim, [share], [], share - float(claim.other), (low - float(claim.other), high - float(claim.other)), p
    )


def _axis_claim(table: dict[str, Any], at: str, text: str, metric: str, source: str, axes: Sequence[str]) -> Claim:
    """An ``axis = A, more_than = B`` claim: A's values move the metric more than B's."""
    if "setting" in table or any(key in table for key in RELATIONS):
        raise GbenchError(
            f'{at}: a claim about grid axes takes axis = "..." and more_than = "...", not setting or {", ".join(RELATIONS)}'
        )
    known = ", ".join(axes) or "none (the suite has no [grid])"
    for key in ("axis", "more_than"):
        value = table.get(key)
        if value is None:
            raise GbenchError(f'{at}: give {key} = "AXIS", one of the grid axes: {known}')
        if value not in axes:
            raise GbenchError(
                f"{at}: {key} = {value!r} names no grid axis{suggestion(str(value), axes)}; grid axes: {known}"
            )
    if table["axis"] == table["more_than"]:
        raise GbenchError(
            f"{at}: more_than = {table['more_than']!r} must name another grid axis than axis = {table['axis']!r}"
        )
    return Claim(text, table["axis"], "more_than", table["more_than"], metric, source)


@dataclass
class ClaimResult:
    claim: Claim
    values: list[float]  # the setting's final values over seeds
    others: list[float]  # the other setting's (empty against a value)
    difference: float | None  # mean(setting) - mean(other setting), or - the value
    interval: tuple[float, float] | None  # its 95% interval (Welch, or Student t of the mean)
    p: float | None
    p_adjusted: float | None = None
    note: str = ""  # why there is no test
    spreads: tuple[float, float] | None = None  # an axis claim's two main-effect spreads (axis, more_than)
    test: str = ""  # against a setting: "Welch" or "paired t"
    family: int = 0  # hypotheses in the Holm family of p_adjusted
    family_text: str = ""  # what that family is, when a report widened it (gbench.analysis.family)

    @property
    def verdict(self) -> str:
        if self.p_adjusted is None or self.difference is None:
            return f"no test ({self.note})" if self.note else "no test"
        if self.p_adjusted >= ALPHA or self.difference == 0:
            return UNDECIDED
        return CONFIRMED if (self.difference < 0) == self.claim.expects_lower else CONTRADICTED


def min_class_share(row: dict[str, Any]) -> float | None:
    """The rarest class's share of a run's classified samples; None without class counts."""
    counts = [float(c) for c in str(row.get("class_counts") or "").split()]
    return min(counts) / sum(counts) if counts and sum(counts) > 0 else None


def metric_value(row: dict[str, Any], metric: str) -> Any:
    return min_class_share(row) if metric == "min_class_share" else row.get(metric)


def _chosen(records: Sequence[Any], names: list[str], setting: str) -> list[Any]:
    return [r for r, name in zip(records, names) if name == setting]


def _by_seed(records: Sequence[Any], metric: str) -> dict[int, float]:
    return {int(r.seed): v[0] for r in records if (v := finite([metric_value(r.row, metric)]))}


def _values(records: Sequence[Any], names: list[str], setting: str, metric: str) -> tuple[list[float], set[Any]]:
    chosen = _chosen(records, names, setting)
    values = finite(metric_value(r.row, metric) for r in chosen)
    bases = {fid_basis(r) for r in chosen if r.row.get(metric) is not None} if metric == "fid" else set()
    return values, bases


def _one_sample(values: list[float], value: float) -> tuple[float, tuple[float, float], float]:
    """mean - value, the Student-t interval of it, and the two-sided one-sample t-test's p (exact when the values do not vary)."""
    summary = summarize(values)
    assert summary.mean is not None and summary.ci_low is not None and summary.ci_high is not None
    difference = summary.mean - value
    if summary.sd == 0:
        return difference, (difference, difference), 0.0 if difference != 0 else 1.0
    p = float(_scipy.ttest_1samp(np.asarray(values), value).pvalue)
    return difference, (summary.ci_low - value, summary.ci_high - value), p


def _spreads(means: np.ndarray, levels: list[Any]) -> np.ndarray:
    """Largest minus smallest mean over each axis value: ``means`` is (draws, settings), ``levels`` each setting's value."""
    marginal = np.column_stack([means[:, [v == level for v in levels]].mean(axis=1) for level in dict.fromkeys(levels)])
    return marginal.max(axis=1) - marginal.min(axis=1)


def _axis_result(records: Sequence[Any], names: list[str], claim: Claim) -> ClaimResult:
    """spread(axis) - spread(more_than) over the settings' means; its interval and p from a bootstrap of seeds within each setting."""
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
        note = "FIDs of different extractors or sample counts"
    elif any(len({pair[i] for pair in levels.values()}) < 2 for i in (0, 1)):
        note = "fewer than two values of an axis with a value"
    elif any(len(values) < 2 for values in cells.values()):
        note = "a setting with fewer than two runs with a value"
    if note:
        return ClaimResult(claim, [], [], None, None, None, note=note)
    settings = list(cells)
    axis, other = [levels[n][0] for n in settings], [levels[n][1] for n in settings]
    point = np.array([[np.mean(cells[n]) for n in settings]])
    rng = np.random.default_rng(0)
    draws = np.column_stack(
        [
            np.asarray(cells[n])[rng.integers(0, len(cells[n]), (BOOTSTRAP_RESAMPLES, len(cells[n])))].mean(axis=1)
            for n in settings
        ]
    )
    spread_axis, spread_other = float(_spreads(point, axis)[0]), float(_spreads(point, other)[0])
    differences = _spreads(draws, axis) - _spreads(draws, other)
    low, high = (float(q) for q in np.quantile(differences, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2]))
    # two-sided: how often a resample puts the difference on the other side of 0 (at least one resample's worth, never 0)
    tail = min(int((differences <= 0).sum()), int((differences >= 0).sum()))
    p = min(1.0, 2 * (tail + 1) / (BOOTSTRAP_RESAMPLES + 1))
    return ClaimResult(claim, [], [], spread_axis - spread_other, (low, high), p, spreads=(spread_axis, spread_other))


def check_claims(records: Sequence[Any], claims: Sequence[Claim]) -> list[ClaimResult]:
    """Each claim tested on the runs' final values; p-values Holm-adjusted over the claims tested."""
    names = setting_names(records)
    results = []
    for claim in claims:
        if claim.relation == "more_than":
            results.append(_axis_result(records, names, claim))
            continue
        if claim.relation == "seed_share_above":
            results.append(_seed_share_result(records, names, claim))
            continue
        if claim.relation in CURVE_RELATIONS:
            curves = _curve_values(records, names, claim)
            if len(curves) < 2:
                results.append(
                    ClaimResult(
                        claim, curves, [], None, None, None, note="fewer than two runs whose metrics.csv is long enough"
                    )
                )
            else:
                difference, interval, p = _one_sample(curves, reference(claim.relation))
                results.append(ClaimResult(claim, curves, [], difference, interval, p))
            continue
        values, bases = _values(records, names, claim.setting, claim.metric)
        others: list[float] = []
        note = ""
        if claim.against_setting:
            others, other_bases = _values(records, names, str(claim.other), claim.metric)
            bases |= other_bases
        if len(bases) > 1:
            note = "FIDs of different extractors or sample counts"
        elif len(values) < 2 or (claim.against_setting and len(others) < 2):
            note = "fewer than two runs with a value"
        if note:
            results.append(ClaimResult(claim, values, others, None, None, None, note=note))
            continue
        if claim.against_setting:
            if np.std(values) == 0 and np.std(others) == 0:
                difference = float(np.mean(values) - np.mean(others))
                results.append(
                    ClaimResult(claim, values, others, difference, (difference, difference), 0.0 if difference else 1.0)
                )
                continue
            mine, theirs = _chosen(records, names, claim.setting), _chosen(records, names, str(claim.other))
            paired = pairing([r.row for r in mine], [r.row for r in theirs])[0]
            a, b = pairs(_by_seed(mine, claim.metric), _by_seed(theirs, claim.metric)) if paired else (values, others)
            if paired and len(a) >= 2:
                difference, low, high = paired_difference(a, b, CONFIDENCE)
                p = paired_t(a, b)[1]
            else:
                paired = False
                difference, low, high = welch_difference(values, others, CONFIDENCE)
                p = float(_scipy.ttest_ind(values, others, equal_var=False).pvalue)
            results.append(
                ClaimResult(claim, values, others, difference, (low, high), p, test=PAIRED if paired else UNPAIRED)
            )
        else:
            difference, interval, p = _one_sample(values, float(claim.other))
            results.append(ClaimResult(claim, values, others, difference, interval, p))
    tested = sum(r.p is not None for r in results)
    for result, adjusted in zip(results, holm([r.p for r in results])):
        result.p_adjusted, result.family = adjusted, tested
    return results


def claims_caption(results: Sequence[ClaimResult]) -> str:
    tested = sum(1 for r in results if r.p is not None)
    family = (
        next((r.family_text for r in results if r.family_text), "")
        or f"the {tested} claim{'s' if tested != 1 else ''} tested"
    )
    paired = [r.claim.text for r in results if r.test == PAIRED]
    return (
        "Each claim is tested on the final values of the runs over seeds: Welch's t-test (two-sided) against another setting, "
        "or the one-sample t-test against a value; difference: the setting's mean minus the other's (or minus the value), "
        f"with its {CONFIDENCE:.0%} interval; p adj.: {CORRECTION} over {family}. "
        + (
            f"Paired t-test over seeds for {'; '.join(repr(t) for t in paired)}: the two settings are the same runs trained for different lengths. "
            if paired
            else ""
        )
        + (
            "A claim about two grid axes compares their spreads (the largest minus the smallest mean over each value of the axis, "
            f"averaged over the other settings); its interval and p come from {BOOTSTRAP_RESAMPLES:,} bootstrap resamples of the seeds within each setting. "
            if any(r.claim.relation == "more_than" for r in results)
            else ""
        )
        + (
            "A claim about a curve tests one number per run from its metrics.csv (one-sample t-test): the slope over the last "
            f"evaluations against 0 (still falling), or the lag-1 autocorrelation about a {TREND_ROWS}-row moving average against "
            f"white noise's {NOISE_AUTOCORRELATION:.3f} (oscillates). "
            if any(r.claim.relation in CURVE_RELATIONS for r in results)
            else ""
        )
        + (
            "Seeds' share of the variance: the within-setting (between-seed) variance over it plus the between-setting variance "
            f"(one-way random effects), its interval and p from {BOOTSTRAP_RESAMPLES:,} bootstrap resamples of the seeds within each setting. "
            if any(r.claim.relation == "seed_share_above" for r in results)
            else ""
        )
        + f"Confirmed: holds at {ALPHA:.0%} after correction on the claimed side; contradicted: holds on the other side; "
        "otherwise not distinguishable from seed noise. Generated from this report's runs."
    )
