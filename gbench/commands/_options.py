"""Options shared by the commands that train (run, tune, sweep), and the
one place that turns them into :class:`RunConfig` objects."""

from __future__ import annotations

import argparse
from typing import Any

from gbench import observers
from gbench.config import EvalOptions, RunConfig, load_toml, parse_assignments, parse_seeds, resolve_params
from gbench.errors import GbenchError
from gbench.registry import Registry


def _number(kind, minimum, name):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} {text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} {text!r} must be at least {minimum}")
        return value

    return parse


def add_run_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--dataset", help="dataset name (default mnist; see `gbench plugins`)")
    group.add_argument("--epochs", type=_number(float, 1e-9, "--epochs"), help="training length in epochs (default 5)")
    group.add_argument("--steps", type=_number(int, 1, "--steps"), help="training length in generator steps (wins over --epochs)")
    group.add_argument("--batch-size", type=_number(int, 1, "--batch-size"), help="images per batch (default 100)")
    group.add_argument("--seeds", help="one run per seed: 0,1,2 or 0-4 (default 0)")
    group.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="set any hyperparameter of the architecture, loss, schedule or optimizer (repeatable)"
    )
    group.add_argument("--loss", help="loss name (default non-saturating)")
    group.add_argument("--schedule", help="discriminator step schedule (default k-steps)")
    group.add_argument("--device", choices=["auto", "cpu", "cuda"], help="training device (default auto: cuda when present)")
    group.add_argument("--threads", type=_number(int, 1, "--threads"), help="CPU threads per run (default: torch's)")
    group.add_argument("--data-root", help="folder holding the datasets (else $GBENCH_DATA, the cache, system places)")
    group.add_argument("--train-limit", type=_number(int, 1, "--train-limit"), help="train on the first N training images only")
    group.add_argument("--log-every", type=_number(int, 1, "--log-every"), help="record metrics every N steps (default 50)")
    group.add_argument("--checkpoint-every", type=_number(int, 1, "--checkpoint-every"), help="save a resumable checkpoint every N steps")
    group.add_argument("--out", help="results folder (default runs)")
    group.add_argument("--config", help="TOML file of defaults for these options (options given here win)")
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument(
        "--eval-samples", type=_number(int, 0, "--eval-samples"), help="generated samples for FID etc. (default 10000; 0 turns evaluation off)"
    )
    evaluation.add_argument("--eval-every", type=_number(int, 1, "--eval-every"), help="also evaluate every N steps during training (an FID curve)")
    evaluation.add_argument("--fid-extractor", help="feature extractor: lenet-mnist, lenet-fashion-mnist, inception (default: the dataset's LeNet)")
    evaluation.add_argument("--inception-weights", help="path to inception-v3-compat weights (no download needed)")
    add_tracker_options(parser)


def add_tracker_options(parser: argparse.ArgumentParser) -> None:
    """--log and --mlflow-uri: the built-in trackers (plugins/tensorboard_log.py, plugins/mlflow_log.py)."""
    trackers = parser.add_argument_group("trackers")
    trackers.add_argument(
        "--log", type=observers.parse_trackers, action=observers.EnableTrackers, metavar="NAME[,NAME]",
        help="also stream every run to these trackers: tensorboard (event files in each run folder), mlflow (one MLflow run per gbench run)",
    )  # fmt: skip
    trackers.add_argument(
        "--mlflow-uri", action=observers.SetMlflowUri, metavar="URI",
        help="MLflow tracking server or store for --log mlflow (default: a local store, OUT/mlflow.db; sets MLFLOW_TRACKING_URI)",
    )  # fmt: skip


def _pick(args: argparse.Namespace, file: dict[str, Any], option: str, key: str | None = None, default: Any = None) -> Any:
    value = getattr(args, option, None)
    if value is not None:
        return value
    return file.get(key or option, default)


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Merge the options with ``--config``'s TOML (options win) into plain settings."""
    file = load_toml(args.config) if getattr(args, "config", None) else {}
    seeds = _pick(args, file, "seeds", default="0")
    if isinstance(seeds, list):
        seeds = ",".join(map(str, seeds))
    overrides: dict[str, Any] = dict(file.get("params", {}))
    overrides.update(parse_assignments(getattr(args, "set", None)))
    batch_size = _pick(args, file, "batch_size")
    if batch_size is not None:
        overrides["batch_size"] = batch_size
    settings = {
        "architecture": file.get("architecture"),
        "loss": _pick(args, file, "loss", default="non-saturating"),
        "schedule": _pick(args, file, "schedule", default="k-steps"),
        "dataset": _pick(args, file, "dataset", default="mnist"),
        "seeds": parse_seeds(str(seeds)),
        "epochs": _pick(args, file, "epochs"),
        "steps": _pick(args, file, "steps"),
        "device": _pick(args, file, "device", default="auto"),
        "threads": _pick(args, file, "threads"),
        "data_root": _pick(args, file, "data_root"),
        "train_limit": _pick(args, file, "train_limit"),
        "log_every": _pick(args, file, "log_every", default=50),
        "checkpoint_every": _pick(args, file, "checkpoint_every"),
        "out": _pick(args, file, "out", default="runs"),
        "overrides": overrides,
        "eval": EvalOptions(
            samples=_pick(args, file, "eval_samples", default=10_000),
            every=_pick(args, file, "eval_every"),
            extractor=_pick(args, file, "fid_extractor"),
            inception_weights=_pick(args, file, "inception_weights"),
        ),
    }
    for key in ("steps", "log_every", "threads", "train_limit", "checkpoint_every"):
        if settings[key] is not None and (not isinstance(settings[key], int) or settings[key] < 1):
            raise GbenchError(f"{key}={settings[key]!r} must be a positive integer")
    if settings["epochs"] is not None and not (isinstance(settings["epochs"], (int, float)) and settings["epochs"] > 0):
        raise GbenchError(f"epochs={settings['epochs']!r} must be a positive number")
    return settings


def make_configs(registry: Registry, settings: dict[str, Any], combos: list[tuple[str, str, str]]) -> list[RunConfig]:
    """One checked RunConfig per (architecture, loss, schedule) combination and seed."""
    registry.dataset(settings["dataset"])  # unknown dataset: fail before any training
    configs = []
    for architecture, loss, schedule in combos:
        for seed in settings["seeds"]:
            config = RunConfig(
                architecture=architecture, loss=loss, schedule=schedule, dataset=settings["dataset"], seed=seed,
                epochs=settings["epochs"], steps=settings["steps"], device=settings["device"], threads=settings["threads"],
                data_root=settings["data_root"], train_limit=settings["train_limit"], log_every=settings["log_every"],
                checkpoint_every=settings["checkpoint_every"], eval=settings["eval"],
            )  # fmt: skip
            config.params = resolve_params(registry, config, settings["overrides"])
            configs.append(config)
    return configs
