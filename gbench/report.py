"""A study's report: tables over seeds, tests, figures, in Markdown and HTML.

:func:`write_report` turns a list of :class:`~gbench.records.RunRecord`
(from a local results folder or from a sweep's Optuna storage) into::

    OUT_DIR/report.md      the report, images linked by relative path
    OUT_DIR/report.html    the same, one self-contained page (inline CSS)
    OUT_DIR/summary.csv    the per-setting statistics, for spreadsheets
    OUT_DIR/figures/*.png  the figures

:func:`report_tables` gives the same study tables as rich tables for the
terminal. Every table states the feature extractor its FIDs come from and
what its p-values compare (:mod:`gbench.stats`).

A suite (``gbench.suite.Suite``) is optional; only these attributes are read,
each may be missing: ``name``, ``title``, ``question``, ``baseline``,
``variants`` (objects with ``name``), ``grid_axes``, ``figures``, ``seeds``.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gbench import __version__, plots, schema, store
from gbench.errors import GbenchError
from gbench.stats import StudyTable, extractor_of, setting_names, study_tables

#: Figure names a suite's ``figures`` list may hold.
FIGURES = ("heatmap", "dynamics", "fid_over_steps", "samples", "class_histograms", "interpolation")
_ALIASES = {
    "fid_heatmap": "heatmap",
    "fid_curves": "fid_over_steps",
    "fid_over_time": "fid_over_steps",
    "fid_over_seconds": "fid_over_steps",
    "sample_grid": "samples",
    "classes": "class_histograms",
    "class_histogram": "class_histograms",
    "interpolations": "interpolation",
}
#: Most interpolation strips one report draws (one per setting).
MAX_INTERPOLATIONS = 12


def check_figures(names: Sequence[str] | None, where: str = "suite") -> list[str]:
    """Canonical figure names, or a one-line error naming the unknown one."""
    out = []
    for name in names or []:
        canonical = _ALIASES.get(str(name), str(name))
        if canonical not in FIGURES:
            import difflib

            close = difflib.get_close_matches(str(name), [*FIGURES, *_ALIASES], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise GbenchError(f"{where}: unknown figure {name!r}{hint}; valid figures: {', '.join(FIGURES)}")
        if canonical not in out:
            out.append(canonical)
    return out


# ---------------------------------------------------------------------------
# A neutral table, drawn as rich, Markdown and HTML
# ---------------------------------------------------------------------------


TEXT_HEADERS = ("status", "extractor", "run")


@dataclass
class Grid:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str = ""
    styles: list[str | None] = field(default_factory=list)  # per row: None, "reference", "diverged", "collapsed"
    left: int = 1  # leading columns aligned left (and the text columns named in TEXT_HEADERS)

    def is_left(self, index: int) -> bool:
        return index < self.left or self.headers[index] in TEXT_HEADERS

    def rich(self):
        from rich.table import Table

        table = Table(title=self.title, caption=self.caption or None, header_style="bold", caption_justify="left")
        for index, header in enumerate(self.headers):
            table.add_column(header, justify="left" if self.is_left(index) else "right", overflow="fold")
        for row, style in zip(self.rows, self.styles):
            table.add_row(*row, style={"reference": "bold", "diverged": "red", "collapsed": "yellow"}.get(style or ""))
        return table

    def markdown(self) -> str:
        cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
        lines = [f"**{cell(self.title)}**", ""] if self.title else []
        lines.append("| " + " | ".join(cell(h) for h in self.headers) + " |")
        lines.append("|" + "|".join(":---" if self.is_left(i) else "---:" for i in range(len(self.headers))) + "|")
        for row, style in zip(self.rows, self.styles):
            cells = [cell(c) for c in row]
            if style == "reference":
                cells[0] = f"**{cells[0]}**"
            lines.append("| " + " | ".join(cells) + " |")
        if self.caption:
            lines += ["", self.caption]
        return "\n".join(lines)

    def html(self) -> str:
        out = ["<table>"]
        if self.title:
            out.append(f"<caption>{html.escape(self.title)}</caption>")
        out.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in self.headers) + "</tr></thead><tbody>")
        for row, style in zip(self.rows, self.styles):
            cls = f' class="{style}"' if style else ""
            out.append(f"<tr{cls}>" + "".join(f"<td{'' if self.is_left(i) else ' class=num'}>{html.escape(c)}</td>" for i, c in enumerate(row)) + "</tr>")
        out.append("</tbody></table>")
        if self.caption:
            out.append(f'<p class="caption">{html.escape(self.caption)}</p>')
        return "\n".join(out)


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return "<0.0001" if value < 1e-4 else f"{value:.2g}" if value < 0.01 else f"{value:.3f}"


# ---------------------------------------------------------------------------
# What the suite asks for
# ---------------------------------------------------------------------------


def _suite_attr(suite: Any, name: str, default: Any = None) -> Any:
    return getattr(suite, name, default) if suite is not None else default


def _variant_order(suite: Any) -> list[str]:
    return [str(getattr(v, "name", v)) for v in (_suite_attr(suite, "variants") or [])]


def _baseline(suite: Any, names: Sequence[str]) -> str | None:
    """The suite's baseline; without a suite, a setting called "baseline" if there is one."""
    if suite is not None:
        return _suite_attr(suite, "baseline")
    return "baseline" if "baseline" in names else None


