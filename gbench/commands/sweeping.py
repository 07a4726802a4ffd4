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

from gbench.analysis.search_budget import SearchSummary
from gbench.analysis.sequential import PROCEDURE
from gbench.commands import _progress
from gbench.commands.tune import close_study_name
from gbench.config import device_for
from gbench.errors import GbenchError
from gbench.results import display, store
from gbench.secrets import mask
from gbench.studies import workers as studylib
from gbench.studies.storage import shown_url
from gbench.studies.sweep import search
from gbench.studies.sweep.objective import Sweeper
from gbench.studies.sweep.plan import Plan, plan, trial_per_key
from gbench.studies.sweep.progress import progress_table, sweep_records
from gbench.studies.sweep.sweep import open_study, run_worker
from gbench.training.batch import population_choice
from gbench.training.runner import DataCache


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
        worker_plan = plan(**spec["plan"])
        if worker_plan.suite.search is not None:  # a search suite: this phase's searches, or the retrain of their bests
            searches = search.open_searches(worker_plan)
            if spec.get("phase") == "search":
                search.work_searches(searches)
                return
            worker_plan = search.retrain_plan(worker_plan, searches)
        shared, _ = open_study(worker_plan)
        run_worker(worker_plan, shared, Sweeper(worker_plan, on_note=note))
    except GbenchError as error:
        sys.stderr.write(f"gbench sweep worker: error: {mask(str(error))}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:  # a bug: its traceback, masked as cli.main masks the parent's (the plan holds the --storage URL)
        import traceback

        sys.stderr.write(mask(traceback.format_exc()))
        sys.exit(1)


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
    out = store.ensure_writable(sweep_plan.out)
    threads = max(
        1, (os.cpu_count() or 1) // jobs
    )  # with --jobs N: jobs-1 spawned processes and this one, each with cores/jobs torch threads
    cache = DataCache()
    for line in sweep_plan.notes:  # e.g. no extractor fits a variant's own data: said before any training
        note(line)
    for run in sweep_plan.runs:  # missing data fails here, before any worker starts
        cache.split(sweep_plan.registry, run.config.dataset, "train", run.config.data_root, run.config.train_limit)
        if run.config.eval.samples > 0:
            cache.split(sweep_plan.registry, run.config.dataset, "test", run.config.data_root, None)
    searches: list[search.CandidateSearch] = []
    if sweep_plan.suite.search is not None:  # phase 1: tune every candidate; then retrain each best (below)
        searches = search.open_searches(sweep_plan, cache)
        search_phase(sweep_plan, searches, jobs, threads, devices, level)
        sweep_plan = search.retrain_plan(sweep_plan, searches)
        dropped = [s.variant for s in searches if s.variant not in {v.name for v in sweep_plan.suite.variants}]
        if dropped:
            note(f"not retrained, no search trial of theirs finished with a FID: {', '.join(dropped)}")
    if (
        jobs > 1
    ):  # this process's runs take them where the suite gives none (a copy of the plan: a run config is never changed in place)
        runs = [
            dataclasses.replace(run, config=dataclasses.replace(run.config, threads=run.config.threads or threads))
            for run in sweep_plan.runs
        ]
        sweep_plan = dataclasses.replace(sweep_plan, runs=runs)
    sweeper = Sweeper(sweep_plan, cache=cache, on_note=note)
    shared, url = open_study(sweep_plan)
    study = shared.study
    if (
        not searches  # a search suite's storage holds its searches' studies beside this one: no typo to guess
        and not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        and (near := close_study_name(shared.storage, sweep_plan.study_name))
    ):
        note(
            f"note: study {sweep_plan.study_name!r} has no finished runs; the storage holds {near!r} (did you mean --study-name {near}?)"
        )
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
    if (
        sweep_plan.population == "auto" and len(sweep_plan.runs) > variants
    ):  # seeds that could share a population: which, and why
        first = sweep_plan.runs[0].config
        display.console.print(
            population_choice(sweep_plan.population, first.device, first.precision)[1], highlight=False, soft_wrap=True
        )

    errors: list[BaseException] = []
    lines = _progress.StatusLines(level, total=len(sweep_plan.runs))
    with display.live(progress_table(sweep_plan, study)) as live:
        workers: list[Any] = []
        if jobs > 1:
            torch.set_num_threads(threads)
            workers = _start_workers(sweep_plan, url, jobs, threads, devices, phase="retrain")
        ended = (
            threading.Event()
        )  # not Thread.is_alive: see gbench.commands.tune.run_workers (a Ctrl-C inside join() breaks it)
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
    summary = search.search_summary(sweep_plan, searches) if searches else None
    return finish(sweep_plan, study, out, write_report, summary)


def _start_workers(
    sweep_plan: Plan, url: str, jobs: int, threads: int, devices: Sequence[str], phase: str
) -> list[multiprocessing.process.BaseProcess]:
    """The --jobs N sweep's N-1 worker processes (this one is worker 0), started on ``phase``: "search" or "retrain"."""
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
    workers: list[multiprocessing.process.BaseProcess] = [
        context.Process(
            target=_worker_process,
            args=({"plan": {**spec_plan, "device": device_of(i + 1)}, "threads": threads, "phase": phase},),
            name=f"gbench-sweep-{i}",
        )
        for i in range(jobs - 1)
    ]
    for worker in workers:
        worker.start()
    return workers


def search_phase(
    sweep_plan: Plan,
    searches: list[search.CandidateSearch],
    jobs: int,
    threads: int,
    devices: Sequence[str],
    level: int = _progress.NORMAL,
) -> None:
    """Phase 1 of a search suite: every candidate's search to its trials, with --jobs N processes, under a live
    table."""
    spec = sweep_plan.suite.search
    assert spec is not None and searches
    url = searches[0].shared.storage.url
    display.console.print(
        f"search {sweep_plan.study_name!r}: {len(searches)} candidates x {spec.trials_for(sweep_plan.quick)} trials "
        f"({spec.sampler} sampler, {spec.pruner} pruner), then each best retrained; studies in {shown_url(url)}",
        highlight=False,
        soft_wrap=True,
    )
    errors: list[BaseException] = []
    interrupt = searches[0].tuner.interrupt  # shared by every candidate's tuner (gbench.studies.sweep.search)
    lines = _progress.StatusLines(level, total=sum(s.trials for s in searches))
    with display.live(search_table(searches)) as live:
        workers = _start_workers(sweep_plan, url, jobs, threads, devices, phase="search") if jobs > 1 else []
        if jobs > 1:
            torch.set_num_threads(threads)
        ended = threading.Event()
        stop = threading.Event()
        thread = threading.Thread(
            target=lambda: _guard(errors, ended, search.work_searches, searches, stop),
            daemon=True,
            name="search-worker",
        )
        thread.start()
        try:
            while not ended.is_set() or any(w.is_alive() for w in workers):
                ended.wait(timeout=1)
                for worker in workers:
                    worker.join(timeout=0.5)
                live.update(search_table(searches))
                if lines.plain:
                    done = sum(studylib.count(s.counted()).done for s in searches)
                    text = f"search {sweep_plan.study_name}: {done}/{lines.total} trials done"
                    lines.update(done, f"{text}; {lines.time_left(done, lines.total)}")
        except KeyboardInterrupt as stopped:
            stop.set()
            interrupt.set()  # this process's trial is given back; the --jobs workers got the Ctrl-C themselves
            from gbench.training import signals

            if isinstance(stopped, signals.Terminated):
                for worker in workers:
                    worker.terminate()
            ended.wait(timeout=60)
            for worker in workers:
                worker.join(timeout=30)
            raise
        live.update(search_table(searches))
    failed = [w.exitcode for w in workers if w.exitcode not in (0, None)]
    if failed:
        errors.append(
            GbenchError(
                f"{len(failed)} of {jobs} search workers failed (exit codes {failed}); see the lines above, fix, "
                "and run the same command again to resume"
            )
        )
    if errors:
        raise errors[0]


def search_table(searches: list[search.CandidateSearch]) -> Any:
    """One row per candidate: trials done of its target, pruned, running, best FID so far, wall time."""
    from rich.table import Table

    table = Table(title="search: every candidate tuned on the same budget", header_style="bold")
    for name in ("candidate", "trials", "pruned", "running", "best FID", "wall s"):
        table.add_column(name, justify="left" if name == "candidate" else "right")
    for candidate in searches:
        counts = studylib.count(candidate.study.get_trials(deepcopy=False))
        best = candidate.best()
        wall = sum(t.wall_seconds for t in candidate.outcomes())
        table.add_row(
            candidate.variant,
            f"{counts.done}/{candidate.trials}",
            str(counts.pruned),
            str(counts.running),
            "-" if best is None else f"{best.values[0]:.2f}",
            f"{wall:.0f}",
        )
    return table


def status_line(
    sweep_plan: Plan, study: optuna.Study, progress: dict[str, str], lines: _progress.StatusLines
) -> tuple[int, str]:
    """Runs done, and the progress table's one-line form for a log: done, running (with their steps), time left."""
    chosen, total = trial_per_key(study), len(sweep_plan.keys(study))
    done = sum(trial.state == TrialState.COMPLETE for trial in chosen.values())
    running = "; ".join(f"{key.replace('|', ' seed ')} {state}" for key, state in sorted(progress.items()))
    return (
        done,
        f"sweep {sweep_plan.study_name}: {done}/{total} runs done{', running ' + running if running else ''}; {lines.time_left(done, total)}",
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


def finish(
    sweep_plan: Plan, study: optuna.Study, out: Path, write_report: bool = True, searched: SearchSummary | None = None
) -> int:
    chosen = trial_per_key(study)
    wanted = sweep_plan.keys(study)
    missing = [key for key in wanted if key not in chosen or chosen[key].state != TrialState.COMPLETE]
    records = sweep_records(sweep_plan, study, out)
    if records and write_report:
        from gbench.report import build as report  # here: it imports matplotlib, which a worker never needs

        for table in report.report_tables(records, sweep_plan.suite):
            display.stdout.print(table)
        path = report.write_report(records, out / "report", sweep_plan.suite, search=searched)
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
            f"{len(missing)} runs did not finish ({', '.join(k.replace('|', ' seed ') for k in missing[:5])}{' ...' if len(missing) > 5 else ''}); run the same command again to retry them",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    return 0
