"""Suite files: one study (settings x seeds) in one TOML file; see docs/sweeps.md.

:func:`load_suite` reads and checks a suite (with a registry: every
variant's config too), so that a misspelt key, an unknown hyperparameter or
architecture, or an empty grid fails in one line before anything trains. :meth:`Suite.runs` gives the
:class:`RunConfig` of every (variant, seed) pair, with run id
``"{variant}-s{seed}"``.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gbench import owndata
from gbench.analysis.claims import Claim, parse_claims
from gbench.analysis.sequential import Design
from gbench.config import RunConfig, configs_for, read_toml, settings_from_table
from gbench.datasource import is_own_data
from gbench.errors import GbenchError
from gbench.evaluation.settings import check_inception_weights_option
from gbench.names import suggestion
from gbench.options import suite_keys
from gbench.plugins.registry import Registry
from gbench.studies.sweep.checks import changes_of, seeds_auto_of, seeds_of, table_of, unknown
from gbench.studies.sweep.reduced import apply_changes, reduced
from gbench.studies.sweep.searchtable import SearchSpec, comparison_groups, parse_search
from gbench.training.preflight import check_eval_options

TOP_KEYS = ("suite", "base", "variants", "grid", "quick", "claims", "search")
SUITE_KEYS = ("name", "title", "question", "target", "plugins", "seeds", "baseline", "figures", "full", "budget")
#: What --quick uses when the suite's [quick] table does not say otherwise.
QUICK_DEFAULTS: dict[str, Any] = {"steps": 20, "eval_samples": 300, "eval_every": None, "train_limit": 2000}
QUICK_SEEDS = 2


@dataclass
class Variant:
    """One setting of a suite: a name and what it changes in [base]."""

    name: str
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    """One (variant, seed) pair of a suite and its checked config."""

    variant: str
    seed: int
    config: RunConfig

    @property
    def key(self) -> str:
        return f"{self.variant}|{self.seed}"


@dataclass
class Suite:
    name: str
    title: str
    question: str
    target: str | None
    seeds: list[int]
    baseline: str | None
    base: dict[str, Any]
    variants: list[Variant]
    grid_axes: dict[str, list] | None
    figures: list[str]
    quick: dict[str, Any]
    path: Path | None = None
    seeds_auto: Design | None = (
        None  # seeds = "auto[:MAX]": seeds in rounds (gbench.analysis.adaptive); seeds then holds the first round's
    )
    claims: list[Claim] = field(
        default_factory=list
    )  # [[claims]]: others' findings the report checks (gbench.analysis.claims)
    full: str | None = (
        None  # a reduced-budget suite: the full study's suite file, beside this one (gbench.analysis.estimate)
    )
    budget: float | None = None  # budget = FRACTION: the full suite's, its epochs and steps scaled by FRACTION
    plugins: list[str] = field(
        default_factory=list
    )  # plugins = [...]: loaded beside the target (a dataset plugin); files relative to the suite
    # [search]: each variant is a candidate, tuned on this budget before its best is retrained over the seeds
    search: SearchSpec | None = None

    def settings(self, variant: Variant, quick: bool = False) -> dict[str, Any]:
        """[base], then the variant's changes, then (with --quick) the quick budget; params merge by key."""
        merged = copy.deepcopy(self.base)
        merged.setdefault("params", {})
        apply_changes(merged, variant.changes)
        if quick:
            apply_changes(merged, {k: v for k, v in {**QUICK_DEFAULTS, **self.quick}.items() if k != "seeds"})
        return merged

    def quick_seeds(self) -> list[int]:
        return list(self.quick.get("seeds", self.seeds[:QUICK_SEEDS]))

    def runs(
        self,
        registry: Registry,
        quick: bool = False,
        seeds: list[int] | None = None,
        overrides: dict[str, Any] | None = None,
        notes: list[str] | None = None,
    ) -> list[Run]:
        """Every (variant, seed) pair's checked RunConfig. ``overrides``: command-line options (device, data_root,
        threads); ``notes`` gets the line to say before training when no extractor fits a variant's own data (it
        trains without FID)."""
        seeds = seeds if seeds is not None else (self.quick_seeds() if quick else self.seeds)
        runs = []
        for variant in self.variants:
            merged = self.settings(variant, quick)
            merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
            where = f"{self.where()}: variant {variant.name!r}: "
            settings = dataclasses.replace(settings_from_table(merged, where), seeds=list(seeds))
            try:
                settings = owndata.resolve(
                    registry, settings
                )  # folder:PATH / npz:PATH, registered with its content hash
            except GbenchError as error:
                raise GbenchError(f"{where}{error}") from None
            check_inception_weights_option(
                settings.run.eval.inception_weights, settings.run.eval.extractor, f"{where}inception_weights ="
            )
            if len(settings.architectures) != 1:
                raise GbenchError(
                    f'{where}give one architecture, e.g. architecture = "mlp", in [base] or in the variant (a [grid] '
                    "axis may vary it)"
                )
            combo = (settings.architectures[0], settings.run.loss, settings.run.schedule)
            for seed, config in zip(seeds, configs_for(registry, settings, [combo], where)):
                if is_own_data(
                    config.dataset
                ):  # --fid-extractor against the data's shape, before any training (gbench.training.preflight)
                    config = check_eval_options(config, registry, notes)  # no extractor fits: a copy without evaluation
                folder = run_id(variant.name, seed)
                if len(folder.encode()) > MAX_RUN_ID:  # found with the other suite checks, not at mkdir after them
                    raise GbenchError(
                        f"{self.where()}: variant {variant.name[:40] + '...'!r} has a name of {len(variant.name)} "
                        "characters; its run folder "
                        f"{folder[:40]}... would be longer than file systems allow: give the variant a name of at "
                        f"most {MAX_RUN_ID - 12} characters"
                    )
                runs.append(Run(variant.name, seed, dataclasses.replace(config, run_id=folder)))
        return runs

    def comparison_groups(self) -> dict[str, tuple[list[str], str | None]]:
        """A search suite's data sets: each one's candidates and the one they are compared with (searchtable)."""
        settings = {variant.name: self.settings(variant) for variant in self.variants}
        return comparison_groups(settings, self.baseline, self.where())

    def where(self) -> str:
        return f"suite {str(self.path) if self.path else self.name!r}"

    def full_suite(self) -> Suite | None:
        """The full study's suite (a reduced-budget suite's ``full`` file, beside it), or None when it names none."""
        if not self.full or self.path is None:
            return None
        path = Path(self.path).parent / str(self.full)
        if not path.is_file():
            raise GbenchError(f"{self.where()}: full = {self.full!r}: no such suite file next to it ({path})")
        return load_suite(path)