def grid_axes(records: Sequence[Any], suite: Any = None) -> list[str]:
    """The grid's axes: the suite's ``grid_axes``; without a suite, the hyperparameters
    that vary when exactly two do and every combination of their values was run."""
    axes = _suite_attr(suite, "grid_axes")
    if axes:
        return list(axes)
    if suite is not None or not records:
        return []
    keys = [k for k in records[0].row if schema.is_setting_column(k)]
    varying = [k for k in keys if len({str(r.row.get(k)) for r in records}) > 1]
    if len(varying) != 2:
        return []
    combos = {(str(r.row.get(varying[0])), str(r.row.get(varying[1]))) for r in records}
    sizes = [len({str(r.row.get(k)) for r in records}) for k in varying]
    return varying if len(combos) == sizes[0] * sizes[1] else []


def _title(records: Sequence[Any], suite: Any) -> str:
    if _suite_attr(suite, "title"):
        return str(suite.title)
    name = _suite_attr(suite, "name") or next((r.row.get("suite") for r in records if r.row.get("suite")), None)
    return f"gbench report: {name}" if name else "gbench report"


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
    return "D(x), D(G(z)): mean discriminator probability on real and generated batches at the end of training (equilibrium 0.5)."


def study_grid(table: StudyTable, records_title: str = "") -> Grid:
    """A study table as a :class:`Grid`: one row per setting."""
    has = lambda key: any(row.means.get(key) is not None for row in table.settings)
    extra = [
        (key, header, spec)
        for key, header, spec in (("kid_mean", "KID", ".4f"), ("classes_covered", "classes", ".1f"), ("class_kl", "class KL", ".3f"))
        if has(key)
    ]
    tail = [
        ("d_real", "D(x)", ".3f"),
        ("d_fake", "D(G(z))", ".3f"),
        ("d_loss", "d_loss", ".3f"),
        ("g_loss", "g_loss", ".3f"),
        *extra,
        ("train_seconds", "train s", ".1f"),
        ("images_per_second", "img/s", ",.0f"),
    ]
    if table.extractor is not None:
        headers = ["setting", "n", "FID mean ± sd", "95% CI", "Δ FID", "p", "p adj.", "sig.", *[h for _, h, _ in tail], "status"]
        title = f"FID on {table.extractor} features, over seeds (lower is better)"
    else:
        headers = ["setting", "runs", *[h for _, h, _ in tail], "status"]
        title = "Runs without FID (no feature extractor: evaluation off or runs diverged)"
    if records_title:
        title = f"{records_title}: {title}"
    grid = Grid(title=title, headers=headers)
    for row in table.settings:
        means = [_fmt(row.means.get(key), spec) for key, _, spec in tail]
        if table.extractor is not None:
            fid = row.fid
            n = str(fid.n) if fid.n == row.runs else f"{fid.n} of {row.runs}"
            spread = f"{fid.mean:.2f} ± {fid.sd:.2f}" if fid.sd is not None else _fmt(fid.mean, ".2f")
            ci = f"[{fid.ci_low:.2f}, {fid.ci_high:.2f}]" if fid.ci_low is not None else "-"
            diff = "ref" if row.reference else (f"{row.diff:+.2f}" if row.diff is not None else "-")
            p = _p(row.p) if row.p is not None else (row.note if not row.reference else "-")
            cells = [row.name, n, spread, ci, diff, p, _p(row.p_adjusted), "*" if row.significant else "", *means, row.status_text()]
        else:
            cells = [row.name, str(row.runs), *means, row.status_text()]
        grid.rows.append(cells)
        style = "reference" if row.reference else "diverged" if row.status.get("diverged") == row.runs else "collapsed" if row.status.get("collapsed") else None
        grid.styles.append(style)
    caption = [table.comparison_text()] if table.extractor is not None else []
    caption += [
        "FID: mean ± sample sd (ddof=1) over seeds; 95% CI: Student t." if table.extractor is not None else "",
        _score_note(table),
        "Other columns: mean over runs; train s excludes evaluation.",
        *table.notes,
    ]
    grid.caption = " ".join(c for c in caption if c)
    return grid


