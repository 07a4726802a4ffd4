"""A study's report: tables over seeds, tests, figures, in Markdown and HTML.

:func:`write_report` turns a list of :class:`~gbench.results.records.RunRecord`
(from a local results folder or from a sweep's Optuna storage) into::

    OUT_DIR/report.md      the report, images linked by relative path
    OUT_DIR/report.html    the same, one self-contained page (inline CSS)
    OUT_DIR/summary.csv    the per-setting statistics, for spreadsheets
    OUT_DIR/study.json     title, question and answer, for an index of studies (gbench.report.index)
    OUT_DIR/figures/*.png  the figures

:func:`report_tables` gives the same study tables as rich tables for the
terminal. Every table states the feature extractor its FIDs come from and
what its p-values compare (:mod:`gbench.analysis.stats`). The tables are built in
:mod:`gbench.report.grids`, the figures drawn by :mod:`gbench.report.figures`;
this module puts them on the page.

A suite (``gbench.studies.sweep.suite.Suite``) is optional; see :mod:`gbench.report.grids`
for the attributes read.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gbench.analysis.claims import ClaimResult, check_claims
from gbench.analysis.comparisons import StudyTable
from gbench.analysis.estimate import full_study_estimate
from gbench.analysis.family import adjust_report
from gbench.analysis.grouping import setting_names
from gbench.analysis.readiness import not_trained_text
from gbench.errors import GbenchError
from gbench.report.answer import answer, answer_by_table, asks_equilibrium, equilibrium_brief
from gbench.report.figures import FIGURES, ReportFigures, check_figures
from gbench.report.grids import (
    claims_grid,
    grid_axes,
    runs_grid,
    split_study_grid,
    study_grid,
    suite_attr,
    tables_for,
)
from gbench.report.headline import headline_section
from gbench.report.index import STUDY_FILE, TableAnswer, study_entry
from gbench.report.notes import glossary, hardware_text, note_html, trained_text
from gbench.report.search import SearchSection, full_search_estimate, search_tables, within_datasets
from gbench.report.seeds import apply_sequential, seeds_section
from gbench.report.walks import wants_walks, with_walk_measures
from gbench.results import store
from gbench.results.flags import finite_number

if TYPE_CHECKING:
    from gbench.analysis.search_budget import SearchSummary
    from gbench.plugins.registry import Registry

__all__ = ["FIGURES", "check_figures", "report_tables", "tables_for", "write_report"]


def _title(records: Sequence[Any], suite: Any) -> str:
    if suite_attr(suite, "title"):
        return str(suite.title)
    name = suite_attr(suite, "name") or next((r.row.get("suite") for r in records if r.row.get("suite")), None)
    return f"gbench report: {name}" if name else "gbench report"


def _table_name(table: StudyTable, records: Sequence[Any]) -> str:
    """What a table's answer is headed by: its runs' data set(s), else its features."""
    datasets = sorted({str(r.row.get("dataset")) for r in records if r.row.get("dataset")})
    return ", ".join(datasets) if datasets else str(table.extractor)


def analysed(records: Sequence[Any], suite: Any = None) -> tuple[list[StudyTable], list[ClaimResult], bool]:
    """The study tables and checked claims with one Holm family over both (gbench.analysis.family), and under
    ``--seeds auto`` the verdicts from the sequential test; the last value says whether they are."""
    # a search suite, or any suite over several data sets, compares its settings within each data set
    tables = search_tables(records, suite) if within_datasets(suite) else tables_for(records, suite)
    claim_results = check_claims(records, suite_attr(suite, "claims") or [])
    adjust_report(tables, claim_results)
    return tables, claim_results, apply_sequential(tables, records, suite)


def report_tables(records: Sequence[Any], suite: Any = None) -> list:
    """The report's study tables as rich tables (one per feature extractor), for runs without walk measures (S4's
    claims on walks are checked by :func:`write_report`, whose ``show`` prints the tables it wrote)."""
    records = _check(records)
    return _rich_tables(records, suite, analysed(records, suite)[0])


def _rich_tables(records: Sequence[Any], suite: Any, studied: Sequence[StudyTable]) -> list:
    tables = [study_grid(table).rich() for table in studied]
    seeds = seeds_section(records, suite)  # --seeds auto: how many seeds each setting got, and why
    if seeds is not None:
        tables.append(seeds[1].rich() if seeds[1] is not None else seeds[0])
    return tables


def _check(records: Sequence[Any]) -> list[Any]:
    records = list(records)
    if not records:
        raise GbenchError(
            "no runs to report on; run a suite first (gbench sweep SUITE.toml) or point at a folder that holds "
            "finished runs"
        )
    return records


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; } h3 { font-size: 1.05em; }
.answer { background: #f3f8ee; border-left: 4px solid #5a8f3a; padding: 0.5em 0.8em; }
.question { font-size: 1.1em; background: #f4f6fa; border-left: 4px solid #4a6fa5; padding: 0.5em 0.8em; }
.meta, .caption, .note { color: #555; font-size: 0.9em; }
.scroll { overflow-x: auto; } summary { cursor: pointer; color: #4a6fa5; }
table { border-collapse: collapse; margin: 0.8em 0 0.3em; font-size: 0.85em; }
caption { caption-side: top; text-align: left; font-weight: bold; padding-bottom: 0.3em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; } th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.reference td { font-weight: bold; background: #f3f8ee; } tr.diverged td { color: #b00; } tr.collapsed td
{ color: #a60; }
dt { font-weight: bold; } dd { margin: 0 0 0.5em 1.5em; color: #333; font-size: 0.9em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; } figcaption
{ color: #555; font-size: 0.9em; }
"""


