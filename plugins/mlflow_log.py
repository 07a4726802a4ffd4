"""``--log mlflow``: one MLflow run per gbench run, offline by default.

Built on the lifecycle hooks (gbench.plugins.hookspecs), like any observer plugin.
The store is MLflow's own ``MLFLOW_TRACKING_URI`` (``--mlflow-uri`` sets it),
else a local store beside the run folders: the database ``OUT/mlflow.db``
(MLflow 3 refuses its old file store) with artifacts in ``OUT/mlartifacts``;
browse it with ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``. The experiment is
``MLFLOW_EXPERIMENT_NAME`` or ``gbench``. Logged: the hyperparameters as
parameters, the training columns and every evaluation metric over steps,
the sample grid of each evaluation (``samples/step-NNNNNNN.png``), and at the
end ``samples.png`` and ``generator.pt`` as artifacts.

An unreachable ``--mlflow-uri`` fails the command at its start
(``observers.check_trackers``); a store that breaks mid-run (server gone,
disk read-only) warns once and the runs go on without MLflow
(``observers.guarded``). Tags and parameters are masked (``gbench.secrets``).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from gbench import hookimpl
from gbench.plugins import observers
from gbench.secrets import mask

DEFAULT_EXPERIMENT = "gbench"
#: Columns that are the x axis, or that the evaluation logs itself.
NOT_TRAIN = ("step", "fid", "classes_covered", "collapsed")
#: Results-row numbers worth a metric of their own (the rest are parameters or already logged).
SUMMARY_METRICS = ("train_seconds", "images_per_second")

_runs: dict[str, tuple[Any, str]] = {}  # gbench run id -> (MlflowClient, MLflow run id)
_lock = threading.Lock()


def _forget() -> None:
    """After a failure: drop every open run, so that no later hook talks to the broken store."""
    with _lock:
        _runs.clear()


guarded = observers.guarded("mlflow", _forget)


def tracking_uri(run_dir: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{run_dir.resolve().parent / 'mlflow.db'}"


def _experiment_id(client: Any, run_dir: Path) -> str:
    from mlflow.exceptions import MlflowException

    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        # A server keeps artifacts where it is told to; the local store keeps them beside the runs, not in the cwd.
        local = None if os.environ.get("MLFLOW_TRACKING_URI") else (run_dir.resolve().parent / "mlartifacts").as_uri()
        return client.create_experiment(name, artifact_location=local)
    except MlflowException:  # another sweep worker or tune thread created it just now
        return client.get_experiment_by_name(name).experiment_id


@hookimpl
@guarded
def gbench_run_start(run_id: str, config: dict[str, Any], run_dir: Path) -> None:
    if not observers.enabled("mlflow"):
        return
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri(run_dir))
    with _lock:  # the experiment is created once, not by two threads at a time
        experiment = _experiment_id(client, run_dir)
    run = client.create_run(
        experiment, run_name=run_id, tags={"gbench.run_id": run_id, "gbench.run_dir": mask(str(run_dir.resolve()))}
    )
    client.log_batch(
        run.info.run_id,
        params=[Param(key, mask(str(value))) for key, value in observers.hyperparameters(config).items()],
    )
    with _lock:
        _runs[run_id] = (client, run.info.run_id)


def _log_metrics(client: Any, mlflow_run: str, values: dict[str, float], step: int) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client.log_batch(mlflow_run, metrics=[Metric(key, value, now, step) for key, value in values.items()])


@hookimpl
@guarded
def gbench_log_row(run_id: str, row: dict[str, Any]) -> None:
    if run_id in _runs:
        _log_metrics(*_runs[run_id], observers.numbers(row, skip=NOT_TRAIN), int(row["step"]))


@hookimpl
@guarded
def gbench_evaluation(run_id: str, step: int, metrics: dict[str, Any], samples: Any) -> None:
    if run_id not in _runs:
        return
    client, mlflow_run = _runs[run_id]
    _log_metrics(client, mlflow_run, observers.numbers(metrics), step)
    client.log_image(mlflow_run, observers.grid_image(samples), artifact_file=f"samples/step-{step:07d}.png")


@hookimpl
@guarded
def gbench_run_end(run_id: str, row: dict[str, Any], run_dir: Path) -> None:
    with _lock:
        entry = _runs.pop(run_id, None)
    if entry is None:
        return
    client, mlflow_run = entry
    if row.get("status") == "stopped":  # pruned by tune or interrupted: no results row to log
        client.set_tag(mlflow_run, "gbench.status", "stopped")
        client.set_terminated(mlflow_run, status="KILLED")
        return
    _log_metrics(
        client, mlflow_run, observers.numbers({k: row.get(k) for k in SUMMARY_METRICS}), int(row.get("steps") or 0)
    )
    for name in ("samples.png", "generator.pt"):
        if (run_dir / name).is_file():
            client.log_artifact(mlflow_run, str(run_dir / name))
    client.set_tag(mlflow_run, "gbench.status", mask(str(row.get("status"))))
    client.set_terminated(mlflow_run, status="FINISHED")
