"""``gbench sweep``: every (variant, seed) run of a suite, once, resumable, shareable.

A sweep is an Optuna study whose trials are the suite's (variant, seed)
pairs, enqueued once when the study is created. Workers (this process,
``--jobs N`` local processes, or ``gbench sweep --storage URL`` on other
machines) pull the WAITING trials; the storage hands each one to one worker
(:mod:`gbench.studies.workers`). By default a worker takes the waiting seeds of one
variant together (:mod:`gbench.studies.groups`) and trains them as one
population (:mod:`gbench.studies.sweep.objective`); each run is still an ordinary run
into OUT with extra columns ``suite`` and ``variant``, and its
:class:`~gbench.results.records.RunRecord` is kept in its trial's user attrs, so that
:func:`load_records_from_storage` can rebuild the report with no shared disk.

Resuming: a finished run is never repeated (its trial is COMPLETE, and its
folder's summary.json makes ``execute`` return it as is); a run cut off
mid-way continues from its last checkpoint (written every ~10% of its steps);
a trial whose worker died is re-enqueued (heartbeats, or at once when the
process is gone on this host); any (variant, seed) without a COMPLETE, WAITING
or RUNNING trial is enqueued again when a sweep starts.

``--seeds auto[:MAX]`` (or ``seeds = "auto"``): the study starts with the
first round of seeds, and whenever a worker finds the queue empty and nothing
running it asks :mod:`gbench.analysis.adaptive` which runs the finished results now
call for and enqueues those that no trial holds yet, so rounds follow one
another without a coordinator and a resumed sweep recomputes where it was.
"""

from __future__ import annotations

import threading

import optuna
from optuna.trial import TrialState

from gbench.errors import GbenchError
from gbench.studies import groups as study_groups
from gbench.studies import opening
from gbench.studies import workers as studylib
from gbench.studies.shared_study import SharedStudy
from gbench.studies.storage import open_storage
from gbench.studies.sweep.objective import Sweeper
from gbench.studies.sweep.plan import Plan, plan, together
from gbench.studies.sweep.progress import load_records_from_storage, sweep_records
from gbench.studies.sweep.search import check_bests
from gbench.studies.sweep.suite import Run

__all__ = ["Plan", "Sweeper", "load_records_from_storage", "open_study", "plan", "run_worker", "sweep_records"]


# ---------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------


def _enqueue(study: optuna.Study, runs: list[Run]) -> None:
    for run in runs:
        study.enqueue_trial(
            {}, user_attrs={studylib.KEY_ATTR: run.key, "variant": run.variant, "seed": run.seed}, skip_if_exists=False
        )


def enqueue_missing(plan: Plan, study: optuna.Study) -> int:
    """Enqueue the wanted runs that no COMPLETE, WAITING or RUNNING trial holds; how many.

    Two workers topping up at the same moment may both enqueue a key; the
    keyed claim (gbench.studies.workers.claim) then runs it once and stands the other down.
    """
    live = {
        str(t.user_attrs.get(studylib.KEY_ATTR))
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING))
        if not studylib.is_surplus(t)
    }
    wanted = set(plan.keys(study))
    missing = [run for run in plan.runs if run.key in wanted and run.key not in live]
    _enqueue(study, missing)
    return len(missing)


def open_study(plan: Plan) -> tuple[SharedStudy, str]:
    """Create the sweep's study (enqueueing every run, or seeds auto's first round) or load it and enqueue what is
    missing."""
    storage = open_storage(plan.storage_url, plan.default_storage, heartbeat=plan.heartbeat)
    sampler = optuna.samplers.RandomSampler(seed=0)  # no parameters are sampled; keeps Optuna from building TPE

    def setup(new: optuna.Study) -> None:
        enqueue_missing(plan, new)

    shared, created = opening.create_or_load(
        storage, plan.study_name, ["minimize"], "sweep", sampler=sampler, setup=setup
    )
    if created:
        shared.study.set_user_attr("suite", plan.suite.name)
    else:
        studylib.reclaim(shared)
        _check_no_other_waiting_runs(plan, shared.study)
        enqueue_missing(plan, shared.study)
    if plan.suite.search is not None:  # a search suite's retrain: the bests it was planned with still hold
        check_bests(plan, shared.study)
    return shared, storage.url


def _check_no_other_waiting_runs(plan: Plan, study: optuna.Study) -> None:
    """--seeds naming fewer seeds than a resumed study still waits for would train those too (a worker takes
    whatever is waiting), so it is an error with the two ways out."""
    if plan.seeds is None:
        return
    wanted = set(plan.keys(study))
    others = sorted(
        {
            str(t.user_attrs.get(studylib.KEY_ATTR))
            for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if not studylib.is_surplus(t)
        }
        - wanted
    )
    if others:
        shown = ", ".join(k.replace("|", " seed ") for k in others[:4]) + (" ..." if len(others) > 4 else "")
        raise GbenchError(
            f"study {plan.study_name!r} still waits for {len(others)} runs that --seeds "
            f"{','.join(map(str, plan.seeds))} does not name ({shown}); "
            "run without --seeds to finish them, or give another --study-name"
        )


def run_worker(
    plan: Plan, shared: SharedStudy, sweeper: Sweeper | None = None, stop: threading.Event | None = None
) -> int:
    """Pull runs until none is wanted: with seeds auto, each time the queue runs dry (work() waits while
    any run is in flight, so the round is over), enqueue the next round the results call for."""
    sweeper = sweeper or Sweeper(plan)
    ran = 0
    batched = together(plan)

    def group_of(
        key: str,
    ) -> str:  # a variant that trains one by one is a group of one per seed: its key is its own group
        variant = key.rpartition("|")[0]
        return variant if batched.get(variant, True) else key

    while True:
        if any(
            batched.values()
        ):  # the waiting seeds of one variant share shapes: one population (gbench.training.population.run)
            limit = plan.population_size or len(plan.runs)
            ran += study_groups.work_groups(shared, sweeper.group, group_of, limit, stop=stop)
        else:
            ran += studylib.work(shared, sweeper, target=None, stop=stop)
        if plan.design is None or (stop is not None and stop.is_set()) or not enqueue_missing(plan, shared.study):
            return ran
