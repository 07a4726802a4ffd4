"""Keyed trials claimed in groups: a sweep worker takes all the waiting seeds of a variant at once.

:func:`gbench.study.work` claims one trial at a time. A sweep that trains
the seeds of a variant as one population (:mod:`gbench.poprun`) wants the
whole group: :func:`work_groups` claims a first trial exactly as
:func:`gbench.study.claim` does, then keeps asking while the oldest WAITING
trial belongs to the same group, up to ``limit`` trials. Each trial is still
popped by ``study.ask()`` (atomic in the storage) and checked by the keyed
rule, so a (variant, seed) runs once however many workers race; when another
worker takes the trial this one expected, ``ask`` hands over the next group's
first trial, which goes straight back (a surplus FAIL, never counted, plus a
WAITING copy), and the group trains with what it has.

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
import warnings
from collections.abc import Callable, Sequence

import optuna
from optuna.trial import Trial, TrialState

from gbench import liveness, optuna_private
from gbench import study as studylib


def _next_waiting_key(study: optuna.Study) -> str | None:
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    if not waiting:
        return None
    oldest = min(waiting, key=lambda t: t.number)  # what ask() pops next
    key = oldest.user_attrs.get(studylib.KEY_ATTR)
    return None if key is None else str(key)


def _ask_keyed(study: optuna.Study) -> Trial | None:
    """One more claim, checked by the keyed rule; None when it stood down."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial = study.ask()
    optuna_private.record_heartbeat(study, trial)
    trial.set_user_attr(studylib.WORKER_ATTR, liveness.worker_identity(trial.number))
    if trial.user_attrs.get(studylib.KEY_ATTR) is None or studylib.taken_by_another(trial, study.get_trials(deepcopy=False)):
        trial.set_user_attr(studylib.SURPLUS_ATTR, True)
        study.tell(trial, state=TrialState.FAIL)
        return None
    return trial


def claim_group(study: optuna.Study, group_of: Callable[[str], str], limit: int) -> list[Trial] | str | None:
    """Up to ``limit`` WAITING trials of one group, ``WAIT``, or None when the sweep is done."""
    first = studylib.claim(study, target=None)
    if first is None or isinstance(first, str):
        return first
    group = group_of(str(first.user_attrs[studylib.KEY_ATTR]))
    trials = [first]
    while len(trials) < limit:
        key = _next_waiting_key(study)
        if key is None or group_of(key) != group:
            break
        trial = _ask_keyed(study)
        if trial is None:
            continue  # a duplicate key stood down; look again
        if group_of(str(trial.user_attrs[studylib.KEY_ATTR])) != group:  # another worker took the one we saw
            studylib.hand_back(study, trial)
            break
        trials.append(trial)
    return trials


def run_group(study: optuna.Study, trials: list[Trial], objective: Callable[[list[Trial]], Sequence[float]]) -> None:
    """Run claimed trials together under heartbeats; record each one's value, or release or fail them all."""
    with contextlib.ExitStack() as beats:
        for trial in trials:
            beats.enter_context(studylib.Heartbeat(study, trial))
        try:
            values = list(objective(trials))
        except (studylib.Interrupted, KeyboardInterrupt):
            for trial in trials:
                with contextlib.suppress(Exception):
                    optuna_private.fail_and_retry(study, trial)
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
    study: optuna.Study,
    objective: Callable[[list[Trial]], Sequence[float]],
    group_of: Callable[[str], str],
    limit: int,
    stop: threading.Event | None = None,
    poll: float = 1.0,
) -> int:
    """:func:`gbench.study.work` for keyed trials taken in groups; how many trials this worker ran."""
    ran = 0
    while not (stop is not None and stop.is_set()):
        studylib.reclaim(study)
        trials = claim_group(study, group_of, limit)
        if trials is None:
            break
        if isinstance(trials, str):  # WAIT
            studylib.pause(stop, poll)
            continue
        run_group(study, trials, objective)
        ran += len(trials)
    return ran
