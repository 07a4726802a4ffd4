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
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gbench import env, names

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["enabled", "grid_image", "hyperparameters", "numbers"]  # the public API (docs/api.md)

#: Environment variable holding the trackers ``--log`` turned on.
LOG_ENV = "GBENCH_LOG"
#: tracker name -> the package it needs (and the gbench extra that installs it).
TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow"}


def enabled(tracker: str) -> bool:
    """Whether ``--log`` (or ``GBENCH_LOG``) turned this tracker on."""
    return tracker in env.names_list(LOG_ENV)


def parse_trackers(text: str) -> list[str]:
    """``--log NAME[,NAME]``: known trackers whose package is installed."""
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    if not chosen:
        raise argparse.ArgumentTypeError(f"--log {text!r} names no tracker; choose from {', '.join(TRACKERS)}")
    for name in chosen:
        if name not in TRACKERS:
            raise argparse.ArgumentTypeError(str(names.unknown("tracker", name, TRACKERS)))
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise argparse.ArgumentTypeError(f'--log {name} needs the {TRACKERS[name]} package: pip install "gbench[{name}]"')
    return chosen


class EnableTrackers(argparse.Action):
    """``--log``: put the trackers in the environment, where every run (and sweep's workers) reads them."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        os.environ[LOG_ENV] = ",".join(values)
        setattr(namespace, self.dest, values)


class SetMlflowUri(argparse.Action):
    """``--mlflow-uri``: MLflow's own variable, so MLflow's tools and sweep's workers see the same server."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
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
        return any(getattr(self.hook, name).get_hookimpls() for name in ("gbench_run_start", "gbench_log_row", "gbench_evaluation", "gbench_run_end"))


def grid_image(samples: torch.Tensor, nrow: int = 8) -> np.ndarray:
    """Images in [-1, 1] as one uint8 RGB grid, shape (H, W, 3): what trackers show."""
    import torch
    from torchvision.utils import make_grid

    grid = make_grid(samples.detach().cpu().float(), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2, pad_value=1.0)
    return grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def numbers(row: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, float]:
    """The finite-or-not numeric values of a row (bools and text left out), for metric APIs."""
    return {k: float(v) for k, v in row.items() if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)}


def hyperparameters(config: dict[str, Any]) -> dict[str, Any]:
    """What identifies a run for a tracker's parameter table: names, seed, length, every resolved hyperparameter."""
    keys = ("architecture", "loss", "schedule", "dataset", "seed", "epochs", "steps", "train_limit")
    flat = {k: config.get(k) for k in keys}
    flat.update(config.get("params") or {})
    return {k: ("" if v is None else v) for k, v in flat.items()}
