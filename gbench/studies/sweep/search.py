"""A search suite's first phase: tune every candidate on one budget, then hand its best to the retrain sweep.

Each candidate (a variant of the suite) is one Optuna study in the sweep's
storage, named ``{study}-search-{variant}``, whose trials are ordinary
``gbench tune`` trials (:class:`gbench.studies.tune.tune.Tuner`): runs in the
sweep's OUT (``gbench show`` lists them), reported to the pruner at every
evaluation. Workers count trials exactly as ``gbench tune`` does
(:func:`gbench.studies.workers.claim` with a target), so a resumed or shared
search never runs more than ``[search] trials`` per candidate. Once every
search is done, :func:`retrain_plan` puts each candidate's best parameters
into its variant, and the sweep trains those over the seeds as any sweep does.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import zlib
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from gbench.analysis.search_budget import SearchSummary, TrialOutcome
from gbench.config import RunConfig
from gbench.errors import GbenchError
from gbench.plugins.registry import Registry
from gbench.studies import opening
from gbench.studies import workers as studylib
from gbench.studies.shared_study import SharedStudy
from gbench.studies.storage import open_storage
from gbench.studies.sweep.plan import Plan, study_name_for
from gbench.studies.sweep.searchtable import SearchSpec
from gbench.studies.sweep.suite import Suite, Variant
from gbench.studies.tune.searchspace import SearchSpace, build_space, check_compatible
from gbench.studies.tune.tune import Tuner, make_pruner, safe_name
from gbench.training.runner import DataCache

#: The retrain study's user attr holding the best parameters its runs were planned with.
BESTS_ATTR = "search_bests"


class TrialSeededRandomSampler(optuna.samplers.BaseSampler):
    """Random search whose draws depend on the seed, the trial number and the parameter only.

    Optuna's RandomSampler draws from one generator per process, so two workers
    seeded alike would propose the same settings, and the settings would
    depend on which worker took which trial. Here trial n gets the same
    setting whoever runs it, on one machine or many.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        draw_seed = zlib.crc32(f"{self.seed}|{trial.number}|{param_name}".encode())
        return optuna.samplers.RandomSampler(seed=draw_seed).sample_independent(
            study, trial, param_name, param_distribution
        )


def search_study_name(study_name: str, variant: str) -> str:
    """Where candidate ``variant``'s search lives, beside the sweep's own study ``study_name``."""
    return safe_name(f"{study_name}-search-{variant}")


@dataclass
class CandidateSearch:
    """One candidate's search: its study, the tuner its trials run, and how many trials it takes."""

    variant: str
    shared: SharedStudy
    tuner: Tuner
    trials: int

    @property
    def study(self) -> optuna.Study:
        return self.shared.study

    def counted(self) -> list[FrozenTrial]:
        return counted(self.study)

    def done(self) -> bool:
        return studylib.count(self.counted()).done >= self.trials

    def best(self) -> FrozenTrial | None:
        """The complete trial with the lowest finite FID (the lowest number among equals); None when none has one."""
        finished = [
            t for t in self.counted() if t.state == TrialState.COMPLETE and t.values and t.values[0] < float("inf")
        ]
        return min(finished, key=lambda t: (t.values[0], t.number)) if finished else None

    def outcomes(self) -> list[TrialOutcome]:
        return outcomes(self.study)


def counted(study: optuna.Study) -> list[FrozenTrial]:
    """The trials a search counts: COMPLETE and PRUNED (a failed one was retried, a running one is not done)."""
    return [t for t in studylib.counted_trials(study) if t.state in studylib.COUNTED]


def outcomes(study: optuna.Study) -> list[TrialOutcome]:
    """A search's counted trials as the budget curve reads them (gbench.analysis.search_budget)."""
    rows = []
    for trial in counted(study):
        state = "complete" if trial.state == TrialState.COMPLETE else "pruned"
        fid = trial.values[0] if trial.state == TrialState.COMPLETE and trial.values else trial.user_attrs.get("fid")
        rows.append(TrialOutcome(trial.number, state, fid, float(trial.user_attrs.get("wall_time") or 0.0)))
    return rows


