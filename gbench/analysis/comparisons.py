"""Settings of a study over their seeds, each compared with a reference.

For each setting (a suite variant, or for plain runs the combination of
settings that tells them apart) over its seeds: n, mean, standard deviation
(ddof=1) and the 95% confidence interval of the mean (Student t). Each setting
is compared with a reference, the suite's baseline when there is one, else the
setting with the best (lowest) mean FID, by:

- the difference in mean FID with Welch's 95% interval and a percentile
  bootstrap 95% interval over seeds;
- the probability of improvement P(FID of the setting < FID of the
  reference), with its bootstrap interval;
- Welch's t-test (unequal variances), or the paired t-test where the setting
  and the reference are the same runs trained for different lengths
  (:mod:`gbench.analysis.pairing`); with several comparisons the p-values
  are adjusted with the Holm-Bonferroni step-down method, which controls the
  chance of any false "significant" at 5% in the whole table (``*``); a
  report widens the family to every comparison it makes
  (:mod:`gbench.analysis.family`);
- power: the smallest difference the seeds at hand detect at 80% power (two-
  sided 5% Welch test, t approximation, observed sds), and the seeds per
  setting the observed difference would need. A difference that does not hold
  after correction is a *null result* when the seeds could detect a relevant
  difference (:data:`RELEVANT_FRACTION` of the reference's mean FID, unless
  the caller gives one), else *too few seeds*.

A setting with fewer than two values gets no test ("n<2"). FIDs from
different feature extractors are different quantities: records are grouped by
``fid_extractor`` first and every table holds one extractor only. The
numbers themselves are in :mod:`gbench.analysis.stats`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gbench.analysis.grouping import fid_basis, is_setting_column, setting_names
from gbench.analysis.pairing import PAIRED, UNPAIRED, describe_paired, pairing, pairs, trained_differences
from gbench.analysis.sequential import DIFFERENT
from gbench.analysis.stats import (
    ALPHA,
    CORRECTION,
    MIN_SEEDS_NEEDED,
    POWER,
    Summary,
    bootstrap_difference,
    detectable_difference,
    holm,
    mean,
    paired_t,
    probability_of_improvement,
    seeds_needed,
    summarize,
    welch,
    welch_difference,
)
from gbench.results import schema
from gbench.results.flags import population_seconds, row_discriminator_wins, run_seconds

__all__ = ["SettingStats", "StudyTable", "study_tables"]  # the public API (docs/api.md)

#: Without a stated relevant difference, one of 10% of the reference's mean FID counts as relevant.
RELEVANT_FRACTION = 0.10


@dataclass
class SettingStats:
    """One row of a study table: one setting over its seeds."""

    name: str
    runs: int  # runs of this setting (all statuses)
    seeds: list[int]
    status: Counter  # status -> count
    fid: Summary
    fid_values: list[float]
    means: dict[
        str, float | None
    ]  # d_real, d_fake, d_loss, g_loss, train_seconds, ... averaged over runs that have them
    params: dict[str, Any]  # the setting's set-up keys and hyperparameters (from its first run)
    score: str | None = None  # "probability" | "critic" | None (mixed or unknown)
    reference: bool = False
    diff: float | None = None  # mean FID minus the reference's
    t: float | None = None
    p: float | None = None
    p_adjusted: float | None = None
    note: str = ""  # why there is no test ("n<2", "no FID", "sd=0")
    diff_welch: tuple[float, float] | None = None  # Welch's 95% interval of diff
    diff_bootstrap: tuple[float, float] | None = None  # percentile bootstrap 95% interval of diff, over seeds
    p_better: float | None = None  # P(FID of this setting < FID of the reference), Mann-Whitney U / (n * n_ref)
    p_better_interval: tuple[float, float] | None = None  # its bootstrap 95% interval
    detectable: float | None = None  # smallest difference detectable at 80% power with these seeds
    seeds_needed: int | None = None  # seeds per setting at which diff would be detectable at 80% power
    relevant: float | None = None  # the difference the power verdict asks about
    fid_by_seed: dict[int, float] = field(default_factory=dict)
    run_rows: list[dict[str, Any]] = field(default_factory=list)  # the runs' rows, for pairing
    test: str = ""  # the test behind p: "Welch" or "paired t" (gbench.analysis.pairing)
    pairing_note: str = ""  # why the comparison is paired or not
    differs: list[str] = field(default_factory=list)  # the training's set-up columns it differs from the reference in
    family: int = 0  # comparisons in the Holm family of p_adjusted
    discriminator_wins: int = 0  # runs flagged (gbench.results.flags), whatever their status
    sequential: str = ""  # --seeds auto: the group-sequential test's decision, which gives the verdict

    @property
    def verdict(self) -> str:
        """'lower FID' or 'higher FID' (holds after correction), 'null result', 'too few seeds', or '' (no test);
        under ``--seeds auto`` the sequential test's decision: lower/higher FID, 'not distinguishable' or
        'undecided'."""
        if self.sequential:
            if self.sequential == DIFFERENT and self.diff is not None:
                return "lower FID" if self.diff < 0 else "higher FID"
            return self.sequential
        if self.p_adjusted is None or self.diff is None:
            return ""
        if self.significant:
            return "lower FID" if self.diff < 0 else "higher FID"
        if self.detectable is not None and self.relevant is not None and self.detectable <= self.relevant:
            return "null result"
        return "too few seeds"

    @property
    def significant(self) -> bool:
        if self.sequential:
            return self.sequential == DIFFERENT
        return self.p_adjusted is not None and self.p_adjusted < ALPHA

    def status_text(self) -> str:
        order = ["ok", "collapsed", "diverged"]
        keys = [k for k in order if self.status.get(k)] + sorted(k for k in self.status if k not in order)
        flag = f"; discriminator wins in {self.discriminator_wins}" if self.discriminator_wins else ""
        return ", ".join(f"{self.status[k]} {k}" for k in keys) + flag


def mean_keys() -> list[str]:
    """Metrics averaged over a setting's runs (FID has its own summary): the registered metrics' too."""
    return [name for name in schema.numeric_metrics() if name != "fid"]


@dataclass
class StudyTable:
    """Settings whose FIDs come from one extractor (or that have no FID), compared with one reference."""

    extractor: str | None  # None: no FID in this table
    settings: list[SettingStats]
    reference: str | None  # the reference setting's name
    reference_kind: str  # "baseline", "best" or "none"
    tests: int = 0  # comparisons made (the size of the Holm family)
    relevant: float | None = None  # the difference in FID that counts as relevant for the power verdict
    relevant_text: str = ""  # where it comes from
    correction: str = CORRECTION
    alpha: float = ALPHA
    notes: list[str] = field(default_factory=list)
    fid_samples: int | None = None  # generated samples behind every FID in this table
    family_text: str = ""  # what the Holm family is, when wider than this table (gbench.analysis.family)

    @property
    def fid_label(self) -> str:
        """``lenet-mnist@712ee890 features, 10,000 samples``: what every FID of this table was measured with."""
        samples = f", {self.fid_samples:,} samples" if self.fid_samples else ""
        return f"{self.extractor} features{samples}"

    def setting(self, name: str) -> SettingStats:
        for row in self.settings:
            if row.name == name:
                return row
        raise KeyError(name)

    def comparison_text(self) -> str:
        """One sentence saying what the p-values compare."""
        if self.extractor is None:
            return "No FID in these runs (evaluation off or every run diverged), so no test."
        if self.reference is None:
            return "No setting has FIDs from two or more seeds, so no test."
        if len(self.settings) == 1:
            return "One setting only: nothing to compare it with, so no test."
        if self.tests == 0:
            return (
                f"No setting could be tested against {self.reference!r}: each needs two or more FIDs with some "
                "spread (n<2: fewer than two; sd=0: no spread on either side)."
            )
        against = {
            "baseline": f"the baseline {self.reference!r}",
            "best": f"the best setting {self.reference!r} (lowest mean FID; picked after seeing the data, "
            "so the p-values are optimistic)",
        }[self.reference_kind]
        return " ".join(self.explanations(against))

    def explanations(self, against: str) -> list[str]:
        """One sentence per column of the comparison."""
        paired = [row for row in self.settings if row.test == PAIRED]
        unpaired = [row for row in self.settings if row.test == UNPAIRED]
        pairing_text = []
        if paired:
            pairing_text.append(
                "(paired): the paired t-test over seeds instead (interval, bootstrap, MDD and seeds from the "
                f"seed-by-seed differences) for {_grouped(paired)};"
            )
        if paired and unpaired:
            pairing_text.append(f"the others are not paired: {_grouped(unpaired)};")
        family = self.family_text or f"the {self.tests} comparison{'s' if self.tests != 1 else ''} in this table"
        return [
            "Δ FID: the setting's mean FID minus the reference's, with Welch's 95% interval (t with "
            "Welch-Satterthwaite df);",
            "boot 95%: the same difference's percentile bootstrap interval, seeds resampled within each setting (too "
            "narrow at 2 to 5 seeds);",
            "P(better): the probability that one seed of the setting gets a lower FID than one of the reference "
            "(Mann-Whitney U / (n·n_ref), as rliable), with its bootstrap 95% interval;",
            f"p: Welch's t-test (two-sided, unequal variances) of each setting's FIDs over seeds against {against};",
            *pairing_text,
            f"p adj.: {self.correction}-adjusted over {family}; * = difference holds at {self.alpha:.0%} after "
            "correction;",
            f"MDD: the smallest true difference these seeds detect with {POWER:.0%} power in a two-sided "
            f"{self.alpha:.0%} Welch test (t approximation with the observed sds, optimistic at few seeds: about 69% "
            "real power at 3 seeds, 78% at 5);",
            f"seeds: seeds per setting the observed Δ would need for {POWER:.0%} power (never fewer than "
            f"{MIN_SEEDS_NEEDED}: 2 seeds have about 45% real power);",
            f"verdict: a difference that does not hold is a null result when MDD is at most {self.relevant_text}, else "
            "too few seeds; n<2: fewer than two FIDs, no test."
            if not any(row.sequential for row in self.settings)
            else "verdict: the group-sequential test's decision at the look where each setting stopped (seeds auto; "
            "see Seeds), not the p adj. column, which is the fixed-sample test for reference.",
        ]


def _setting(name: str, records: list[Any], basis: tuple[str, int | None] | None) -> SettingStats:
    chosen = [r for r in records if basis is not None and fid_basis(r) == basis]
    fids = [float(r.row["fid"]) for r in chosen]
    scores = {r.row.get("score") for r in records if r.row.get("score")}
    first = records[0].row
    params = {k: v for k, v in first.items() if is_setting_column(k)}
    return SettingStats(
        name=name,
        runs=len(records),
        seeds=sorted({int(r.seed) for r in records}),
        status=Counter(str(r.row.get("status") or "unknown") for r in records),
        fid=summarize(fids),
        fid_values=fids,
        means={key: mean(r.row.get(key) for r in records) for key in mean_keys()}
        | {
            "train_seconds": mean(run_seconds(r.row) for r in records),
            "population_seconds": mean(population_seconds(r.row) for r in records),
        },
        params=params,
        score=scores.pop() if len(scores) == 1 else None,
        fid_by_seed={int(r.seed): float(r.row["fid"]) for r in chosen},
        run_rows=[r.row for r in records],
        discriminator_wins=sum(row_discriminator_wins(r.row) for r in records),
    )


def study_tables(
    records: Sequence[Any],
    baseline: str | None = None,
    order: Sequence[str] | None = None,
    relevant: float | None = None,
) -> list[StudyTable]:
    """Tables of per-setting statistics, one per FID extractor (plus one for settings without FID).

    :param baseline: name of the reference setting; None (or a name with no
        FIDs) compares each setting with the best one instead.
    :param order: setting names in the order to show (others follow in order of appearance).
    :param relevant: the smallest difference in FID that matters, for the
        power verdict; None: :data:`RELEVANT_FRACTION` of the reference's mean FID.
    """
    records = list(records)
    if not records:
        return []
    names = setting_names(records)
    by_name: dict[str, list[Any]] = {}
    for name, record in zip(names, records):
        by_name.setdefault(name, []).append(record)
    ordered = [n for n in (order or []) if n in by_name] + [n for n in by_name if n not in (order or [])]

    bases: list[tuple[str, int | None]] = []
    for record in records:
        basis = fid_basis(record)
        if basis is not None and basis not in bases:
            bases.append(basis)
    tables = []
    placed: set[str] = set()
    for basis in bases:
        members = [n for n in ordered if any(fid_basis(r) == basis for r in by_name[n])]
        placed.update(members)
        table = StudyTable(
            basis[0], [_setting(n, by_name[n], basis) for n in members], None, "none", fid_samples=basis[1]
        )
        tables.append(_compare(table, baseline, relevant))
    rest = [n for n in ordered if n not in placed]
    if rest:
        table = StudyTable(None, [_setting(n, by_name[n], None) for n in rest], None, "none")
        for row in table.settings:
            row.note = "no FID"
        tables.append(table)
    extractors = list(dict.fromkeys(extractor for extractor, _ in bases))
    if len(extractors) > 1:
        for table in tables:
            table.notes.append(
                f"These runs used {len(extractors)} feature extractors ({', '.join(extractors)}); their FIDs are not "
                "comparable, so each has its own table."
            )
    counts = list(dict.fromkeys(samples for _, samples in bases))
    if len(counts) > 1:
        shown = ", ".join(f"{n:,}" if n else "unrecorded" for n in counts)
        for table in tables:
            table.notes.append(
                f"These runs' FIDs used different sample counts ({shown}); FID depends on the count, so each count has "
                "its own table."
            )
    return tables


def _compare(table: StudyTable, baseline: str | None, relevant: float | None = None) -> StudyTable:
    """Fill in the reference, the comparisons with it and Holm-adjusted p-values."""
    rows = table.settings
    names = [row.name for row in rows]
    if baseline is not None and baseline in names and table.setting(baseline).fid.n >= 1:
        reference, kind = table.setting(baseline), "baseline"
    else:
        if baseline is not None:
            table.notes.append(
                f"The baseline {baseline!r} has no FID on these features; settings are compared with the best one "
                "instead."
            )
        candidates = [row for row in rows if row.fid.n >= 2] or [row for row in rows if row.fid.n >= 1]
        if not candidates:
            return table
        reference, kind = min(candidates, key=lambda row: math.inf if row.fid.mean is None else row.fid.mean), "best"
    reference.reference = True
    table.reference, table.reference_kind = reference.name, kind
    if relevant is not None:
        table.relevant, table.relevant_text = abs(relevant), f"the relevant difference {abs(relevant):.3g} given"
    elif reference.fid.mean is not None:
        table.relevant = RELEVANT_FRACTION * abs(reference.fid.mean)
        table.relevant_text = f"{RELEVANT_FRACTION:.0%} of the reference's mean FID ({table.relevant:.3g})"
    pvalues: list[float | None] = []
    for row in rows:
        p = None
        if row.fid.mean is not None and reference.fid.mean is not None:
            row.diff = row.fid.mean - reference.fid.mean
        if row is reference:
            row.note = "reference"
        elif row.fid.n < 2 or reference.fid.n < 2:
            row.note = "n<2"
        elif row.fid.sd == 0 and reference.fid.sd == 0:  # no spread on either side: the t statistic is undefined
            row.note = "sd=0"
        else:
            paired, row.pairing_note = pairing(row.run_rows, reference.run_rows)
            row.differs = trained_differences(row.run_rows, reference.run_rows)
            a, b = pairs(row.fid_by_seed, reference.fid_by_seed) if paired else (row.fid_values, reference.fid_values)
            paired = paired and len(a) >= 2
            row.test = PAIRED if paired else UNPAIRED
            t, p = paired_t(a, b) if paired else welch(a, b)
            if math.isnan(p):
                row.note, p = "no test", None
            else:
                row.t, row.p = t, p
                (describe_paired if paired else _describe_difference)(row, reference, table.relevant, a, b)
        pvalues.append(p)
    table.tests = sum(p is not None for p in pvalues)
    for row, adjusted in zip(rows, holm(pvalues)):
        row.p_adjusted, row.family = adjusted, table.tests
    return table


def _describe_difference(
    row: SettingStats, reference: SettingStats, relevant: float | None, a: list[float], b: list[float]
) -> None:
    """Intervals, probability of improvement and power of one tested comparison."""
    _, low, high = welch_difference(a, b)
    row.diff_welch = (low, high)
    row.diff_bootstrap = bootstrap_difference(a, b)
    row.p_better, *interval = probability_of_improvement(a, b)
    row.p_better_interval = (interval[0], interval[1])
    sd_a, sd_b = row.fid.sd or 0.0, reference.fid.sd or 0.0
    row.detectable = detectable_difference(sd_a, row.fid.n, sd_b, reference.fid.n)
    row.seeds_needed = seeds_needed(row.diff, sd_a, sd_b) if row.diff is not None else None
    row.relevant = relevant


def _grouped(rows: Sequence[SettingStats]) -> str:
    """Settings named once per reason: those that differ in their training's set-up under one clause with every
    column any of them differs in (S8's 30 settings each listed their own), the rest by their own reason."""
    by_setup = [row for row in rows if row.differs]
    reasons: dict[str, list[str]] = {}
    for row in rows:
        if not row.differs:
            reasons.setdefault(row.pairing_note, []).append(row.name)
    parts = [f"{', '.join(names)}, because {reason}" for reason, names in reasons.items()]
    if by_setup:
        columns = ", ".join(sorted({column for row in by_setup for column in row.differs}))
        parts.append(
            f"{', '.join(row.name for row in by_setup)}, because they differ from the reference in their set-up "
            f"({columns}), so a seed draws each its own initial weights"
        )
    return "; ".join(parts)
