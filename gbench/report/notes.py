"""The report's notes beside its tables: what each setting trained for, the hardware and gbench behind the
numbers, and the glossary that defines every count, flag and verdict a report shows."""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from gbench.analysis.grouping import setting_names
from gbench.analysis.pairing import PAIRED
from gbench.analysis.sequential import PROCEDURE
from gbench.analysis.stats import CORRECTION, MIN_SEEDS_NEEDED
from gbench.report.grids import suite_attr
from gbench.results import provenance
from gbench.results.flags import COVERED_SHARE, D_WINS_LOSS, D_WINS_REAL, finite_number


def _length(row: dict[str, Any]) -> str:
    epochs, steps = finite_number(row.get("epochs")), finite_number(row.get("steps"))
    # a step budget gives a fraction of an epoch (500 steps: 0.5336 of one); two decimals say it
    parts = [f"{epochs:g} epochs" if epochs == int(epochs) else f"{epochs:.2f} epochs"] if epochs is not None else []
    if steps is not None:
        parts.append(f"{steps:,.0f} steps" if not parts else f"({steps:,.0f} steps)")
    return " ".join(parts) or "length not recorded"


def trained_text(records: Sequence[Any], suite: Any = None) -> str:
    """What each setting trained for, grouped by length: a variant named for the full study's length
    (``epochs-100`` at 1/4 budget) shows the epochs it really ran."""
    by_length: dict[str, list[str]] = {}
    for name, record in zip(setting_names(records), records):
        names = by_length.setdefault(_length(record.row), [])
        if name not in names:
            names.append(name)
    budget = finite_number(suite_attr(suite, "budget"))
    head = "What ran"
    if budget is not None and budget != 1:
        head += (
            f" (at {budget:g} of the full study's budget: settings keep the full study's names, so a name such as "
            "epochs-100 gives the full length, not this one)"
        )
    groups = [f"{length}: {', '.join(names)}" for length, names in by_length.items()]
    return f"{head}: " + "; ".join(groups) + "."


def note_html(note: str) -> str:
    """A note as HTML: escaped, with its `command` spans as <code>, as the Markdown page shows them."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(note))


def runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def hardware_text(records: Sequence[Any]) -> str:
    """The hardware and gbench each run recorded, and the machine and gbench that wrote this report."""
    # Runs before 2026-12-07 recorded "1 threads of"; say it as the runs of today do.
    machines = Counter(
        str(r.row.get("hardware")).replace(", 1 threads of", ", 1 thread of") for r in records if r.row.get("hardware")
    )
    versions = Counter(str(r.row.get("gbench_version")) for r in records if r.row.get("gbench_version"))
    unrecorded = sum(1 for r in records if not r.row.get("hardware"))
    parts = []
    if machines:
        parts.append("Runs trained on " + "; ".join(f"{machine} ({runs(n)})" for machine, n in machines.most_common()))
    if versions:
        parts.append("with gbench " + "; ".join(f"{version} ({runs(n)})" for version, n in versions.most_common()))
    if unrecorded:
        parts.append(
            f"{unrecorded} of {len(records)} runs do not record their hardware or gbench version (written before "
            "gbench recorded them)"
        )
    parts.append(f"this report was written by gbench {provenance.gbench_version()} on {provenance.hardware()}")
    return "Hardware and software: " + ", ".join(parts) + "."


def glossary(tables: Sequence[Any], sequential: bool) -> list[tuple[str, str]]:
    """(term, definition) for every count, flag and verdict the report's tables and figures show."""
    paired = any(row.test == PAIRED for table in tables for row in table.settings)
    terms = [
        (
            "classes covered",
            f"classes that get at least {COVERED_SHARE:.0%} of their expected share of the generated samples, the "
            "expected share being the class's share "
            "of the dataset's test split (by the dataset's classifier). Tables: per run, averaged over a setting's "
            "runs; histogram titles: over the samples summed over seeds.",
        ),
        (
            "classes present",
            "classes with at least one generated sample (histogram titles). Much weaker than covered: one sample in "
            "50,000 is present.",
        ),
        (
            "discriminator wins",
            f"a flag, not a status: at the end of training D(x) >= {D_WINS_REAL} and d_loss <= {D_WINS_LOSS} (BCE "
            "losses only); the generator gets next to no "
            "gradient, though it may still cover the classes. Status columns say 'discriminator wins in N'.",
        ),
        (
            "family",
            f"the comparisons whose p-values are {CORRECTION}-adjusted together: every comparison this report makes, "
            "its results table and its claims, "
            "a claim on the same pair and FID as a table row counting once, so each pair has one adjusted p and one "
            "verdict.",
        ),
        (
            "Welch / paired t",
            "Welch's t-test compares settings whose runs are unrelated; the paired t-test (scipy.stats.ttest_rel on "
            "seed-by-seed differences) compares the same runs "
            "trained for different lengths, which share initial weights and batch order seed by seed"
            + (" (marked '(paired)' in the table)." if paired else "; no comparison in this report is paired."),
        ),
        (
            "verdict",
            "lower / higher FID: the difference holds after correction; null result: it does not, and the seeds could "
            "detect a relevant difference; "
            "too few seeds: it does not, and they could not."
            + (
                f" Under seeds auto the {PROCEDURE} decides: different (lower / higher FID), not distinguishable, or "
                "undecided."
                if sequential
                else ""
            ),
        ),
        (
            "MDD, seeds",
            "the smallest difference the seeds detect with 80% power, and the seeds the observed difference would "
            f"need (at least {MIN_SEEDS_NEEDED}).",
        ),
        (
            "train s, population s",
            "train s: a run's own training wall time (a population member's share); population s: the wall time of the "
            "population it trained in.",
        ),
    ]
    return terms