def candidate_space(registry: Registry, config: RunConfig, spec: SearchSpec) -> SearchSpace:
    """One candidate's search space: the [search] table's items, every other parameter fixed at the candidate's."""
    fixed = {name: value for name, value in config.params.items() if name not in spec.space_names()}
    return build_space(registry, [(config.architecture, config.loss, config.schedule)], fixed, list(spec.space))


def open_searches(
    plan: Plan, cache: DataCache | None = None, interrupt: threading.Event | None = None
) -> list[CandidateSearch]:
    """Every candidate's search study, created or resumed in the sweep's storage; bad [search] input fails here,
    in one line, before any trial trains."""
    spec = plan.suite.search
    assert spec is not None, "open_searches needs a suite with a [search] table"
    if plan.seeds is not None and spec.seed in plan.seeds:  # --seeds: the suite's own seeds were checked already
        raise GbenchError(
            f"--seeds {','.join(map(str, plan.seeds))} holds the search seed {spec.seed}; give retrain seeds "
            "without it (or another [search] seed), so that a retrained best is not the very run that won its search"
        )
    cache = cache or DataCache()
    interrupt = interrupt or threading.Event()
    storage = open_storage(plan.storage_url, plan.default_storage, heartbeat=plan.heartbeat)
    trials = spec.trials_for(plan.quick)
    searches = []
    for run in plan.suite.runs(plan.registry, quick=plan.quick, seeds=[spec.seed], overrides=plan.overrides):
        config = run.config
        where = f"{plan.suite.where()} [search] space (candidate {run.variant!r})"
        try:
            space = candidate_space(plan.registry, config, spec)
        except GbenchError as error:
            raise GbenchError(f"{where}: {str(error).replace('--space ', '')}") from None
        name = search_study_name(plan.study_name, run.variant)
        tuner = Tuner(
            plan.registry,
            dataclasses.replace(config, run_id=None),
            space,
            name,
            ["fid"],
            plan.out,
            pruning=spec.pruner != "none",
            cache=cache,
            interrupt=interrupt,
        )
        sampler: optuna.samplers.BaseSampler = (
            TrialSeededRandomSampler(spec.sampler_seed)
            if spec.sampler == "random"
            else optuna.samplers.TPESampler(seed=spec.sampler_seed, constant_liar=True)
        )
        pruner = make_pruner(spec.pruner, spec.pruner_startup, config.eval.every, ["fid"], spec.pruner_warmup)
        shared, created = opening.create_or_load(storage, name, ["minimize"], "tune", sampler=sampler, pruner=pruner)
        if created:
            shared.study.set_user_attr("objectives", ["fid"])
            shared.study.set_user_attr("target", run.variant)
        else:
            studylib.reclaim(shared)
        check_compatible(shared.study, space)
        searches.append(CandidateSearch(run.variant, shared, tuner, trials))
    return searches


def work_searches(searches: list[CandidateSearch], stop: threading.Event | None = None, poll: float = 1.0) -> int:
    """Run search trials until every candidate has its trials; how many ran here.

    A worker takes the first candidate with a trial to claim, so workers share a candidate's search and move on
    together; one that finds only trials in flight elsewhere waits (one may yet fail and need running again).
    """
    ran = 0
    while not (stop is not None and stop.is_set()):
        unfinished = False
        for search in searches:
            studylib.reclaim(search.shared)
            trial = studylib.claim(search.shared, search.trials)
            if trial is None:
                continue
            unfinished = True
            if isinstance(trial, str):  # WAIT: this candidate's last trials are in flight
                continue
            studylib.run_one(search.shared, trial, search.tuner)
            ran += 1
            break
        else:
            if not unfinished:
                return ran
            studylib.pause(stop, poll)
    return ran