def runs_grid(records: Sequence[Any]) -> Grid:
    """Every run, one row each (the report's appendix)."""
    names = setting_names(records)
    grid = Grid(title="All runs", headers=["setting", "seed", "status", "FID", "extractor", "D(x)", "D(G(z))", "d_loss", "g_loss", "train s", "run"], left=1)
    for name, record in sorted(zip(names, records), key=lambda pair: (pair[0], pair[1].seed)):
        row = record.row
        cells = [name, str(record.seed), str(row.get("status") or "-"), _fmt(_num(row.get("fid")), ".2f"), str(extractor_of(record) or "-")]
        cells += [_fmt(_num(row.get(k)), ".3f") for k in ("d_real", "d_fake", "d_loss", "g_loss")]
        cells += [_fmt(_num(row.get("train_seconds")), ".1f"), str(row.get("run_id") or "-")]
        grid.rows.append(cells)
        grid.styles.append(str(row.get("status")) if row.get("status") in ("diverged", "collapsed") else None)
    return grid


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def report_tables(records: Sequence[Any], suite: Any = None) -> list:
    """The report's study tables as rich tables (one per feature extractor)."""
    records = _check(records)
    return [study_grid(table).rich() for table in tables_for(records, suite)]


def _check(records: Sequence[Any]) -> list[Any]:
    records = list(records)
    if not records:
        raise GbenchError("no runs to report on; run a suite first (gbench sweep SUITE.toml) or point at a folder that holds finished runs")
    return records


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-")[:80] or "x"


@dataclass
class Figure:
    path: Path  # absolute
    title: str
    caption: str


