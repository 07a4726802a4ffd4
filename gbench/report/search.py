"""A search suite's part of the report: "Are GANs created equal?" (Lucic et al., NeurIPS 2018) as they drew it.

- the expected best FID after k settings tried, one curve per candidate with
  its bootstrap interval (:mod:`gbench.analysis.search_budget`), a figure and a table;
- the retrained bests over seeds, each compared with its data set's reference
  (the baseline's loss) by the report's usual tests, one Holm family
  (:func:`search_tables` gives the report's study tables, grouped by data set);
- each candidate's cost in wall time, search and retrain;
- one line comparing the conclusion with Lucic et al.'s, direction only.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gbench.analysis.comparisons import StudyTable, study_tables
from gbench.analysis.estimate import full_study_estimate
from gbench.analysis.search_budget import BudgetCurve, SearchSummary
from gbench.report.grids import Grid, format_p, format_value
from gbench.results.flags import run_seconds

FIGURE = "expected_best_fid.png"
#: The numbers of settings tried that the table shows (those up to the trials run), besides all of them.
TABLE_K = (1, 2, 5, 10, 20, 50)
LUCIC = (
    "Lucic et al. (2018) found that with a fair budget no loss consistently beats the non-saturating GAN: "
    "the differences they saw were within the spread over seeds (their FIDs are on Inception features, "
    "these on the data set's own, so only the direction compares)."
)


def within_datasets(suite: Any) -> bool:
    """Whether the report compares within each data set: a search suite, or a suite whose settings span several
    data sets (S8 on MNIST and Fashion-MNIST), where a comparison across data sets would mean nothing."""
    if suite is None or not hasattr(suite, "comparison_groups"):
        return False
    return getattr(suite, "search", None) is not None or len(suite.comparison_groups()) > 1


def search_tables(records: Sequence[Any], suite: Any) -> list[StudyTable]:
    """The study tables of a search suite (or one over several data sets): the settings of each data set compared
    with that data set's reference, the setting that trains as the baseline does."""
    tables: list[StudyTable] = []
    order = [variant.name for variant in suite.variants]
    for dataset, (names, reference) in suite.comparison_groups().items():
        members = [record for record in records if record.variant in names]
        for table in study_tables(members, baseline=reference, order=order):
            table.notes.append(f"Data set {dataset}: compared with {reference!r} of the same data set.")
            tables.append(table)
    return tables


def full_search_estimate(records: Sequence[Any], suite: Any) -> str | None:
    """A reduced search suite's estimate of its full study: each candidate's runs, search trials and retrain seeds,
    priced as its retrained best measured here scaled to the full length (gbench.analysis.estimate); None without
    a full suite. An upper bound: a pruned trial stops early."""
    estimate = full_study_estimate(records, suite)
    full = suite.full_suite() if estimate is not None else None
    if estimate is None or full is None or full.search is None:
        return None
    runs = full.search.trials + len(full.seeds)
    hours = sum(cost.seconds / cost.seeds * runs for cost in estimate.settings) / 3600
    text = (
        f"Reduced budget. The full study is `{estimate.command}`: {len(full.variants)} candidates x "
        f"({full.search.trials} search trials + {len(full.seeds)} seeds) = {len(full.variants) * runs} runs, "
        f"about {hours:.0f} hours of one worker on the machine these runs used ({hours / 2:.0f} with --jobs 2 on 2 "
        "cores), "
        "each run priced as its candidate's retrained best measured here, scaled to the full steps and evaluations; "
        "pruned trials stop early, so this is an upper bound."
    )
    if estimate.missing:
        text += f" Not estimated (no runs here): {', '.join(estimate.missing)}."
    return text


def _interval(curve: BudgetCurve, index: int) -> str:
    low, high = curve.low[index], curve.high[index]
    return f"{format_value(curve.expected[index], '.2f')} [{format_value(low, '.1f')}, {format_value(high, '.1f')}]"


def _finite_or_nan(values: Sequence[float]) -> list[float]:
    return [v if math.isfinite(v) else math.nan for v in values]