def bests(searches: list[CandidateSearch]) -> dict[str, dict[str, Any]]:
    """Candidate -> its best trial's parameters; a candidate without a finished FID in its search has none."""
    found = {}
    for search in searches:
        best = search.best()
        if best is not None:
            found[search.variant] = dict(best.params)
    return found


def retrain_plan(plan: Plan, searches: list[CandidateSearch]) -> Plan:
    """The sweep of the retrain phase: each candidate's variant with its best parameters, over the plan's seeds."""
    unfinished = [s.variant for s in searches if not s.done()]
    if unfinished:
        raise GbenchError(
            f"the searches of {', '.join(unfinished)} are not finished; run the same command again to finish them"
        )
    found = bests(searches)
    if plan.suite.baseline is not None and plan.suite.baseline not in found:
        raise GbenchError(
            f"the baseline {plan.suite.baseline!r} ended its search without one finished FID (every trial pruned or "
            "diverged); "
            "widen its [search] space, raise trials or pruner_startup, and run again with another --study-name"
        )
    variants = [
        Variant(v.name, {**v.changes, "params": {**v.changes.get("params", {}), **found[v.name]}})
        for v in plan.suite.variants
        if v.name in found
    ]
    suite = dataclasses.replace(plan.suite, variants=variants)
    seeds = list(range(plan.design.max_seeds)) if plan.design is not None else plan.seeds
    runs = suite.runs(plan.registry, quick=plan.quick, seeds=seeds, overrides=plan.overrides)
    return dataclasses.replace(plan, suite=suite, runs=runs)


def check_bests(plan: Plan, study: optuna.Study) -> None:
    """The retrain study remembers the bests it was planned with; a search that has since changed them (more
    trials) would mix runs of two settings under one variant, so it stops with the way out."""
    planned = {v.name: v.changes.get("params", {}) for v in plan.suite.variants}
    text = json.dumps(planned, sort_keys=True, default=str)
    stored = study.user_attrs.get(BESTS_ATTR)
    if stored is None:
        study.set_user_attr(BESTS_ATTR, text)
    elif stored != text:
        raise GbenchError(
            f"study {plan.study_name!r} retrained other best settings than its searches now give (were trials added?); "
            "give another --study-name to retrain the new bests"
        )


def search_summary(plan: Plan, searches: list[CandidateSearch]) -> SearchSummary:
    """What the report reads of the searches (gbench.report.search)."""
    space = searches[0].tuner.space.describe() if searches else ""
    return _summary(plan.suite, plan.quick, {s.variant: s.outcomes() for s in searches}, space)


def stored_summary(
    suite: Suite, registry: Registry, storage: optuna.storages.BaseStorage, study_name: str
) -> SearchSummary | None:
    """A search suite's searches read back from its sweep's storage, for ``gbench report`` (which has no plan):
    None when the storage holds no search of this sweep (study ``study_name``; ``-quick`` for a --quick one)."""
    spec = suite.search
    if spec is None:
        return None
    quick = study_name == study_name_for(suite, quick=True)
    stored = set(optuna.get_all_study_names(storage))
    runs = suite.runs(registry, quick=quick, seeds=[spec.seed], overrides={})
    trials = {
        run.variant: outcomes(optuna.load_study(study_name=name, storage=storage))
        for run in runs
        if (name := search_study_name(study_name, run.variant)) in stored
    }
    if not trials:
        return None
    return _summary(suite, quick, trials, candidate_space(registry, runs[0].config, spec).describe())


def _summary(suite: Suite, quick: bool, trials: dict[str, list[TrialOutcome]], space: str) -> SearchSummary:
    spec = suite.search
    assert spec is not None
    groups = suite.comparison_groups()
    datasets = {name: dataset for dataset, (names, _) in groups.items() for name in names}
    return SearchSummary(
        trials=trials,
        datasets=datasets,
        references={dataset: reference for dataset, (_, reference) in groups.items()},
        planned_trials=spec.trials_for(quick),
        space=space,
        sampler=spec.sampler,
        pruner=spec.pruner,
    )
