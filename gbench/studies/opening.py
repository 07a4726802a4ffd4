"""Opening a study that several workers share: one process creates it, every other one loads it.

Creating is a race that one process wins (``DuplicatedStudyError`` is the normal case, not an error). The creator
marks the study with the command that made it (``gbench:kind``), fills it (``setup``: a sweep enqueues its runs), and
marks it ready; a loader waits for the ready mark, so it never sees a half-filled queue, and refuses a study another
command or another tool made, in one line. The workers then share it (:mod:`gbench.studies.workers`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import optuna

from gbench.errors import GbenchError
from gbench.studies.shared_study import SharedStudy

KIND_ATTR = "gbench:kind"  # "tune" or "sweep": what made the study
READY_ATTR = "gbench:ready"  # set by the creator once the study's initial trials are enqueued


def create_or_load(
    storage: optuna.storages.RDBStorage,
    name: str,
    directions: Sequence[str],
    kind: str,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    setup: Callable[[optuna.Study], None] | None = None,
    ready_timeout: float = 120.0,
) -> tuple[SharedStudy, bool]:
    """Create the study, or load it when another process (or an earlier run) made it.

    The creator calls ``setup(study)`` (e.g. to enqueue a sweep's runs) and
    then marks the study ready; a loader waits for that mark, so it never sees
    a half-filled queue. Returns ``(the study with its storage, created)``.
    """
    directions = list(directions)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            directions=[optuna.study.StudyDirection[d.upper()] for d in directions],
            sampler=sampler,
            pruner=pruner,
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=storage, study_name=name, sampler=sampler, pruner=pruner)
        _check_loaded(study, name, directions, kind, ready_timeout)
        return SharedStudy(study, storage), False
    study.set_user_attr(KIND_ATTR, kind)
    if setup is not None:
        setup(study)
    study.set_user_attr(READY_ATTR, True)
    return SharedStudy(study, storage), True


#: How long a study may lack gbench's kind mark before it counts as another tool's (its creator sets it at once).
FOREIGN_GRACE = 5.0


def check_made_by_gbench(study: optuna.Study, name: str, waited: float = math.inf) -> None:
    """A study another tool made (no ``gbench:kind``) is an error, not a 120-second wait.

    gbench's creator marks the study right after creating it and before it
    enqueues anything, so an unmarked study that already has trials, or is
    still unmarked after FOREIGN_GRACE seconds, is not gbench's.
    """
    if study.user_attrs.get(KIND_ATTR) is not None:
        return
    if waited >= FOREIGN_GRACE or study.get_trials(deepcopy=False):
        raise GbenchError(
            f"study {name!r} in this storage was not made by gbench (it has no {KIND_ATTR!r} mark); "
            "give another --study-name, or a storage of gbench's own"
        )


def _check_loaded(study: optuna.Study, name: str, directions: list[str], kind: str, ready_timeout: float) -> None:
    deadline = time.monotonic() + ready_timeout
    while True:
        attrs = study.user_attrs
        if attrs.get(KIND_ATTR) not in (None, kind):
            raise GbenchError(
                f"study {name!r} in this storage was made by `gbench {attrs[KIND_ATTR]}`, not `gbench {kind}`; "
                "choose another --study-name"
            )
        check_made_by_gbench(study, name, waited=ready_timeout - (deadline - time.monotonic()))
        if attrs.get(READY_ATTR) or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # its creator is still enqueueing
    have = [d.name.lower() for d in study.directions]
    want = [d.lower() for d in directions]
    if have != want:
        raise GbenchError(
            f"study {name!r} exists with {len(have)} objective(s) ({', '.join(have)}), not {len(want)}; "
            "keep its --objective or choose another --study-name"
        )
