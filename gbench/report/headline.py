"""A study's headline: the metric its question is about, which leads the report's ranking, answer and tables.

Most studies ask about FID, and the report leads with it. A study whose
question is another quantity (S7: modes covered of Stacked MNIST's 1,000 and
the KL divergence from uniform; S4: foreign frames and smoothness along a
latent line) marks its claims on it with ``headline = true``: their metrics,
in the order the claims name them, become the headline. The report then opens
its results with a table of each setting's mean over seeds of each headline
metric (ranked by the first, in its better direction), FID second, and its
answer with the same ranking and the claims' verdicts on those metrics; the
verdicts come from the claims' tests, in the report's one Holm family.

A claim may carry the figures its source published (``published = [SETTING'S,
OTHER'S]``): they stand beside the report's own, labelled as the source's at
the source's budget, which is not the report's when the suite runs a fraction
of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gbench.analysis.claimtypes import ClaimResult, claim_column, metric_value
from gbench.analysis.grouping import setting_names
from gbench.analysis.stats import Summary, finite, summarize
from gbench.report.tabular import Grid, format_value


def headline_metrics(results: Sequence[ClaimResult]) -> list[str]:
    """The metrics of the claims marked ``headline = true``, in the order the suite names them."""
    return list(dict.fromkeys(r.claim.metric for r in results if r.claim.headline))


def direction_words(metric: str) -> str:
    direction = claim_column(metric).direction
    return f"{direction} is better" if direction else "no better direction"


def mean_spec(metric: str) -> str:
    """How a mean over seeds of ``metric`` is written (three decimals where its column has no number format)."""
    column = claim_column(metric)
    spec = column.mean_spec or column.spec
    return spec if spec.endswith("f") else ".3f"


def source_name(source: str) -> str:
    """ "PacGAN Table 3: 1000.0 modes against 99.0" -> "PacGAN Table 3": the source, without what it says."""
    return source.split(":")[0].strip() or "the claim's source"


#: The studies index names at most this many settings of a headline metric.
BRIEF_SHOWN = 3


@dataclass
class Headline:
    """Each setting's summary over seeds of one headline metric, ranked, with the figures its sources published."""

    metric: str
    ranked: list[tuple[str, Summary]]  # (setting, summary), best mean first; settings without a value last
    published: dict[str, tuple[float, str]]  # setting -> (figure, source)
    verdicts: list[ClaimResult]  # the claims on this metric

    @property
    def header(self) -> str:
        return claim_column(self.metric).header or self.metric

    def valued(self) -> list[str]:
        """ "name mean ± sd" for each setting with a value, best first (as the headline table writes its cells)."""
        return [f"{name} {_mean_sd(s, self.metric)}" for name, s in self.ranked if s.mean is not None]

    def sentence(self) -> str:
        shown = "; ".join(self.valued())
        text = f"{self.header} ({direction_words(self.metric)}), mean over seeds, best first: {shown}."
        if self.published:
            sources = ", ".join(dict.fromkeys(source for _, source in self.published.values()))
            figures = "; ".join(f"{name} {figure:g}" for name, (figure, _) in self.published.items())
            text += f" Published ({sources}, the paper's own runs at its budget): {figures}."
        if self.verdicts:
            text += " Claims: " + "; ".join(f"{r.claim.text}: {r.verdict}" for r in self.verdicts) + "."
        return text

    def brief(self) -> str:
        """The studies index's line for this metric: its best settings, e.g. "foreign interp. (lower better), best
        first: latent-128 0.030 ± 0.027, baseline 0.125 ± 0.094"."""
        valued = self.valued()
        more = f", {len(valued) - BRIEF_SHOWN} more" if len(valued) > BRIEF_SHOWN else ""
        direction = claim_column(self.metric).direction or "no"
        return f"{self.header} ({direction} better), best first: {', '.join(valued[:BRIEF_SHOWN])}{more}"


def headlines(records: Sequence[Any], results: Sequence[ClaimResult], order: Sequence[str] = ()) -> list[Headline]:
    """One :class:`Headline` per headline metric, from the runs' rows (with S4's walk measures when taken)."""
    names = setting_names(records)
    settings = [n for n in order if n in names] + [n for n in dict.fromkeys(names) if n not in order]
    found = []
    for metric in headline_metrics(results):
        summaries = [
            (name, summarize(finite(metric_value(r.row, metric) for r, n in zip(records, names) if n == name)))
            for name in settings
        ]
        sign = -1.0 if claim_column(metric).direction == "higher" else 1.0
        ranked = sorted(summaries, key=lambda item: (item[1].mean is None, sign * (item[1].mean or 0.0)))
        published: dict[str, tuple[float, str]] = {}
        on_metric = [r for r in results if r.claim.metric == metric]
        for result in on_metric:
            claim = result.claim
            for setting, figure in zip((claim.setting, str(claim.other)), claim.published):
                published.setdefault(setting, (figure, source_name(claim.source)))
        found.append(Headline(metric, ranked, published, on_metric))
    return found


def headline_grid(found: Sequence[Headline], fid: dict[str, Summary], budget: str) -> Grid:
    """The table that opens a headline study's results: a row per setting, ranked by the first headline metric."""
    first = found[0]
    headers = ["rank", "setting", "n"]
    for headline in found:
        headers.append(f"{headline.header} ({claim_column(headline.metric).direction or '-'} better)")
        if headline.published:
            headers.append(f"{headline.header}, published")
    headers.append("FID")
    grid = Grid(title=f"Headline: {first.header}", headers=headers, left=2)
    by_metric = [dict(h.ranked) for h in found]
    for rank, (name, summary) in enumerate(first.ranked, 1):
        row = [str(rank) if summary.mean is not None else "-", name, str(summary.n)]
        for headline, summaries in zip(found, by_metric):
            row.append(_mean_sd(summaries[name], headline.metric))
            if headline.published:
                figure = headline.published.get(name)
                row.append(format(figure[0], "g") if figure else "-")
        row.append(_mean_sd(fid.get(name), "fid"))
        grid.rows.append(row)
        grid.styles.append(None)
    sources = ", ".join(dict.fromkeys(s for h in found for _, s in h.published.values()))
    grid.caption = (
        f"Each setting's mean ± sd over seeds of the study's headline metrics, ranked by {first.header} "
        f"({direction_words(first.metric)}); FID second. Measured by these runs at {budget}."
        + (
            f" Published: the figures {sources} reports from its own runs at its own budget, not these runs."
            if sources
            else ""
        )
        + " Whether two settings differ beyond seed noise: the claims checked below (one Holm family with the FID "
        "table)."
    )
    return grid


def _mean_sd(summary: Summary | None, metric: str) -> str:
    if summary is None or summary.mean is None:
        return "-"
    spec = mean_spec(metric)
    sd = f" ± {format_value(summary.sd, spec)}" if summary.sd is not None else ""
    return f"{format_value(summary.mean, spec)}{sd}"


def headline_section(
    records: Sequence[Any], results: Sequence[ClaimResult], suite: Any, fid: dict[str, Summary]
) -> tuple[list[Headline], Grid | None]:
    """What a headline study's report leads with: its headlines (the answer's opening sentences, the index's line)
    and the first results table; ([], None) for a study about FID."""
    order = [str(getattr(v, "name", v)) for v in (getattr(suite, "variants", None) or [])]
    found = headlines(records, results, order)
    if not found:
        return [], None
    budget = getattr(suite, "budget", None)
    ours = f"{budget:g} of the full study's budget" if budget else "the full study's budget"
    return found, headline_grid(found, fid, ours)
