"""The private parts of Optuna that gbench's workers use, all in this one module.

Why private: gbench runs trials through ``study.ask()``/``study.tell()`` from
its own worker threads (so that trials can be counted exactly and claimed by
workers on other machines, see :mod:`gbench.studies.workers`), not through
``Study.optimize``. Optuna's public API offers heartbeats, failing a dead
worker's trial and a trial's system attributes only inside ``optimize``; out
of it they take the study's storage (``Study._storage``) and a trial's storage
id (``Trial._trial_id``, ``FrozenTrial._trial_id``), and claiming one chosen
WAITING trial rather than the oldest takes the per-thread trial cache that
``ask()`` clears (``Study._thread_local``). Nothing else in gbench touches
these names, so an Optuna upgrade that moves them breaks here only.

Checked against Optuna 5.0.0 (the storage's heartbeat methods are looked up by
name, since Optuna 3.x calls the stale-trial callback ``failed_trial_callback``).
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes (``Study._storage``)."""
    return study._storage


def trial_id(trial: Trial | FrozenTrial) -> int:
    """A trial's id in its storage, which storage methods take instead of its number."""
    return trial._trial_id


def system_attrs(study: optuna.Study, trial: Trial | FrozenTrial) -> dict[str, Any]:
    """A trial's system attributes, e.g. ``failed_trial``: the number of the trial a retry replaces."""
    return dict(storage_of(study).get_trial(trial_id(trial)).system_attrs)


def heartbeat_interval(study: optuna.Study) -> int | None:
    """Seconds between a running trial's heartbeats, or None when the storage keeps none."""
    get_interval = getattr(storage_of(study), "get_heartbeat_interval", None)
    return get_interval() if get_interval is not None else None


def record_heartbeat(study: optuna.Study, trial: Trial | FrozenTrial) -> None:
    """Mark a running trial alive now (only on storages with heartbeats)."""
    if heartbeat_interval(study):
        storage_of(study).record_heartbeat(trial_id(trial))  # type: ignore[attr-defined]


def claim_waiting(study: optuna.Study, waiting: FrozenTrial) -> Trial | None:
    """Claim this WAITING trial (RUNNING, as ``study.ask()`` does for the oldest); None when another worker got it first.

    The storage's WAITING-to-RUNNING update is atomic (``ask()`` relies on it
    too), so of two workers reaching for one trial exactly one gets it.
    """
    storage = storage_of(study)
    try:
        if not storage.set_trial_state_values(trial_id(waiting), state=TrialState.RUNNING):
            return None
    except optuna.exceptions.UpdateFinishedTrialError:
        return None
    study._thread_local.cached_all_trials = None  # as ask() does: the trial list just changed
    return optuna.Trial(study, trial_id(waiting))


def fail_and_retry(study: optuna.Study, trial: Trial | FrozenTrial) -> bool:
    """Fail a running trial and enqueue its WAITING retry, as Optuna does for a stale heartbeat.

    The retry (same parameters and user attributes, system attribute
    ``failed_trial``) is made by the storage's stale-trial callback. False
    when the trial had already finished (another worker got there first).
    """
    storage = storage_of(study)
    try:
        if not storage.set_trial_state_values(trial_id(trial), state=TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    get_callback = getattr(storage, "get_heartbeat_stale_trial_callback", None) or getattr(storage, "get_failed_trial_callback", None)
    callback = get_callback() if get_callback is not None else None
    if callback is not None:
        callback(study, storage.get_trial(trial_id(trial)))
    return True
