"""Calling the lifecycle hooks, and the ``--log`` choice of built-in trackers.

:func:`gbench.training.runner.execute` fires ``gbench_run_start``, ``gbench_log_row``,
``gbench_evaluation`` and ``gbench_run_end`` through :class:`Observers`, on
the plugin manager that filled the registry, so every plugin implementing
them hears every run, whichever command started it.

The built-in trackers (``plugins.tensorboard_log``, ``plugins.mlflow_log``)
implement those hooks too, but act only when ``--log`` names them. The choice
travels in the environment (``GBENCH_LOG=tensorboard,mlflow``, and MLflow's
own ``MLFLOW_TRACKING_URI`` for ``--mlflow-uri``) because sweep's workers are
spawned processes that rebuild their plan from the suite file: the
environment is what reaches them unchanged.

A tracker server that cannot be reached fails the command at its start
(:func:`check_trackers`, one short probe); one that breaks later is dropped
with one warning (:func:`tracker_failed`) and the runs go on. Whatever a
tracker is told or says about itself is masked (:mod:`gbench.secrets`).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gbench import env, names
from gbench.errors import GbenchError
from gbench.secrets import first_line, mask

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["enabled", "grid_image", "hyperparameters", "numbers"]  # the public API (docs/api.md)

#: Environment variable holding the trackers ``--log`` turned on.
LOG_ENV = "GBENCH_LOG"
#: tracker name -> the package it needs (and the gbench extra that installs it).
TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow"}
#: MLflow's HTTP settings for the probe at the start: one try, a short wait (MLflow's own default is
#: 7 retries with growing back-off, about 5 minutes before an unreachable server is reported).
MLFLOW_PROBE = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
#: ... and for the runs, unless the user set them: a server that dies mid-run costs seconds, not minutes, once.
MLFLOW_RUNS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}

_failed: set[str] = set()  # trackers that broke in this process: off for the rest of it
_failed_lock = threading.Lock()


def enabled(tracker: str) -> bool:
    """Whether ``--log`` (or ``GBENCH_LOG``) turned this tracker on, and it has not broken since."""
    return tracker in env.names_list(LOG_ENV) and tracker not in _failed


def tracker_failed(tracker: str, error: BaseException) -> None:
    """A tracker broke during the runs: say so once, in one masked line, and go on without it.

    The runs keep training and writing their own files; only the tracker's copy stops.
    """
    with _failed_lock:
        first = tracker not in _failed
        _failed.add(tracker)
    if first:  # plain stderr: the plugin API sits below the results tables (gbench.results.display)
        print(
            f"gbench: warning: --log {tracker} failed ({type(error).__name__}: {first_line(error)}); "
            f"the runs go on without {tracker} and keep their own files",
            file=sys.stderr,
            flush=True,
        )


Hook = TypeVar("Hook", bound=Callable[..., Any])


def guarded(tracker: str, forget: Callable[[], None]) -> Callable[[Hook], Hook]:
    """A tracker's hook that never stops a run: its first error warns once and ``forget`` drops the tracker's
    open runs."""

    def wrap(hook: Hook) -> Hook:
        @functools.wraps(hook)  # pluggy reads the hook's argument names through __wrapped__
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return hook(*args, **kwargs)
            except Exception as error:  # a dead server, a full or read-only disk: the tracker's, not the run's
                with contextlib.suppress(Exception):
                    forget()
                tracker_failed(tracker, error)
                return None

        return call  # type: ignore[return-value]

    return wrap


def check_trackers() -> None:
    """Probe the MLflow tracking server once, before any run, so that a wrong URI fails now and in one line.

    Only an explicit ``--mlflow-uri``/``MLFLOW_TRACKING_URI`` is probed: the default
    local store is a file beside the runs that the first run creates.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not enabled("mlflow") or not uri:
        return
    from mlflow.tracking import MlflowClient

    with env.kept(MLFLOW_PROBE):
        os.environ.update(MLFLOW_PROBE)
        try:
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
        except Exception as error:  # MlflowException, requests' errors, a bad scheme: MLflow's messages quote the URI
            raise GbenchError(
                f"--mlflow-uri {mask(uri)!r} cannot be reached ({first_line(error)}); "
                "start the tracking server or fix the URI, or leave out --mlflow-uri for the local store"
            ) from None
    for name, value in MLFLOW_RUNS.items():
        os.environ.setdefault(name, value)


