"""What one ``gbench sweep`` invocation runs, and where: the :class:`Plan` every part of a sweep reads.

Its own module so that the worker's objective and the progress table can name
the plan without importing the sweep that runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from gbench.analysis import adaptive
from gbench.analysis.sequential import Design
from gbench.errors import GbenchError
from gbench.options import default
from gbench.plugins.registry import Registry
from gbench.studies import workers as studylib
from gbench.studies.storage import DEFAULT_HEARTBEAT
from gbench.studies.sweep.suite import Run, Suite, load_registry, load_suite
from gbench.training.batch import population_choice


def trial_per_key(study: optuna.Study) -> dict[str, FrozenTrial]:
    """The trial that stands for each key: COMPLETE first, then RUNNING, WAITING, the latest FAIL."""
    rank = {
        TrialState.COMPLETE: 4,
        TrialState.RUNNING: 3,
        TrialState.WAITING: 2,
        TrialState.PRUNED: 1,
        TrialState.FAIL: 0,
    }
    chosen: dict[str, FrozenTrial] = {}
    for trial in studylib.counted_trials(study):
        key = trial.user_attrs.get(studylib.KEY_ATTR)
        if key is None:
            continue
        old = chosen.get(key)
        if old is None or (rank[trial.state], trial.number) >= (rank[old.state], old.number):
            chosen[key] = trial
    return chosen


def study_name_for(suite: Suite, quick: bool) -> str:
    return f"{suite.name}-quick" if quick else suite.name


@dataclass
class Plan:
    """What one `gbench sweep` invocation runs, and where."""

    suite: Suite
    registry: Registry
    runs: list[Run]
    out: Path
    quick: bool
    study_name: str
    storage_url: str | None  # None: the local default file
    heartbeat: int
    overrides: dict[str, Any]  # device, data_root, threads from the command line
    seeds: list[int] | None
    design: Design | None = None  # seeds auto: runs holds every seed up to its maximum, keys() the wanted ones
    # "on": a worker claims and trains the waiting seeds of a variant together; "off": one run at a time;
    # "auto": where faster
    population: str = default("population")
    population_size: int | None = (
        None  # at most this many members per population (None: all of a variant's waiting seeds)
    )
    plugins: list[str] = field(default_factory=list)  # --plugin: loaded beside the suite's target, in every worker too
    notes: list[str] = field(
        default_factory=list
    )  # lines to say before training (no extractor fits a variant's own data)

    @property
    def default_storage(self) -> Path:
        return self.out / "sweep.db"

    def schedule(self, study: optuna.Study) -> adaptive.Schedule:
        assert self.design is not None and self.suite.baseline is not None
        fids = {
            k: adaptive.fid_value(t.user_attrs.get("fid"))
            for k, t in trial_per_key(study).items()
            if t.state == TrialState.COMPLETE
        }
        return adaptive.schedule(self.design, [v.name for v in self.suite.variants], self.suite.baseline, fids)

    def keys(self, study: optuna.Study) -> list[str]:
        """The (variant, seed) keys this sweep wants: all of them, or with seeds auto those the results so far
        call for."""
        return self.schedule(study).keys() if self.design is not None else [run.key for run in self.runs]


def plan(
    suite_path: str | Path,
    out: str | None = None,
    quick: bool = False,
    seeds: list[int] | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    device: str | None = None,
    data_root: str | None = None,
    threads: int | None = None,
    heartbeat: int = DEFAULT_HEARTBEAT,
    auto: Design | None = None,
    population: str = default("population"),
    population_size: int | None = None,
    plugins: list[str] | None = None,
) -> Plan:
    """``seeds`` (a list) or ``auto`` (``--seeds auto``) replace the suite's seeds; with neither, a suite's
    ``seeds = "auto"`` holds unless ``quick`` (a smoke test takes its [quick] seeds or the first two)."""
    suite = load_suite(suite_path, check=False)
    registry = load_registry(suite, plugins or ())
    overrides = {"device": device, "data_root": data_root, "threads": threads}
    design = auto if seeds is None else None
    if design is None and seeds is None and not quick:
        design = suite.seeds_auto
    if design is not None and suite.baseline is None:
        raise GbenchError(
            f"--seeds {adaptive.design_text(design)} compares every setting with the baseline; add baseline = "
            f'"VARIANT" to [suite] of {suite.where()}'
        )
    run_seeds = list(range(design.max_seeds)) if design is not None else seeds
    notes: list[str] = []
    runs = suite.runs(registry, quick=quick, seeds=run_seeds, overrides=overrides, notes=notes)
    folder = Path(out) if out else Path(default("out")) / study_name_for(suite, quick)
    population_choice(population, None, "fp32")  # an unknown mode: one line before anything runs
    if population_size is not None and population_size < 1:
        raise GbenchError(f"--population-size {population_size} must be at least 1")
    name = study_name or study_name_for(suite, quick)
    return Plan(
        suite,
        registry,
        runs,
        folder,
        quick,
        name,
        storage,
        heartbeat,
        overrides,
        seeds,
        design,
        population,
        population_size,
        list(plugins or ()),
        notes,
    )


def together(plan: Plan) -> dict[str, bool]:
    """Variant -> whether its seeds train as one population (gbench.training.batch.population_choice, per
    variant's device and precision)."""
    chosen: dict[str, bool] = {}
    for run in plan.runs:
        if run.variant not in chosen:
            chosen[run.variant] = population_choice(plan.population, run.config.device, run.config.precision)[0]
    return chosen
