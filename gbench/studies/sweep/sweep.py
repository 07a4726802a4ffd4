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

import multiprocessing
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from gbench.analysis.sequential import PROCEDURE
from gbench.errors import GbenchError
from gbench.results import display, store
from gbench.secrets import mask
from gbench.studies import groups as study_groups
from gbench.studies import workers as studylib
from gbench.studies.shared_study import SharedStudy
from gbench.studies.storage import open_storage, shown_url
from gbench.studies.sweep.objective import Sweeper
from gbench.studies.sweep.plan import Plan, plan, trial_per_key
from gbench.studies.sweep.progress import load_records_from_storage, progress_table, sweep_records
from gbench.studies.sweep.suite import Run

__all__ = ["Plan", "Sweeper", "finish", "load_records_from_storage", "open_study", "plan", "run_worker", "sweep", "sweep_records"]


# ---------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------


def _enqueue(study: optuna.Study, runs: list[Run]) -> None:
    for run in runs:
        study.enqueue_trial({}, user_attrs={studylib.KEY_ATTR: run.key, "variant": run.variant, "seed": run.seed}, skip_if_exists=False)


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
    """Create the sweep's study (enqueueing every run, or seeds auto's first round) or load it and enqueue what is missing."""
    storage = open_storage(plan.storage_url, plan.default_storage, heartbeat=plan.heartbeat)
    sampler = optuna.samplers.RandomSampler(seed=0)  # no parameters are sampled; keeps Optuna from building TPE

    def setup(new: optuna.Study) -> None:
        enqueue_missing(plan, new)

    shared, created = studylib.create_or_load(storage, plan.study_name, ["minimize"], "sweep", sampler=sampler, setup=setup)
    if created:
        shared.study.set_user_attr("suite", plan.suite.name)
    else:
        studylib.reclaim(shared)
        _check_no_other_waiting_runs(plan, shared.study)
        enqueue_missing(plan, shared.study)
    return shared, storage.url


def _check_no_other_waiting_runs(plan: Plan, study: optuna.Study) -> None:
    """--seeds naming fewer seeds than a resumed study still waits for would train those too (a worker takes
    whatever is waiting), so it is an error with the two ways out."""
    if plan.seeds is None:
        return
    wanted = set(plan.keys(study))
    others = sorted(
        {str(t.user_attrs.get(studylib.KEY_ATTR)) for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)) if not studylib.is_surplus(t)}
        - wanted
    )
    if others:
        shown = ", ".join(k.replace("|", " seed ") for k in others[:4]) + (" ..." if len(others) > 4 else "")
        raise GbenchError(
            f"study {plan.study_name!r} still waits for {len(others)} runs that --seeds {','.join(map(str, plan.seeds))} does not name ({shown}); "
            "run without --seeds to finish them, or give another --study-name"
        )


def run_worker(plan: Plan, shared: SharedStudy, sweeper: Sweeper | None = None, stop: threading.Event | None = None) -> int:
    """Pull runs until none is wanted: with seeds auto, each time the queue runs dry (work() waits while
    any run is in flight, so the round is over), enqueue the next round the results call for."""
    sweeper = sweeper or Sweeper(plan)
    ran = 0
    while True:
        if plan.population == "auto":  # the waiting seeds of one variant share shapes: one population (gbench.training.population.run)
            limit = plan.population_size or len(plan.runs)
            ran += study_groups.work_groups(shared, sweeper.group, lambda key: key.rpartition("|")[0], limit, stop=stop)
        else:
            ran += studylib.work(shared, sweeper, target=None, stop=stop)
        if plan.design is None or (stop is not None and stop.is_set()) or not enqueue_missing(plan, shared.study):
            return ran