class _Figures:
    """Draw the figures a report asks for; each skip is noted with its reason."""

    def __init__(self, records: list[Any], tables: list[StudyTable], suite: Any, folder: Path):
        self.records, self.tables, self.suite, self.folder = records, tables, suite, folder
        self.names = setting_names(records)
        self.groups: dict[str, list[Any]] = {}
        for name, record in zip(self.names, records):
            self.groups.setdefault(name, []).append(record)
        order = [n for t in tables for n in (row.name for row in t.settings)]
        self.groups = {n: self.groups[n] for n in dict.fromkeys(order) if n in self.groups}
        self.figures: list[Figure] = []
        self.skipped: list[str] = []

    def wanted(self) -> list[str]:
        requested = check_figures(_suite_attr(self.suite, "figures"))
        if requested:
            return requested
        histories = [r.history for r in self.records]
        default = []
        if len(grid_axes(self.records, self.suite)) == 2 and any(t.extractor for t in self.tables):
            default.append("heatmap")
        if plots.has_series(histories, "d_real"):
            default.append("dynamics")
        if any(sum(plots.is_finite_number(row.get("fid")) for row in h) >= 2 for h in histories):
            default.append("fid_over_steps")
        if self._sample_items():
            default.append("samples")
        if any(plots.parse_counts(r.row.get("class_counts")) for r in self.records):
            default.append("class_histograms")
        return default

    def draw(self) -> list[Figure]:
        for name in self.wanted():
            try:
                getattr(self, f"_{name}")()
            except GbenchError as error:
                self.skipped.append(f"{name}: {error}")
        return self.figures

    def _add(self, filename: str, title: str, caption: str, draw) -> None:
        path = self.folder / filename
        draw(path)
        self.figures.append(Figure(path, title, caption))

    # -- one method per figure name
    def _heatmap(self) -> None:
        axes = grid_axes(self.records, self.suite)
        if len(axes) != 2:
            raise GbenchError(f"a heatmap needs a grid with exactly two axes; this study has {len(axes) or 'no'} grid axes")
        x_name, y_name = axes[1], axes[0]  # the suite's first axis runs up the side
        fid_tables = [t for t in self.tables if t.extractor is not None]
        if not fid_tables:
            raise GbenchError("no run has an FID; evaluate the runs (eval_samples > 0)")
        for table in fid_tables:
            cells = grid_cells(table, self.records, x_name, y_name)
            suffix = "" if len(fid_tables) == 1 else f"-{_slug(table.extractor)}"
            self._add(
                f"heatmap{suffix}.png",
                f"Mean FID over the {y_name} x {x_name} grid ({table.extractor})",
                f"Each cell: mean FID over seeds (± sd, n seeds) on {table.extractor} features; lighter (yellow) is better. Whether two cells really differ: see the p-values in the table.",
                lambda path, cells=cells, table=table: plots.fid_heatmap(cells, x_name, y_name, path, title=f"mean FID over seeds ({table.extractor})"),
            )

    def _dynamics(self) -> None:
        groups = {name: [r.history for r in records] for name, records in self.groups.items()}
        if not plots.has_series([h for hs in groups.values() for h in hs], "d_real"):
            raise GbenchError("no run recorded D(x) in its history (models without a discriminator, or no logged step)")
        scores = {r.row.get("score") for r in self.records if r.row.get("score")}
        probabilities = "critic" not in scores
        groups = {n: hs for n, hs in groups.items() if plots.has_series(hs, "d_real")}
        caption = "Mean over seeds (band: min to max over seeds) of the discriminator's output on real (D(x)) and generated (D(G(z))) batches and of both losses, every logged step."
        if probabilities:
            caption += " The dotted line is the equilibrium D = 1/2, where the discriminator cannot tell real from generated."
        if len(scores) > 1:
            caption += " Some losses report critic outputs, which have no 0.5 equilibrium."
        self._add(
            "dynamics.png", "Training dynamics: D(x), D(G(z)) and losses", caption, lambda path: plots.dynamics(groups, path, probabilities=probabilities)
        )

    def _fid_over_steps(self) -> None:
        fid_tables = [t for t in self.tables if t.extractor is not None]
        drawn = False
        for table in fid_tables:
            groups = {}
            for row in table.settings:
                histories = [r.history for r in self.groups[row.name] if extractor_of(r) == table.extractor]
                if plots.has_series(histories, "fid"):
                    groups[row.name] = histories
            if not groups:
                continue
            suffix = "" if len(fid_tables) == 1 else f"-{_slug(table.extractor)}"
            self._add(
                f"fid_over_steps{suffix}.png",
                f"FID over training steps and seconds ({table.extractor})",
                f"FID on {table.extractor} features at each evaluation during training, mean over seeds (band: min to max). Right: against training wall-clock seconds, so quality can be weighed against cost.",
                lambda path, groups=groups, table=table: plots.fid_curves(groups, path, table.extractor),
            )
            drawn = True
        if not drawn:
            raise GbenchError("no run has FID in its history; evaluate during training with eval_every")

    def _sample_items(self) -> list[tuple[str, Path]]:
        items = []
        for name, records in self.groups.items():
            for record in sorted(records, key=lambda r: r.seed):
                if record.run_dir is not None and (Path(record.run_dir) / "samples.png").is_file():
                    items.append((f"{name} (seed {record.seed})", Path(record.run_dir) / "samples.png"))
                    break
        return items

    def _samples(self) -> None:
        items = self._sample_items()
        if not items:
            raise GbenchError("no run folder with samples.png (runs read from storage have none; report from the local results folder)")
        self._add(
            "samples.png",
            "Samples",
            "64 samples from fixed noise at the end of training, the lowest seed of each setting.",
            lambda path: plots.sample_grid(items, path),
        )

    def _class_histograms(self) -> None:
        by_dataset: dict[str, list[tuple[str, list[int]]]] = {}
        for name, records in self.groups.items():
            total: list[int] | None = None
            dataset = None
            for record in records:
                counts = plots.parse_counts(record.row.get("class_counts"))
                if counts:
                    total = counts if total is None else [a + b for a, b in zip(total, counts)]
                    dataset = str(record.row.get("dataset") or "mnist")
            if total:
                by_dataset.setdefault(dataset, []).append((name, total))
        if not by_dataset:
            raise GbenchError("no run has class_counts (they come from the dataset's classifier at evaluation)")
        registry = _registry()
        for dataset, items in by_dataset.items():
            real = plots.real_class_distribution(dataset, registry=registry) if registry is not None else None
            try:
                class_names = registry.dataset(dataset).class_names if registry is not None else None
            except GbenchError:
                class_names = None
            suffix = "" if len(by_dataset) == 1 else f"-{_slug(dataset)}"
            real_text = f"the class shares of {dataset}'s test split" if real is not None else "the uniform distribution (the test labels could not be loaded)"
            self._add(
                f"class_histograms{suffix}.png",
                f"Predicted classes of generated samples ({dataset})",
                f"Share of generated samples the classifier assigns to each class, summed over seeds, against {real_text} (black ticks). Missing bars are modes the generator dropped.",
                lambda path, items=items, real=real, class_names=class_names: plots.class_histograms(items, path, real=real, class_names=class_names),
            )

    def _interpolation(self) -> None:
        registry = _registry()
        done = 0
        for name, records in self.groups.items():
            if done >= MAX_INTERPOLATIONS:
                self.skipped.append(f"interpolation: only the first {MAX_INTERPOLATIONS} settings are drawn")
                break
            run = next((r for r in sorted(records, key=lambda r: r.seed) if r.run_dir is not None and (Path(r.run_dir) / "generator.pt").is_file()), None)
            if run is None:
                continue
            try:
                self._add(
                    f"interpolation-{_slug(name)}.png",
                    f"Latent interpolation: {name} (seed {run.seed})",
                    "Top row: generated images along the straight line from z0 to z1 (alpha 0 to 1, 10 steps). Bottom row: the same line extended, alpha from -1 to 2 (alpha 0 and 1 are z0 and z1). Smooth change without foreign digits suggests a well-behaved latent space.",
                    lambda path, run=run: plots.write_interpolation(run.run_dir, path, steps=10, seed=0, registry=registry),
                )
                done += 1
            except GbenchError as error:
                self.skipped.append(f"interpolation of {name}: {error}")
        if not done:
            raise GbenchError("no run folder with generator.pt (runs read from storage have none; report from the local results folder)")