def write_report(
    records: Sequence[Any],
    out_dir: str | os.PathLike,
    suite: Any = None,
    registry: Registry | None = None,
    search: SearchSummary | None = None,
    show: Callable[[Any], object] | None = None,
) -> Path:
    """Write report.md, report.html, summary.csv and figures/*.png into ``out_dir``; return report.html's path.

    :param registry: the plugins' registry (``load_plugins().registry``, loaded
        once by the caller): class histograms read the dataset's labels and
        class names through it, interpolations rebuild generators with it.
        Without it those two figures are drawn without labels or skipped,
        with the reason in the report.
    :param search: a search suite's searches (gbench.studies.sweep.search): their section of the report.
    :param show: given, it receives the report's study tables as rich tables (a terminal's print), computed once
        with the report's own claims, so that a terminal and the report cannot give one pair two verdicts.
    """
    records = _check(records)
    check_figures(suite_attr(suite, "figures"))
    out_dir = store.ensure_writable(out_dir)
    walked: list[str] = []  # S4: runs' generators walked along latent lines, measured (gbench.report.walks)
    if wants_walks(suite_attr(suite, "claims") or []):
        records, walked = (
            with_walk_measures(records, registry)
            if registry is not None
            else (
                records,
                ["walk measures not taken: rebuilding generators needs the plugins' registry (gbench report)"],
            )
        )
    tables, claim_results, sequential = analysed(records, suite)
    if show is not None:
        for rich in _rich_tables(records, suite, tables):
            show(rich)
    figures = ReportFigures(records, tables, suite, out_dir / "figures", registry)
    drawn = figures.draw()
    searched = SearchSection(search, records, tables, out_dir / "figures") if search is not None else None

    title = _title(records, suite)
    question = suite_attr(suite, "question")
    settings = len(set(setting_names(records)))
    seeds = sorted({r.seed for r in records})
    statuses: dict[str, int] = {}
    for record in records:
        statuses[str(record.row.get("status") or "unknown")] = (
            statuses.get(str(record.row.get("status") or "unknown"), 0) + 1
        )
    extractors = [t.extractor for t in tables if t.extractor]
    meta = (
        f"{len(records)} runs of {settings} setting{'s' if settings != 1 else ''}, seeds {', '.join(map(str, seeds))}; "
        f"status: {', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))}; "
        f"FID features: {', '.join(extractors) if extractors else 'none (no evaluation)'}. "
        f"Written {_dt.datetime.now().isoformat(timespec='seconds')}."
    )
    if suite_attr(suite, "name"):
        meta = f"Suite {suite.name}: " + meta
    grids = [half for table in tables for half in split_study_grid(study_grid(table))]
    appendix = runs_grid(records)
    auto_seeds = seeds_section(records, suite)  # None unless the sweep used --seeds auto
    searching = suite_attr(suite, "search") is not None  # a search suite's full study has its trials too
    estimate = full_study_estimate(records, suite) if not searching else None  # a reduced suite: the full one's cost
    checked = claims_grid(claim_results) if claim_results else None
    main_table = next((t for t in tables if t.extractor is not None), None)
    budget = suite_attr(suite, "budget")
    refusal = lambda runs: not_trained_text(runs, finite_number(budget), suite_attr(suite, "full"))
    fids = {row.name: row.fid for row in main_table.settings} if main_table is not None else {}
    found, headline = headline_section(records, claim_results, suite, fids)  # a study about another metric than FID
    lead = [h.sentence() for h in found]
    fid_tables = [t for t in tables if t.extractor is not None]
    if len(fid_tables) > 1 and not lead:  # several data sets or extractors: each answers, and is refused, apart
        table_records = [[r for r in records if r.row.get("fid_extractor") == t.extractor] for t in fid_tables]
        refusals = [refusal(mine) for mine in table_records]
        names = [_table_name(table, mine) for table, mine in zip(fid_tables, table_records)]
        answer_text = answer_by_table(fid_tables, refusals, names, claim_results, sequential)
        answered = [TableAnswer(n, t.extractor, r is None) for n, t, r in zip(names, fid_tables, refusals)]
    else:
        refused = refusal(records)
        answer_text = answer(main_table, claim_results, grid_axes(records, suite), sequential, refused, lead)
        # the index's line leads with the study's own metric where it asks about another than FID (S3, S4, S5, S7)
        briefs = [h.brief() for h in found]
        if not briefs and asks_equilibrium(claim_results):
            briefs = [equilibrium_brief(main_table)]
        extractor = main_table.extractor if main_table is not None else None
        answered = [TableAnswer(None, extractor, refused is None, "; ".join(b for b in briefs if b))]
    grids = ([headline] if headline is not None else []) + grids
    notes = [trained_text(records, suite), hardware_text(records), *walked]
    if estimate is not None:
        notes.insert(0, estimate.text())
    elif searching and (searched_estimate := full_search_estimate(records, suite)):
        notes.insert(0, searched_estimate)
    terms = glossary(tables, sequential)
    store.write_json(
        out_dir / STUDY_FILE,
        study_entry(title, str(question or ""), answer_text, records, claim_results, budget, answered),
    )
    _write_summary(out_dir / "summary.csv", tables)

    relative = lambda path: path.relative_to(out_dir).as_posix()
    # Markdown
    md = [f"# {title}", ""]
    if question:
        md += [f"> **Question:** {question}", ""]
    md += [meta, ""]
    md += [line for note in notes for line in (f"> {note}", ">")][:-1] + [""]
    md += [f"**Answer:** {answer_text}", "", "## Results", ""]
    for grid in grids:
        md += [grid.markdown(), ""]
    if searched is not None:
        md += searched.markdown(relative)
    if checked is not None:
        md += ["## Claims checked", "", checked.markdown(), ""]
    if auto_seeds is not None:
        md += ["## Seeds", "", auto_seeds[1].markdown() if auto_seeds[1] is not None else auto_seeds[0], ""]
    if drawn or figures.skipped:
        md += ["## Figures", ""]
    for figure in drawn:
        md += [f"### {figure.title}", "", f"![{figure.title}]({relative(figure.path)})", "", figure.caption, ""]
    for skipped in figures.skipped:
        md += [f"- Not drawn: {skipped}"]
    md += ["", "## Glossary", "", *[f"- **{term}**: {text}" for term, text in terms]]
    md += ["", "## All runs", "", appendix.markdown(), ""]
    store.atomic_write_text(out_dir / "report.md", "\n".join(md))

    # HTML
    body = [f"<h1>{html.escape(title)}</h1>"]
    if question:
        body.append(f'<p class="question"><b>Question:</b> {html.escape(str(question))}</p>')
    body += [
        f'<p class="meta">{html.escape(meta)}</p>',
        *[f'<p class="note">{note_html(note)}</p>' for note in notes],
        f'<p class="answer"><b>Answer:</b> {html.escape(answer_text)}</p>',
        "<h2>Results</h2>",
        *[grid.html() for grid in grids],
    ]
    if searched is not None:
        body += searched.html(relative)
    if checked is not None:
        body += ["<h2>Claims checked</h2>", checked.html()]
    if auto_seeds is not None:
        body += [
            "<h2>Seeds</h2>",
            auto_seeds[1].html() if auto_seeds[1] is not None else f'<p class="note">{html.escape(auto_seeds[0])}</p>',
        ]
    if drawn or figures.skipped:
        body.append("<h2>Figures</h2>")
    for figure in drawn:
        body.append(
            f"<figure><h3>{html.escape(figure.title)}</h3>"
            f'<img src="{html.escape(relative(figure.path))}" alt="{html.escape(figure.title)}">'
            f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
        )
    if figures.skipped:
        body.append(
            "<ul>" + "".join(f'<li class="note">Not drawn: {html.escape(s)}</li>' for s in figures.skipped) + "</ul>"
        )
    body += [
        "<h2>Glossary</h2>",
        "<dl>" + "".join(f"<dt>{html.escape(term)}</dt><dd>{html.escape(text)}</dd>" for term, text in terms) + "</dl>",
    ]
    body += [
        "<h2>All runs</h2>",
        f"<details><summary>{len(records)} runs, one row each</summary>",
        appendix.html(),
        "</details>",
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    store.atomic_write_text(out_dir / "report.html", page)
    return out_dir / "report.html"


def _write_summary(path: Path, tables: list[StudyTable]) -> None:
    rows = []
    for table in tables:
        for row in table.settings:
            rows.append(
                {
                    "setting": row.name,
                    "runs": row.runs,
                    "seeds": " ".join(map(str, row.seeds)),
                    "fid_extractor": table.extractor,
                    "fid_samples": table.fid_samples,
                    "fid_n": row.fid.n,
                    "fid_mean": row.fid.mean,
                    "fid_sd": row.fid.sd,
                    "fid_ci_low": row.fid.ci_low,
                    "fid_ci_high": row.fid.ci_high,
                    "reference": table.reference,
                    "reference_kind": table.reference_kind,
                    "fid_diff": row.diff,
                    "welch_t": row.t,
                    "p": row.p,
                    "test": row.test or None,
                    "p_adjusted": row.p_adjusted,
                    "family": row.family or None,
                    "correction": table.correction if table.tests else None,
                    "significant": row.significant if row.p_adjusted is not None else None,
                    "fid_diff_welch_low": _end(row.diff_welch, 0),
                    "fid_diff_welch_high": _end(row.diff_welch, 1),
                    "fid_diff_bootstrap_low": _end(row.diff_bootstrap, 0),
                    "fid_diff_bootstrap_high": _end(row.diff_bootstrap, 1),
                    "p_better": row.p_better,
                    "p_better_low": _end(row.p_better_interval, 0),
                    "p_better_high": _end(row.p_better_interval, 1),
                    "detectable_difference": row.detectable,
                    "seeds_needed": row.seeds_needed,
                    "relevant_difference": row.relevant,
                    "verdict": row.verdict,
                    "note": row.note,
                    **{f"mean_{k}": v for k, v in row.means.items()},
                    "status": row.status_text(),
                    "discriminator_wins": row.discriminator_wins,
                }
            )
    store.write_csv(path, rows, columns=list(rows[0]) if rows else ["setting"])


def _end(bounds: tuple[float, float] | None, index: int) -> float | None:
    return bounds[index] if bounds is not None else None
