"""Optuna plumbing shared by ``gbench tune`` and ``gbench sweep``.

- :func:`gbench.studies.storage.open_storage`: where the study lives.
- :func:`gbench.studies.opening.create_or_load`: one process creates a study, every other one loads
  it (``DuplicatedStudyError`` is the normal case, not an error); either way
  it comes with the storage it was opened on (:class:`~gbench.studies.shared_study.SharedStudy`).
- :func:`work`: the worker loop. Several threads, processes or machines may
  run it on one study; trials are claimed one at a time and the rules below
  make the outcome exact.

Exactness. Trial numbers are handed out by the storage one at a time, under a
lock on the study row, so they totally order the trials. A worker first
claims a trial (``study.ask()``: it pops a WAITING one atomically, or creates
a new one), *then* checks its claim:

- counted mode (tune, ``target=N``): the claim holds when fewer than N trials
  with a lower number are COMPLETE, PRUNED, RUNNING or WAITING. Otherwise it
  is surplus: marked FAIL with the user attr ``gbench:surplus`` and never run.
  Two workers that both saw 9 of 10 claim trials 9 and 10; trial 10 sees
  trial 9 and stands down. Suppose more than N trials ended COMPLETE or
  PRUNED: the highest-numbered of them saw all the others (lower numbers,
  never failed) when it checked, so it would have stood down. Hence at most
  N; and workers do not leave while the count is below N and a trial is
  still in flight (it may yet fail), so exactly N.
- keyed mode (sweep): only WAITING trials, each carrying a ``key`` user attr
  (variant and seed), are run. A claim stands down when another trial with
  the same key is COMPLETE, or RUNNING with a lower number, so a key that was
  enqueued twice (two sweeps resuming at once) is still run once.

On a SQLite file (workers on one machine) a worker also counts and claims
under a file lock (``SharedStudy.claiming``), so in counted mode no claim has to
stand down (in keyed mode a key enqueued twice still does).

Dead workers. On an RDB storage every running trial records a heartbeat;
a trial whose heartbeat is older than the grace period is failed by the next
worker that looks, and ``RetryHeartbeatStaleTrialCallback`` enqueues a WAITING
copy (same parameters and user attrs), which the count above treats like any
other trial. A worker also records who runs each trial (host, pid, process
start time): a trial whose process is gone on this very host is failed at
once, without waiting for the grace period (a local sweep resumed after a
kill).

Ctrl-C. A worker whose stop event is set raises :class:`Interrupted` from
inside its running trial (at the trial's next logged step); :func:`run_one`
then releases the trial: FAIL, plus a WAITING retry, as for a dead worker, so
that the next run of the same command runs it again and counts it once.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from gbench.studies import liveness
from gbench.studies.shared_study import SharedStudy

WORKER_ATTR = "gbench:worker"  # "host|pid|start|number" of the process running the trial
SURPLUS_ATTR = "gbench:surplus"  # a claimed trial that stood down (never run, never counted)
KEY_ATTR = "key"  # keyed mode: what identifies a trial's work ("variant|seed")
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
warnings.filterwarnings("ignore", message=".*Heartbeat of storage is supposed to be used with Study.optimize.*")


# ---------------------------------------------------------------------------
# Dead workers' trials (gbench.studies.liveness tells who is dead)
# ---------------------------------------------------------------------------


def reclaim(shared: SharedStudy) -> list[int]:
    """Fail the running trials of dead workers and enqueue their retries; their numbers."""
    study = shared.study
    failed: list[int] = []
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in running:
        if liveness.dead_here(trial, WORKER_ATTR) and shared.fail_and_retry(
            trial.number
        ):  # False: another worker got there first
            failed.append(trial.number)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # heartbeat older than the grace period: any host
    others = {t.number for t in running} - set(failed)
    if others:
        failed += [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number in others]
    return failed


class Heartbeat:
    """Record a running trial's heartbeat every interval, from a thread."""

    def __init__(self, shared: SharedStudy, trial: Trial):
        self.shared, self.trial = shared, trial
        self.trial_id = shared.trial_id(trial.number)
        self.interval = shared.heartbeat_interval
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self.interval:
            self.shared.record_heartbeat(self.trial_id)
            self.thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{self.trial.number}")
            self.thread.start()
        return self

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a lost connection: the next beat tries again
                self.shared.record_heartbeat(self.trial_id)

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=10)


# ---------------------------------------------------------------------------
# Counting and claiming
# ---------------------------------------------------------------------------


def is_surplus(trial: FrozenTrial) -> bool:
    return bool(trial.user_attrs.get(SURPLUS_ATTR))


@dataclass
class Counts:
    complete: int = 0
    pruned: int = 0
    running: int = 0
    waiting: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        return self.complete + self.pruned


def count(trials: Sequence[FrozenTrial]) -> Counts:
    counts = Counts()
    for trial in trials:
        if is_surplus(trial):
            continue
        if trial.state == TrialState.COMPLETE:
            counts.complete += 1
        elif trial.state == TrialState.PRUNED:
            counts.pruned += 1
        elif trial.state == TrialState.RUNNING:
            counts.running += 1
        elif trial.state == TrialState.WAITING:
            counts.waiting += 1
        elif trial.state == TrialState.FAIL:
            counts.failed += 1
    return counts