class SearchSection:
    """The figure, tables and lines of a search suite's report, drawn into ``figures``."""

    def __init__(self, summary: SearchSummary, records: Sequence[Any], tables: Sequence[StudyTable], figures: Path):
        self.summary = summary
        self.records = list(records)
        self.tables = list(tables)
        self.curves = summary.curves()
        self.figure = figures / FIGURE
        self.draw()

    def draw(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        datasets = list(dict.fromkeys(self.summary.datasets[c.candidate] for c in self.curves))
        figure, axes = plt.subplots(1, max(1, len(datasets)), figsize=(6 * max(1, len(datasets)), 4.2), squeeze=False)
        for axis, dataset in zip(axes[0], datasets):
            for curve in (c for c in self.curves if self.summary.datasets[c.candidate] == dataset):
                k = list(range(1, curve.trials + 1))
                (line,) = axis.plot(k, _finite_or_nan(curve.expected), marker="o", markersize=3, label=curve.candidate)
                axis.fill_between(
                    k, _finite_or_nan(curve.low), _finite_or_nan(curve.high), color=line.get_color(), alpha=0.15
                )
            axis.set_xscale("log")
            total = max(c.trials for c in self.curves)
            axis.set_xticks([k for k in (*TABLE_K, total) if k <= total])
            axis.xaxis.set_major_formatter(ScalarFormatter())
            axis.xaxis.set_minor_formatter(NullFormatter())
            axis.set_title(f"{dataset}: expected best FID after k settings tried")
            axis.set_xlabel("settings tried (k, random order)")
            axis.set_ylabel("expected best FID (lower is better)")
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
        figure.tight_layout()
        self.figure.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(self.figure, dpi=110)
        plt.close(figure)

    def caption(self) -> str:
        return (
            f"Each candidate's {self.summary.planned_trials} search trials ({self.summary.sampler} sampler, "
            f"{self.summary.pruner} pruner; space {self.summary.space}). The curve is the exact expected minimum of "
            "k of its trial FIDs drawn without replacement (order statistics); the band the 95% percentile bootstrap "
            "over trials. A pruned trial counts as the last FID it reported, a trial without a finite FID as +inf "
            "(a curve point is then +inf, not drawn, when every k-draw may hold only such trials)."
        )

    def budget_grid(self) -> Grid:
        total = max((c.trials for c in self.curves), default=0)
        shown = [k for k in TABLE_K if k < total] + ([total] if total else [])
        grid = Grid(
            title="Expected best FID after k settings tried [95% bootstrap over trials]",
            headers=["candidate", "data set", "trials", "pruned", "no FID", *[f"k={k}" for k in shown]],
            left=2,
        )
        for curve in self.curves:
            cells = [_interval(curve, k - 1) if k <= curve.trials else "-" for k in shown]
            row = [curve.candidate, self.summary.datasets[curve.candidate], str(curve.trials), str(curve.pruned)]
            grid.rows.append([*row, str(curve.diverged), *cells])
            grid.styles.append(None)
        return grid

    def verdict_grid(self) -> Grid:
        grid = Grid(
            title="Retrained bests over seeds, each against its data set's reference",
            headers=[
                "candidate",
                "data set",
                "search best FID",
                "seeds",
                "FID mean",
                "FID sd",
                "Δ FID",
                "p adj.",
                "verdict",
            ],
            left=2,
        )
        for table in self.tables:
            if table.extractor is None:
                continue
            for row in table.settings:
                best = min(
                    (
                        t.fid
                        for t in self.summary.trials.get(row.name, [])
                        if t.state == "complete" and t.fid is not None
                    ),
                    default=None,
                )
                reference = row.name == table.reference
                verdict = "reference" if reference else (row.verdict or row.note or "-")
                grid.rows.append(
                    [
                        row.name,
                        self.summary.datasets.get(row.name, "-"),
                        format_value(best, ".2f"),
                        str(row.fid.n),
                        format_value(row.fid.mean, ".2f"),
                        format_value(row.fid.sd, ".2f"),
                        "ref" if reference else format_value(row.diff, "+.2f"),
                        format_p(row.p_adjusted),
                        verdict,
                    ]
                )
                grid.styles.append("reference" if reference else None)
        family = next((t.family_text for t in self.tables if t.family_text), "")
        grid.caption = (
            "search best FID: the lowest FID among a candidate's search trials (an optimistic pick: the retrained "
            f"seeds are fresh draws); Δ FID and p adj.: as in Results (Holm over {family or 'the report'})."
        )
        return grid

    def cost_grid(self) -> Grid:
        grid = Grid(title="Cost of each candidate (wall seconds)", headers=["candidate", "search", "retrain", "total"])
        retrain: dict[str, float] = {}
        for record in self.records:
            seconds = run_seconds(record.row)
            retrain[record.variant] = retrain.get(record.variant, 0.0) + (seconds or 0.0)
        for candidate in self.summary.trials:
            search = self.summary.search_seconds(candidate)
            again = retrain.get(candidate, 0.0)
            grid.rows.append([candidate, f"{search:,.0f}", f"{again:,.0f}", f"{search + again:,.0f}"])
            grid.styles.append(None)
        grid.caption = (
            "search: the wall time of the candidate's search trials (training and evaluation); retrain: the training "
            "seconds of its retrained runs (a population member's share of the population's)."
        )
        return grid

    def conclusion(self) -> str:
        """This study's answer to Lucic et al.'s question, in one line: direction only."""
        better: dict[str, set[str]] = {}
        worse: dict[str, set[str]] = {}
        datasets = set()
        undecided = 0
        for table in self.tables:
            if table.extractor is None or table.reference is None:
                continue
            dataset = self.summary.datasets.get(table.reference, "?")
            datasets.add(dataset)
            for row in table.settings:
                undecided += row.verdict in ("too few seeds", "undecided")
                if row.name != table.reference and row.significant and row.diff is not None:
                    side = better if row.diff < 0 else worse
                    side.setdefault(dataset, set()).add(_loss_of(row))
        if not datasets:
            return f"{LUCIC} This study has no tested comparison, so it cannot say."
        everywhere = set.intersection(*(better.get(d, set()) for d in datasets))
        if everywhere:
            return (
                f"{LUCIC} This study disagrees: {', '.join(sorted(everywhere))} beat the reference on every data set."
            )
        found = "; ".join(f"{d}: {', '.join(sorted(better[d]))}" for d in sorted(better))
        worse_text = "; ".join(f"{d}: {', '.join(sorted(worse[d]))}" for d in sorted(worse))
        text = f"{LUCIC} This study agrees in direction: no candidate beats the reference on every data set"
        text += f" (better on one only: {found})" if found else " (none is better anywhere)"
        text += f"; worse than it: {worse_text}" if worse_text else ""
        if undecided:
            text += (
                f"; {undecided} comparison{'s' if undecided != 1 else ''} had too few seeds to rule out a difference"
            )
        return text + "."

    def markdown(self, relative: Callable[[Path], str]) -> list[str]:
        return [
            "## Are the candidates created equal?",
            "",
            f"![Expected best FID]({relative(self.figure)})",
            "",
            self.caption(),
            "",
            self.budget_grid().markdown(),
            "",
            self.verdict_grid().markdown(),
            "",
            self.cost_grid().markdown(),
            "",
            f"**Compared with Lucic et al.:** {self.conclusion()}",
            "",
        ]

    def html(self, relative: Callable[[Path], str]) -> list[str]:
        return [
            "<h2>Are the candidates created equal?</h2>",
            f'<figure><img src="{html.escape(relative(self.figure))}" alt="Expected best FID">'
            f"<figcaption>{html.escape(self.caption())}</figcaption></figure>",
            self.budget_grid().html(),
            self.verdict_grid().html(),
            self.cost_grid().html(),
            f'<p class="answer"><b>Compared with Lucic et al.:</b> {html.escape(self.conclusion())}</p>',
        ]


def _loss_of(row: Any) -> str:
    """A setting's loss, for the conclusion (its name when the rows do not say)."""
    for run in row.run_rows:
        if run.get("loss"):
            return str(run["loss"])
    return str(row.name)
