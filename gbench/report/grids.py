"""The report's tables (:class:`gbench.report.tabular.Grid`), built from :mod:`gbench.analysis.comparisons`'
study tables (one row per setting), from the checked claims and from the runs themselves (one row per run).

Also what a suite asks of the report (its baseline, variant order and grid axes), since
the tables and the figures both read it. A suite is any object; only these attributes are
read, each may be missing: ``name``, ``title``, ``question``, ``baseline``, ``variants``
(objects with ``name``), ``grid_axes``, ``figures``, ``seeds``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gbench.analysis.claims import ClaimResult, claims_caption
from gbench.analysis.claimtypes import claim_column
from gbench.analysis.comparisons import SettingStats, StudyTable, study_tables
from gbench.analysis.grouping import extractor_of, is_setting_column, setting_names
from gbench.analysis.pairing import PAIRED
from gbench.analysis.stats import summarize
from gbench.report.tabular import Grid, format_p, format_value
from gbench.results import schema
from gbench.results.flags import row_discriminator_wins, run_seconds

#: Headers that name what a column counts where the schema's short header would not (the report's glossary defines
#: them).
HEADERS = {"classes_covered": "classes covered", "population_seconds": "population s"}
TIME_TEXT = (
    "train s: each run's own training wall time, evaluation excluded (a population member's share: the "
    "population's wall time / its members)."
)
POPULATION_TEXT = "population s: the wall time of the population the run trained in, shared by its members."


# ---------------------------------------------------------------------------
# What the suite asks for
# ---------------------------------------------------------------------------


def suite_attr(suite: Any, name: str, default: Any = None) -> Any:
    return getattr(suite, name, default) if suite is not None else default


def _variant_order(suite: Any) -> list[str]:
    return [str(getattr(v, "name", v)) for v in (suite_attr(suite, "variants") or [])]


def _baseline(suite: Any, names: Sequence[str]) -> str | None:
    """The suite's baseline; without a suite, a setting called "baseline" if there is one."""
    if suite is not None:
        return suite_attr(suite, "baseline")
    return "baseline" if "baseline" in names else None


def grid_axes(records: Sequence[Any], suite: Any = None) -> list[str]:
    """The grid's axes: the suite's ``grid_axes``; without a suite, the hyperparameters
    that vary when exactly two do and every combination of their values was run."""
    axes = suite_attr(suite, "grid_axes")
    if axes:
        return list(axes)
    if suite is not None or not records:
        return []
    keys = [k for k in records[0].row if is_setting_column(k)]
    varying = [k for k in keys if len({str(r.row.get(k)) for r in records}) > 1]
    if len(varying) != 2:
        return []
    combos = {(str(r.row.get(varying[0])), str(r.row.get(varying[1]))) for r in records}
    sizes = [len({str(r.row.get(k)) for r in records}) for k in varying]
    return varying if len(combos) == sizes[0] * sizes[1] else []


def tables_for(records: Sequence[Any], suite: Any = None) -> list[StudyTable]:
    names = setting_names(records)
    return study_tables(records, baseline=_baseline(suite, names), order=_variant_order(suite))


# ---------------------------------------------------------------------------
# Study tables
# ---------------------------------------------------------------------------


def _score_note(table: StudyTable) -> str:
    scores = {row.score for row in table.settings}
    if scores == {"critic"}:
        return "D(x), D(G(z)): mean critic outputs (not probabilities)."
    if "critic" in scores:
        return "D(x), D(G(z)): probabilities for BCE losses, mean critic outputs for the others."
    return (
        "D(x), D(G(z)): mean discriminator probability on real and generated batches at the end of training "
        "(equilibrium 0.5)."
    )


