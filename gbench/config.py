"""Run configuration: typed dataclasses, ``--set`` overrides, TOML files.

Hyperparameters live in one flat namespace, ``params``: the training knobs
below plus whatever the chosen architecture, loss and schedule declare. A
name declared by two of them is an error (it would be ambiguous in ``--set``).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gbench.errors import GbenchError
from gbench.names import suggestion
from gbench.plugins.registry import Hyperparameter, Registry, Value

#: Knobs of the trainer and its Adam optimizers, settable like any plugin's.
TRAINING_HYPERPARAMETERS = (
    Hyperparameter("batch_size", 100, low=1, high=4096, log=True, tunable=False, help="images per batch"),
    Hyperparameter("lr", 2e-4, low=1e-12, log=True, search=(1e-5, 1e-2), help="Adam learning rate (schedules may split it)"),
    Hyperparameter("beta1", 0.5, low=0.0, high=0.999, help="Adam beta1"),
    Hyperparameter("beta2", 0.999, low=0.0, high=0.9999, tunable=False, help="Adam beta2"),
)

DEFAULT_EPOCHS = 5.0
#: The decays --ema takes (inclusive bounds): strictly between 0 and 1.
EMA_RANGE = (1e-6, 1 - 1e-6)


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
    precision: str = "fp32"  # "fp32" or "bf16" autocast: part of what the run is (config.json, its interrupted-run hash)
    ema: float | None = None  # --ema DECAY: evaluate and save the generator weights' moving average (gbench.training.ema); None: off
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


#: The run options a `gbench run` option, a ``--config`` file or a suite table sets, each
#: checked by :meth:`Hyperparameter.coerce` exactly as a plugin's hyperparameters are (one
#: checker: ``steps = true`` fails the same way in every place). The defaults only give the type.
RUN_OPTIONS = {
    hp.name: hp
    for hp in (
        Hyperparameter("loss", "non-saturating"),
        Hyperparameter("schedule", "k-steps"),
        Hyperparameter("dataset", "mnist"),
        Hyperparameter("epochs", DEFAULT_EPOCHS, low=1e-9),
        Hyperparameter("steps", 1, low=1),
        Hyperparameter("device", "auto"),
        Hyperparameter("threads", 1, low=1),
        Hyperparameter("data_root", "data"),
        Hyperparameter("train_limit", 1, low=1),
        Hyperparameter("log_every", 50, low=1),
        Hyperparameter("checkpoint_every", 1, low=1),
        Hyperparameter("eval_samples", 10_000, low=0),
        Hyperparameter("eval_every", 1, low=1),
        Hyperparameter("fid_extractor", "lenet-mnist"),
        Hyperparameter("inception_weights", "weights.pth"),
        Hyperparameter("out", "runs"),
        Hyperparameter("population", "auto", choices=("auto", "on", "off")),
        Hyperparameter("population_size", 1, low=1),
        Hyperparameter("precision", "fp32", choices=("fp32", "bf16")),
        # --ema: a decay strictly inside (0, 1) (0 would be the raw weights, 1 the initial ones); leaving it out turns the EMA off
        Hyperparameter("ema", 0.999, low=EMA_RANGE[0], high=EMA_RANGE[1]),
    )
}


@dataclass
class RunSettings:
    """What the commands that train (run, sweep, tune) share before an (architecture, loss,
    schedule) combination and a seed are chosen; :func:`configs_for` turns it into RunConfigs.

    ``params`` holds hyperparameter overrides as given (``--set`` text or typed TOML values);
    they are checked against each combination's declarations when its RunConfig is built.
    """

    architectures: list[str] = field(default_factory=list)  # only these of the target's architectures; empty: all of them
    loss: str = "non-saturating"
    schedule: str = "k-steps"
    dataset: str = "mnist"
    seeds: list[int] = field(default_factory=lambda: [0])
    epochs: float | None = None
    steps: int | None = None
    device: str = "auto"
    devices: list[str] = field(default_factory=list)  # one per parallel worker (sweep --jobs, tune workers); empty: all use `device`
    threads: int | None = None
    data_root: str | None = None
    train_limit: int | None = None
    log_every: int = 50
    checkpoint_every: int | None = None
    out: str = "runs"
    params: dict[str, Any] = field(default_factory=dict)
    eval: EvalOptions = field(default_factory=EvalOptions)
    population: str = "auto"  # "auto": as one population where faster (gbench.training.batch.population_choice); "on", "off"
    population_size: int | None = None  # at most this many members per population; None: all the seeds
    precision: str = "fp32"  # "fp32" or "bf16" (autocast; weights and Adam state stay float32)
    ema: float | None = None  # --ema DECAY; None: off

    def device_for(self, worker: int) -> str:
        """The device of parallel worker ``worker`` (0, 1, ...): ``devices`` in turn, else ``device``."""
        return self.devices[worker % len(self.devices)] if self.devices else self.device


def check_run_options(table: dict[str, Any], where: str = "") -> dict[str, Value]:
    """The run options in a ``--config``-style table, each checked (``where`` prefixes a failure)."""
    checked: dict[str, Value] = {}
    try:
        for key, value in table.items():
            if key in RUN_OPTIONS and value is not None:
                checked[key] = RUN_OPTIONS[key].coerce(value)
        if table.get("params") is not None and not isinstance(table["params"], dict):
            raise GbenchError("params must be a table of hyperparameters, e.g. params = { hidden_dim = 512 }")
    except GbenchError as error:
        raise GbenchError(f"{where}{error}") from None
    return checked


def settings_from_table(table: dict[str, Any], where: str = "") -> RunSettings:
    """RunSettings from `gbench run --config`-style keys: a ``--config`` file merged with the
    command's options, or a suite variant. Every value is checked; ``where`` prefixes a failure."""
    options = check_run_options(table, where)
    params = dict(table.get("params") or {})
    if table.get("batch_size") is not None:
        params["batch_size"] = table["batch_size"]
    architectures = table.get("architecture") or []
    if isinstance(architectures, str):
        architectures = [name.strip() for name in architectures.split(",") if name.strip()]
    if not isinstance(architectures, list) or not all(isinstance(name, str) and name for name in architectures):
        raise GbenchError(f'{where}architecture = {architectures!r} must be an architecture name, e.g. architecture = "mlp"')
    seeds = table.get("seeds", [0])
    seeds = parse_seeds(",".join(map(str, seeds)) if isinstance(seeds, list) else str(seeds))
    devices = table.get("devices") or []
    devices = parse_devices(devices) if isinstance(devices, str) else list(devices)
    return RunSettings(
        architectures=list(dict.fromkeys(architectures)), loss=str(options.get("loss", "non-saturating")),
        schedule=str(options.get("schedule", "k-steps")), dataset=str(options.get("dataset", "mnist")), seeds=seeds,
        epochs=_float(options.get("epochs")), steps=_int(options.get("steps")), device=str(options.get("device", "auto")), devices=devices,
        threads=_int(options.get("threads")), data_root=_str(options.get("data_root")), train_limit=_int(options.get("train_limit")),
        log_every=int(options.get("log_every", 50)), checkpoint_every=_int(options.get("checkpoint_every")), out=str(options.get("out", "runs")),
        params=params,
        eval=EvalOptions(
            samples=int(options.get("eval_samples", 10_000)), every=_int(options.get("eval_every")),
            extractor=_str(options.get("fid_extractor")), inception_weights=_str(options.get("inception_weights")),
        ),
        population=str(options.get("population", "auto")), population_size=_int(options.get("population_size")),
        precision=str(options.get("precision", "fp32")), ema=_float(options.get("ema")),
    )  # fmt: skip