def parse_trackers(text: str) -> list[str]:
    """``--log NAME[,NAME]``: known trackers whose package is installed."""
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    if not chosen:
        raise argparse.ArgumentTypeError(f"--log {text!r} names no tracker; choose from {', '.join(TRACKERS)}")
    for name in chosen:
        if name not in TRACKERS:
            raise argparse.ArgumentTypeError(str(names.unknown("tracker", name, TRACKERS)))
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise argparse.ArgumentTypeError(
                f'--log {name} needs the {TRACKERS[name]} package: pip install "gbench[{name}]"'
            )
    return chosen


class EnableTrackers(argparse.Action):
    """``--log``: put the trackers in the environment, where every run (and sweep's workers) reads them."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        os.environ[LOG_ENV] = ",".join(values)
        setattr(namespace, self.dest, values)


class SetMlflowUri(argparse.Action):
    """``--mlflow-uri``: MLflow's own variable, so MLflow's tools and sweep's workers see the same server."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        os.environ["MLFLOW_TRACKING_URI"] = str(values)
        setattr(namespace, self.dest, values)


@dataclass
class Observers:
    """The lifecycle hooks of one plugin manager (``None``: nobody listens)."""

    hook: Any = None

    def run_start(self, run_id: str, config: dict[str, Any], run_dir: Path) -> None:
        if self.hook is not None:
            self.hook.gbench_run_start(run_id=run_id, config=config, run_dir=run_dir)

    def log_row(self, run_id: str, row: dict[str, Any]) -> None:
        if self.hook is not None:
            self.hook.gbench_log_row(run_id=run_id, row=row)

    def evaluation(self, run_id: str, step: int, metrics: dict[str, Any], samples: torch.Tensor) -> None:
        if self.hook is not None:
            self.hook.gbench_evaluation(run_id=run_id, step=step, metrics=metrics, samples=samples)

    def run_end(self, run_id: str, row: dict[str, Any], run_dir: Path) -> None:
        if self.hook is not None:
            self.hook.gbench_run_end(run_id=run_id, row=row, run_dir=run_dir)

    @property
    def listening(self) -> bool:
        """Whether any plugin implements a lifecycle hook (else the sample grid need not be drawn)."""
        if self.hook is None:
            return False
        return any(
            getattr(self.hook, name).get_hookimpls()
            for name in ("gbench_run_start", "gbench_log_row", "gbench_evaluation", "gbench_run_end")
        )


def grid_image(samples: torch.Tensor, nrow: int = 8) -> np.ndarray:
    """Images in [-1, 1] as one uint8 RGB grid, shape (H, W, 3): what trackers show."""
    import torch
    from torchvision.utils import make_grid

    grid = make_grid(
        samples.detach().cpu().float(), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2, pad_value=1.0
    )
    return grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def numbers(row: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, float]:
    """The finite-or-not numeric values of a row (bools and text left out), for metric APIs."""
    return {
        k: float(v) for k, v in row.items() if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def hyperparameters(config: dict[str, Any]) -> dict[str, Any]:
    """What identifies a run for a tracker's parameter table: names, seed, length, every resolved hyperparameter
    (text masked)."""
    keys = ("architecture", "loss", "schedule", "dataset", "seed", "epochs", "steps", "train_limit")
    flat = {k: config.get(k) for k in keys}
    flat.update(config.get("params") or {})
    return {k: ("" if v is None else mask(v) if isinstance(v, str) else v) for k, v in flat.items()}
