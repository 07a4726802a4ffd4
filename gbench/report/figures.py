"""The report's figures: which a suite may ask for, which are drawn by default, and drawing them.

:class:`ReportFigures` draws the figures into a folder through :mod:`gbench.report.plots` and notes
each one it skips with the reason. Figures that need the plugins (the real class shares and
class names of a dataset, a generator rebuilt for an interpolation) use the registry the
caller passes; the library never loads plugins itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gbench.analysis.comparisons import StudyTable
from gbench.analysis.grouping import fid_basis, setting_names
from gbench.errors import GbenchError
from gbench.names import suggestion
from gbench.report import classplots, plots
from gbench.report.grids import grid_axes, suite_attr
from gbench.report.interpolation import write_interpolation

if TYPE_CHECKING:
    from gbench.plugins.registry import Registry

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
#: A report's interpolation strips show each image this many times its size (28 pixels would be a speck on the page).
INTERPOLATION_SCALE = 3
#: Most interpolation strips one report draws (one per setting).
MAX_INTERPOLATIONS = 12


def check_figures(names: Sequence[str] | None, where: str = "suite") -> list[str]:
    """Canonical figure names, or a one-line error naming the unknown one."""
    out = []
    for name in names or []:
        canonical = _ALIASES.get(str(name), str(name))
        if canonical not in FIGURES:
            hint = suggestion(name, [*FIGURES, *_ALIASES])
            raise GbenchError(f"{where}: unknown figure {name!r}{hint}; valid figures: {', '.join(FIGURES)}")
        if canonical not in out:
            out.append(canonical)
    return out


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-")[:80] or "x"


@dataclass
class Figure:
    path: Path  # absolute
    title: str
    caption: str


class ReportFigures:
    """Draw the figures a report asks for; each skip is noted with its reason.

    :param registry: the plugins' registry, for the figures that need a
        dataset's labels or a rebuilt generator; without it class histograms
        compare with the uniform distribution and interpolations are skipped.
    """

    def __init__(
        self, records: list[Any], tables: list[StudyTable], suite: Any, folder: Path, registry: Registry | None = None
    ):
        self.records, self.tables, self.suite, self.folder, self.registry = records, tables, suite, folder, registry
        self.names = setting_names(records)
        self.groups: dict[str, list[Any]] = {}
        for name, record in zip(self.names, records):
            self.groups.setdefault(name, []).append(record)
        order = [n for t in tables for n in (row.name for row in t.settings)]
        self.groups = {n: self.groups[n] for n in dict.fromkeys(order) if n in self.groups}
        self.figures: list[Figure] = []
        self.skipped: list[str] = []

    def wanted(self) -> list[str]:
        requested = check_figures(suite_attr(self.suite, "figures"))
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
        if self._sample_items()[0]:
            default.append("samples")
        if any(classplots.parse_counts(r.row.get("class_counts")) for r in self.records):
            default.append("class_histograms")
        return default

    def draw(self) -> list[Figure]:
        for name in self.wanted():
            try:
                getattr(self, f"_{name}")()
            except GbenchError as error:
                self.skipped.append(f"{name}: {error}")
        return self.figures

    def _add(self, filename: str, title: str, caption: str, draw: Callable[[Path], Any]) -> None:
        path = self.folder / filename
        draw(path)
        self.figures.append(Figure(path, title, caption))

    # -- one method per figure name
    def _heatmap(self) -> None:
        axes = grid_axes(self.records, self.suite)
        if len(axes) != 2:
            raise GbenchError(
                f"a heatmap needs a grid with exactly two axes; this study has {len(axes) or 'no'} grid axes"
            )
        x_name, y_name = axes[1], axes[0]  # the suite's first axis runs up the side
        fid_tables = [t for t in self.tables if t.extractor is not None]
        if not fid_tables:
            raise GbenchError("no run has an FID; evaluate the runs (eval_samples > 0)")
        for table in fid_tables:
            cells = grid_cells(table, self.records, x_name, y_name)
            suffix = "" if len(fid_tables) == 1 else f"-{slug(table.fid_label)}"
            self._add(
                f"heatmap{suffix}.png",
                f"Mean FID over the {y_name} x {x_name} grid ({table.fid_label})",
                f"Each cell: mean FID over seeds (± sd, n seeds) on {table.fid_label}; lighter (yellow) is better. "
                "Whether two cells really differ: see the p-values in the table.",
                partial(plots.fid_heatmap, cells, x_name, y_name, title=f"mean FID over seeds ({table.fid_label})"),
            )

    def _dynamics(self) -> None:
        groups = {name: [r.history for r in records] for name, records in self.groups.items()}
        if not plots.has_series([h for hs in groups.values() for h in hs], "d_real"):
            raise GbenchError("no run recorded D(x) in its history (models without a discriminator, or no logged step)")
        scores = {r.row.get("score") for r in self.records if r.row.get("score")}
        probabilities = "critic" not in scores
        groups = {n: hs for n, hs in groups.items() if plots.has_series(hs, "d_real")}
        caption = (
            "Mean over seeds (band: min to max over seeds) of the discriminator's output on real (D(x)) and "
            "generated (D(G(z))) batches and of both losses, every logged step."
        )
        if probabilities:
            caption += (
                " The dotted line is the equilibrium D = 1/2, where the discriminator cannot tell real from generated."
            )
        if len(scores) > 1:
            caption += " Some losses report critic outputs, which have no 0.5 equilibrium."
        self._add(
            "dynamics.png",
            "Training dynamics: D(x), D(G(z)) and losses",
            caption,
            lambda path: plots.dynamics(groups, path, probabilities=probabilities),
        )

    def _fid_over_steps(self) -> None:
        fid_tables = [t for t in self.tables if t.extractor is not None]
        drawn = False
        for table in fid_tables:
            groups: dict[str, list[list[dict[str, Any]]]] = {}
            for row in table.settings:
                histories = [
                    r.history for r in self.groups[row.name] if fid_basis(r) == (table.extractor, table.fid_samples)
                ]
                if plots.has_series(histories, "fid"):
                    groups[row.name] = histories
            if not groups:
                continue
            suffix = "" if len(fid_tables) == 1 else f"-{slug(table.fid_label)}"
            self._add(
                f"fid_over_steps{suffix}.png",
                f"FID over training steps and seconds ({table.fid_label})",
                f"FID on {table.fid_label} at each evaluation during training, mean over seeds (band: min to max). "
                "Right: against training wall-clock seconds, so quality can be weighed against cost.",
                partial(plots.fid_curves, groups, extractor=str(table.extractor)),
            )
            drawn = True
        if not drawn:
            raise GbenchError("no run has FID in its history; evaluate during training with eval_every")

    def _sample_items(self) -> tuple[list[tuple[str, Path]], set[str]]:
        """(title, samples.png) of each setting's lowest seed, and the titles of conditional runs (one row per
        class, shown whole)."""
        items, conditional = [], set()
        for name, records in self.groups.items():
            for record in sorted(records, key=lambda r: r.seed):
                if record.run_dir is not None and (Path(record.run_dir) / "samples.png").is_file():
                    items.append((f"{name} (seed {record.seed})", Path(record.run_dir) / "samples.png"))
                    if record.row.get("label_accuracy") not in (None, ""):  # measured only for conditional runs
                        conditional.add(items[-1][0])
                    break
        return items, conditional

    def _samples(self) -> None:
        items, conditional = self._sample_items()
        if not items:
            raise GbenchError(
                "no run folder with samples.png (runs read from storage have none; report from the local results "
                "folder)"
            )
        shown = plots.samples_per_setting(len(items))
        self._add(
            "samples.png",
            "Samples",
            f"{shown} samples from fixed noise at the end of training, the lowest seed of each setting"
            + (
                "."
                if shown == 64
                else f" (the first {shown} of the 64 in its run folder's samples.png; past {plots.SAMPLE_GRID_FULL} "
                "settings, to keep the page light)."
            )
            + (
                " A conditional run's tile is its whole grid: one row per class, the same z down each column."
                if conditional
                else ""
            ),
            lambda path: plots.sample_grid(items, path, whole=conditional),
        )

    def _class_histograms(self) -> None:
        by_dataset: dict[str, list[tuple[str, list[int]]]] = {}
        for name, records in self.groups.items():
            total: list[int] | None = None
            dataset = "mnist"
            for record in records:
                counts = classplots.parse_counts(record.row.get("class_counts"))
                if counts:
                    total = counts if total is None else [a + b for a, b in zip(total, counts)]
                    dataset = str(record.row.get("dataset") or "mnist")
            if total:
                by_dataset.setdefault(dataset, []).append((name, total))
        if not by_dataset:
            raise GbenchError("no run has class_counts (they come from the dataset's classifier at evaluation)")
        registry = self.registry
        for dataset, items in by_dataset.items():
            real = classplots.real_class_distribution(dataset, registry) if registry is not None else None
            try:
                class_names = registry.dataset(dataset).class_names if registry is not None else None
            except GbenchError:
                class_names = None
            suffix = "" if len(by_dataset) == 1 else f"-{slug(dataset)}"
            real_text = (
                f"the class shares of {dataset}'s test split"
                if real is not None
                else "the uniform distribution (the test labels could not be loaded)"
            )
            if registry is None:
                real_text = "the uniform distribution (no plugin registry was given, so the test labels were not read)"
            self._add(
                f"class_histograms{suffix}.png",
                f"Predicted classes of generated samples ({dataset})",
                "Share of generated samples the classifier assigns to each class, summed over seeds, against "
                f"{real_text} (black ticks). Missing bars are modes the generator dropped. Panel titles: classes "
                "covered and classes present, over the samples summed over seeds (see the glossary).",
                partial(classplots.class_histograms, items, real=real, class_names=class_names),
            )

    def _interpolation(self) -> None:
        registry = self.registry
        if registry is None:
            raise GbenchError(
                "rebuilding a generator needs the plugins' registry; pass registry= to write_report (gbench report "
                "does)"
            )
        done = 0
        for name, records in self.groups.items():
            if done >= MAX_INTERPOLATIONS:
                self.skipped.append(f"interpolation: only the first {MAX_INTERPOLATIONS} settings are drawn")
                break
            run = next(
                (
                    r
                    for r in sorted(records, key=lambda r: r.seed)
                    if r.run_dir is not None and (Path(r.run_dir) / "generator.pt").is_file()
                ),
                None,
            )
            if run is None:
                continue
            try:
                self._add(
                    f"interpolation-{slug(name)}.png",
                    f"Latent interpolation: {name} (seed {run.seed})",
                    "Top row: generated images along the straight line from z0 to z1 (alpha 0 to 1, 10 steps). Bottom "
                    "row: the same line extended, alpha from -1 to 2 (alpha 0 and 1 are z0 and z1). Smooth change "
                    "without foreign digits suggests a well-behaved latent space.",
                    partial(
                        write_interpolation, run.run_dir, registry=registry, steps=10, seed=0, scale=INTERPOLATION_SCALE
                    ),
                )
                done += 1
            except GbenchError as error:
                self.skipped.append(f"interpolation of {name}: {error}")
        if not done:
            raise GbenchError(
                "no run folder with generator.pt (runs read from storage have none; report from the local results "
                "folder)"
            )


def grid_cells(
    table: StudyTable, records: Sequence[Any], x_name: str, y_name: str
) -> dict[tuple[Any, Any], tuple[float, float | None, int]]:
    """(x value, y value) -> (mean FID, sd, n) of each setting in the table that has an FID."""
    first: dict[str, dict[str, Any]] = {}
    for name, record in zip(setting_names(records), records):
        first.setdefault(name, record.row)
    cells = {}
    for row in table.settings:
        if row.fid.mean is not None:
            cells[(first[row.name].get(x_name), first[row.name].get(y_name))] = (row.fid.mean, row.fid.sd, row.fid.n)
    return cells
