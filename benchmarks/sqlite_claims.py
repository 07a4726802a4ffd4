"""Claims on one SQLite study from two workers: Optuna's deferred transactions against gbench's BEGIN IMMEDIATE.

Two figures for each engine, in one run:

- double claims: two storage objects on one fresh file (as two processes
  have), one WAITING trial, two threads that reach for it at once through
  ``study.ask()`` and through ``SharedStudy.claim_waiting``; a try where both
  get it is a double claim (the count should be 0 of ``--tries``);
- throughput: two worker processes, each with its own storage, drain
  ``--trials`` WAITING trials the way a sweep worker does (count with
  ``get_trials``, ``ask()``, record a heartbeat and a user attr, ``tell``);
  claims per second, the mean ``get_trials`` time, and any "database is
  locked" error.

"deferred" is a storage as Optuna opens it by default (the same busy timeout
and WAL file, no BEGIN IMMEDIATE); "immediate" is gbench's open_storage;
"immediate + claim lock" drains the same trials through
``gbench.studies.workers.claim``, as a sweep worker does (counting and
claiming under the study's lock file).

    PYTHONPATH=$PWD python3 benchmarks/sqlite_claims.py --tries 20 --trials 200 --rounds 3
"""

from __future__ import annotations

import argparse
import functools
import math
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from gbench.studies import workers as studylib
from gbench.studies.shared_study import SharedStudy
from gbench.studies.storage import SQLITE_BUSY_TIMEOUT, _use_wal, open_storage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402  (the benchmarks are scripts side by side, not a package)

ENGINES = ("deferred", "immediate")
CLAIM_LOCK = (
    "immediate + claim lock"  # gbench's storage, trials claimed by gbench.studies.workers.claim under its lock file
)
optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
warnings.filterwarnings("ignore", message=".*Heartbeat of storage is supposed to be used with Study.optimize.*")


def storage(engine: str, path: Path) -> optuna.storages.RDBStorage:
    if engine == "immediate":
        return open_storage(None, path, heartbeat=60)
    _use_wal(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}}, heartbeat_interval=60
        )


def worker(engine: str, path: Path) -> SharedStudy:
    store = storage(engine, path)
    try:
        study = optuna.create_study(storage=store, study_name="s")
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=store, study_name="s")
    return SharedStudy(study, store)


def race(workers: list[SharedStudy], reach: Callable[[SharedStudy], bool]) -> list[bool]:
    """What each worker's ``reach`` returned, the workers started together from their own threads."""
    start = threading.Barrier(len(workers))
    got = [False] * len(workers)

    def run(index: int) -> None:
        start.wait()
        got[index] = reach(workers[index])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return got


def gets_by_ask(shared: SharedStudy, waiting: FrozenTrial) -> bool:
    return shared.study.ask().number == waiting.number


def gets_by_id(shared: SharedStudy, waiting: FrozenTrial) -> bool:
    return shared.claim_waiting(waiting) is not None


def double_claims(engine: str, how: str, tries: int, folder: Path) -> int:
    """In how many of ``tries`` races (a fresh file each) both workers got the one WAITING trial."""
    doubles = 0
    for attempt in range(tries):
        workers = [worker(engine, folder / f"{engine}-{how}-{attempt}.db") for _ in range(2)]
        workers[0].study.enqueue_trial({}, user_attrs={"key": "only"})
        [waiting] = workers[0].study.get_trials(states=(TrialState.WAITING,))
        reach = functools.partial(gets_by_ask if how == "ask" else gets_by_id, waiting=waiting)
        got = race(workers, reach)
        doubles += all(got)
    return doubles


