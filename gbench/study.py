"""Optuna plumbing shared by ``gbench tune`` and ``gbench sweep``.

- :func:`open_storage`: a storage URL as users type it (or a local SQLite file
  under OUT by default), checked up front: a malformed or unreachable URL fails
  in one line within seconds, not after a minute of retries.
- :func:`create_or_load`: one process creates a study, every other one loads
  it (``DuplicatedStudyError`` is the normal case, not an error).
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

Dead workers. On an RDB storage every running trial records a heartbeat;
a trial whose heartbeat is older than the grace period is failed by the next
worker that looks, and ``RetryHeartbeatStaleTrialCallback`` enqueues a WAITING
copy (same parameters and user attrs), which the count above treats like any
other trial. A worker also records who runs each trial (host, pid, process
start time): a trial whose process is gone on this very host is failed at
once, without waiting for the grace period (a local sweep resumed after a
kill).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import socket
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from gbench.errors import GbenchError

#: Seconds between heartbeats of a running trial; it is declared dead after GRACE_FACTOR of them.
DEFAULT_HEARTBEAT = 20
GRACE_FACTOR = 3
CONNECT_TIMEOUT = 5  # seconds to reach a database server before giving up

WORKER_ATTR = "gbench:worker"  # "host|pid|start|number" of the process running the trial
SURPLUS_ATTR = "gbench:surplus"  # a claimed trial that stood down (never run, never counted)
KIND_ATTR = "gbench:kind"  # "tune" or "sweep": what made the study
READY_ATTR = "gbench:ready"  # set by the creator once the study's initial trials are enqueued
KEY_ATTR = "key"  # keyed mode: what identifies a trial's work ("variant|seed")
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
warnings.filterwarnings("ignore", message=".*Heartbeat of storage is supposed to be used with Study.optimize.*")


# ---------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------


def shown_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        import sqlalchemy.engine

        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _sqlite_file(url: str, database: str | None) -> Path:
    if not database or database == ":memory:":
        raise GbenchError(f"storage {url!r} names no database file; give e.g. sqlite:///runs/tune.db (a file several processes can share)")
    return Path(database)


def _check_reachable(url: Any, connect_args: dict[str, Any], shown: str) -> None:
    """Connect once with a short timeout, so that a wrong host fails now and in one line."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url, connect_args=connect_args, poolclass=sqlalchemy.pool.NullPool)
        with engine.connect():
            pass
        engine.dispose()
    except ModuleNotFoundError as error:
        raise GbenchError(f"storage {shown!r} needs the Python module {error.name!r}; pip install it, or use sqlite:///FILE") from None
    except Exception as error:  # OperationalError, DBAPI errors: unreachable host, refused, no such database
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()
        reason = reason[0] if reason else type(error).__name__
        raise GbenchError(f"cannot reach storage {shown!r} ({reason}); check the host, port, database and user, and that the server runs") from None


