"""Statistics over seeds: is a difference between two settings real or seed noise?

For each setting (a suite variant, or for plain runs the combination of
settings that tells them apart) over its seeds: n, mean, standard deviation
(ddof=1) and the 95% confidence interval of the mean (Student t). Each setting
is compared with a reference by Welch's t-test (unequal variances): the
suite's baseline when there is one, else the setting with the best (lowest)
mean FID. With several comparisons the p-values are adjusted with the
Holm-Bonferroni step-down method, which controls the chance of any false
"significant" at 5% in the whole table; the mark ``*`` means the adjusted
p-value is below 5%. A setting with fewer than two values gets no test
("n<2").

FIDs from different feature extractors are different quantities: records are
grouped by ``fid_extractor`` first and every table holds one extractor only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scipy import stats as _scipy

from gbench import schema

ALPHA = 0.05
CONFIDENCE = 0.95
CORRECTION = "Holm-Bonferroni"

# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Mean and spread of one quantity over seeds."""

    n: int
    mean: float | None
    sd: float | None  # sample standard deviation (ddof=1); None for n < 2
    ci_low: float | None  # 95% CI of the mean (Student t); None for n < 2
    ci_high: float | None

    @property
    def half_width(self) -> float | None:
        return None if self.ci_high is None or self.mean is None else self.ci_high - self.mean


def finite(values: Iterable[Any]) -> list[float]:
    """The values that are finite numbers (None, text, NaN and inf dropped)."""
    out = []
    for value in values:
        if isinstance(value, bool) or value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out.append(number)
    return out


