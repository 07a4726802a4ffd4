"""Studies: Optuna workers shared by tune and sweep (workers, groups), storage URLs, liveness of workers, and the few
private Optuna calls."""

# Here, not in storage.py (which imports Optuna): `gbench tune --help` and `gbench sweep --help` print them.
#: Seconds between heartbeats of a running trial; it is declared dead after GRACE_FACTOR of them.
DEFAULT_HEARTBEAT = 20
GRACE_FACTOR = 3
