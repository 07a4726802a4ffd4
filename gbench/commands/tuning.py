"""``gbench tune``'s workers and their live table: threads and the terminal are the command's, not the library's.

:mod:`gbench.commands.tune` is the command (options in, the best trials and a ``gbench run`` line out); this module
runs the worker threads on the opened study until it has its trials, under a live table of them (or, in a log, its
one-line form), and gives every running trial back on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

from gbench.commands import _progress

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from gbench.studies.shared_study import SharedStudy
    from gbench.studies.tune.tune import TuneOptions, Tuner, TuneStudy

STOP_WAIT = 60  # seconds Ctrl-C waits for running trials to reach a step and give themselves back


def optimize(opened: TuneStudy, options: TuneOptions, level: int = _progress.NORMAL) -> tuple[list[FrozenTrial], int]:
    """Run the workers until the study has ``options.trials`` trials; (its counted trials, how many ran here).

    trials.csv is written whatever happens, Ctrl-C included.
    """
    from gbench.studies import workers as studylib
    from gbench.studies.tune.trials import write_trials_csv

    try:
        ran = run_workers(opened.shared, opened.tuner, options.trials, options.n_jobs, level)
    finally:
        trials = studylib.counted_trials(opened.study)
        write_trials_csv(opened.tuner.out / "trials.csv", trials, opened.tuner.objectives)
    return trials, ran


def run_workers(shared: SharedStudy, tuner: Tuner, target: int, n_jobs: int, level: int = _progress.NORMAL) -> int:
    """n_jobs worker threads on one study, under a live table of its trials.

    Ctrl-C (KeyboardInterrupt in this, the main thread) sets the tuner's
    interrupt: each running trial raises :class:`gbench.studies.workers.Interrupted` at
    its next logged step and is given back (FAIL plus a WAITING retry, counted
    once when the study resumes); then the KeyboardInterrupt goes on up.
    """
    from gbench.results import display
    from gbench.studies import workers as studylib
    from gbench.studies.tune.trials import trial_table, write_trials_csv

    study = shared.study
    stop = threading.Event()
    errors: list[BaseException] = []
    ran = [0] * n_jobs
    csv_path = tuner.out / "trials.csv"

    def on_change() -> None:
        with tuner.lock:
            trials = studylib.counted_trials(study)
            write_trials_csv(csv_path, trials, tuner.objectives)

    # Each worker says when it has ended. Not Thread.join/is_alive: a KeyboardInterrupt that lands inside join()
    # leaves is_alive() False for a thread that still runs (CPython 3.11, gh-90882), and Ctrl-C must wait for them.
    ended = [threading.Event() for _ in range(n_jobs)]

    def worker(index: int) -> None:
        tuner.worker.index = index  # picks this worker's device (Tuner.device)
        try:
            ran[index] = studylib.work(shared, tuner, target=target, stop=stop, on_change=on_change)
        except studylib.Interrupted:
            pass  # the main thread is raising KeyboardInterrupt already
        except BaseException as error:  # reported by the main thread
            errors.append(error)
            stop.set()
        finally:
            ended[index].set()

    def render() -> Any:
        trials = studylib.counted_trials(study)
        counts = studylib.count(trials)
        title = f"gbench tune: {counts.done}/{target} done ({counts.pruned} pruned), {counts.running} running"
        with tuner.lock:
            progress = dict(tuner.progress)
        return trial_table(trials, tuner.objectives, title, progress)

    lines = _progress.StatusLines(level, total=target)

    def status() -> None:  # the live table's one-line form, for a log
        counts = studylib.count(studylib.counted_trials(study))
        with tuner.lock:
            running = "; ".join(f"trial {number} {note}" for number, note in sorted(tuner.progress.items()))
        best = ""
        if len(tuner.objectives) == 1 and counts.done:
            with contextlib.suppress(ValueError):  # no complete trial yet (all pruned)
                best = f", best {tuner.objectives[0]} {study.best_value:.4g} (trial {study.best_trial.number})"
        running = f", running {running}" if running else ""
        text = f"gbench tune: {counts.done}/{target} trials done ({counts.pruned} pruned){best}{running}"
        lines.update(counts.done, f"{text}; {lines.time_left(counts.done, target)}")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True, name=f"tune-worker-{i}") for i in range(n_jobs)]
    try:
        with display.live(render()) as live:
            for thread in threads:
                thread.start()
            last = 0.0
            while not all(event.is_set() for event in ended):
                time.sleep(0.5)
                if time.monotonic() - last > 2:
                    live.update(render())
                    if lines.plain:
                        status()
                    last = time.monotonic()
            live.update(render())
    except (
        BaseException
    ):  # Ctrl-C, or the storage lost here: no thread may be left training when the process exits (SIGABRT)
        stop.set()
        tuner.interrupt.set()
        deadline = time.monotonic() + STOP_WAIT
        for event in ended:
            event.wait(timeout=max(0.0, deadline - time.monotonic()))
        raise
    if errors:
        raise errors[0]
    return sum(ran)