def summarize(values: Iterable[Any], confidence: float = CONFIDENCE) -> Summary:
    """n, mean, sd (ddof=1) and the Student-t confidence interval of the mean."""
    data = finite(values)
    n = len(data)
    if n == 0:
        return Summary(0, None, None, None, None)
    mean = sum(data) / n
    if n < 2:
        return Summary(1, mean, None, None, None)
    sd = math.sqrt(sum((x - mean) ** 2 for x in data) / (n - 1))
    half = float(_scipy.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


def mean(values: Iterable[Any]) -> float | None:
    data = finite(values)
    return sum(data) / len(data) if data else None


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Welch's two-sided t-test: (t statistic, p-value); NaN when it cannot be computed."""
    result = _scipy.ttest_ind(list(a), list(b), equal_var=False)
    return float(result.statistic), float(result.pvalue)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values, in the input order; None stays None (not tested).

    Sorted ascending, the i-th smallest of m p-values (i from 1) becomes
    max over j <= i of min(1, (m - j + 1) * p_(j)). A hypothesis is rejected
    at level alpha when its adjusted p-value is below alpha.
    """
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(tested)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


# ---------------------------------------------------------------------------
# Settings and their tables
# ---------------------------------------------------------------------------


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
            if schema.is_setting_column(key) and key not in keys:
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


@dataclass
class SettingStats:
    """One row of a study table: one setting over its seeds."""

    name: str
    runs: int  # runs of this setting (all statuses)
    seeds: list[int]
    status: Counter  # status -> count
    fid: Summary
    fid_values: list[float]
    means: dict[str, float | None]  # d_real, d_fake, d_loss, g_loss, train_seconds, ... averaged over runs that have them
    params: dict[str, Any]  # the setting's set-up keys and hyperparameters (from its first run)
    score: str | None = None  # "probability" | "critic" | None (mixed or unknown)
    reference: bool = False
    diff: float | None = None  # mean FID minus the reference's
    t: float | None = None
    p: float | None = None
    p_adjusted: float | None = None
    note: str = ""  # why there is no test ("n<2", "no FID", "sd=0")

    @property
    def significant(self) -> bool:
        return self.p_adjusted is not None and self.p_adjusted < ALPHA

    def status_text(self) -> str:
        order = ["ok", "collapsed", "diverged"]
        keys = [k for k in order if self.status.get(k)] + sorted(k for k in self.status if k not in order)
        return ", ".join(f"{self.status[k]} {k}" for k in keys)


#: Metrics averaged over a setting's runs (FID has its own summary).
MEAN_KEYS = tuple(name for name in schema.numeric_metrics() if name != "fid")


@dataclass
class StudyTable:
    """Settings whose FIDs come from one extractor (or that have no FID), compared with one reference."""

    extractor: str | None  # None: no FID in this table
    settings: list[SettingStats]
    reference: str | None  # the reference setting's name
    reference_kind: str  # "baseline", "best" or "none"
    tests: int = 0  # comparisons made (the size of the Holm family)
    correction: str = CORRECTION
    alpha: float = ALPHA
    notes: list[str] = field(default_factory=list)

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
            return f"No setting could be tested against {self.reference!r}: each needs two or more FIDs with some spread (n<2: fewer than two; sd=0: no spread on either side)."
        against = {
            "baseline": f"the baseline {self.reference!r}",
            "best": f"the best setting {self.reference!r} (lowest mean FID; picked after seeing the data, so the p-values are optimistic)",
        }[self.reference_kind]
        return (
            f"p: Welch's t-test (two-sided, unequal variances) of each setting's FIDs over seeds against {against}; "
            f"p adj.: {self.correction}-adjusted over the {self.tests} comparison{'s' if self.tests != 1 else ''} in this table; "
            f"* = difference holds at {self.alpha:.0%} after correction; n<2: fewer than two FIDs, no test."
        )


def _setting(name: str, records: list[Any], extractor: str | None) -> SettingStats:
    fids = [float(r.row["fid"]) for r in records if extractor is not None and extractor_of(r) == extractor]
    scores = {r.row.get("score") for r in records if r.row.get("score")}
    first = records[0].row
    params = {k: v for k, v in first.items() if schema.is_setting_column(k)}
    return SettingStats(
        name=name,
        runs=len(records),
        seeds=sorted({int(r.seed) for r in records}),
        status=Counter(str(r.row.get("status") or "unknown") for r in records),
        fid=summarize(fids),
        fid_values=fids,
        means={key: mean(r.row.get(key) for r in records) for key in MEAN_KEYS},
        params=params,
        score=scores.pop() if len(scores) == 1 else None,
    )


def study_tables(records: Sequence[Any], baseline: str | None = None, order: Sequence[str] | None = None) -> list[StudyTable]:
    """Tables of per-setting statistics, one per FID extractor (plus one for settings without FID).

    :param baseline: name of the reference setting; None (or a name with no
        FIDs) compares each setting with the best one instead.
    :param order: setting names in the order to show (others follow in order of appearance).
    """
    records = list(records)
    if not records:
        return []
    names = setting_names(records)
    by_name: dict[str, list[Any]] = {}
    for name, record in zip(names, records):
        by_name.setdefault(name, []).append(record)
    ordered = [n for n in (order or []) if n in by_name] + [n for n in by_name if n not in (order or [])]

    extractors: list[str] = []
    for record in records:
        extractor = extractor_of(record)
        if extractor is not None and extractor not in extractors:
            extractors.append(extractor)
    tables = []
    placed: set[str] = set()
    for extractor in extractors:
        members = [n for n in ordered if any(extractor_of(r) == extractor for r in by_name[n])]
        placed.update(members)
        tables.append(_compare(StudyTable(extractor, [_setting(n, by_name[n], extractor) for n in members], None, "none"), baseline))
    rest = [n for n in ordered if n not in placed]
    if rest:
        table = StudyTable(None, [_setting(n, by_name[n], None) for n in rest], None, "none")
        for row in table.settings:
            row.note = "no FID"
        tables.append(table)
    if len(extractors) > 1:
        for table in tables:
            table.notes.append(
                f"These runs used {len(extractors)} feature extractors ({', '.join(extractors)}); their FIDs are not comparable, so each has its own table."
            )
    return tables


def _compare(table: StudyTable, baseline: str | None) -> StudyTable:
    """Fill in the reference, Welch tests and Holm-adjusted p-values."""
    rows = table.settings
    names = [row.name for row in rows]
    if baseline is not None and baseline in names and table.setting(baseline).fid.n >= 1:
        reference, kind = table.setting(baseline), "baseline"
    else:
        if baseline is not None:
            table.notes.append(f"The baseline {baseline!r} has no FID on these features; settings are compared with the best one instead.")
        candidates = [row for row in rows if row.fid.n >= 2] or [row for row in rows if row.fid.n >= 1]
        if not candidates:
            return table
        reference, kind = min(candidates, key=lambda row: row.fid.mean), "best"
    reference.reference = True
    table.reference, table.reference_kind = reference.name, kind
    pvalues: list[float | None] = []
    for row in rows:
        p = None
        if row.fid.mean is not None:
            row.diff = row.fid.mean - reference.fid.mean
        if row is reference:
            row.note = "reference"
        elif row.fid.n < 2 or reference.fid.n < 2:
            row.note = "n<2"
        elif row.fid.sd == 0 and reference.fid.sd == 0:  # no spread on either side: the t statistic is undefined
            row.note = "sd=0"
        else:
            t, p = welch(row.fid_values, reference.fid_values)
            if math.isnan(p):
                row.note, p = "no test", None
            else:
                row.t, row.p = t, p
        pvalues.append(p)
    table.tests = sum(p is not None for p in pvalues)
    for row, adjusted in zip(rows, holm(pvalues)):
        row.p_adjusted = adjusted
    return table
