"""gbench sweep SUITE.toml: run every (variant, seed) of a suite, then write its report (see docs/sweeps.md)."""

from __future__ import annotations

import argparse

from gbench.commands._options import add_option, add_tracker_options, add_verbosity_options, number_option
from gbench.options import default, option
from gbench.studies import DEFAULT_HEARTBEAT

HELP = (
    "Run a suite file's every (variant, seed) once (resumable; --jobs N processes; --storage URL shares it across "
    "machines), then write its report."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", metavar="SUITE.toml", help="suite file, e.g. benchmarks/suites/s1_mlp_capacity.toml")
    add_verbosity_options(parser)
    add_tracker_options(parser)  # --log, --mlflow-uri: reach the --jobs workers through the environment
    add_option(parser, option("out"), "sweep")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: every budget scaled down (the suite's [quick] table; default 20 steps, 300 eval samples, "
        "2000 training images, 2 seeds)",
    )
    parser.add_argument(
        "--jobs",
        type=number_option(int, 1, "--jobs"),
        default=1,
        help="runs at once on this machine, each in its own process with cpu_count/N torch threads (default 1)",
    )
    for name in ("seeds", "device", "devices", "data_root"):  # overrides of the suite's; None: the suite's
        add_option(parser, option(name), "sweep")
    parser.add_argument(
        "--storage",
        help="Optuna storage URL that workers on several machines share, e.g. postgresql://user@host/db (default: sqlite:///OUT/sweep.db)",
    )
    parser.add_argument(
        "--study-name", help="study name in the storage (default: the suite's name, plus -quick with --quick)"
    )
    parser.add_argument(
        "--heartbeat",
        type=number_option(int, 1, "--heartbeat"),
        default=DEFAULT_HEARTBEAT,
        help="seconds between a running run's heartbeats; a worker silent for 3 of them is dead and its run is taken "
        f"over (default {DEFAULT_HEARTBEAT})",
    )
    add_option(parser, option("population"), "sweep")
    add_option(parser, option("population_size"), "sweep")
    parser.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    add_option(parser, option("plugin"), "sweep")


def run(args: argparse.Namespace) -> int:
    from gbench.analysis.sequential import parse_auto
    from gbench.commands._progress import verbosity
    from gbench.commands.report import checked_suite_file
    from gbench.commands.sweeping import sweep
    from gbench.config import device_for, parse_devices, parse_seeds
    from gbench.errors import GbenchError
    from gbench.studies.sweep.plan import plan
    from gbench.torchtools import resolve_device

    try:
        auto = parse_auto(args.seeds) if args.seeds else None
    except GbenchError as error:  # "seeds 'auto:x': ..." names the option as typed
        raise GbenchError(f"--{error}") from None
    seeds = parse_seeds(args.seeds) if args.seeds and auto is None else None
    devices = parse_devices(args.devices) if args.devices else []
    if len(devices) > args.jobs:
        raise GbenchError(
            f"--devices names {len(devices)} devices for --jobs {args.jobs}; "
            f"give --jobs {len(devices)} so each device gets a worker"
        )
    for device in [args.device, *devices]:
        if device:
            resolve_device(device)  # cuda:N or mps this machine lacks: one line before any data loads
    sweep_plan = plan(
        checked_suite_file(args.suite),
        out=args.out,
        quick=args.quick,
        seeds=seeds,
        storage=args.storage,
        study_name=args.study_name,
        device=device_for(0, devices, args.device),
        data_root=args.data_root,
        heartbeat=args.heartbeat,
        auto=auto,
        population=args.population or default("population"),
        population_size=args.population_size,
        plugins=args.plugin,
    )
    args.made = sweep_plan  # what gbench.sweep returns its runs from (gbench/api.py)
    return sweep(sweep_plan, jobs=args.jobs, write_report=not args.no_report, devices=devices, level=verbosity(args))
