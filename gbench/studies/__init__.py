"""Studies: Optuna workers shared by tune and sweep (workers, groups), storage URLs, liveness of workers, and the few private Optuna calls."""