def _worker_process(spec: dict[str, Any]) -> None:
    """Entry point of a --jobs worker process (spawned): load the study and pull runs."""
    import sys

    from gbench.memory import keep_freed_memory

    keep_freed_memory()  # as the parent's cli.main did: a spawned process starts with glibc's defaults
    torch.set_num_threads(spec["threads"])
    from gbench.training import signals

    signals.install()  # a worker stopped by SIGTERM saves its run's state and releases its trial, as Ctrl-C does
    try:
        worker_plan = plan(**spec["plan"])
        shared, _ = open_study(worker_plan)
        run_worker(worker_plan, shared)
    except GbenchError as error:
        sys.stderr.write(f"gbench sweep worker: error: {mask(str(error))}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:  # a bug: its traceback, masked as cli.main masks the parent's (the plan holds the --storage URL)
        import traceback

        sys.stderr.write(mask(traceback.format_exc()))
        sys.exit(1)


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------


def sweep(sweep_plan: Plan, jobs: int = 1, write_report: bool = True, devices: Sequence[str] = ()) -> int:
    """Run a planned sweep to the end; 0 when every run finished."""
    if jobs < 1:
        raise GbenchError(f"--jobs {jobs} must be at least 1")
    out = store.ensure_writable(sweep_plan.out)
    sweeper = Sweeper(sweep_plan)
    for run in sweep_plan.runs:  # missing data fails here, before any worker starts
        sweeper.cache.split(sweep_plan.registry, run.config.dataset, "train", run.config.data_root, run.config.train_limit)
        if run.config.eval.samples > 0:
            sweeper.cache.split(sweep_plan.registry, run.config.dataset, "test", run.config.data_root, None)
    shared, url = open_study(sweep_plan)
    study = shared.study
    variants = len(sweep_plan.suite.variants)
    design = sweep_plan.design
    size = (
        f"{len(sweep_plan.runs)} runs ({variants} variants x {len(sweep_plan.runs) // max(1, variants)} seeds)"
        if design is None
        else f"{variants} variants, seeds auto: {design.start} to {design.max_seeds} each, added while undecided ({PROCEDURE})"
    )
    display.console.print(
        f"sweep {sweep_plan.study_name!r}: {size} into {out}; study in {shown_url(url)}",
        highlight=False,
        soft_wrap=True,
    )

    errors: list[BaseException] = []
    with display.live(progress_table(sweep_plan, study)) as live:
        workers: list[Any] = []
        if jobs > 1:  # jobs-1 spawned processes, and this one: each with cores/jobs torch threads
            threads = max(1, (os.cpu_count() or 1) // jobs)
            torch.set_num_threads(threads)
            for run in sweep_plan.runs:
                run.config.threads = run.config.threads or threads
            spec_plan = {"suite_path": str(sweep_plan.suite.path), "out": str(sweep_plan.out), "quick": sweep_plan.quick, "seeds": sweep_plan.seeds, "auto": design,
                         "storage": url, "study_name": sweep_plan.study_name, "heartbeat": sweep_plan.heartbeat,
                         "data_root": sweep_plan.overrides.get("data_root"), "threads": threads,
                         "population": sweep_plan.population, "population_size": sweep_plan.population_size}  # fmt: skip
            device_of = lambda worker: devices[worker % len(devices)] if devices else sweep_plan.overrides.get("device")  # noqa: E731 - --devices: a GPU per worker; this process is worker 0
            context = multiprocessing.get_context("spawn")
            workers = [
                context.Process(
                    target=_worker_process, args=({"plan": {**spec_plan, "device": device_of(i + 1)}, "threads": threads},), name=f"gbench-sweep-{i}"
                )
                for i in range(jobs - 1)
            ]
            for worker in workers:
                worker.start()
        ended = threading.Event()  # not Thread.is_alive: see gbench.studies.tune.tune.run_workers (a Ctrl-C inside join() breaks it)
        thread = threading.Thread(target=lambda: _guard(errors, ended, run_worker, sweep_plan, shared, sweeper), daemon=True, name="sweep-worker")
        thread.start()
        try:
            while not ended.is_set() or any(w.is_alive() for w in workers):
                ended.wait(timeout=1)
                for worker in workers:
                    worker.join(timeout=0.5)
                with sweeper.lock:
                    progress = dict(sweeper.progress)
                live.update(progress_table(sweep_plan, study, progress))
        except KeyboardInterrupt as stop:
            sweeper.interrupt.set()  # this process's run is given back; the --jobs workers got the Ctrl-C themselves
            from gbench.training import signals

            if isinstance(stop, signals.Terminated):  # SIGTERM may reach only this process: pass it on to the workers
                for worker in workers:
                    worker.terminate()
            ended.wait(timeout=60)
            for worker in workers:
                worker.join(timeout=30)
            raise
        failed = [w.exitcode for w in workers if w.exitcode not in (0, None)]
        if failed:
            errors.append(
                GbenchError(
                    f"{len(failed)} of {jobs} sweep workers failed (exit codes {failed}); see the lines above, fix, and run the same command again to resume"
                )
            )
        live.update(progress_table(sweep_plan, study))
    if errors:
        raise errors[0]
    return finish(sweep_plan, study, out, write_report)


def _guard(errors: list[BaseException], ended: threading.Event, fn: Any, *args: Any) -> None:
    """Run ``fn`` in a thread: its exception goes to ``errors``, and ``ended`` is set however it ends."""
    try:
        fn(*args)
    except studylib.Interrupted:
        pass  # Ctrl-C: the main thread is raising KeyboardInterrupt already
    except BaseException as error:
        errors.append(error)
    finally:
        ended.set()


def finish(sweep_plan: Plan, study: optuna.Study, out: Path, write_report: bool = True) -> int:
    chosen = trial_per_key(study)
    wanted = sweep_plan.keys(study)
    missing = [key for key in wanted if key not in chosen or chosen[key].state != TrialState.COMPLETE]
    records = sweep_records(sweep_plan, study, out)
    if records and write_report:
        from gbench.report import build as report  # here: it imports matplotlib, which a worker never needs

        for table in report.report_tables(records, sweep_plan.suite):
            display.stdout.print(table)
        path = report.write_report(records, out / "report", sweep_plan.suite)
        display.console.print(f"report: {path}", highlight=False, soft_wrap=True)
    elif records:
        display.stdout.print(display.results_table([r.row for r in records], title=f"sweep {sweep_plan.study_name}"))
    display.console.print(f"results: {out / store.RESULTS}  ({len(wanted) - len(missing)} of {len(wanted)} runs done)", highlight=False, soft_wrap=True)
    if missing:
        display.console.print(
            f"{len(missing)} runs did not finish ({', '.join(k.replace('|', ' seed ') for k in missing[:5])}{' ...' if len(missing) > 5 else ''}); run the same command again to retry them",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    return 0