def study_grid(table: StudyTable, records_title: str = "") -> Grid:
    """A study table as a :class:`Grid`: one row per setting."""
    has = lambda key: any(row.means.get(key) is not None for row in table.settings)
    # means over seeds: the schema's headers, with the digits a mean needs ("classes" averages to a fraction)
    always = (("d_real", ".3f"), ("d_fake", ".3f"), ("d_loss", ".3f"), ("g_loss", ".3f"))
    optional = [
        (c.name, c.mean_spec or c.spec) for c in schema.scored_metrics() if c.name != "fid"
    ]  # the registered metrics' (FID has its own)
    shared_loop = any(row.means.get("train_seconds") != row.means.get("population_seconds") for row in table.settings)
    timing = (
        ("train_seconds", ".1f"),
        *((("population_seconds", ".1f"),) if shared_loop else ()),
        ("images_per_second", ",.0f"),
    )
    tail = [
        (key, HEADERS.get(key) or schema.column(key).header or key, spec)
        for key, spec in (*always, *[o for o in optional if has(o[0])], *timing)
    ]
    if table.extractor is not None:
        comparison = [
            "Δ FID [Welch 95%]",
            "boot 95%",
            "P(better) [95%]",
            "p",
            "p adj.",
            "sig.",
            "MDD",
            "seeds",
            "verdict",
        ]
        headers = ["setting", "n", "FID mean ± sd", "95% CI", *comparison, *[h for _, h, _ in tail], "status"]
        title = f"FID on {table.fid_label}, over seeds (lower is better)"
    else:
        headers = ["setting", "runs", *[h for _, h, _ in tail], "status"]
        title = "Runs without FID (no feature extractor: evaluation off or runs diverged)"
    if records_title:
        title = f"{records_title}: {title}"
    grid = Grid(title=title, headers=headers)
    for row in table.settings:
        means = [format_value(row.means.get(key), spec) for key, _, spec in tail]
        if table.extractor is not None:
            fid = row.fid
            n = str(fid.n) if fid.n == row.runs else f"{fid.n} of {row.runs}"
            spread = f"{fid.mean:.2f} ± {fid.sd:.2f}" if fid.sd is not None else format_value(fid.mean, ".2f")
            ci = f"[{fid.ci_low:.2f}, {fid.ci_high:.2f}]" if fid.ci_low is not None else "-"
            p = format_p(row.p) if row.p is not None else (row.note if not row.reference else "-")
            p += " (paired)" if row.p is not None and row.test == PAIRED else ""
            cells = [row.name, n, spread, ci, *_comparison_cells(row, p), *means, row.status_text()]
        else:
            cells = [row.name, str(row.runs), *means, row.status_text()]
        grid.rows.append(cells)
        style = (
            "reference"
            if row.reference
            else "diverged"
            if row.status.get("diverged") == row.runs
            else "collapsed"
            if row.status.get("collapsed")
            else None
        )
        grid.styles.append(style)
    caption = [table.comparison_text()] if table.extractor is not None else []
    caption += [
        "FID: mean ± sample sd (ddof=1) over seeds; 95% CI: Student t." if table.extractor is not None else "",
        _score_note(table),
        f"Other columns: mean over runs; {TIME_TEXT}" + (f" {POPULATION_TEXT}" if shared_loop else ""),
        *table.notes,
    ]
    grid.caption = " ".join(c for c in caption if c)
    return grid


def _interval(bounds: tuple[float, float] | None, spec: str = ".2f") -> str:
    return f"[{format_value(bounds[0], spec)}, {format_value(bounds[1], spec)}]" if bounds is not None else "-"


def _comparison_cells(row: SettingStats, p: str) -> list[str]:
    """Δ FID with Welch's interval, its bootstrap interval, P(better), p, p adj., sig., MDD, seeds, verdict."""
    if row.reference:
        return ["ref", "-", "-", "-", "-", "", "-", "-", "reference"]
    diff = format_value(row.diff, "+.2f")
    if row.diff_welch is not None:
        diff += f" {_interval(row.diff_welch, '+.2f')}"
    better = (
        f"{format_value(row.p_better, '.2f')} {_interval(row.p_better_interval)}" if row.p_better is not None else "-"
    )
    seeds = (
        str(row.seeds_needed) if row.seeds_needed is not None else ("-" if row.p is None or not row.diff else ">1000")
    )
    return [
        diff,
        _interval(row.diff_bootstrap, "+.2f"),
        better,
        p,
        format_p(row.p_adjusted),
        "*" if row.significant else "",
        format_value(row.detectable, ".2f"),
        seeds,
        row.verdict,
    ]


