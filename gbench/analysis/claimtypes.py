"""A claim, its checked result, and the per-run values claims are tested on (:mod:`gbench.analysis.claims`).

The kinds of claim and how each is parsed and tested are in :mod:`gbench.analysis.claimkinds`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gbench.analysis.curves import NOISE_AUTOCORRELATION, TREND_ROWS
from gbench.analysis.grouping import fid_basis
from gbench.analysis.stats import ALPHA, finite
from gbench.analysis.transitions import MEASURES
from gbench.plugins.columns import METRIC, Column
from gbench.results import schema

CONFIRMED, CONTRADICTED, UNDECIDED = "confirmed", "contradicted", "not distinguishable from seed noise"
#: A claim with no test; its verdict adds the reason in parentheses: "no test (fewer than two runs ...)".
NO_TEST = "no test"
#: Quantities a claim may test that are not results columns themselves, each computed from one run's row.
DERIVED: dict[str, Column] = {
    # "every digit present" in a count of N samples: the rarest class is expected at least once when its share is >= 1/N
    "min_class_share": Column(
        "min_class_share",
        METRIC,
        "rarest class share",
        ".3f",
        direction="higher",
        description="the share of the generated samples in their rarest class (from class_counts)",
    ),
    # S4's measures of a latent walk, which the report adds to each run's row (gbench.report.transitionruns)
    **MEASURES,
}


def claim_column(metric: str) -> Column:
    """What a claim's metric is: a derived quantity, or a results column."""
    return DERIVED.get(metric) or schema.column(metric)


def claim_metrics() -> list[str]:
    """The metrics a claim may name: the numeric results columns and the derived quantities."""
    return [*schema.numeric_metrics(), *DERIVED]


@dataclass(frozen=True)
class Claim:
    text: str
    setting: str
    relation: str  # a relation key of gbench.analysis.claimkinds.KINDS (for "more_than", setting and other are axes)
    other: str | float  # the setting (or axis) compared with, or the value
    metric: str = "fid"
    source: str = ""
    headline: bool = False  # its metric leads the report (gbench.report.headline)
    published: tuple[float, ...] = ()  # the source's own figures: the setting's, then the other setting's
    margin: float = 0.0  # no_more_than / no_less_than: how far past the other setting still counts as no more

    @property
    def with_margin(self) -> bool:
        return self.relation in ("no_more_than", "no_less_than")

    @property
    def shift(self) -> float:
        """What a margin claim's test subtracts from the setting's values: the difference it tests is then
        mean - other's mean - margin (no more than) or + margin (no less than), against 0."""
        return self.margin if self.relation == "no_more_than" else -self.margin if self.with_margin else 0.0

    @property
    def against_setting(self) -> bool:
        return self.relation in ("lower_than", "higher_than", "no_more_than", "no_less_than")

    @property
    def expects_lower(self) -> bool:
        return self.relation in ("lower_than", "below", "falls_over_last", "no_more_than")

    def describe(self) -> str:
        header = claim_column(self.metric).header or self.metric
        if self.relation == "more_than":
            return f"spread of mean {header} over {self.setting} larger than over {self.other}"
        if self.relation == "seed_share_above":
            return f"seeds' share of the variance of {header} over all settings above {self.other:g}"
        if self.relation == "falls_over_last":
            return (
                f"slope of {header} of {self.setting} over its last {self.other:g} evaluations below 0 "
                "(per 1,000 steps)"
            )
        if self.relation == "oscillates":
            return (
                f"lag-1 autocorrelation of {header} of {self.setting} about its {TREND_ROWS}-row moving average "
                f"above noise's {NOISE_AUTOCORRELATION:.3f}"
            )
        if self.with_margin:
            below = self.relation == "no_more_than"
            return (
                f"{header} of {self.setting} minus {self.other}'s {'below' if below else 'above'} "
                f"{'+' if below else '-'}{self.margin:g} (no {'more' if below else 'less'} than {self.other}, "
                f"within {self.margin:g})"
            )
        words = {"lower_than": "lower than", "higher_than": "higher than", "above": "above", "below": "below"}
        other = self.other if self.against_setting else format(self.other, "g")
        return f"{header} of {self.setting} {words[self.relation]} {other}"


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
    paired_because: str = ""  # a paired test's reason (gbench.analysis.pairing), which the claims' caption gives
    family: int = 0  # hypotheses in the Holm family of p_adjusted
    family_text: str = ""  # what that family is, when a report widened it (gbench.analysis.family)

    @property
    def verdict(self) -> str:
        if self.p_adjusted is None or self.difference is None:
            return f"{NO_TEST} ({self.note})" if self.note else NO_TEST
        if self.p_adjusted >= ALPHA or self.difference == 0:
            return UNDECIDED
        return CONFIRMED if (self.difference < 0) == self.claim.expects_lower else CONTRADICTED


def verdict_kind(verdict: str) -> str:
    """A claim's verdict without its reason, for counting: "no test (fewer than two runs ...)" is "no test"."""
    return NO_TEST if verdict.startswith(NO_TEST) else verdict


def min_class_share(row: dict[str, Any]) -> float | None:
    """The rarest class's share of a run's classified samples; None without class counts."""
    counts = [float(c) for c in str(row.get("class_counts") or "").split()]
    return min(counts) / sum(counts) if counts and sum(counts) > 0 else None


def metric_value(row: dict[str, Any], metric: str) -> Any:
    return min_class_share(row) if metric == "min_class_share" else row.get(metric)


def chosen(records: Sequence[Any], names: list[str], setting: str) -> list[Any]:
    """The records of one setting (``names``: each record's setting)."""
    return [r for r, name in zip(records, names) if name == setting]


def by_seed(records: Sequence[Any], metric: str) -> dict[int, float]:
    return {int(r.seed): v[0] for r in records if (v := finite([metric_value(r.row, metric)]))}


def setting_values(records: Sequence[Any], names: list[str], setting: str, metric: str) -> tuple[list[float], set[Any]]:
    """A setting's finite values of ``metric`` over its runs, and the FID bases among them (FID only)."""
    runs = chosen(records, names, setting)
    values = finite(metric_value(r.row, metric) for r in runs)
    bases = {fid_basis(r) for r in runs if r.row.get(metric) is not None} if metric == "fid" else set()
    return values, bases
