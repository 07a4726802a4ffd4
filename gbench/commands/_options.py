"""Options shared by the commands that train (run, tune, sweep), and the one place that
turns them, with a ``--config`` file under them, into :class:`gbench.config.RunSettings`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from gbench.config import RunSettings, check_run_options, load_toml, parse_assignments, parse_devices, settings_from_table
from gbench.errors import GbenchError
from gbench.evaluation.settings import check_inception_weights_option
from gbench.plugins import observers


def number_option(kind: type, minimum: float, name: str) -> Callable[[str], Any]:
    """An argparse ``type=`` for a number of ``kind`` (int or float) of at least ``minimum``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} {text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} {text!r} must be at least {minimum}")
        return value

    return parse


def _devices(text: str) -> list[str]:

    try:
        return parse_devices(text)
    except GbenchError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix(f"--devices {text!r}: ")) from None


def add_run_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--architecture", metavar="NAME[,NAME]", help="train only these of the target's architectures (default: all it provides)")
    group.add_argument("--dataset", help="dataset name (default mnist; see `gbench plugins`)")
    group.add_argument("--epochs", type=number_option(float, 1e-9, "--epochs"), help="training length in epochs (default 5)")
    group.add_argument("--steps", type=number_option(int, 1, "--steps"), help="training length in generator steps (wins over --epochs)")
    group.add_argument("--batch-size", type=number_option(int, 1, "--batch-size"), help="images per batch (default 100)")
    group.add_argument("--seeds", help="one run per seed: 0,1,2 or 0-4 (default 0)")
    group.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="set any hyperparameter of the architecture, loss, schedule or optimizer (repeatable)"
    )
    group.add_argument("--loss", help="loss name (default non-saturating)")
    group.add_argument("--schedule", help="discriminator step schedule (default k-steps)")
    group.add_argument("--device", metavar="DEVICE", help="training device: auto (default: cuda when present), cpu, cuda, cuda:N or mps")
    group.add_argument(
        "--devices", type=_devices, metavar="DEV[,DEV]", help="parallel workers take these devices in turn, e.g. cuda:0,cuda:1 (one GPU per worker)"
    )
    group.add_argument("--threads", type=number_option(int, 1, "--threads"), help="CPU threads per run (default: torch's)")
    group.add_argument("--data-root", help="folder holding the datasets (else $GBENCH_DATA, the cache, system places)")
    group.add_argument("--train-limit", type=number_option(int, 1, "--train-limit"), help="train on the first N training images only")
    group.add_argument("--log-every", type=number_option(int, 1, "--log-every"), help="record metrics every N steps (default 50)")
    group.add_argument("--checkpoint-every", type=number_option(int, 1, "--checkpoint-every"), help="save a resumable checkpoint every N steps")
    group.add_argument("--out", help="results folder (default runs)")
    group.add_argument("--config", help="TOML file of defaults for these options (options given here win)")
    add_ema_option(group)
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument(
        "--eval-samples",
        type=number_option(int, 0, "--eval-samples"),
        help="generated samples for FID etc. (default 10000; 0 turns evaluation off)",
    )
    evaluation.add_argument("--eval-every", type=number_option(int, 1, "--eval-every"), help="also evaluate every N steps during training (an FID curve)")
    evaluation.add_argument("--fid-extractor", help="feature extractor: lenet-mnist, lenet-fashion-mnist, inception (default: the dataset's LeNet)")
    evaluation.add_argument("--inception-weights", help="path to inception-v3-compat weights (no download needed)")
    add_tracker_options(parser)


def add_ema_option(group: argparse._ArgumentGroup) -> None:
    """--ema DECAY (gbench.training.ema); checked with the other run options (gbench.config.RUN_OPTIONS["ema"])."""
    group.add_argument(
        "--ema", metavar="DECAY",
        help="keep an exponential moving average of the generator's weights with this decay, e.g. 0.999 (0 < DECAY < 1, warmed up as "
        "TensorFlow's EMA: min(DECAY, (1+t)/(10+t))); evaluation, samples.png and generator.pt then use it (default: off)",
    )  # fmt: skip


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


def add_population_options(parser: argparse.ArgumentParser) -> None:
    """How seeds train: together as one batched population (the default), and in which precision."""
    group = parser.add_argument_group("populations and precision")
    group.add_argument(
        "--population",
        choices=["auto", "on", "off"],
        help="auto (default): the seeds of a configuration train as one population where that is faster (a GPU, or bf16; "
        "one by one on a CPU in fp32), and a line says which and why; on: always as one population; off: one by one",
    )
    group.add_argument(
        "--population-size", type=number_option(int, 1, "--population-size"), help="at most N members per population (for memory; default all seeds)"
    )
    add_precision_option(group)


def add_precision_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--precision, as run and tune take it."""
    parser.add_argument("--precision", choices=["fp32", "bf16"], help="fp32 (default) or bf16: autocast the forward passes (weights, Adam state stay float32)")


def note_slow_bf16(settings: RunSettings) -> None:
    """One line when bf16 was asked for on hardware without fast bf16."""
    from gbench.results import display
    from gbench.torchtools import resolve_device
    from gbench.training.population.stack import bf16_note

    if settings.precision == "bf16" and (note := bf16_note(resolve_device(settings.device))):
        display.console.print(note, highlight=False)


#: ``args`` attributes that are settings, under their config-file key
_SETTING_OPTIONS = (
    "architecture", "loss", "schedule", "dataset", "seeds", "epochs", "steps", "batch_size", "device", "devices", "threads", "data_root",
    "train_limit", "log_every", "checkpoint_every", "eval_samples", "eval_every", "fid_extractor", "inception_weights", "out",
    "population", "population_size", "precision", "ema",
)  # fmt: skip


def settings_from_args(args: argparse.Namespace) -> RunSettings:
    """The options over ``--config``'s TOML (options win), checked, as RunSettings.

    Every device named is checked here, so ``--device mps`` on a machine without
    it fails in one line before any data loads.
    """
    table: dict[str, Any] = {}
    if getattr(args, "config", None):
        table = load_toml(args.config)
        check_run_options(table, f"config file {str(args.config)!r}: ")
    params: dict[str, Any] = dict(table.get("params") or {})
    params.update(parse_assignments(getattr(args, "set", None)))
    table["params"] = params
    for key in _SETTING_OPTIONS:
        value = getattr(args, key, None)
        if value is not None:
            table[key] = value
    settings = settings_from_table(table)
    check_inception_weights_option(settings.eval.inception_weights, settings.eval.extractor)
    from gbench.torchtools import resolve_device

    for device in (settings.device, *settings.devices):
        resolve_device(device)
    return settings