def _int(value: Value | None) -> int | None:
    return None if value is None else int(value)


def _float(value: Value | None) -> float | None:
    return None if value is None else float(value)


def _str(value: Value | None) -> str | None:
    return None if value is None else str(value)


def config_for(
    registry: Registry, settings: RunSettings, combo: tuple[str, str, str], seed: int, params: dict[str, Any], run_id: str | None = None
) -> RunConfig:
    """One checked RunConfig: ``settings`` for the (architecture, loss, schedule) ``combo`` and
    ``seed``, with ``params`` (text or typed values) over the combination's defaults."""
    config = config_from_settings(settings, combo, seed, run_id)
    config.params = resolve_params(registry, config, params)
    return config


def config_from_settings(settings: RunSettings, combo: tuple[str, str, str], seed: int, run_id: str | None = None) -> RunConfig:
    """``settings`` as a RunConfig for ``combo`` and ``seed``, its params not yet resolved (tune's base: each trial sets its own)."""
    architecture, loss, schedule = combo
    return RunConfig(
        architecture=architecture, loss=loss, schedule=schedule, dataset=settings.dataset, seed=seed, epochs=settings.epochs,
        steps=settings.steps, device=settings.device, threads=settings.threads, data_root=settings.data_root,
        train_limit=settings.train_limit, log_every=settings.log_every, checkpoint_every=settings.checkpoint_every,
        eval=dataclasses.replace(settings.eval), precision=settings.precision, ema=settings.ema, run_id=run_id,
    )  # fmt: skip