#: The longest run folder name (bytes): file systems take 255, and a margin keeps temporary names beside it short
#: enough.
MAX_RUN_ID = 200


def run_id(variant: str, seed: int) -> str:
    """A folder-safe run id for a (variant, seed) pair."""
    return re.sub(r"[^A-Za-z0-9._=,+-]+", "_", f"{variant}-s{seed}").strip("._") or f"run-s{seed}"


# ---------------------------------------------------------------------------
# Reading and checking
# ---------------------------------------------------------------------------


def parse_suite(data: dict[str, Any], path: Path | None = None) -> Suite:
    """Check a suite's structure (no plugins needed)."""
    where = f"suite {str(path) if path else '<text>'!r}"
    unknown(data, TOP_KEYS, where)
    head = table_of(data, "suite", where)
    unknown(head, SUITE_KEYS, f"{where} [suite]")
    budget = head.get("budget")
    if budget is not None:
        data = reduced(data, path, where, changes_of(table_of(data, "base", where), f"{where} [base]"))
        head = data["suite"]
    name = head.get("name")
    if not isinstance(name, str) or not name.strip() or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise GbenchError(
            f"{where}: [suite] name = {name!r} must be set, letters, digits, '.', '_' or '-' (it names the study and "
            "the default --out runs/NAME)"
        )
    seeds_auto = seeds_auto_of(head.get("seeds"), f"{where} [suite]")
    seeds = list(range(seeds_auto.start)) if seeds_auto else seeds_of(head.get("seeds", [0]), f"{where} [suite]")
    base = changes_of(table_of(data, "base", where), f"{where} [base]")

    variants_raw = data.get("variants")
    grid_raw = data.get("grid")
    if variants_raw is not None and grid_raw is not None:
        raise GbenchError(f"{where}: give either [[variants]] or [grid], not both")
    variants: list[Variant] = []
    grid_axes: dict[str, list] | None = None
    if grid_raw is not None:
        if not isinstance(grid_raw, dict) or not grid_raw:
            raise GbenchError(f"{where}: [grid] is empty; give at least one axis, e.g. latent_dim = [16, 100]")
        grid_axes = {}
        for axis, values in grid_raw.items():
            if not isinstance(values, list) or not values:
                raise GbenchError(
                    f"{where}: [grid] {axis} = {values!r} must be a non-empty list of values, e.g. {axis} = [16, 100]"
                )
            if axis in ("params", "seeds", "out"):
                raise GbenchError(f"{where}: [grid] cannot vary {axis!r}; give hyperparameters or run options as axes")
            if len({repr(v) for v in values}) != len(values):
                raise GbenchError(f"{where}: [grid] {axis} = {values!r} repeats a value")
            grid_axes[axis] = list(values)
        for combination in itertools.product(*grid_axes.values()):
            changes: dict[str, Any] = {"params": {}}
            for axis, value in zip(grid_axes, combination):
                if axis in suite_keys():
                    changes[axis] = value
                else:
                    changes["params"][axis] = value
            variants.append(
                Variant(",".join(f"{axis}={value}" for axis, value in zip(grid_axes, combination)), changes)
            )
    elif variants_raw is not None:
        if not isinstance(variants_raw, list) or not variants_raw:
            raise GbenchError(f'{where}: [[variants]] is empty; give at least one, e.g. [[variants]] name = "baseline"')
        for index, raw in enumerate(variants_raw):
            if not isinstance(raw, dict):
                raise GbenchError(f"{where}: variant {index + 1} must be a table ([[variants]] with name = ...)")
            vname = raw.get("name")
            if not isinstance(vname, str) or not vname.strip():
                raise GbenchError(f'{where}: variant {index + 1} has no name; add name = "..." to it')
            if any(v.name == vname for v in variants):
                raise GbenchError(f"{where}: two variants are named {vname!r}; variant names must be unique")
            changes = changes_of({k: v for k, v in raw.items() if k != "name"}, f"{where} variant {vname!r}")
            variants.append(Variant(vname, changes))
    else:
        raise GbenchError(
            f'{where}: no [[variants]] and no [grid]; add [[variants]] name = "baseline" (one-change variants) or a '
            "[grid]"
        )

    quick = changes_of(table_of(data, "quick", where), f"{where} [quick]", quick=True)
    if "seeds" in quick:
        quick["seeds"] = seeds_of(quick["seeds"], f"{where} [quick]")
    baseline = head.get("baseline")
    if baseline is not None and baseline not in [v.name for v in variants]:
        hint = suggestion(baseline, [v.name for v in variants])
        raise GbenchError(
            f"{where}: baseline = {baseline!r} names no variant{hint}; variants: {', '.join(v.name for v in variants)}"
        )
    if seeds_auto is not None and baseline is None:
        raise GbenchError(
            f"{where}: seeds = {head['seeds']!r} adds seeds while a setting's comparison with the baseline is "
            'undecided; add baseline = "VARIANT" to [suite]'
        )
    figures = head.get("figures", [])
    if not isinstance(figures, list) or any(not isinstance(f, str) for f in figures):
        raise GbenchError(
            f'{where}: figures = {figures!r} must be a list of figure names, e.g. figures = ["samples", '
            '"fid_over_steps"]'
        )
    try:
        from gbench.report.build import check_figures
    except ImportError:  # the report module is optional
        pass
    else:
        figures = check_figures(figures, f"{where} [suite] figures")
    target = head.get("target")
    if target is not None and (not isinstance(target, str) or not target.strip()):
        raise GbenchError(
            f'{where}: target = {target!r} must be a plugin name or module path, e.g. target = "plugins.mlp"'
        )
    plugins = head.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) and p.strip() for p in plugins):
        raise GbenchError(
            f'{where}: plugins = {plugins!r} must be a list of plugin files or modules, e.g. plugins = ["my_data.py"]'
        )
    if path is not None:  # a file is relative to the suite's folder, as full = is
        plugins = [str(path.parent / p) if p.endswith(".py") and not Path(p).is_absolute() else p for p in plugins]
    for key in ("title", "question", "full"):
        if key in head and not isinstance(head[key], str):
            raise GbenchError(f"{where}: {key} must be text")
    if head.get("full") and path is not None and not (path.parent / head["full"]).is_file():
        raise GbenchError(
            f"{where}: full = {head['full']!r} names no suite file next to it; give the full study's file name, e.g. "
            'full = "s1_mlp_capacity.toml"'
        )
    search = parse_search(data.get("search"), where, seeds, seeds_auto.max_seeds if seeds_auto else None)
    claims = parse_claims(data.get("claims"), where, [v.name for v in variants], list(grid_axes or ()))
    suite = Suite(
        name=name,
        title=head.get("title", name),
        question=head.get("question", ""),
        target=target,
        seeds=seeds,
        baseline=baseline,
        base=base,
        variants=variants,
        grid_axes=grid_axes,
        figures=list(figures),
        quick=quick,
        path=path,
        seeds_auto=seeds_auto,
        claims=claims,
        full=head.get("full"),
        budget=budget,
        plugins=plugins,
        search=search,
    )
    # a search suite, or settings over several data sets, compare within each data set: a data set without a
    # setting that trains as the baseline does is one line now, not at the report
    groups = suite.comparison_groups() if baseline is not None else {}
    if seeds_auto is not None and len(groups) > 1:
        raise GbenchError(
            f"{where}: seeds = {head['seeds']!r} decides each setting against one baseline, but the settings "
            f"train on {len(groups)} data sets ({', '.join(groups)}); give a list of seeds, "
            "e.g. seeds = [0, 1, 2, 3, 4], or one data set"
        )
    return suite