WAIT = "wait"  # claim(): nothing to take now, but the work is not finished either


def stand_down(study: optuna.Study, trial: Trial) -> None:
    """A claim this worker will not run (its key is another's): a surplus FAIL, never counted and never retried."""
    trial.set_user_attr(SURPLUS_ATTR, True)
    study.tell(trial, state=TrialState.FAIL)


def claim(shared: SharedStudy, target: int | None = None) -> Trial | str | None:
    """The next trial this worker should run, ``WAIT``, or None when all is done.

    ``target``: counted mode (run until exactly ``target`` trials are COMPLETE
    or PRUNED); None: keyed mode (run the enqueued WAITING trials).
    """
    with shared.claiming():  # on a SQLite file, count and claim as one step: no claim has to stand down
        return _claim(shared, target)


def _claim(shared: SharedStudy, target: int | None) -> Trial | str | None:
    study = shared.study
    trials = study.get_trials(deepcopy=False)
    counts = count(trials)
    if target is not None:
        if counts.done >= target:
            return None
        if not counts.waiting and counts.done + counts.running >= target:
            return WAIT  # enough in flight; one may still fail and need replacing
    else:
        if not counts.waiting:
            return WAIT if counts.running else None
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # "Heartbeat of storage is supposed to be used with Study.optimize": we beat ourselves
        trial = study.ask()
    shared.record_heartbeat(
        shared.trial_id(trial.number)
    )  # from the first moment: a worker dying right here is still detected
    trial.set_user_attr(WORKER_ATTR, liveness.worker_identity(trial.number))
    trials = study.get_trials(deepcopy=False)
    if target is not None:
        ahead = sum(
            1
            for t in trials
            if t.number < trial.number
            and not is_surplus(t)
            and t.state in (*COUNTED, TrialState.RUNNING, TrialState.WAITING)
        )
        if ahead >= target:
            stand_down(study, trial)
            return WAIT
        return trial
    if trial.user_attrs.get(KEY_ATTR) is None or taken_by_another(
        trial, trials
    ):  # keyless: no WAITING trial was left, ask() made a fresh one
        stand_down(study, trial)
        return WAIT
    return trial


def taken_by_another(trial: Trial, trials: Sequence[FrozenTrial]) -> bool:
    """The keyed rule: another trial with this one's key is COMPLETE, or RUNNING with a lower number."""
    key = trial.user_attrs.get(KEY_ATTR)
    return any(
        other.number != trial.number
        and not is_surplus(other)
        and other.user_attrs.get(KEY_ATTR) == key
        and (other.state == TrialState.COMPLETE or (other.state == TrialState.RUNNING and other.number < trial.number))
        for other in trials
    )


class Interrupted(Exception):
    """Raised inside a running trial when its worker was asked to stop (Ctrl-C).

    The objective raises it (tune's and sweep's do, at the next logged step,
    once their stop event is set); :func:`run_one` releases the trial (FAIL
    and a WAITING retry) and lets it propagate, which ends the worker.
    """


def run_one(shared: SharedStudy, trial: Trial, objective: Callable[[Trial], float | Sequence[float]]) -> TrialState:
    """Run a claimed trial under a heartbeat and record how it ended.

    ``objective`` raises ``optuna.TrialPruned`` to prune and
    :class:`Interrupted` to give the trial back; any other exception fails
    the trial and propagates (a GbenchError stops the worker with its one line).
    """
    study = shared.study
    with Heartbeat(shared, trial):
        try:
            values = objective(trial)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
            return TrialState.PRUNED
        except (
            Interrupted,
            KeyboardInterrupt,
        ):  # asked to stop, or Ctrl-C / SIGTERM (gbench/training/signals.py): the run saved its state
            with contextlib.suppress(Exception):
                shared.fail_and_retry(trial.number)  # no user attr set: the retry copies them all
            raise
        except BaseException as error:
            with contextlib.suppress(Exception):
                trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:500])
                study.tell(trial, state=TrialState.FAIL)
            raise
    values = [values] if isinstance(values, (int, float)) else list(values)
    values = [math.inf if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values]
    study.tell(trial, values)
    return TrialState.COMPLETE


def pause(stop: threading.Event | None, seconds: float) -> None:
    """Wait before claiming again; a set stop event ends the wait at once."""
    if stop is not None:
        stop.wait(seconds)
    else:
        time.sleep(seconds)


def work(
    shared: SharedStudy,
    objective: Callable[[Trial], float | Sequence[float]],
    target: int | None = None,
    stop: threading.Event | None = None,
    poll: float = 1.0,
    on_change: Callable[[], None] | None = None,
) -> int:
    """The worker loop: claim, run, repeat until the study's work is done.

    Returns how many trials this worker ran (pruned included).
    """
    ran = 0
    while not (stop is not None and stop.is_set()):
        if reclaim(shared) and on_change:
            on_change()
        trial = claim(shared, target)
        if trial is None:
            break
        if isinstance(trial, str):  # WAIT
            pause(stop, poll)
            continue
        if on_change:
            on_change()
        run_one(shared, trial, objective)
        ran += 1
        if on_change:
            on_change()
    return ran


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Every trial that is not a stood-down surplus claim, by number."""
    return sorted((t for t in study.get_trials(deepcopy=False) if not is_surplus(t)), key=lambda t: t.number)
