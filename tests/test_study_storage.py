"""gbench.studies.storage on real SQLite files shared by several processes."""

import sqlite3
import subprocess
import sys
import time

import optuna

from gbench.studies.storage import open_storage

# Another process creates a table in the fresh file and holds its write open for a while,
# as a second worker does while Optuna creates its tables.
HOLD_A_WRITE = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN")
connection.execute("CREATE TABLE other_worker (x)")
connection.execute("INSERT INTO other_worker VALUES (1)")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


def test_a_fresh_file_another_process_is_writing_to_is_waited_for_not_locked(tmp_path):
    """SQLite refuses the switch to WAL at once ("database is locked")
    during another's write; gbench waits for the write to end."""
    path = tmp_path / "tune.db"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_A_WRITE, str(path), "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        storage = open_storage(None, path, heartbeat=60)
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert holder.returncode == 0
    assert waited > 0.5  # it did wait for the other process's write
    study = optuna.create_study(storage=storage, study_name="s")
    study.enqueue_trial({"x": 1})
    assert len(study.trials) == 1
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        # the other process's write was not lost
        assert connection.execute("SELECT x FROM other_worker").fetchall() == [(1,)]