def load_registry(suite: Suite, extra: list[str] | tuple[str, ...] = ()) -> Registry:
    """The plugins a suite's runs need: the installed ones plus its target, its ``plugins`` and ``extra``
    (``--plugin``).

    For the command's edge (``gbench sweep``, a user's script): library functions
    take the registry this returns and never load plugins themselves.
    """
    from gbench.plugins.loading import load_plugins, resolve_target

    if suite.target:
        try:
            plugins, _ = resolve_target(suite.target, [*suite.plugins, *extra])
        except GbenchError as error:
            raise GbenchError(f"{suite.where()}: target: {error}") from None
        return plugins.registry
    return load_plugins(extra=[*suite.plugins, *extra]).registry


def load_suite(path: str | Path, registry: Registry | None = None, check: bool = True) -> Suite:
    """Read a suite file and check its structure; given a ``registry`` (see :func:`load_registry`),
    also every variant's config, so that a bad hyperparameter fails before anything trains.
    Without one, only the structure is checked: this never loads plugins itself."""
    path = Path(path)
    data = read_toml(path, "suite file", "a suite .toml, e.g. benchmarks/suites/s1_mlp_capacity.toml")
    suite = parse_suite(data, path)
    if check and registry is not None:
        suite.runs(registry, quick=False, seeds=suite.seeds[:1])
        suite.runs(registry, quick=True, seeds=suite.quick_seeds()[:1])
    return suite
