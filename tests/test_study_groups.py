"""gbench.studies.groups on a real Optuna storage: a worker claims the waiting seeds of one variant, exactly once."""

import optuna
from optuna.trial import TrialState

from gbench.studies import workers as studylib
from gbench.studies.groups import claim_group, run_group
from gbench.studies.shared_study import SharedStudy
from gbench.studies.storage import open_storage

variant = lambda key: key.rpartition("|")[0]


def new_study(tmp_path, keys):
    storage = open_storage(None, tmp_path / "s.db", heartbeat=60)  # gbench's storage: heartbeats, retries
    study = optuna.create_study(storage=storage, study_name="s")
    for key in keys:
        study.enqueue_trial({}, user_attrs={studylib.KEY_ATTR: key})
    return SharedStudy(study, storage)


def keys_of(trials):
    return [t.user_attrs[studylib.KEY_ATTR] for t in trials]


def test_a_group_is_the_waiting_seeds_of_one_variant_up_to_the_limit(tmp_path):
    shared = new_study(tmp_path, ["a|0", "a|1", "a|2", "b|0", "b|1"])
    first = claim_group(shared, variant, limit=2)
    assert keys_of(first) == ["a|0", "a|1"]
    assert keys_of(claim_group(shared, variant, limit=10)) == ["a|2"]  # the group ends where the variant does
    last = claim_group(shared, variant, limit=10)
    assert keys_of(last) == ["b|0", "b|1"]
    assert claim_group(shared, variant, limit=10) == studylib.WAIT  # nothing waiting, five running
    for trials in (first, last):
        run_group(shared, trials, lambda group: [1.0] * len(group))
    assert sorted(keys_of(t for t in shared.study.trials if t.state == TrialState.COMPLETE)) == [
        "a|0",
        "a|1",
        "b|0",
        "b|1",
    ]


def test_a_trial_another_worker_took_first_is_left_out_and_the_queue_is_untouched(tmp_path):
    shared = new_study(tmp_path, ["a|0", "a|1", "b|0"])
    taken = []

    def group_of(key):  # while this worker looks at a|1, another worker claims it
        if key == "a|1" and not taken:
            taken.append(studylib.claim(shared))
        return variant(key)

    group = claim_group(shared, group_of, limit=10)
    assert keys_of(group) == ["a|0"] and keys_of(taken) == ["a|1"]
    # b|0 was never claimed, so never handed back
    assert not [t for t in shared.study.trials if t.state == TrialState.FAIL]
    assert [
        (t.number, t.user_attrs[studylib.KEY_ATTR]) for t in shared.study.get_trials(states=(TrialState.WAITING,))
    ] == [(2, "b|0")]
    assert keys_of(claim_group(shared, variant, limit=10)) == ["b|0"]


def test_a_group_takes_its_retries_from_the_end_of_the_queue_and_stands_down_a_duplicate_key(tmp_path):
    shared = new_study(tmp_path, ["a|0", "b|0", "a|1", "a|1"])  # a|1 enqueued twice, as two racing top-ups may
    group = claim_group(shared, variant, limit=10)
    assert keys_of(group) == ["a|0", "a|1"]
    surplus = [t for t in shared.study.trials if t.state == TrialState.FAIL]
    assert (
        [t.number for t in surplus] == [3]
        and studylib.is_surplus(surplus[0])
        and studylib.count(shared.study.trials).failed == 0
    )
    assert keys_of(shared.study.get_trials(states=(TrialState.WAITING,))) == ["b|0"]
    run_group(shared, group, lambda trials: [1.0, 2.0])
    assert {
        t.user_attrs[studylib.KEY_ATTR]: t.value for t in shared.study.trials if t.state == TrialState.COMPLETE
    } == {"a|0": 1.0, "a|1": 2.0}


def test_a_failing_group_fails_every_member(tmp_path):
    shared = new_study(tmp_path, ["a|0", "a|1"])
    group = claim_group(shared, variant, limit=10)

    def broken(trials):
        raise RuntimeError("out of memory")

    try:
        run_group(shared, group, broken)
    except RuntimeError:
        pass
    states = [(t.state, t.user_attrs.get("error")) for t in shared.study.trials]
    assert states == [(TrialState.FAIL, "RuntimeError: out of memory")] * 2