def resolve_url(url: str | None, default_file: Path, create: bool = True) -> tuple[str, dict[str, Any]]:
    """A checked SQLAlchemy URL and the engine kwargs to open it with."""
    import sqlalchemy.engine
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    if url is None:
        url = f"sqlite:///{Path(default_file).resolve()}"
    if "://" not in url:
        raise GbenchError(f"--storage {url!r} is not a database URL; give e.g. sqlite:///runs/tune.db or postgresql://user@host/dbname")
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (ArgumentError, ValueError) as error:
        raise GbenchError(f"--storage {url!r} is not a valid database URL ({error}); give e.g. postgresql://user@host:5432/dbname") from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise GbenchError(f"--storage {shown!r}: unknown database type {parsed.drivername!r}; use sqlite:///FILE, postgresql://... or mysql://...") from None
    except ModuleNotFoundError as error:
        raise GbenchError(f"--storage {shown!r} needs the Python module {error.name!r}; pip install it (for PostgreSQL: psycopg[binary])") from None

    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(shown, parsed.database)
        if not create and not path.is_file():
            raise GbenchError(
                f"storage {shown!r}: the file {str(path)!r} does not exist; give the sqlite:/// URL of an existing study database (e.g. sqlite:///runs/NAME/sweep.db)"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(sqlite3.connect(path, timeout=60)) as connection:
                connection.execute("PRAGMA journal_mode=WAL")  # persistent: readers never block the writer
        except (OSError, sqlite3.Error) as error:
            raise GbenchError(f"cannot open storage {shown!r} ({error}); give a writable path, e.g. sqlite:///runs/tune.db") from None
        engine_kwargs["connect_args"] = {"timeout": 60}  # wait for other processes' writes, do not fail
        return parsed.render_as_string(hide_password=False), engine_kwargs
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql" and dialect.driver == "psycopg2":
            with contextlib.suppress(ImportError):
                import psycopg  # noqa: F401  psycopg 3 is a dependency; psycopg2 may not be installed

                parsed = parsed.set(drivername="postgresql+psycopg")
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    elif parsed.get_backend_name() == "mysql":
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    _check_reachable(parsed, engine_kwargs.get("connect_args", {}), shown)
    return parsed.render_as_string(hide_password=False), engine_kwargs


def _retry_callback() -> Any:
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return cls(max_retry=None)


def open_storage(url: str | None, default_file: Path, heartbeat: int = DEFAULT_HEARTBEAT, create: bool = True) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats and retry of dead workers' trials.

    ``url=None``: a SQLite file at ``default_file`` (WAL mode), which several
    processes on this machine may share.
    """
    if heartbeat < 1:
        raise GbenchError(f"--heartbeat {heartbeat} must be at least 1 second")
    full_url, engine_kwargs = resolve_url(url, default_file, create)
    kwargs: dict[str, Any] = {"heartbeat_interval": int(heartbeat), "grace_period": int(heartbeat) * GRACE_FACTOR}
    key = "heartbeat_stale_trial_callback" if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback") else "failed_trial_callback"
    kwargs[key] = _retry_callback()
    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: stable in practice since Optuna 2.9
                return optuna.storages.RDBStorage(full_url, engine_kwargs=engine_kwargs, **kwargs)
        except Exception as error:  # first use of an empty database from several processes at once: table creation races
            if attempt == 5:
                raise GbenchError(
                    f"cannot open storage {shown_url(full_url)!r}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                ) from None
            time.sleep(0.3 + random.random())
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------
# Studies
# ---------------------------------------------------------------------------


def create_or_load(
    storage: optuna.storages.BaseStorage,
    name: str,
    directions: Sequence[str],
    kind: str,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    setup: Callable[[optuna.Study], None] | None = None,
    ready_timeout: float = 120.0,
) -> tuple[optuna.Study, bool]:
    """Create the study, or load it when another process (or an earlier run) made it.

    The creator calls ``setup(study)`` (e.g. to enqueue a sweep's runs) and
    then marks the study ready; a loader waits for that mark, so it never sees
    a half-filled queue. Returns ``(study, created)``.
    """
    directions = list(directions)
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions, sampler=sampler, pruner=pruner)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=storage, study_name=name, sampler=sampler, pruner=pruner)
        _check_loaded(study, name, directions, kind, ready_timeout)
        return study, False
    study.set_user_attr(KIND_ATTR, kind)
    if setup is not None:
        setup(study)
    study.set_user_attr(READY_ATTR, True)
    return study, True


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
            f"study {name!r} in this storage was not made by gbench (it has no {KIND_ATTR!r} mark); give another --study-name, or a storage of gbench's own"
        )


def _check_loaded(study: optuna.Study, name: str, directions: list[str], kind: str, ready_timeout: float) -> None:
    deadline = time.monotonic() + ready_timeout
    while True:
        attrs = study.user_attrs
        if attrs.get(KIND_ATTR) not in (None, kind):
            raise GbenchError(f"study {name!r} in this storage was made by `gbench {attrs[KIND_ATTR]}`, not `gbench {kind}`; choose another --study-name")
        check_made_by_gbench(study, name, waited=ready_timeout - (deadline - time.monotonic()))
        if attrs.get(READY_ATTR) or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # its creator is still enqueueing
    have = [d.name.lower() for d in study.directions]
    want = [d.lower() for d in directions]
    if have != want:
        raise GbenchError(
            f"study {name!r} exists with {len(have)} objective(s) ({', '.join(have)}), not {len(want)}; keep its --objective or choose another --study-name"
        )


# ---------------------------------------------------------------------------
# Who runs a trial, and is it still alive?
# ---------------------------------------------------------------------------


def _host() -> str:
    return os.environ.get("GBENCH_WORKER_HOST") or socket.gethostname()


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc, or None where there is no /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ("gone", "")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def worker_identity(number: int) -> str:
    stat = _proc_stat(os.getpid())
    return f"{_host()}|{os.getpid()}|{stat[1] if stat else ''}|{number}"


def _dead_here(trial: FrozenTrial) -> bool:
    """True when the trial's recorded process ran on this host and is gone."""
    parts = str(trial.user_attrs.get(WORKER_ATTR, "")).split("|")
    if len(parts) != 4 or parts[0] != _host() or parts[3] != str(trial.number):
        return False  # another host's worker (heartbeats decide), or an attr copied from a retried trial
    pid, start = int(parts[1]), parts[2]
    if pid == os.getpid():
        return False
    stat = _proc_stat(pid)
    if stat is None:  # no /proc: ask the kernel whether the pid exists at all
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    state, started = stat
    return state in ("gone", "Z", "X") or (bool(start) and started != start)


def reclaim(study: optuna.Study) -> list[int]:
    """Fail the running trials of dead workers and enqueue their retries; their numbers."""
    storage = study._storage
    failed: list[int] = []
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    callback = getattr(storage, "get_heartbeat_stale_trial_callback", getattr(storage, "get_failed_trial_callback", lambda: None))()
    for trial in running:
        if not _dead_here(trial):
            continue
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                failed.append(trial.number)
                if callback is not None:
                    callback(study, storage.get_trial(trial._trial_id))
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker got there first
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # heartbeat older than the grace period: any host
    others = {t.number for t in running} - set(failed)
    if others:
        failed += [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.number in others]
    return failed


class Heartbeat:
    """Record a running trial's heartbeat every interval, from a thread."""

    def __init__(self, study: optuna.Study, trial_id: int):
        self.storage = study._storage
        self.trial_id = trial_id
        self.interval = self.storage.get_heartbeat_interval() if hasattr(self.storage, "get_heartbeat_interval") else None
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if self.interval:
            self.storage.record_heartbeat(self.trial_id)
            self.thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{self.trial_id}")
            self.thread.start()
        return self

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a lost connection: the next beat tries again
                self.storage.record_heartbeat(self.trial_id)

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


def _stand_down(study: optuna.Study, trial: Trial) -> None:
    trial.set_user_attr(SURPLUS_ATTR, True)
    study.tell(trial, state=TrialState.FAIL)


def claim(study: optuna.Study, target: int | None = None) -> Trial | str | None:
    """The next trial this worker should run, ``WAIT``, or None when all is done.

    ``target``: counted mode (run until exactly ``target`` trials are COMPLETE
    or PRUNED); None: keyed mode (run the enqueued WAITING trials).
    """
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
        warnings.simplefilter("ignore")  # "Heartbeat of storage is supposed to be used with Study.optimize": we beat ourselves
        trial = study.ask()
    if getattr(study._storage, "get_heartbeat_interval", lambda: None)():
        study._storage.record_heartbeat(trial._trial_id)  # from the first moment: a worker dying right here is still detected
    trial.set_user_attr(WORKER_ATTR, worker_identity(trial.number))
    trials = study.get_trials(deepcopy=False)
    if target is not None:
        ahead = sum(1 for t in trials if t.number < trial.number and not is_surplus(t) and t.state in (*COUNTED, TrialState.RUNNING, TrialState.WAITING))
        if ahead >= target:
            _stand_down(study, trial)
            return WAIT
        return trial
    key = trial.user_attrs.get(KEY_ATTR)
    if key is None:  # no WAITING trial was left: ask() made a fresh, keyless one
        _stand_down(study, trial)
        return WAIT
    for other in trials:
        if other.number == trial.number or is_surplus(other) or other.user_attrs.get(KEY_ATTR) != key:
            continue
        if other.state == TrialState.COMPLETE or (other.state == TrialState.RUNNING and other.number < trial.number):
            _stand_down(study, trial)
            return WAIT
    return trial


class Interrupted(Exception):
    """A trial was stopped by the user (Ctrl-C) or a stop request."""


def run_one(study: optuna.Study, trial: Trial, objective: Callable[[Trial], float | Sequence[float]]) -> TrialState:
    """Run a claimed trial under a heartbeat and record how it ended.

    ``objective`` raises ``optuna.TrialPruned`` to prune; any other exception
    fails the trial and propagates (a GbenchError stops the worker with its
    one line).
    """
    with Heartbeat(study, trial._trial_id):
        try:
            values = objective(trial)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
            return TrialState.PRUNED
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (gbench/signals.py): the run saved its state
            with contextlib.suppress(Exception):
                release(study, trial)
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


#: User attr of a trial stopped by a signal; its retry (a WAITING copy) resumes the same run folder.
INTERRUPTED_ATTR = "gbench:interrupted"


def release(study: optuna.Study, trial: Trial) -> None:
    """Hand an interrupted trial on: FAIL it and enqueue one retry with its params and user attrs.

    Optuna's retry callback does the copying, as for a dead worker's trial:
    the retry carries ``failed_trial``, so tune reuses the original's run
    folder (and checkpoint), and a sweep's key stays WAITING, so the next
    ``gbench sweep`` neither runs it twice nor enqueues it again. FAIL is
    not counted as done, so the study still counts the run once.
    """
    trial.set_user_attr(INTERRUPTED_ATTR, True)
    study.tell(trial, state=TrialState.FAIL)
    _retry_callback()(study, study._storage.get_trial(trial._trial_id))


def work(
    study: optuna.Study,
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
        if reclaim(study) and on_change:
            on_change()
        trial = claim(study, target)
        if trial is None:
            break
        if trial == WAIT:
            if stop is not None:
                stop.wait(poll)
            else:
                time.sleep(poll)
            continue
        if on_change:
            on_change()
        run_one(study, trial, objective)
        ran += 1
        if on_change:
            on_change()
    return ran


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Every trial that is not a stood-down surplus claim, by number."""
    return sorted((t for t in study.get_trials(deepcopy=False) if not is_surplus(t)), key=lambda t: t.number)
