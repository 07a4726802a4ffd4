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
    # any claim: headline = true (its metric leads the report, gbench.report.headline) and, against a
    # setting, published = [SETTING'S, OTHER'S] (the source's own figures, shown beside the report's)

The kinds of claim are the entries of :data:`gbench.analysis.claimkinds.KINDS`.
:func:`check_claims` tests each one on the runs' final values over seeds:
Welch's t-test of the two settings (two-sided; the paired t-test when they pair by seed: the same runs
trained for different lengths, or differing only in an EMA of the weights, :mod:`gbench.analysis.pairing`,
whose reason the caption gives), or the one-sample t-test of
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
from dataclasses import replace
from typing import Any

from gbench.analysis.claimkinds import BOOTSTRAP_RESAMPLES, KIND_OF, KINDS, ClaimContext
from gbench.analysis.claimtypes import (
    CONFIRMED,
    CONTRADICTED,
    DERIVED,
    UNDECIDED,
    Claim,
    ClaimResult,
    claim_metrics,
    metric_value,
    min_class_share,
)
from gbench.analysis.grouping import setting_names
from gbench.analysis.pairing import PAIRED
from gbench.analysis.stats import ALPHA, CONFIDENCE, CORRECTION, holm
from gbench.errors import GbenchError
from gbench.names import suggestion

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "CONFIRMED",
    "CONTRADICTED",
    "DERIVED",
    "UNDECIDED",
    "Claim",
    "ClaimResult",
    "check_claims",
    "claims_caption",
    "metric_value",
    "min_class_share",
    "parse_claims",
]

#: Keys every claim may take besides its kind's relation keys (and ``setting``, which most kinds need).
COMMON_KEYS = ("claim", "source", "setting", "metric", "headline", "published", "margin")
CLAIM_KEYS = (*COMMON_KEYS, *KIND_OF)


def parse_claims(raw: Any, where: str, settings: Sequence[str], axes: Sequence[str] = ()) -> list[Claim]:
    """A suite's ``[[claims]]`` list, checked: each names known settings (or grid axes), a numeric metric and one
    relation."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise GbenchError(
            f"{where}: claims must be a list of tables "
            '([[claims]] with claim = "...", setting = "...", lower_than = "baseline")'
        )
    return [_parse_claim(table, f"{where} claim {index}", settings, axes) for index, table in enumerate(raw, 1)]


def _parse_claim(table: Any, at: str, settings: Sequence[str], axes: Sequence[str]) -> Claim:
    if not isinstance(table, dict):
        raise GbenchError(f"{at} must be a table ([[claims]] followed by key = value lines)")
    for key in table:
        if key not in CLAIM_KEYS:
            raise GbenchError(
                f"{at}: unknown key {key!r}{suggestion(key, CLAIM_KEYS)}; valid keys: {', '.join(CLAIM_KEYS)}"
            )
    text, metric, source = table.get("claim"), table.get("metric", "fid"), table.get("source", "")
    if not isinstance(text, str) or not text.strip():
        raise GbenchError(f'{at}: give the claim\'s words, e.g. claim = "hidden 512 lowers FID"')
    if not isinstance(source, str):
        raise GbenchError(f"{at}: source must be text")
    metrics = claim_metrics()
    if metric not in metrics:
        raise GbenchError(
            f"{at}: metric = {metric!r} is not a numeric results column{suggestion(str(metric), metrics)}; "
            "e.g. fid, d_real, d_fake, d_loss"
        )
    headline = table.get("headline", False)
    if not isinstance(headline, bool):
        raise GbenchError(f"{at}: headline = {headline!r} must be true or false")
    given = [key for key in KIND_OF if key in table]
    kinds = list(dict.fromkeys(id(KIND_OF[key]) for key in given))
    if len(kinds) != 1 or (KIND_OF[given[0]].one and len(given) != 1):
        single = ", ".join(key for kind in KINDS.values() if kind.one for key in kind.relations)
        pairs = " or ".join(" with ".join(kind.relations) for kind in KINDS.values() if not kind.one)
        raise GbenchError(f"{at}: give exactly one of {single}, or {pairs} (got {', '.join(given) or 'none'})")
    if "margin" in table and not any(key in table for key in KINDS["margin"].relations):
        raise GbenchError(f'{at}: margin goes with no_more_than or no_less_than = "SETTING"')
    blank = Claim(text.strip(), "", given[0], "", str(metric), source, headline)
    claim = KIND_OF[given[0]].parse(table, blank, ClaimContext(at, settings, axes))
    return _published(table, claim, at)


def _published(table: dict[str, Any], claim: Claim, at: str) -> Claim:
    """A claim's ``published = [SETTING'S, OTHER'S]`` (against a setting) or ``[SETTING'S]`` (against a value)."""
    if "published" not in table:
        return claim
    figures, wanted = table["published"], 2 if claim.against_setting else 1
    example = "published = [1000.0, 99.0]" if wanted == 2 else "published = [0.95]"
    if claim.relation in ("more_than", "seed_share_above", "falls_over_last", "oscillates"):
        raise GbenchError(f"{at}: published figures go with a claim about a setting against another or a value")
    if (
        not isinstance(figures, list)
        or len(figures) != wanted
        or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and math.isfinite(f) for f in figures)
    ):
        raise GbenchError(
            f"{at}: published = {figures!r} must list the source's figure{'s' if wanted == 2 else ''} for "
            f"{'the setting, then the other setting' if wanted == 2 else 'the setting'}, e.g. {example}"
        )
    return replace(claim, published=tuple(float(f) for f in figures))


def check_claims(records: Sequence[Any], claims: Sequence[Claim]) -> list[ClaimResult]:
    """Each claim tested on the runs' final values; p-values Holm-adjusted over the claims tested."""
    names = setting_names(records)
    results = [KIND_OF[claim.relation].test(records, names, claim) for claim in claims]
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
    # paired claims grouped by their reason: S1's epoch variants are the same runs stopped at other points, S8's
    # EMA settings the same training read from other weights
    by_reason: dict[str, list[str]] = {}
    for result in results:
        if result.test == PAIRED:
            by_reason.setdefault(result.paired_because or "they pair by seed", []).append(repr(result.claim.text))
    kinds = {id(KIND_OF[r.claim.relation]) for r in results}
    return (
        "Each claim is tested on the final values of the runs over seeds: Welch's t-test (two-sided) against "
        "another setting, or the one-sample t-test against a value; difference: the setting's mean minus the "
        f"other's (or minus the value), with its {CONFIDENCE:.0%} interval; p adj.: {CORRECTION} over {family}. "
        + "".join(f"Paired t-test over seeds for {'; '.join(texts)}: {reason}. " for reason, texts in by_reason.items())
        + "".join(kind.caption for kind in KINDS.values() if id(kind) in kinds)
        + f"Confirmed: holds at {ALPHA:.0%} after correction on the claimed side; contradicted: holds on the other "
        "side; otherwise not distinguishable from seed noise. Generated from this report's runs."
    )
