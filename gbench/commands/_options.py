"""Options shared by the commands that train (run, tune, sweep), and the one place that
turns them, with a ``--config`` file under them, into :class:`gbench.config.RunSettings`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from gbench import options
from gbench.config import RunSettings, check_run_options, load_toml, parse_assignments, settings_from_table
from gbench.errors import GbenchError
from gbench.evaluation.settings import check_inception_weights_option
from gbench.plugins import observers


def number_option(kind: type, minimum: float | None, name: str, maximum: float | None = None) -> Callable[[str], Any]:
    """An argparse ``type=`` for a number of ``kind`` (int or float) in ``minimum``..``maximum``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} {text!r} is not a{'n integer' if kind is int else ' number'}"
            ) from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{name} {text!r} must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{name} {text!r} must be at most {maximum}")
        return value

    return parse


def add_run_plugin_option(parser: argparse.ArgumentParser) -> None:
    """``--plugin`` of the commands that read a finished run (sample, interpolate)."""
    parser.add_argument(
        "--plugin",
        action="append",
        metavar="FILE.py|MODULE",
        help="load this plugin too: the one that provides the run's architecture, when it is not installed",
    )


def parsed_option(parse: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    """An argparse ``type=`` from a parser that raises GbenchError
    (``--devices 'x': why``): argparse's line says the why."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except GbenchError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix(f"{name} {text!r}: ")) from None

    return convert


def add_option(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, declared: options.RunOption, command: str = "run"
) -> None:
    """``declared`` as an argparse option of ``command``: its
    flag, help, metavar, choices and check, all from the table.

    `gbench sweep` reads list options (--seeds auto, --devices) itself, after parsing, and names them in its own line.
    """
    # argparse %-formats help: a literal "%" must not break it
    kwargs: dict[str, Any] = {"help": declared.help_text(command).replace("%", "%%")}
    if declared.metavar and command != "sweep":
        kwargs["metavar"] = declared.metavar
    if declared.choices:
        kwargs["choices"] = list(declared.choices)
    if declared.repeat:
        kwargs["action"] = "append"
    if declared.type is bool:  # a switch: --quiet, not --quiet true (its file key takes true or false)
        kwargs["action"] = "store_true"
        kwargs["default"] = None  # unset: a --config file's value shows through
    if declared.parse is not None and command != "sweep":
        kwargs["type"] = parsed_option(declared.parse, declared.flag)
    elif declared.type in (int, float):
        kwargs["type"] = number_option(declared.type, declared.low, declared.flag, declared.high)
    parser.add_argument(declared.flag, **kwargs)


def add_option_group(parser: argparse.ArgumentParser, group: str) -> argparse._ArgumentGroup:
    """The table's options of ``group``, in a --help section of that name."""
    section = parser.add_argument_group(group)
    for declared in options.OPTIONS:
        if declared.group == group:
            add_option(section, declared)
    return section


def add_run_options(parser: argparse.ArgumentParser) -> None:
    add_option_group(parser, options.TRAINING)
    # --image-size, --channels, --holdout shape --dataset folder:PATH; --plugin
    add_option_group(parser, options.OWN_DATA)
    add_option_group(parser, options.EVALUATION)
    add_tracker_options(parser)


def add_tracker_options(parser: argparse.ArgumentParser) -> None:
    """--log and --mlflow-uri: the built-in trackers (plugins/tensorboard_log.py, plugins/mlflow_log.py)."""
    trackers = parser.add_argument_group("trackers")
    trackers.add_argument(
        "--log",
        type=observers.parse_trackers,
        action=observers.EnableTrackers,
        metavar="NAME[,NAME]",
        help=(
            "also stream every run to these trackers: tensorboard (event files in each "
            "run folder), mlflow (one MLflow run per gbench run)"
        ),
    )
    trackers.add_argument(
        "--mlflow-uri",
        action=observers.SetMlflowUri,
        metavar="URI",
        help=(
            "MLflow tracking server or store for --log mlflow (default: a local "
            "store, OUT/mlflow.db; sets MLFLOW_TRACKING_URI)"
        ),
    )


def add_population_options(parser: argparse.ArgumentParser) -> None:
    """How seeds train: together as one batched population (the default), and in which precision."""
    add_option_group(parser, options.POPULATIONS)


def add_precision_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--precision, as tune takes it (run takes it with the population options)."""
    add_option(parser, options.option("precision"))


def note_slow_bf16(settings: RunSettings) -> None:
    """One line when bf16 was asked for on hardware without fast bf16."""
    from gbench.results import display
    from gbench.torchtools import resolve_device
    from gbench.training.population.stack import bf16_note

    if settings.run.precision == "bf16" and (note := bf16_note(resolve_device(settings.run.device))):
        display.console.print(note, highlight=False)


#: The options settings_from_args reads itself (the file under the others,
#: the hyperparameters it adds to params) or leaves to the command.
_READ_HERE = ("config", "set", "plugin")  # --plugin: read by the command, which loads the plugins


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
    for declared in options.OPTIONS:
        value = getattr(args, declared.name, None)
        if declared.group is not None and declared.name not in _READ_HERE and value is not None:
            table[declared.name] = value
    settings = settings_from_table(table)
    check_inception_weights_option(settings.run.eval.inception_weights, settings.run.eval.extractor)
    from gbench.torchtools import resolve_device

    for device in (settings.run.device, *settings.devices):
        resolve_device(device)
    return settings


def add_verbosity_options(parser: argparse.ArgumentParser) -> None:
    """--quiet and --verbose (gbench/commands/_progress.py): how much progress the command prints on stderr."""
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "-q", "--quiet", action="store_true", help="print only errors and the final results: no progress, no notes"
    )
    shown.add_argument(
        "-v", "--verbose", action="store_true", help="also print every log row (step, losses, FID) as it is recorded"
    )
