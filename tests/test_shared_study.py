"""gbench.studies.shared_study on real Optuna storages: SQLite files, and PostgreSQL for races between workers.

Each worker below opens its own storage object, as a separate process or
machine would; the results are read back through Optuna's public API and its
own retry link (``RetryHeartbeatStaleTrialCallback.retried_trial_number``).
"""

from __future__ import annotations

import threading
import time

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from gbench.errors import GbenchError
from gbench.studies.shared_study import SharedStudy, retried_from
from gbench.studies.storage import open_storage


def open_worker(url: str | None, path, name: str = "s", heartbeat: int = 60) -> SharedStudy:
    """One worker's view: its own storage object (as in its own process) and the study loaded from it."""
    storage = open_storage(url, path, heartbeat=heartbeat)
    try:
        study = optuna.create_study(storage=storage, study_name=name)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=storage, study_name=name)
    return SharedStudy(study, storage)


def retries_of(study: optuna.Study, number: int) -> list:
    return [t for t in study.get_trials() if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == number]


def test_trial_ids_are_looked_up_in_this_study_not_taken_from_numbers(tmp_path):
    """Two studies in one storage: the second one's trial 0 is not the storage's trial 0."""
    first = open_worker(None, tmp_path / "s.db", name="first")
    second = open_worker(None, tmp_path / "s.db", name="second")
    for shared, tag in ((first, "first"), (first, "first"), (second, "second")):
        shared.study.enqueue_trial({}, user_attrs={"study": tag})
    assert second.trial_id(0) != 0
    assert [(t.number, t.user_attrs["study"]) for t in (second.frozen(0), first.frozen(1))] == [
        (0, "second"),
        (1, "first"),
    ]


def test_fail_and_retry_fails_the_trial_and_enqueues_one_retry_that_optuna_links_to_the_first(tmp_path):
    shared = open_worker(None, tmp_path / "s.db")
    study = shared.study
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("run_id", "r-0")  # set during the run: the retry must carry it (tune reuses the run folder)

    assert shared.fail_and_retry(trial.number)
    assert not shared.fail_and_retry(trial.number)  # finished already: as for a second worker that got there late
    [original] = [t for t in study.get_trials() if t.number == trial.number]
    [retry] = study.get_trials(states=(TrialState.WAITING,))
    assert original.state == TrialState.FAIL and retries_of(study, trial.number) == [retry]
    assert retry.params == original.params and retry.user_attrs["run_id"] == "r-0"
    assert retried_from(retry) == trial.number and retried_from(original) is None

    again = study.ask()  # the retry fails too: its retry still names the first trial
    assert again.number == retry.number and shared.fail_and_retry(again.number)
    [second_retry] = study.get_trials(states=(TrialState.WAITING,))
    assert retried_from(second_retry) == trial.number and second_retry.params == original.params


def test_a_study_opened_on_another_storage_is_one_clear_error(tmp_path):
    study = open_worker(None, tmp_path / "a.db", name="mine").study
    other = open_storage(None, tmp_path / "b.db", heartbeat=60)
    with pytest.raises(GbenchError, match="study 'mine' is not in the storage .*b.db"):
        SharedStudy(study, other)


def test_a_recorded_heartbeat_is_the_one_optuna_reads_and_its_silence_gets_the_trial_retried(tmp_path):
    """Heartbeat 1 s, grace 3 s. Optuna never fails a trial that has
    no heartbeat at all, so only the trial that beat goes stale."""
    shared = open_worker(None, tmp_path / "s.db", heartbeat=1)
    study = shared.study
    beating, silent = study.ask(), study.ask()
    shared.record_heartbeat(shared.trial_id(beating.number))
    optuna.storages.fail_stale_trials(study)
    assert {t.number: t.state for t in study.get_trials()} == {
        beating.number: TrialState.RUNNING,
        silent.number: TrialState.RUNNING,
    }
    time.sleep(4.5)
    optuna.storages.fail_stale_trials(study)
    states = {t.number: t.state for t in study.get_trials()}
    assert states[beating.number] == TrialState.FAIL and states[silent.number] == TrialState.RUNNING
    # Optuna's retry, linked as gbench's are
    assert [t.state for t in retries_of(study, beating.number)] == [TrialState.WAITING]


# The races below on PostgreSQL; tests/test_sqlite_race.py runs them, repeated, on a SQLite file, where
# they hold because gbench begins every SQLite transaction IMMEDIATE (SELECT ... FOR UPDATE locks nothing there).


@pytest.mark.postgres
def test_of_two_workers_claiming_one_waiting_trial_exactly_one_gets_it_and_the_queue_is_untouched(
    postgres_url, tmp_path
):
    workers = [open_worker(postgres_url, tmp_path / "s.db") for _ in range(2)]
    for key in ("a|0", "b|0", "a|1"):
        workers[0].study.enqueue_trial({}, user_attrs={"key": key})
    # not the oldest
    chosen = [t for t in workers[0].study.get_trials(states=(TrialState.WAITING,)) if t.user_attrs["key"] == "a|1"][0]
    start = threading.Barrier(2)
    claimed: list = [None, None]

    def claim(index: int) -> None:
        start.wait()
        claimed[index] = workers[index].claim_waiting(chosen)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [t for t in claimed if t is not None]
    assert len(winners) == 1 and winners[0].number == chosen.number
    states = {t.user_attrs["key"]: t.state for t in workers[1].study.get_trials()}
    assert states == {"a|0": TrialState.WAITING, "b|0": TrialState.WAITING, "a|1": TrialState.RUNNING}
    winners[0].set_user_attr("fid", 12.5)  # the claimed Trial is a working one
    winners[0].study.tell(winners[0], 12.5)
    assert workers[0].claim_waiting(chosen) is None  # finished: nobody claims it again


@pytest.mark.postgres
def test_of_two_workers_failing_one_dead_trial_exactly_one_enqueues_its_retry(postgres_url, tmp_path):
    workers = [open_worker(postgres_url, tmp_path / "s.db") for _ in range(2)]
    running = [workers[0].study.ask().number for _ in range(8)]
    won: dict[int, list[bool]] = {number: [] for number in running}
    start = threading.Barrier(2)

    def fail_all(index: int) -> None:
        start.wait()
        for number in running:
            won[number].append(workers[index].fail_and_retry(number))

    threads = [threading.Thread(target=fail_all, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(sorted(results) == [False, True] for results in won.values()), won
    study = workers[1].study
    assert all(len(retries_of(study, number)) == 1 for number in running)
    assert len(study.get_trials(states=(TrialState.WAITING,))) == len(running)
