"""Where Optuna studies live: a storage URL as users type it, checked up front.

A malformed or unreachable URL fails in one line within seconds, not after a
minute of SQLAlchemy retries; with no URL, a local SQLite file under OUT
(WAL mode) that several processes on one machine may share. Every storage
records heartbeats and retries a dead worker's trial (:mod:`gbench.studies.workers`).

On SQLite every transaction begins with ``BEGIN IMMEDIATE`` (see
:func:`immediate_transactions_plugin`): Optuna's ``SELECT ... FOR UPDATE``
locks nothing there, so without it two processes could both move one WAITING
trial to RUNNING, or both fail one RUNNING trial and enqueue two retries.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

from gbench.errors import GbenchError
from gbench.secrets import first_line, mask
from gbench.studies import DEFAULT_HEARTBEAT, GRACE_FACTOR  # noqa: F401 - DEFAULT_HEARTBEAT: storage's callers take it from here too

CONNECT_TIMEOUT = 5  # seconds to reach a database server before giving up
SQLITE_BUSY_TIMEOUT = 60  # seconds a SQLite transaction waits for another process's write before "database is locked"
IMMEDIATE_PLUGIN = "gbench_sqlite_immediate"  # the name SQLAlchemy knows ImmediateSQLiteTransactions by


#: The engine plugin class, made on first use (sqlalchemy is imported late: `gbench --help` needs none of it).
ImmediateSQLiteTransactions: Any = None


def immediate_transactions_plugin() -> str:
    """Register :data:`ImmediateSQLiteTransactions` with SQLAlchemy (once); the name
    ``create_engine(plugins=[...])`` takes.

    Every transaction on an engine with the plugin takes SQLite's write lock
    when it begins (``BEGIN IMMEDIATE``). Optuna claims a trial by reading its
    state with ``SELECT ... FOR UPDATE`` and then updating it in the same
    transaction. SQLite ignores FOR UPDATE, and Python's sqlite3 module opens
    the transaction only at the UPDATE, so two processes could both read
    WAITING (or RUNNING) and both write: both run the trial, or both fail it
    and enqueue two retries. With the write lock taken at BEGIN, each
    read-then-write is one step; other transactions wait for it (up to
    SQLITE_BUSY_TIMEOUT), they do not fail. Readers queue behind writers too,
    which costs little: Optuna's transactions last milliseconds
    (benchmarks/sqlite_claims.py measures claims per second).

    This is the pysqlite recipe of SQLAlchemy's SQLite documentation, as a
    CreateEnginePlugin so that the events are on the engine before its first
    connection (Optuna's RDBStorage creates its tables in its constructor)
    and reach it through RDBStorage's public ``engine_kwargs``.
    """
    global ImmediateSQLiteTransactions
    if ImmediateSQLiteTransactions is not None:
        return IMMEDIATE_PLUGIN
    import sqlalchemy
    from sqlalchemy.dialects import plugins

    class Plugin(sqlalchemy.engine.CreateEnginePlugin):
        def update_url(self, url: sqlalchemy.engine.URL) -> sqlalchemy.engine.URL:
            return url  # it takes no settings from the URL

        def engine_created(self, engine: sqlalchemy.engine.Engine) -> None:
            @sqlalchemy.event.listens_for(engine, "connect")
            def leave_transactions_to_us(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.isolation_level = (
                    None  # sqlite3 emits no BEGIN of its own (it would emit a deferred one, late)
                )

            @sqlalchemy.event.listens_for(engine, "begin")
            def begin_immediate(connection: sqlalchemy.engine.Connection) -> None:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

    ImmediateSQLiteTransactions = Plugin
    plugins.register(IMMEDIATE_PLUGIN, __name__, "ImmediateSQLiteTransactions")
    return IMMEDIATE_PLUGIN


def shown_url(url: str) -> str:
    """The URL with any password hidden, for messages (:func:`gbench.secrets.mask`)."""
    return mask(url)


def _sqlite_file(url: str, database: str | None) -> Path:
    if not database or database == ":memory:":
        raise GbenchError(
            f"storage {url!r} names no database file; "
            "give e.g. sqlite:///runs/tune.db (a file several processes can share)"
        )
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
        raise GbenchError(
            f"storage {shown!r} needs the Python module {error.name!r}; pip install it, or use sqlite:///FILE"
        ) from None
    except Exception as error:  # OperationalError, DBAPI errors: unreachable host, refused, no such database
        reason = first_line(getattr(error, "orig", None) or error)  # a driver may quote the URL it was given
        raise GbenchError(
            f"cannot reach storage {shown!r} ({reason}); "
            "check the host, port, database and user, and that the server runs"
        ) from None


def resolve_url(url: str | None, default_file: Path, create: bool = True) -> tuple[str, dict[str, Any]]:
    """A checked SQLAlchemy URL and the engine kwargs to open it with."""
    import sqlalchemy.engine
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    if url is None:
        url = f"sqlite:///{Path(default_file).resolve()}"
    if "://" not in url:
        shown = (
            mask(url) if "@" not in url else f"...@{url.rsplit('@', 1)[1]}"
        )  # no scheme: mask() cannot tell user:password from a host
        raise GbenchError(
            f"--storage {shown!r} is not a database URL; give e.g. sqlite:///runs/tune.db or postgresql://user@host/dbname"
        )
    scheme, _, rest = url.partition("://")
    authority = rest.split("/", 1)[0]
    if authority.count("@") > 1:  # SQLAlchemy would cut the password at its first '@' and show the rest as the host
        raise GbenchError(
            f"--storage '{scheme}://...@{authority.rsplit('@', 1)[1]}/...': its user or password holds an '@'; "
            "write each '@' in them as %40 (p@ss becomes p%40ss)"
        )
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (ArgumentError, ValueError) as error:
        raise GbenchError(
            f"--storage {mask(url)!r} is not a valid database URL ({mask(str(error))}); give e.g. postgresql://user@host:5432/dbname"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise GbenchError(
            f"--storage {shown!r}: unknown database type {parsed.drivername!r}; use sqlite:///FILE, postgresql://... or mysql://..."
        ) from None
    except ModuleNotFoundError as error:
        raise GbenchError(
            f"--storage {shown!r} needs the Python module {error.name!r}; "
            "pip install it (for PostgreSQL: psycopg[binary])"
        ) from None

    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(shown, parsed.database)
        if not create and not path.is_file():
            raise GbenchError(
                f"storage {shown!r}: the file {str(path)!r} does not exist; "
                "give the sqlite:/// URL of an existing study database (e.g. sqlite:///runs/NAME/sweep.db)"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _use_wal(path)
        except (OSError, sqlite3.Error) as error:
            raise GbenchError(
                f"cannot open storage {shown!r} ({error}); give a writable path, e.g. sqlite:///runs/tune.db"
            ) from None
        engine_kwargs["connect_args"] = {
            "timeout": SQLITE_BUSY_TIMEOUT
        }  # wait for other processes' writes, do not fail
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


def check_server(url: str | None) -> None:
    """A database server's URL checked and reached now, before the command makes OUT (one line, nothing written);
    a SQLite file (or no URL: OUT's) is opened, and so made, only when the study is."""
    if url is not None and not url.startswith("sqlite"):
        resolve_url(url, Path("unused.db"))


def close_study_name(storage: Any, name: str) -> str | None:
    """Another study in ``storage`` whose name is close to ``name`` (a mistyped --study-name starts a new study):
    the closest, or None."""
    from gbench.names import closest

    return closest(name, [other for other in optuna.get_all_study_names(storage) if other != name])


def _use_wal(path: Path, wait: float = 60.0) -> None:
    """Put the SQLite file in WAL mode (persistent: readers never block the writer).

    The switch needs an exclusive lock. While another process is inside a
    write (e.g. a second worker creating Optuna's tables in the same fresh
    file), SQLite answers "database is locked" at once instead of calling its
    busy handler, to avoid a deadlock; so wait here for that write to end.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=wait)) as connection:
                connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05 + 0.1 * random.random())


def _retry_callback() -> optuna.storages.RetryHeartbeatStaleTrialCallback:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=None)


def _immediate_sqlite_storage(
    url: str, engine_kwargs: dict[str, Any], kwargs: dict[str, Any]
) -> optuna.storages.RDBStorage:
    """The storage again, on an engine whose transactions all begin IMMEDIATE, once a plain one has set the file up.

    Setting up is left to the plain engine because Optuna nests a second
    connection inside an open transaction there (its schema and alembic
    version checks read through ``engine.connect()`` while a session is
    open); with both asking for the write lock, the process would wait for
    itself until the busy timeout. The checks have passed, so they are skipped.
    """
    immediate = {**engine_kwargs, "plugins": [immediate_transactions_plugin()]}
    return optuna.storages.RDBStorage(
        url, engine_kwargs=immediate, skip_table_creation=True, skip_compatibility_check=True, **kwargs
    )


def open_storage(
    url: str | None, default_file: Path, heartbeat: int = DEFAULT_HEARTBEAT, create: bool = True
) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats and retry of dead workers' trials.

    ``url=None``: a SQLite file at ``default_file`` (WAL mode), which several
    processes on this machine may share.
    """
    if heartbeat < 1:
        raise GbenchError(f"--heartbeat {heartbeat} must be at least 1 second")
    full_url, engine_kwargs = resolve_url(url, default_file, create)
    kwargs: dict[str, Any] = {
        "heartbeat_interval": int(heartbeat),
        "grace_period": int(heartbeat) * GRACE_FACTOR,
        "heartbeat_stale_trial_callback": _retry_callback(),  # also what SharedStudy.fail_and_retry calls
    }
    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore", optuna.exceptions.ExperimentalWarning
                )  # heartbeats: stable in practice since Optuna 2.9
                storage = optuna.storages.RDBStorage(full_url, engine_kwargs=engine_kwargs, **kwargs)
                if full_url.startswith("sqlite"):
                    storage = _immediate_sqlite_storage(full_url, engine_kwargs, kwargs)
                return storage
        except (
            Exception
        ) as error:  # first use of an empty database from several processes at once: table creation races
            if attempt == 5:
                raise GbenchError(
                    f"cannot open storage {shown_url(full_url)!r}: {type(error).__name__}: {first_line(error)}"
                ) from None
            time.sleep(0.3 + random.random())
    raise AssertionError("unreachable")


def _lost_connection(error: BaseException) -> BaseException | None:
    """The database error under ``error`` when it says the server went away (or could not be reached), else None."""
    import sqlalchemy.exc

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if (
            isinstance(current, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError))
            or type(current).__name__ == "OperationalError"
        ):
            return current
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def connection_kept(url: str):
    """Inside it, the storage server stopping (PostgreSQL shut down, the network gone) is one GbenchError line.

    Optuna wraps the database error in StorageInternalError ("invalid data in
    the commit"), which would be a traceback naming the wrong cause. What was
    stored before stays: the same command resumes the study once the server is back.
    """
    # Optuna reads a dropped connection in get_all_trials as "too many IN variables" and logs a warning
    # (a multi-line SQL dump) before failing anyway: drop just those, the line below says what happened.
    rdb_logger = logging.getLogger("optuna.storages._rdb.storage")
    quiet = _DroppedConnectionWarnings()
    rdb_logger.addFilter(quiet)
    try:
        yield
    except GbenchError:
        raise
    except Exception as error:
        lost = _lost_connection(error)
        if lost is None:
            raise
        reason = (str(getattr(lost, "orig", None) or lost).strip().splitlines() or [type(lost).__name__])[0][:200]
        raise GbenchError(
            f"lost the connection to --storage {shown_url(url)} ({reason}); "
            "bring the database server back and run the same command again: "
            "finished trials are kept and the interrupted ones are retried"
        ) from None
    finally:
        rdb_logger.removeFilter(quiet)


#: What a dropped or refused database connection says (psycopg, sqlite's locked file excluded: that one is retried).
LOST_CONNECTION_WORDS = (
    "terminating connection",
    "server closed the connection",
    "Connection refused",
    "connection failed",
    "AdminShutdown",
)


class _DroppedConnectionWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(words in message for words in LOST_CONNECTION_WORDS)