def runs_grid(records: Sequence[Any]) -> Grid:
    """Every run, one row each (the report's appendix)."""
    names = setting_names(records)
    measured = (
        "fid",
        "d_real",
        "d_fake",
        "d_loss",
        "g_loss",
        "train_seconds",
    )  # headers and digits from gbench.results.schema
    headers = ["setting", "seed", "status", *[schema.column(k).header for k in measured], "extractor", "run"]
    grid = Grid(title="All runs", headers=headers, left=1, caption=f"{TIME_TEXT} Discriminator wins: see the glossary.")
    for name, record in sorted(zip(names, records), key=lambda pair: (pair[0], pair[1].seed)):
        row = record.row
        status = str(row.get("status") or "-") + (", discriminator wins" if row_discriminator_wins(row) else "")
        cells = [name, str(record.seed), status]
        values = {
            **row,
            "train_seconds": run_seconds(row),
        }  # rows from before population_seconds held the population's time
        cells += [format_value(finite_or_none(values.get(k)), schema.column(k).spec) for k in measured]
        cells += [str(extractor_of(record) or "-"), str(row.get("run_id") or "-")]
        grid.rows.append(cells)
        grid.styles.append(str(row.get("status")) if row.get("status") in ("diverged", "collapsed") else None)
    return grid


def finite_or_none(value: Any) -> float | None:
    return (
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else None
    )


def _spread(values: Sequence[float], spec: str) -> str:
    summary = summarize(values)
    if summary.mean is None:
        return "-"
    if summary.sd is None:
        return f"{format(summary.mean, spec)} (n 1)"
    return f"{format(summary.mean, spec)} ± {format(summary.sd, spec)} (n {summary.n})"


def claims_grid(results: Sequence[ClaimResult]) -> Grid:
    """One row per claim: what it says, what was measured, the difference with its interval, adjusted p, verdict."""
    grid = Grid(
        title="", headers=["claim", "source", "tested", "measured", "difference [95%]", "p adj.", "verdict"], left=4
    )
    for result in results:
        spec = claim_column(result.claim.metric).spec
        unitless = result.claim.relation in (
            "oscillates",
            "seed_share_above",
        )  # an autocorrelation, a share of the variance
        spec = spec if spec.endswith("f") and not unitless else ".3f"  # "s" (as text) has no digits of its own
        measured = _spread(result.values, spec)
        if result.claim.against_setting:
            measured += f" vs {_spread(result.others, spec)}"
        elif result.claim.relation == "seed_share_above":
            measured = "-" if not result.values else f"seeds' share {format(result.values[0], spec)}"
        elif result.claim.relation == "more_than":
            measured = (
                "-"
                if result.spreads is None
                else f"spread {format(result.spreads[0], spec)} vs {format(result.spreads[1], spec)}"
            )
        difference = "-"
        if result.difference is not None and result.interval is not None:
            signed = "+" + spec.lstrip("+")
            difference = (
                f"{format(result.difference, signed)} [{format(result.interval[0], signed)}, "
                f"{format(result.interval[1], signed)}]"
            )
        grid.rows.append(
            [
                result.claim.text,
                result.claim.source or "-",
                result.claim.describe(),
                measured,
                difference,
                format_p(result.p_adjusted),
                result.verdict,
            ]
        )
        grid.styles.append(None)
    grid.caption = claims_caption(results)
    return grid


def split_study_grid(grid: Grid) -> list[Grid]:
    """A study table as two for a page: the FID comparison (up to its verdict), then the other measurements.

    The whole table is some 27 columns, wider than a page; the setting column starts both halves.
    """
    if "verdict" not in grid.headers:
        return [grid]
    cut = grid.headers.index("verdict") + 1
    comparison = Grid(grid.title, grid.headers[:cut], [row[:cut] for row in grid.rows], grid.caption, list(grid.styles))
    others = Grid(
        "Other measurements, mean over seeds",
        [grid.headers[0], *grid.headers[cut:]],
        [[row[0], *row[cut:]] for row in grid.rows],
        f"Mean over each setting's runs of their final values; {TIME_TEXT}"
        + (f" {POPULATION_TEXT}" if "population s" in grid.headers else "")
        + " img/s: training images per second.",
        list(grid.styles),
    )
    return [comparison, others]
