"""Running a planned sweep from the command line: --jobs worker processes, the live progress table,
SIGTERM passed on to the workers, the report and the exit code.

The library (:mod:`gbench.studies.sweep.sweep`) plans the study and works its
trials; owning processes and the terminal is the command's job.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from gbench.analysis import curves
from gbench.analysis.search_budget import SearchSummary
from gbench.analysis.sequential import PROCEDURE
from gbench.commands import _progress
from gbench.commands.searching import search_phase
from gbench.commands.sweep_workers import checked, guard, note, start_workers, supervise
from gbench.errors import GbenchError
from gbench.results import display, store
from gbench.studies.shared_study import SharedStudy
from gbench.studies.storage import check_server, close_study_name, connection_kept, shown_url
from gbench.studies.sweep import search
from gbench.studies.sweep.objective import Sweeper
from gbench.studies.sweep.plan import Plan, trial_per_key
from gbench.studies.sweep.progress import progress_table, sweep_records
from gbench.studies.sweep.sweep import open_study, run_worker
from gbench.training.batch import population_choice
from gbench.training.runner import DataCache


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
    cache = DataCache()
    for run in sweep_plan.runs:  # missing data fails here, before any check reads it and any worker starts
        cache.split(sweep_plan.registry, run.config.dataset, "train", run.config.data_root, run.config.train_limit)
        if run.config.eval.samples > 0:
            cache.split(sweep_plan.registry, run.config.dataset, "test", run.config.data_root, None)
    sweep_plan = checked(sweep_plan, cache)
    if not sweep_plan.quick:  # a quick smoke test evaluates once; its curve claims go untested by design
        sweep_plan.notes.extend(_curve_claim_notes(sweep_plan, cache))
    for line in sweep_plan.notes:  # e.g. no extractor fits a variant's data: said before any training
        note(line)
    check_server(sweep_plan.storage_url)
    out = store.ensure_writable(sweep_plan.out)  # only now: a bad value above leaves no folder behind
    searches: list[search.CandidateSearch] = []
    if sweep_plan.suite.search is not None:  # phase 1: tune every candidate; then retrain each best (below)
        with connection_kept(sweep_plan.storage_url or f"sqlite:///{sweep_plan.default_storage}"):
            searches = search.open_searches(sweep_plan, cache)
            search_phase(sweep_plan, searches, jobs, threads, devices, level)
            sweep_plan = search.retrain_plan(sweep_plan, searches)
        dropped = [s.variant for s in searches if s.variant not in {v.name for v in sweep_plan.suite.variants}]
        if dropped:
            note(f"not retrained, no search trial of theirs finished with a FID: {', '.join(dropped)}")
    if jobs > 1:
        # this process's runs take them where the suite gives none (a copy of the plan: a config never changes in place)
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
        summary = search.search_summary(sweep_plan, searches) if searches else None
        return finish(sweep_plan, study, out, write_report, summary)


def _curve_claim_notes(sweep_plan: Plan, cache: DataCache) -> list[str]:
    """A ``falls_over_last = K`` claim whose variant evaluates fewer than 2 K times: said before training, since the
    report can only leave it untested (gbench.analysis.curves)."""
    lines = []
    for claim in sweep_plan.suite.claims:
        if claim.relation != "falls_over_last":
            continue
        run = next((r for r in sweep_plan.runs if r.variant == claim.setting), None)
        if run is None or run.config.eval.samples == 0:
            continue
        images, _ = cache.split(
            sweep_plan.registry, run.config.dataset, "train", run.config.data_root, run.config.train_limit
        )
        line = curves.window_note(
            claim.text, run.variant, int(float(claim.other)), run.config.total_steps(len(images)), run.config.eval.every
        )
        if line is not None and line not in lines:
            lines.append(line)
    return lines


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
            workers = start_workers(sweep_plan, url, jobs, threads, devices, phase="retrain")
        ended = threading.Event()
        thread = threading.Thread(
            target=lambda: guard(errors, ended, run_worker, sweep_plan, shared, sweeper),
            daemon=True,
            name="sweep-worker",
        )
        thread.start()

        def tick() -> None:
            with sweeper.lock:
                progress = dict(sweeper.progress)
            live.update(progress_table(sweep_plan, study, progress))
            if lines.plain:
                lines.update(*status_line(sweep_plan, study, progress, lines))

        # this process's run is given back on Ctrl-C, SIGTERM or an error
        errors += supervise(workers, ended, tick, sweeper.interrupt.set, jobs, "sweep")
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


def finish(
    sweep_plan: Plan, study: optuna.Study, out: Path, write_report: bool = True, searched: SearchSummary | None = None
) -> int:
    chosen = trial_per_key(study)
    wanted = sweep_plan.keys(study)
    missing = [key for key in wanted if key not in chosen or chosen[key].state != TrialState.COMPLETE]
    records = sweep_records(sweep_plan, study, out)
    if records and write_report:
        from gbench.report import build as report  # here: it imports matplotlib, which a worker never needs

        path = report.write_report(
            records,
            out / "report",
            sweep_plan.suite,
            registry=sweep_plan.registry,
            search=searched,
            show=display.stdout.print,
        )
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
