"""Keyed trials claimed in groups: a sweep worker takes all the waiting seeds of a variant at once.

:func:`gbench.studies.workers.work` claims one trial at a time. A sweep that trains
the seeds of a variant as one population (:mod:`gbench.training.population.run`) wants the
whole group: :func:`claim_group` claims a first trial exactly as
:func:`gbench.studies.workers.claim` does (the oldest WAITING one), then claims, by id,
the other WAITING trials of its group wherever they stand in the queue (a
retry is enqueued at the end), up to ``limit`` trials. Each claim is the
storage's atomic WAITING-to-RUNNING update and is checked by the keyed rule,
so a (variant, seed) runs once however many workers race; a trial another
worker claimed first is simply not in the group, and nothing else in the
queue is touched or reordered, so racing workers never split a variant into
more populations than there are workers that reached for it.

A group's trials share one fate: every one beats while the group trains,
each gets its own value when it ends, and when the worker is interrupted or
dies every one is failed and re-enqueued (by this worker, or by whoever
notices the dead process or stale heartbeat), to be claimed again, usually
as a group, since their retries are enqueued together.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Sequence

from optuna.trial import FrozenTrial, Trial, TrialState

from gbench.studies import liveness
from gbench.studies import workers as studylib
from gbench.studies.shared_study import SharedStudy


def _claim_keyed(shared: SharedStudy, waiting: FrozenTrial) -> Trial | None:
    """Claim one more WAITING trial of the group, checked by the keyed rule; None when another worker took it or its
    key."""
    trial = shared.claim_waiting(waiting)
    if trial is None:
        return None
    shared.record_heartbeat(shared.trial_id(trial.number))
    trial.set_user_attr(studylib.WORKER_ATTR, liveness.worker_identity(trial.number))
    if studylib.taken_by_another(
        trial, shared.study.get_trials(deepcopy=False)
    ):  # a copy of a key enqueued twice by racing top-ups
        studylib.stand_down(shared.study, trial)
        return None
    return trial


def claim_group(shared: SharedStudy, group_of: Callable[[str], str], limit: int) -> list[Trial] | str | None:
    """Up to ``limit`` WAITING trials of one group, ``WAIT``, or None when the sweep is done.

    The first is claimed by ``ask()`` and the rest by id right after it, in
    this thread, with no parameter suggested in between (what
    :meth:`~gbench.studies.shared_study.SharedStudy.claim_waiting` counts on).
    """
    first = studylib.claim(shared, target=None)
    if first is None or isinstance(first, str):
        return first
    group = group_of(str(first.user_attrs[studylib.KEY_ATTR]))
    trials = [first]
    for waiting in sorted(
        shared.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)), key=lambda t: t.number
    ):
        if len(trials) >= limit:
            break
        key = waiting.user_attrs.get(studylib.KEY_ATTR)
        if key is None or studylib.is_surplus(waiting) or group_of(str(key)) != group:
            continue
        trial = _claim_keyed(shared, waiting)
        if trial is not None:
            trials.append(trial)
    return trials


def run_group(shared: SharedStudy, trials: list[Trial], objective: Callable[[list[Trial]], Sequence[float]]) -> None:
    """Run claimed trials together under heartbeats; record each one's value, or release or fail them all."""
    study = shared.study
    with contextlib.ExitStack() as beats:
        for trial in trials:
            beats.enter_context(studylib.Heartbeat(shared, trial))
        try:
            values = list(objective(trials))
        except (studylib.Interrupted, KeyboardInterrupt):
            for trial in trials:
                with contextlib.suppress(Exception):
                    shared.fail_and_retry(trial.number)
            raise
        except BaseException as error:
            for trial in trials:
                with contextlib.suppress(Exception):
                    trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:500])
                    study.tell(trial, state=TrialState.FAIL)
            raise
    for trial, value in zip(trials, values):
        study.tell(trial, math.inf if value is None or math.isnan(value) else float(value))


def work_groups(
    shared: SharedStudy,
    objective: Callable[[list[Trial]], Sequence[float]],
    group_of: Callable[[str], str],
    limit: int,
    stop: threading.Event | None = None,
    poll: float = 1.0,
) -> int:
    """:func:`gbench.studies.workers.work` for keyed trials taken in groups; how many trials this worker ran."""
    ran = 0
    while not (stop is not None and stop.is_set()):
        studylib.reclaim(shared)
        trials = claim_group(shared, group_of, limit)
        if trials is None:
            break
        if isinstance(trials, str):  # WAIT
            studylib.pause(stop, poll)
            continue
        run_group(shared, trials, objective)
        ran += len(trials)
    return ran
