"""Phase 1 of a search suite from the command line: every candidate's search to its trials, with --jobs worker
processes, under a live table of the searches."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import torch

from gbench.commands import _progress
from gbench.commands.sweep_workers import guard, start_workers, supervise
from gbench.results import display
from gbench.studies import workers as studylib
from gbench.studies.storage import shown_url
from gbench.studies.sweep import search
from gbench.studies.sweep.plan import Plan


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
        workers = start_workers(sweep_plan, url, jobs, threads, devices, phase="search") if jobs > 1 else []
        if jobs > 1:
            torch.set_num_threads(threads)
        ended = threading.Event()
        stop = threading.Event()
        thread = threading.Thread(
            target=lambda: guard(errors, ended, search.work_searches, searches, stop),
            daemon=True,
            name="search-worker",
        )
        thread.start()

        def tick() -> None:
            live.update(search_table(searches))
            if lines.plain:
                done = sum(studylib.count(s.counted()).done for s in searches)
                text = f"search {sweep_plan.study_name}: {done}/{lines.total} trials done"
                lines.update(done, f"{text}; {lines.time_left(done, lines.total)}")

        def give_back() -> None:  # this process's trial is handed back, and no new one is started
            stop.set()
            interrupt.set()

        errors += supervise(workers, ended, tick, give_back, jobs, "search")
        live.update(search_table(searches))
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
