"""Running a planned sweep from the command line: --jobs worker processes, the live progress table,
SIGTERM passed on to the workers, the report and the exit code.

The library (:mod:`gbench.studies.sweep.sweep`) plans the study and works its
trials; owning processes and the terminal is the command's job.
"""

from __future__ import annotations

import dataclasses
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
from gbench.commands import _progress
from gbench.config import device_for
from gbench.errors import GbenchError
from gbench.results import display, store
from gbench.secrets import mask
from gbench.studies import workers as studylib
from gbench.studies.shared_study import SharedStudy
from gbench.studies.storage import check_server, close_study_name, connection_kept, shown_url
from gbench.studies.sweep.objective import Sweeper
from gbench.studies.sweep.plan import Plan, plan, trial_per_key
from gbench.studies.sweep.progress import progress_table, sweep_records
from gbench.studies.sweep.suite import Run
from gbench.studies.sweep.sweep import open_study, run_worker
from gbench.training import preflight
from gbench.training.batch import population_choice
from gbench.training.runner import DataCache
from gbench.training.validate import validate_configs


def note(text: str) -> None:
    display.console.print(text, highlight=False, soft_wrap=True)


def _worker_process(spec: dict[str, Any]) -> None:
    """Entry point of a --jobs worker process (spawned): load the study and pull runs."""
    import sys

    from gbench.memory import keep_freed_memory

    keep_freed_memory()  # as the parent's cli.main did: a spawned process starts with glibc's defaults
    torch.set_num_threads(spec["threads"])
    from gbench.training import signals

    signals.install()  # a worker stopped by SIGTERM saves its run's state and releases its trial, as Ctrl-C does
    try:
        cache = DataCache()
        worker_plan = checked(plan(**spec["plan"]), cache)  # the parent's runs: no extractor fits, no evaluation
        with connection_kept(spec["plan"]["storage"]):  # the server gone: one line here too, not a traceback
            shared, _ = open_study(worker_plan)
            run_worker(worker_plan, shared, Sweeper(worker_plan, cache=cache, on_note=note))
    except GbenchError as error:
        sys.stderr.write(f"gbench sweep worker: error: {mask(str(error))}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:  # a bug: its traceback, masked as cli.main masks the parent's (the plan holds the --storage URL)
        import traceback

        sys.stderr.write(mask(traceback.format_exc()))
        sys.exit(1)


def checked(sweep_plan: Plan, cache: DataCache) -> Plan:
    """The plan whose every (variant, seed) passed `gbench run`'s checks: its nets built against the data
    (:func:`gbench.training.validate.validate_configs`), its options against the data and the extractor
    (:func:`gbench.training.preflight.check_runs`), before any folder or study is made; a bad value is one line naming
    the variant and its key as the suite file spells it. Runs that no extractor fits train without evaluation
    (``sweep_plan.notes`` gets the line saying so)."""
    variant_of = {run.config.run_id: run.variant for run in sweep_plan.runs}
    first_of_variant: dict[str, Run] = {}  # a variant's seeds build alike: its first run stands for them
    for run in sweep_plan.runs:
        first_of_variant.setdefault(run.variant, run)
    for run in first_of_variant.values():  # build each variant's nets on the CPU, as `gbench run` does
        try:
            validate_configs(sweep_plan.registry, [run.config])
        except GbenchError as error:
            raise GbenchError(f"{sweep_plan.suite.where()}: variant {run.variant!r}: {error}") from None
    configs = preflight.check_runs(
        [run.config for run in sweep_plan.runs],
        sweep_plan.registry,
        cache,
        sweep_plan.notes,
        spelled=preflight.as_key,
        where=lambda config: f"{sweep_plan.suite.where()}: variant {variant_of[config.run_id]!r}: ",
    )
    runs = [dataclasses.replace(run, config=config) for run, config in zip(sweep_plan.runs, configs)]
    return dataclasses.replace(sweep_plan, runs=runs)


def sweep(
    sweep_plan: Plan,
    jobs: int = 1,
    write_report: bool = True,
    devices: Sequence[str] = (),
    level: int = _progress.NORMAL,
) -> int:
    """Run a planned sweep to the end; 0 when every run finished."""
    if jobs < 1:
        raise GbenchError(f"--jobs {jobs} must be at least 1")
    # with --jobs N: jobs-1 spawned processes and this one, each with cores/jobs torch threads
    threads = max(1, (os.cpu_count() or 1) // jobs)
    if jobs > 1:
        # this process's runs take them where the suite gives none (a copy of the plan: a config never changes in place)
        runs = [
            dataclasses.replace(run, config=dataclasses.replace(run.config, threads=run.config.threads or threads))
            for run in sweep_plan.runs
        ]
        sweep_plan = dataclasses.replace(sweep_plan, runs=runs)
    cache = DataCache()
    for run in sweep_plan.runs:  # missing data fails here, before any check reads it and any worker starts
        cache.split(sweep_plan.registry, run.config.dataset, "train", run.config.data_root, run.config.train_limit)
        if run.config.eval.samples > 0:
            cache.split(sweep_plan.registry, run.config.dataset, "test", run.config.data_root, None)
    sweep_plan = checked(sweep_plan, cache)
    sweeper = Sweeper(sweep_plan, cache=cache, on_note=note)
    for line in sweep_plan.notes:  # e.g. no extractor fits a variant's data: said before any training
        note(line)
    check_server(sweep_plan.storage_url)
    out = store.ensure_writable(sweep_plan.out)  # only now: a bad value above leaves no folder behind
    shared, url = open_study(sweep_plan)
    study = shared.study
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) and (
        near := close_study_name(shared.storage, sweep_plan.study_name)
    ):
        note(
            f"note: study {sweep_plan.study_name!r} has no finished runs; the storage holds {near!r} "
            f"(did you mean --study-name {near}?)"
        )
    variants = len(sweep_plan.suite.variants)
    design = sweep_plan.design
    size = (
        f"{len(sweep_plan.runs)} runs ({variants} variants x {len(sweep_plan.runs) // max(1, variants)} seeds)"
        if design is None
        else f"{variants} variants, seeds auto: {design.start} to {design.max_seeds} each, "
        f"added while undecided ({PROCEDURE})"
    )
    display.console.print(
        f"sweep {sweep_plan.study_name!r}: {size} into {out}; study in {shown_url(url)}",
        highlight=False,
        soft_wrap=True,
    )
    if sweep_plan.population == "auto" and len(sweep_plan.runs) > variants:  # seeds that could share one: which, why
        first = sweep_plan.runs[0].config
        display.console.print(
            population_choice(sweep_plan.population, first.device, first.precision)[1], highlight=False, soft_wrap=True
        )

    with connection_kept(url):  # the server stopping mid-sweep: one line, and the same command resumes
        work(sweep_plan, shared, sweeper, jobs, threads, devices, url, level)
        return finish(sweep_plan, study, out, write_report)


def work(
    sweep_plan: Plan,
    shared: SharedStudy,
    sweeper: Sweeper,
    jobs: int,
    threads: int,
    devices: Sequence[str],
    url: str,
    level: int,
) -> None:
    """This process's worker thread and ``jobs - 1`` worker processes, under the live progress table, to the end.

    Ctrl-C, SIGTERM or an error here (the storage lost while the table reads it) gives this process's run back and
    waits for it: no thread may be left training when the process exits."""
    study = shared.study
    errors: list[BaseException] = []
    lines = _progress.StatusLines(level, total=len(sweep_plan.runs))
    with display.live(progress_table(sweep_plan, study)) as live:
        workers: list[Any] = []
        if jobs > 1:
            torch.set_num_threads(threads)
            spec_plan = {
                "suite_path": str(sweep_plan.suite.path),
                "out": str(sweep_plan.out),
                "quick": sweep_plan.quick,
                "seeds": sweep_plan.seeds,
                "auto": sweep_plan.design,
                "storage": url,
                "study_name": sweep_plan.study_name,
                "heartbeat": sweep_plan.heartbeat,
                "data_root": sweep_plan.overrides.get("data_root"),
                "threads": threads,
                "population": sweep_plan.population,
                "population_size": sweep_plan.population_size,
                "plugins": sweep_plan.plugins,
            }

            def device_of(worker: int) -> str | None:  # --devices: a GPU per worker; this process is worker 0
                return device_for(worker, devices, sweep_plan.overrides.get("device"))

            context = multiprocessing.get_context("spawn")
            workers = [
                context.Process(
                    target=_worker_process,
                    args=({"plan": {**spec_plan, "device": device_of(i + 1)}, "threads": threads},),
                    name=f"gbench-sweep-{i}",
                )
                for i in range(jobs - 1)
            ]
            for worker in workers:
                worker.start()
        # not Thread.is_alive: see gbench.commands.tuning.run_workers (a Ctrl-C inside join() breaks it)
        ended = threading.Event()
        thread = threading.Thread(
            target=lambda: _guard(errors, ended, run_worker, sweep_plan, shared, sweeper),
            daemon=True,
            name="sweep-worker",
        )
        thread.start()
        try:
            while not ended.is_set() or any(w.is_alive() for w in workers):
                ended.wait(timeout=1)
                for worker in workers:
                    worker.join(timeout=0.5)
                with sweeper.lock:
                    progress = dict(sweeper.progress)
                live.update(progress_table(sweep_plan, study, progress))
                if lines.plain:
                    lines.update(*status_line(sweep_plan, study, progress, lines))
        except BaseException as stop:
            sweeper.interrupt.set()  # this process's run is given back; the --jobs workers got the Ctrl-C themselves
            from gbench.training import signals

            if not isinstance(stop, KeyboardInterrupt) or isinstance(stop, signals.Terminated):
                for worker in workers:  # SIGTERM may reach only this process, an error only this one: pass it on
                    worker.terminate()
            ended.wait(timeout=60)
            for worker in workers:
                worker.join(timeout=30)
            raise
        failed = [w.exitcode for w in workers if w.exitcode not in (0, None)]
        if failed:
            errors.append(
                GbenchError(
                    f"{len(failed)} of {jobs} sweep workers failed (exit codes {failed}); see the lines above, fix, "
                    "and run the same command again to resume"
                )
            )
        live.update(progress_table(sweep_plan, study))
    if errors:
        raise errors[0]


def status_line(
    sweep_plan: Plan, study: optuna.Study, progress: dict[str, str], lines: _progress.StatusLines
) -> tuple[int, str]:
    """Runs done, and the progress table's one-line form for a log: done, running (with their steps), time left."""
    chosen, total = trial_per_key(study), len(sweep_plan.keys(study))
    done = sum(trial.state == TrialState.COMPLETE for trial in chosen.values())
    running = "; ".join(f"{key.replace('|', ' seed ')} {state}" for key, state in sorted(progress.items()))
    return (
        done,
        f"sweep {sweep_plan.study_name}: {done}/{total} runs done{', running ' + running if running else ''}; "
        f"{lines.time_left(done, total)}",
    )


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
        display.print_results([r.row for r in records], f"sweep {sweep_plan.study_name}", out=str(out))
    display.console.print(
        f"results: {out / store.RESULTS}  ({len(wanted) - len(missing)} of {len(wanted)} runs done)",
        highlight=False,
        soft_wrap=True,
    )
    if missing:
        display.console.print(
            f"{len(missing)} runs did not finish ({', '.join(k.replace('|', ' seed ') for k in missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}); run the same command again to retry them",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    return 0