def drain(engine: str, path: Path, results: Any) -> None:
    """One worker process: claim WAITING trials until none is left; (claims, seconds in get_trials, reads, errors)."""
    if engine == CLAIM_LOCK:
        return drain_by_claim(path, results)
    shared = worker(engine, path)
    claims, read_seconds, reads, errors = 0, 0.0, 0, 0
    while True:
        try:
            started = time.perf_counter()
            waiting = shared.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            read_seconds += time.perf_counter() - started
            reads += 1
            if not waiting:
                break
            trial = shared.study.ask()
            # the other worker took the last WAITING one, so ask() made a fresh trial: not a claim
            if "key" not in trial.user_attrs:
                shared.study.tell(trial, state=TrialState.FAIL)
                continue
            shared.record_heartbeat(shared.trial_id(trial.number))
            trial.set_user_attr("gbench:worker", "bench")
            shared.study.tell(trial, 1.0)
            claims += 1
        except Exception as error:  # "database is locked" and the like: counted, the worker goes on
            errors += 1
            print(f"  {engine}: {type(error).__name__}: {str(error).splitlines()[0]}", flush=True)
    results.put((claims, read_seconds, reads, errors))


def drain_by_claim(path: Path, results: Any) -> None:
    """:func:`drain` as a sweep worker claims: ``workers.claim``
    (keyed mode), which counts and asks under the claim lock."""
    shared = worker("immediate", path)
    claims, errors = 0, 0
    while True:
        try:
            trial = studylib.claim(shared)
            if trial is None:
                break
            if isinstance(trial, str):  # WAIT: the other worker's last trials are still running
                time.sleep(0.01)
                continue
            shared.study.tell(trial, 1.0)
            claims += 1
        except Exception as error:
            errors += 1
            print(f"  {CLAIM_LOCK}: {type(error).__name__}: {str(error).splitlines()[0]}", flush=True)
    results.put((claims, 0.0, 0, errors))


def throughput(engine: str, trials: int, folder: Path) -> tuple[float, float, int, int]:
    folder.mkdir(exist_ok=True)
    path = folder / f"{engine.replace(' ', '')}-throughput.db"
    first = worker(engine, path)
    for index in range(trials):
        first.study.enqueue_trial({}, user_attrs={"key": f"k{index}"}, skip_if_exists=False)
    results: Any = multiprocessing.get_context("fork").Queue()
    processes = [
        multiprocessing.get_context("fork").Process(target=drain, args=(engine, path, results)) for _ in range(2)
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=600) for _ in processes]
    seconds = time.perf_counter() - started
    for process in processes:
        process.join()
    claims = sum(o[0] for o in outcomes)
    reads = sum(o[2] for o in outcomes)
    # nan: the claim-lock workers time no reads
    mean_read_ms = 1000 * sum(o[1] for o in outcomes) / reads if reads else math.nan
    finished = len([t for t in first.study.get_trials(states=(TrialState.COMPLETE,)) if "key" in t.user_attrs])
    return claims / seconds, mean_read_ms, sum(o[3] for o in outcomes), claims - finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=20, help="races per engine and claim kind")
    parser.add_argument(
        "--trials", type=int, default=200, help="WAITING trials two processes drain, per engine and round"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="throughput rounds, the engines taking turns within each (a shared machine's load drifts)",
    )
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}; optuna {optuna.__version__}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for engine in ENGINES:
            asks = double_claims(engine, "ask", args.tries, Path(folder))
            by_id = double_claims(engine, "claim_waiting", args.tries, Path(folder))
            print(
                f"{engine:9s}: double claims ask() {asks}/{args.tries}, claim_waiting {by_id}/{args.tries}", flush=True
            )
        rates: dict[str, list[float]] = {engine: [] for engine in (*ENGINES, CLAIM_LOCK)}
        for round_ in range(args.rounds):
            for engine in rates:
                rate, read_ms, errors, extra = throughput(engine, args.trials, Path(folder) / f"r{round_}")
                rates[engine].append(rate)
                print(
                    f"round {round_} {engine}: 2 processes {rate:.1f} claims/s, get_trials "
                    f"{read_ms:.2f} ms, {errors} errors, {extra} claims beyond the trials",
                    flush=True,
                )
        for engine in (*ENGINES[1:], CLAIM_LOCK):
            ratios = sorted(mine / theirs for mine, theirs in zip(rates[engine], rates["deferred"]))
            print(
                f"{engine}/deferred claim throughput: median {statistics.median(ratios):.2f} (rounds: "
                f"{', '.join(f'{r:.2f}' for r in ratios)})",
                flush=True,
            )


if __name__ == "__main__":
    main()
