"""Run configuration: typed dataclasses, ``--set`` overrides, TOML files.

Hyperparameters live in one flat namespace, ``params``: the training knobs
below plus whatever the chosen architecture, loss and schedule declare. A
name declared by two of them is an error (it would be ambiguous in ``--set``).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gbench.errors import GbenchError
from gbench.registry import Hyperparameter, Registry, Value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Knobs of the trainer and its Adam optimizers, settable like any plugin's.
TRAINING_HYPERPARAMETERS = (
    Hyperparameter("batch_size", 100, low=1, high=4096, log=True, tunable=False, help="images per batch"),
    Hyperparameter("lr", 2e-4, low=1e-12, log=True, search=(1e-5, 1e-2), help="Adam learning rate (schedules may split it)"),
    Hyperparameter("beta1", 0.5, low=0.0, high=0.999, help="Adam beta1"),
    Hyperparameter("beta2", 0.999, low=0.0, high=0.9999, tunable=False, help="Adam beta2"),
)

DEFAULT_EPOCHS = 5.0


@dataclass
class EvalOptions:
    """What the evaluator measures; ``samples=0`` turns evaluation off."""

    samples: int = 10_000
    every: int | None = None  # evaluate during training every N generator steps
    extractor: str | None = None  # None: the dataset's shipped LeNet extractor
    inception_weights: str | None = None


@dataclass
class RunConfig:
    """Everything one training run needs; stored as the run's config.json."""

    architecture: str
    loss: str = "non-saturating"
    schedule: str = "k-steps"
    dataset: str = "mnist"
    seed: int = 0
    epochs: float | None = None  # one epoch = len(train) / batch_size generator steps
    steps: int | None = None  # generator steps; wins over epochs when both are set
    params: dict[str, Value] = field(default_factory=dict)
    device: str = "auto"
    threads: int | None = None  # torch CPU threads; None: torch's default
    data_root: str | None = None
    train_limit: int | None = None  # use only the first N training images
    log_every: int = 50
    checkpoint_every: int | None = None
    eval: EvalOptions = field(default_factory=EvalOptions)
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        data["eval"] = EvalOptions(**data.get("eval", {}))
        return cls(**data)

    def total_steps(self, train_size: int) -> int:
        if self.steps is not None:
            return self.steps
        epochs = self.epochs if self.epochs is not None else DEFAULT_EPOCHS
        return max(1, math.ceil(epochs * (train_size // int(self.params["batch_size"]))))


def hyperparameters_for(registry: Registry, architecture: str, loss: str, schedule: str) -> dict[str, Hyperparameter]:
    """All knobs a run of this combination accepts, by name."""
    merged: dict[str, Hyperparameter] = {}
    owners: dict[str, str] = {}
    sources = [("training", TRAINING_HYPERPARAMETERS)]
    sources.append((f"architecture {architecture!r}", registry.architecture(architecture).hyperparameters))
    sources.append((f"loss {loss!r}", registry.loss(loss).hyperparameters))
    sources.append((f"schedule {schedule!r}", registry.schedule(schedule).hyperparameters))
    for owner, hyperparameters in sources:
        for hp in hyperparameters:
            if hp.name in merged:
                raise GbenchError(f"hyperparameter {hp.name!r} is declared by both {owners[hp.name]} and {owner}; one of the plugins must rename it")
            merged[hp.name] = hp
            owners[hp.name] = owner
    return merged


def check_override_keys(keys: list[str] | set[str], known: dict[str, Hyperparameter], context: str = "") -> None:
    for key in keys:
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise GbenchError(f"unknown hyperparameter {key!r}{context}{hint}; valid keys: {', '.join(sorted(known))}")


def resolve_params(registry: Registry, config: RunConfig, overrides: dict[str, Any] | None = None) -> dict[str, Value]:
    """Defaults, then ``config.params``, then ``overrides`` (strings are parsed), all checked."""
    known = hyperparameters_for(registry, config.architecture, config.loss, config.schedule)
    given = dict(config.params)
    given.update(overrides or {})
    check_override_keys(list(given), known, f" for architecture {config.architecture!r}, loss {config.loss!r}, schedule {config.schedule!r}")
    resolved: dict[str, Value] = {}
    for name, hp in known.items():
        if name in given:
            value = given[name]
            resolved[name] = hp.coerce(value)
        else:
            resolved[name] = hp.default
    return resolved


def parse_assignments(items: list[str] | None, option: str = "--set") -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``."""
    result = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise GbenchError(f"{option} {item!r} is not of the form key=value; for example {option} latent_dim=128")
        result[key.strip()] = value.strip()
    return result


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` -> a list of seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                low, high = part.split("-", 1)
                seeds.extend(range(int(low), int(high) + 1))
            elif part:
                seeds.append(int(part))
    except ValueError:
        raise GbenchError(f"--seeds {text!r} is not a list of integers; write for example --seeds 0,1,2 or --seeds 0-4") from None
    if not seeds or any(seed < 0 for seed in seeds):
        raise GbenchError(f"--seeds {text!r} must name at least one non-negative integer, for example --seeds 0,1,2")
    return seeds


#: Keys a ``--config FILE.toml`` may hold, mapped to the ``gbench run`` option they stand for.
CONFIG_FILE_KEYS = {
    "architecture",
    "loss",
    "schedule",
    "dataset",
    "seeds",
    "epochs",
    "steps",
    "batch_size",
    "device",
    "threads",
    "data_root",
    "train_limit",
    "log_every",
    "checkpoint_every",
    "eval_samples",
    "eval_every",
    "fid_extractor",
    "inception_weights",
    "out",
    "params",
}


def read_toml(path: str | Path, what: str = "config file", example: str = "a .toml file") -> dict[str, Any]:
    """Parse a TOML file; a missing file or bad TOML is one GbenchError line naming it."""
    path = Path(path)
    if not path.is_file():
        raise GbenchError(f"{what} {str(path)!r} does not exist; give the path of {example}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise GbenchError(f"{what} {str(path)!r} is not valid TOML: {error}") from None


def load_toml(path: str | Path, allowed: set[str] = CONFIG_FILE_KEYS) -> dict[str, Any]:
    """Read a TOML config; unknown top-level keys are an error that lists the valid ones."""
    path = Path(path)
    data = read_toml(path)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise GbenchError(f"config file {str(path)!r}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(allowed))}")
    if "params" in data and not isinstance(data["params"], dict):
        raise GbenchError(f"config file {str(path)!r}: 'params' must be a table of hyperparameters, e.g. [params] latent_dim = 128")
    return data
