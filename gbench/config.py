"""Run configuration: typed dataclasses, ``--set`` overrides, TOML files.

Hyperparameters live in one flat namespace, ``params``: the training knobs
(gbench.options.TRAINING_HYPERPARAMETERS) plus whatever the chosen architecture, loss and schedule declare. A
name declared by two of them is an error (it would be ambiguous in ``--set``).
The run options themselves (their names, defaults, checks) are declared once,
in :data:`gbench.options.OPTIONS`; the dataclasses here take their defaults from it.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gbench.datasource import DataOptions
from gbench.errors import GbenchError
from gbench.names import suggestion
from gbench.options import (
    BY_HAND,
    DATA,
    DEFAULT_EPOCHS,
    EVAL,
    OPTIONS,
    RUN,
    SETTINGS,
    TRAINING_HYPERPARAMETERS,
    checkers,
    config_file_keys,
    default,
    parse_devices,
)
from gbench.plugins.registry import Hyperparameter, Registry, Value


@dataclass(frozen=True)
class EvalOptions:
    """What the evaluator measures; ``samples=0`` turns evaluation off."""

    samples: int = default("eval_samples")
    every: int | None = default("eval_every")  # evaluate during training every N generator steps
    extractor: str | None = default("fid_extractor")  # None: the dataset's shipped LeNet extractor
    inception_weights: str | None = default("inception_weights")


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs; stored as the run's config.json. Never changed in place:
    :func:`dataclasses.replace` makes the changed copy (its params, its run id)."""

    architecture: str
    loss: str = default("loss")
    schedule: str = default("schedule")
    dataset: str = default("dataset")
    seed: int = 0
    epochs: float | None = default("epochs")  # one epoch = len(train) / batch_size generator steps
    steps: int | None = default("steps")  # generator steps; wins over epochs when both are set
    params: dict[str, Value] = field(default_factory=dict)
    device: str = default("device")
    threads: int | None = default("threads")  # torch CPU threads; None: torch's default
    data_root: str | None = default("data_root")
    train_limit: int | None = default("train_limit")  # use only the first N training images
    log_every: int = default("log_every")
    checkpoint_every: int | None = default("checkpoint_every")
    eval: EvalOptions = field(default_factory=EvalOptions)
    # "fp32" or "bf16" autocast: part of what the run is (config.json, its interrupted-run hash)
    precision: str = default("precision")
    # --ema DECAY: evaluate and save the generator weights' moving average (gbench.training.ema); None: off
    ema: float | None = default("ema")
    run_id: str | None = None
    data: DataOptions = field(default_factory=DataOptions)  # own data's shape and content hash (gbench.datasource)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        data["eval"] = EvalOptions(**data.get("eval", {}))
        data["data"] = DataOptions(**data.get("data", {}))
        return cls(**data)

    def total_steps(self, train_size: int) -> int:
        if self.steps is not None:
            return self.steps
        epochs = self.epochs if self.epochs is not None else DEFAULT_EPOCHS
        return max(1, math.ceil(epochs * (train_size // int(self.params["batch_size"]))))


_Device = TypeVar("_Device", bound="str | None")


def device_for(worker: int, devices: Sequence[str], device: _Device) -> str | _Device:
    """The one device rule of parallel workers (tune's threads, sweep's --jobs processes): worker
    ``worker`` (0, 1, ...) takes ``devices`` in turn; without them every worker takes ``device``."""
    return devices[worker % len(devices)] if devices else device


@dataclass(frozen=True)
class RunSettings:
    """What the commands that train (run, sweep, tune) share before an (architecture, loss,
    schedule) combination and a seed are chosen; :func:`configs_for` turns it into RunConfigs.

    ``run`` holds every run's options: each run is ``run`` with its combination, seed, params
    and run id replaced. ``params`` holds hyperparameter overrides as given (``--set`` text or
    typed TOML values); they are checked against each combination's declarations when its
    RunConfig is built.
    """

    run: RunConfig = field(default_factory=lambda: RunConfig(architecture=""))
    # only these of the target's architectures; empty: all of them
    architectures: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: list(default("seeds")))
    # one per parallel worker (sweep --jobs, tune workers); empty: all use run.device
    devices: list[str] = field(default_factory=list)
    out: str = default("out")
    params: dict[str, Any] = field(default_factory=dict)
    # "auto": as one population where faster (gbench.training.batch.population_choice); "on", "off"
    population: str = default("population")
    # at most this many members per population; None: all the seeds
    population_size: int | None = default("population_size")

    def device_for(self, worker: int) -> str:
        """The device of parallel worker ``worker`` (0, 1, ...):
        :func:`device_for` over ``devices`` and ``run.device``."""
        return device_for(worker, self.devices, self.run.device)


def check_run_options(table: dict[str, Any], where: str = "") -> dict[str, Value]:
    """The run options in a ``--config``-style table, each checked (``where`` prefixes a failure)."""
    checked: dict[str, Value] = {}
    checks = checkers()  # each checked option's Hyperparameter, by key
    try:
        for key, value in table.items():
            if key in checks and value is not None:
                checked[key] = checks[key].coerce(value)
        if table.get("params") is not None and not isinstance(table["params"], dict):
            raise GbenchError("params must be a table of hyperparameters, e.g. params = { hidden_dim = 512 }")
    except GbenchError as error:
        raise GbenchError(f"{where}{error}") from None
    return checked


def settings_from_table(table: dict[str, Any], where: str = "") -> RunSettings:
    """RunSettings from `gbench run --config`-style keys: a ``--config`` file merged with the
    command's options, or a suite variant. Every value is checked; ``where`` prefixes a failure."""
    options = check_run_options(table, where)
    values: dict[str, dict[str, Any]] = {RUN: {}, EVAL: {}, DATA: {}, SETTINGS: {}}
    for declared in OPTIONS:  # each option that lands in a field by itself: its checked value, else its default
        if declared.lands != BY_HAND:
            value = options.get(declared.name)
            values[declared.lands][declared.field] = declared.default if value is None else declared.type(value)
    params = dict(table.get("params") or {})
    if table.get("batch_size") is not None:
        params["batch_size"] = table["batch_size"]
    architectures = table.get("architecture") or []
    if isinstance(architectures, str):
        architectures = [name.strip() for name in architectures.split(",") if name.strip()]
    if not isinstance(architectures, list) or not all(isinstance(name, str) and name for name in architectures):
        raise GbenchError(
            f'{where}architecture = {architectures!r} must be an architecture name, e.g. architecture = "mlp"'
        )
    seeds = table.get("seeds", list(default("seeds")))
    seeds = parse_seeds(",".join(map(str, seeds)) if isinstance(seeds, list) else str(seeds))
    devices = table.get("devices") or []
    devices = parse_devices(devices) if isinstance(devices, str) else list(devices)
    run = RunConfig(architecture="", eval=EvalOptions(**values[EVAL]), data=DataOptions(**values[DATA]), **values[RUN])
    return RunSettings(
        run=run,
        architectures=list(dict.fromkeys(architectures)),
        seeds=seeds,
        devices=devices,
        params=params,
        **values[SETTINGS],
    )


def config_for(
    registry: Registry,
    settings: RunSettings,
    combo: tuple[str, str, str],
    seed: int,
    params: dict[str, Any],
    run_id: str | None = None,
) -> RunConfig:
    """One checked RunConfig: ``settings`` for the (architecture, loss, schedule) ``combo`` and
    ``seed``, with ``params`` (text or typed values) over the combination's defaults."""
    config = config_from_settings(settings, combo, seed, run_id)
    return dataclasses.replace(config, params=resolve_params(registry, config, params))


def config_from_settings(
    settings: RunSettings, combo: tuple[str, str, str], seed: int, run_id: str | None = None
) -> RunConfig:
    """``settings`` as a RunConfig for ``combo`` and ``seed``, its
    params not yet resolved (tune's base: each trial sets its own)."""
    architecture, loss, schedule = combo
    return dataclasses.replace(
        settings.run, architecture=architecture, loss=loss, schedule=schedule, seed=seed, run_id=run_id
    )


def configs_for(
    registry: Registry, settings: RunSettings, combos: list[tuple[str, str, str]], where: str = ""
) -> list[RunConfig]:
    """One checked RunConfig per combination and seed (seeds vary fastest): the one builder that
    `gbench run`, each suite variant of `gbench sweep`, and `gbench tune` use."""
    try:
        registry.dataset(settings.run.dataset)  # an unknown dataset fails before any training
        for _, loss, schedule in combos:
            registry.loss(loss)
            registry.schedule(schedule)
        return [
            config_for(registry, settings, combo, seed, settings.params) for combo in combos for seed in settings.seeds
        ]
    except GbenchError as error:
        raise GbenchError(f"{where}{error}") from None


def hyperparameters_for(registry: Registry, architecture: str, loss: str, schedule: str) -> dict[str, Hyperparameter]:
    """All knobs a run of this combination accepts, by name."""
    merged: dict[str, Hyperparameter] = {}
    owners: dict[str, str] = {}
    sources: list[tuple[str, tuple[Hyperparameter, ...]]] = [("training", TRAINING_HYPERPARAMETERS)]
    sources.append((f"architecture {architecture!r}", registry.architecture(architecture).hyperparameters))
    sources.append((f"loss {loss!r}", registry.loss(loss).hyperparameters))
    sources.append((f"schedule {schedule!r}", registry.schedule(schedule).hyperparameters))
    for owner, hyperparameters in sources:
        for hp in hyperparameters:
            if hp.name in merged:
                raise GbenchError(
                    f"hyperparameter {hp.name!r} is declared by both {owners[hp.name]} "
                    f"and {owner}; one of the plugins must rename it"
                )
            merged[hp.name] = hp
            owners[hp.name] = owner
    return merged


def check_override_keys(keys: list[str] | set[str], known: dict[str, Hyperparameter], context: str = "") -> None:
    for key in keys:
        if key not in known:
            raise GbenchError(
                f"unknown hyperparameter {key!r}{context}{suggestion(key, known)}; valid keys: "
                f"{', '.join(sorted(known))}"
            )


def resolve_params(registry: Registry, config: RunConfig, overrides: dict[str, Any] | None = None) -> dict[str, Value]:
    """Defaults, then ``config.params``, then ``overrides`` (strings are parsed), all checked."""
    known = hyperparameters_for(registry, config.architecture, config.loss, config.schedule)
    given = dict(config.params)
    given.update(overrides or {})
    check_override_keys(
        list(given),
        known,
        f" for architecture {config.architecture!r}, loss {config.loss!r}, schedule {config.schedule!r}",
    )
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


#: The largest seed: the final evaluation seeds numpy's RandomState with the run's seed, which takes 0..2**32 - 1.
MAX_SEED = 2**32 - 1
#: The most seeds one option may name: each is a run (and its list is built in memory).
MAX_RANGE = 100_000


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` -> a list of seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                low, high = part.split("-", 1)
                # a range past MAX_SEED is cut one past it: reported as too large below, not built 2**64 long
                seeds.extend(range(int(low), min(int(high), MAX_SEED + 1) + 1)[: MAX_RANGE + 1])
            elif part:
                seeds.append(int(part))
    except ValueError:
        raise GbenchError(
            f"--seeds {text!r} is not a list of integers; write for example --seeds 0,1,2 or --seeds 0-4"
        ) from None
    if not seeds or any(seed < 0 for seed in seeds):
        raise GbenchError(f"--seeds {text!r} must name at least one non-negative integer, for example --seeds 0,1,2")
    too_large = next((seed for seed in seeds if seed > MAX_SEED), None)
    if len(seeds) > MAX_RANGE:
        raise GbenchError(
            f"--seeds {text!r} names over {MAX_RANGE} seeds; name at most {MAX_RANGE}, for example --seeds 0-99"
        )
    # torch.manual_seed overflows past 2**64 - 1, and the evaluation seeds numpy with it (< 2**32)
    if too_large is not None:
        raise GbenchError(
            f"--seeds {text!r}: seed {too_large} is too large; seeds go from 0 to {MAX_SEED}, for example --seeds 0-4"
        )
    repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    # two runs of one seed are the same run: they would share a folder, or a population would train it twice
    if repeated:
        raise GbenchError(
            f"--seeds {text!r} repeats seed {', '.join(map(str, repeated))}; name each seed once, e.g. --seeds 0,1,2"
        )
    return seeds


#: Keys a ``--config FILE.toml`` may hold: the run options that are file keys (gbench.options).
CONFIG_FILE_KEYS = config_file_keys()


def read_toml(path: str | Path, what: str = "config file", example: str = "a .toml file") -> dict[str, Any]:
    """Parse a TOML file; a missing file or bad TOML is one GbenchError line naming it."""
    path = Path(path)
    if not path.is_file():
        raise GbenchError(f"{what} {str(path)!r} does not exist; give the path of {example}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise GbenchError(f"{what} {str(path)!r} is not valid TOML: {error}") from None
    except UnicodeDecodeError:  # a binary file (a pickle, an archive) under a .toml name
        raise GbenchError(f"{what} {str(path)!r} is not a text file, so not TOML; give the path of {example}") from None


def load_toml(path: str | Path, allowed: AbstractSet[str] | None = None) -> dict[str, Any]:
    """Read a TOML config; unknown top-level keys (not ``allowed``, by
    default a config file's) are an error that lists the valid ones."""
    path = Path(path)
    allowed = config_file_keys() if allowed is None else allowed
    data = read_toml(path)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise GbenchError(
            f"config file {str(path)!r}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(allowed))}"
        )
    if "params" in data and not isinstance(data["params"], dict):
        raise GbenchError(
            f"config file {str(path)!r}: 'params' must be a table of hyperparameters, e.g. [params] latent_dim = 128"
        )
    return data