def configs_for(registry: Registry, settings: RunSettings, combos: list[tuple[str, str, str]], where: str = "") -> list[RunConfig]:
    """One checked RunConfig per combination and seed (seeds vary fastest): the one builder that
    `gbench run`, each suite variant of `gbench sweep`, and `gbench tune` use."""
    try:
        registry.dataset(settings.dataset)  # an unknown dataset fails before any training
        for _, loss, schedule in combos:
            registry.loss(loss)
            registry.schedule(schedule)
        return [config_for(registry, settings, combo, seed, settings.params) for combo in combos for seed in settings.seeds]
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
                raise GbenchError(f"hyperparameter {hp.name!r} is declared by both {owners[hp.name]} and {owner}; one of the plugins must rename it")
            merged[hp.name] = hp
            owners[hp.name] = owner
    return merged


def check_override_keys(keys: list[str] | set[str], known: dict[str, Hyperparameter], context: str = "") -> None:
    for key in keys:
        if key not in known:
            raise GbenchError(f"unknown hyperparameter {key!r}{context}{suggestion(key, known)}; valid keys: {', '.join(sorted(known))}")


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


#: What ``--devices`` may list: one device per worker.
DEVICE_PATTERN = r"cpu|cuda(:[0-9]+)?|mps"


def parse_devices(text: str) -> list[str]:
    """``"cuda:0,cuda:1"`` -> ``["cuda:0", "cuda:1"]``: the devices parallel workers take in turn."""
    import re

    devices = [part.strip() for part in text.split(",") if part.strip()]
    bad = next((d for d in devices if not re.fullmatch(DEVICE_PATTERN, d)), None)
    if not devices or bad is not None:
        what = f"{bad!r} is not" if bad is not None else "names no device; list"
        raise GbenchError(f"--devices {text!r}: {what} cpu, cuda, cuda:N or mps; write for example --devices cuda:0,cuda:1")
    if len(set(devices)) != len(devices):
        raise GbenchError(f"--devices {text!r} names a device twice; give each device once, e.g. --devices cuda:0,cuda:1")
    return devices


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
        raise GbenchError(f"--seeds {text!r} is not a list of integers; write for example --seeds 0,1,2 or --seeds 0-4") from None
    if not seeds or any(seed < 0 for seed in seeds):
        raise GbenchError(f"--seeds {text!r} must name at least one non-negative integer, for example --seeds 0,1,2")
    too_large = next((seed for seed in seeds if seed > MAX_SEED), None)
    if len(seeds) > MAX_RANGE:
        raise GbenchError(f"--seeds {text!r} names over {MAX_RANGE} seeds; name at most {MAX_RANGE}, for example --seeds 0-99")
    if too_large is not None:  # torch.manual_seed overflows past 2**64 - 1, and the evaluation seeds numpy with it (< 2**32)
        raise GbenchError(f"--seeds {text!r}: seed {too_large} is too large; seeds go from 0 to {MAX_SEED}, for example --seeds 0-4")
    repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if repeated:  # two runs of one seed are the same run: they would share a folder, or a population would train it twice
        raise GbenchError(f"--seeds {text!r} repeats seed {', '.join(map(str, repeated))}; name each seed once, e.g. --seeds 0,1,2")
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
    "population",
    "population_size",
    "precision",
    "ema",
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
    except UnicodeDecodeError:  # a binary file (a pickle, an archive) under a .toml name
        raise GbenchError(f"{what} {str(path)!r} is not a text file, so not TOML; give the path of {example}") from None


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