def grid_cells(table: StudyTable, records: Sequence[Any], x_name: str, y_name: str) -> dict[tuple[Any, Any], tuple[float, float | None, int]]:
    """(x value, y value) -> (mean FID, sd, n) of each setting in the table that has an FID."""
    first = {}
    for name, record in zip(setting_names(records), records):
        first.setdefault(name, record.row)
    cells = {}
    for row in table.settings:
        if row.fid.mean is not None:
            cells[(first[row.name].get(x_name), first[row.name].get(y_name))] = (row.fid.mean, row.fid.sd, row.fid.n)
    return cells


def _registry():
    try:
        from gbench.plugins import load_plugins

        return load_plugins().registry
    except GbenchError:
        return None


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; } h3 { font-size: 1.05em; }
.question { font-size: 1.1em; background: #f4f6fa; border-left: 4px solid #4a6fa5; padding: 0.5em 0.8em; }
.meta, .caption, .note { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.8em 0 0.3em; font-size: 0.85em; }
caption { caption-side: top; text-align: left; font-weight: bold; padding-bottom: 0.3em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; } th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.reference td { font-weight: bold; background: #f3f8ee; } tr.diverged td { color: #b00; } tr.collapsed td { color: #a60; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; } figcaption { color: #555; font-size: 0.9em; }
"""


def write_report(records: Sequence[Any], out_dir: str | os.PathLike, suite: Any = None) -> Path:
    """Write report.md, report.html, summary.csv and figures/*.png into ``out_dir``; return report.html's path."""
    records = _check(records)
    check_figures(_suite_attr(suite, "figures"))
    out_dir = store.ensure_writable(out_dir)
    tables = tables_for(records, suite)
    figures = _Figures(records, tables, suite, out_dir / "figures")
    drawn = figures.draw()

    title = _title(records, suite)
    question = _suite_attr(suite, "question")
    settings = len(set(setting_names(records)))
    seeds = sorted({r.seed for r in records})
    statuses: dict[str, int] = {}
    for record in records:
        statuses[str(record.row.get("status") or "unknown")] = statuses.get(str(record.row.get("status") or "unknown"), 0) + 1
    extractors = [t.extractor for t in tables if t.extractor]
    meta = (
        f"{len(records)} runs of {settings} setting{'s' if settings != 1 else ''}, seeds {', '.join(map(str, seeds))}; "
        f"status: {', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))}; "
        f"FID features: {', '.join(extractors) if extractors else 'none (no evaluation)'}. "
        f"Written {_dt.datetime.now().isoformat(timespec='seconds')} by gbench {__version__}."
    )
    if _suite_attr(suite, "name"):
        meta = f"Suite {suite.name}: " + meta
    grids = [study_grid(table) for table in tables]
    appendix = runs_grid(records)
    _write_summary(out_dir / "summary.csv", tables)

    relative = lambda figure: figure.path.relative_to(out_dir).as_posix()
    # Markdown
    md = [f"# {title}", ""]
    if question:
        md += [f"> **Question:** {question}", ""]
    md += [meta, "", "## Results", ""]
    for grid in grids:
        md += [grid.markdown(), ""]
    if drawn or figures.skipped:
        md += ["## Figures", ""]
    for figure in drawn:
        md += [f"### {figure.title}", "", f"![{figure.title}]({relative(figure)})", "", figure.caption, ""]
    for skipped in figures.skipped:
        md += [f"- Not drawn: {skipped}"]
    md += ["", "## All runs", "", appendix.markdown(), ""]
    store.atomic_write_text(out_dir / "report.md", "\n".join(md))

    # HTML
    body = [f"<h1>{html.escape(title)}</h1>"]
    if question:
        body.append(f'<p class="question"><b>Question:</b> {html.escape(str(question))}</p>')
    body += [f'<p class="meta">{html.escape(meta)}</p>', "<h2>Results</h2>", *[grid.html() for grid in grids]]
    if drawn or figures.skipped:
        body.append("<h2>Figures</h2>")
    for figure in drawn:
        body.append(
            f'<figure><h3>{html.escape(figure.title)}</h3><img src="{html.escape(relative(figure))}" alt="{html.escape(figure.title)}">'
            f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
        )
    if figures.skipped:
        body.append("<ul>" + "".join(f'<li class="note">Not drawn: {html.escape(s)}</li>' for s in figures.skipped) + "</ul>")
    body += ["<h2>All runs</h2>", appendix.html()]
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n'
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    store.atomic_write_text(out_dir / "report.html", page)
    return out_dir / "report.html"


def _write_summary(path: Path, tables: list[StudyTable]) -> None:
    rows = []
    for table in tables:
        for row in table.settings:
            rows.append({
                "setting": row.name, "runs": row.runs, "seeds": " ".join(map(str, row.seeds)), "fid_extractor": table.extractor,
                "fid_n": row.fid.n, "fid_mean": row.fid.mean, "fid_sd": row.fid.sd, "fid_ci_low": row.fid.ci_low, "fid_ci_high": row.fid.ci_high,
                "reference": table.reference, "reference_kind": table.reference_kind, "fid_diff": row.diff, "welch_t": row.t, "p": row.p,
                "p_adjusted": row.p_adjusted, "correction": table.correction if table.tests else None, "significant": row.significant if row.p_adjusted is not None else None,
                "note": row.note, **{f"mean_{k}": v for k, v in row.means.items()}, "status": row.status_text(),
            })  # fmt: skip
    store.write_csv(path, rows, columns=list(rows[0]) if rows else ["setting"])
