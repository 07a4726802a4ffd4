"""A study together with the storage object gbench opened it on, for workers that drive trials themselves.

gbench runs trials through ``study.ask()``/``study.tell()`` from its own
worker threads (so that trials are counted exactly and claimed by workers on
other machines, see :mod:`gbench.studies.workers`), not through ``Study.optimize``.
Beyond ask and tell, a worker records heartbeats, claims one chosen WAITING
trial, and fails a trial and enqueues its retry. Optuna's ``Study`` offers
none of these and keeps its storage private, so gbench keeps the storage that
:func:`gbench.studies.storage.open_storage` returned next to the study and uses
only the public methods of ``RDBStorage``, of ``Study`` and of the retry
callback. Trials are named by number; the storage's id for a number comes
from ``get_trial_id_from_study_id_trial_number``.
"""

from __future__ import annotations

import contextlib
import fcntl
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, Trial, TrialState

from gbench.errors import GbenchError
from gbench.studies.storage import shown_url


class SharedStudy:
    """A study and the storage it lives in; what a worker does to trials beyond ask and tell."""

    def __init__(self, study: optuna.Study, storage: RDBStorage):
        self.study = study
        self.storage = storage
        try:
            self.study_id = storage.get_study_id_from_name(study.study_name)
        except KeyError:
            raise GbenchError(
                f"study {study.study_name!r} is not in the storage {shown_url(storage.url)!r}; "
                "open the study on the storage it was created in"
            ) from None
        # Seconds between heartbeats, or None: gbench's storages always keep them (open_storage),
        # a bare RDBStorage does not.
        self.heartbeat_interval = storage.get_heartbeat_interval()
        self.claim_lock = claim_lock_file(storage.url)

    @contextlib.contextmanager
    def claiming(self) -> Iterator[None]:
        """Hold this study's claim lock: one worker at a time, across threads and processes, counts and claims.

        Only on a SQLite file, whose workers all run on this machine. There a
        worker counts the trials and claims one as a single step, so two
        workers never both claim the last missing trial and one of them never
        has to stand down (a surplus FAIL left in the study). Workers on a
        database server have no common file to lock; they keep the
        check-after-claim rule of :func:`gbench.studies.workers.claim`.
        """
        if self.claim_lock is None:
            yield
            return
        with open(self.claim_lock, "a") as handle:  # opened per claim: flock excludes other threads of this process too
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def trial_id(self, number: int) -> int:
        """The storage's id of trial ``number``, which the storage's methods take."""
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def frozen(self, number: int) -> FrozenTrial:
        """Trial ``number`` as the storage has it now (user attributes set a moment ago included)."""
        return self.storage.get_trial(self.trial_id(number))

    def record_heartbeat(self, trial_id: int) -> None:
        """Mark a running trial alive now (nothing on a storage without heartbeats)."""
        if self.heartbeat_interval:
            self.storage.record_heartbeat(trial_id)

    def claim_waiting(self, waiting: FrozenTrial) -> Trial | None:
        """Claim this WAITING trial (RUNNING, as ``study.ask()`` does for the oldest); None when another worker got it
        first.

        The storage's WAITING-to-RUNNING update is atomic (``ask()`` relies on
        it too), so of two workers reaching for one trial exactly one gets it.

        ``ask()`` also empties its thread's cache of the study's trials, which
        only samplers that learn from past trials read (TPE, CMA-ES, QMC, GP,
        GA). It need not be emptied here: gbench claims by id only right after
        an ``ask()`` in the same thread with no parameter suggested in between
        (:func:`gbench.studies.groups.claim_group`), so the cache is empty
        already, and the sweep's study samples nothing (RandomSampler, no
        parameters). Counting and claiming read ``study.get_trials``, which
        never uses that cache.
        """
        trial_id = self.trial_id(waiting.number)
        try:
            if not self.storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                return None
        except optuna.exceptions.UpdateFinishedTrialError:
            return None
        return optuna.trial.Trial(self.study, trial_id)

    def fail_and_retry(self, number: int) -> bool:
        """Fail running trial ``number`` and enqueue its WAITING retry, as Optuna does for a stale heartbeat.

        The retry is made by the storage's own retry callback (same parameters
        and user attributes, and the link to the original that
        :func:`retried_from` reads), so a retry gbench makes and one Optuna
        makes for a stale heartbeat look alike. False when the trial had
        already finished: another worker failed or finished it first.
        """
        try:
            self.study.tell(number, state=TrialState.FAIL)
        except (
            ValueError,
            optuna.exceptions.UpdateFinishedTrialError,
        ):  # ValueError: "Cannot tell a FAIL trial"; the other: lost the race inside tell
            return False
        retry = self.storage.get_heartbeat_stale_trial_callback()
        if retry is not None:
            retry(self.study, self.frozen(number))
        return True


def claim_lock_file(url: str) -> Path | None:
    """The lock file next to a SQLite study file (.FILE.claims.lock, hidden as OUT's .results.lock is); None for a
    database server."""
    import sqlalchemy.engine

    parsed = sqlalchemy.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database).resolve()
    return path.with_name(f".{path.name}.claims.lock")


def retried_from(trial: FrozenTrial) -> int | None:
    """The number of the first trial of which this one is a retry; None for an original."""
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", optuna.exceptions.ExperimentalWarning
        )  # experimental since Optuna 2.8, unchanged since
        return RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)
