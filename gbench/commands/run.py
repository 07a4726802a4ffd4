"""gbench run TARGET: train every architecture a plugin provides."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import TYPE_CHECKING

from gbench.commands import _progress
from gbench.commands._options import (
    add_population_options,
    add_run_options,
    add_verbosity_options,
    note_slow_bf16,
    settings_from_args,
)
from gbench.errors import GbenchError
from gbench.names import suggestion
from gbench.results import display, store

if TYPE_CHECKING:  # training imports torch: loaded when a run starts, so that `gbench --help` does not wait on it
    from gbench.config import RunConfig, RunSettings
    from gbench.plugins.loading import Plugins
    from gbench.plugins.registry import Registry

HELP = "Train and evaluate every architecture a plugin provides (one run per seed), and store the results."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        help=(
            "plugin: an installed plugin's name, a module path (plugins.mlp) or "
            "a path/to/file.py with @hookimpl functions"
        ),
    )
    add_run_options(parser)
    add_population_options(parser)
    add_verbosity_options(parser)
    parser.add_argument(
        "--rerun",
        action="store_true",
        help=(
            "train new runs even where OUT holds finished runs with the same configuration "
            "and seed (by default they are kept, not trained again)"
        ),
    )


def combos_for_target(registry: Registry, owner: str, settings: RunSettings) -> list[tuple[str, str, str]]:
    """What TARGET runs: its architectures (or those of them ``--architecture``
    names); else the default MLP with its losses or schedules."""
    loss, schedule = settings.run.loss, settings.run.schedule
    architectures = registry.owned_by("architecture", owner)
    for name in settings.architectures:
        if name not in architectures:
            raise GbenchError(
                f"architecture {name!r}: plugin {owner!r} provides no such "
                f"architecture{suggestion(name, architectures)}; "
                f"its architectures: {', '.join(architectures) or 'none'}"
            )
    if settings.architectures:
        architectures = list(settings.architectures)
    if architectures:
        return [(name, loss, schedule) for name in architectures]
    if registry.owned_by("loss", owner):
        return [("mlp", name, schedule) for name in registry.owned_by("loss", owner)]
    if registry.owned_by("schedule", owner):
        return [("mlp", loss, name) for name in registry.owned_by("schedule", owner)]
    raise GbenchError(
        f"plugin {owner!r} provides no architecture, loss or schedule to run; try `gbench run plugins.mlp`"
    )


def warn_broken(plugins: Plugins) -> None:
    for info in plugins.broken:
        display.console.print(
            f"[yellow]warning:[/] plugin {info.name!r} is broken and was skipped: {info.error}",
            highlight=False,
            soft_wrap=True,
        )


def run_configs(
    configs: list[RunConfig],
    registry: Registry,
    out: Path,
    population: str = "auto",
    population_size: int | None = None,
    rerun: bool = False,
    level: int = _progress.NORMAL,
) -> list[dict]:
    """Run configs under one progress bar (or plain lines in a log) per population, or per run with --population off;
    finished ones are kept unless ``rerun``."""
    from gbench.training import preflight
    from gbench.training.batch import prepare_runs
    from gbench.training.population.run import execute_population
    from gbench.training.runner import RunHooks
    from gbench.training.validate import validate_configs

    validate_configs(registry, configs)  # build and check every combination on the CPU before any run trains
    notes: list[str] = []
    cache, groups, why = prepare_runs(
        configs,
        registry,
        out,
        population,
        population_size,
        check=functools.partial(preflight.check_runs, notes=notes),
        rerun=rerun,
        notes=notes,
    )
    store.ensure_writable(out)  # only now: a bad option, or data that does not fit, leaves no folder behind
    rows = []
    with _progress.RunProgress(level) as progress:
        for line in [*notes, why] if why else notes:
            progress.say(line)
        for index, group in enumerate(groups, 1):
            first = group[0]
            seeds = ",".join(str(config.seed) for config in group)
            label = (
                f"[{index}/{len(groups)}] {first.architecture} {first.loss} "
                f"{first.schedule} seed{'s' if len(group) > 1 else ''} {seeds}"
            )
            # loaded already (prepare_runs)
            train_images = cache.split(registry, first.dataset, "train", first.data_root, first.train_limit)[0]
            shown = progress.group(label, first.total_steps(len(train_images)), len(group))
            hooks = RunHooks(on_progress=shown.on_progress, on_resume=shown.on_resume, on_log_row=shown.on_log_row)
            group_rows, reason = execute_population(group, registry, out, hooks, cache)
            if reason:
                progress.say(f"seeds {seeds} trained one by one, not as a population: {reason}")
            shown.end(group_rows)
            rows.extend(group_rows)
    return rows


def run(args: argparse.Namespace) -> int:
    from gbench import owndata
    from gbench.config import configs_for
    from gbench.plugins.loading import resolve_target

    settings = settings_from_args(args)
    if settings.devices:
        raise GbenchError(
            "--devices is for parallel workers (gbench tune --n-jobs N); gbench run trains "
            "one run at a time: give one device, e.g. --device cuda:1"
        )
    plugins, owner = resolve_target(args.target, args.plugin or ())
    warn_broken(plugins)
    # folder:PATH / npz:PATH scanned and registered, its content hash in the configs
    settings = owndata.resolve(plugins.registry, settings)
    configs = configs_for(plugins.registry, settings, combos_for_target(plugins.registry, owner, settings))
    out = Path(settings.out)  # made by run_configs once every run passed its checks
    note_slow_bf16(settings)
    level = _progress.verbosity(args)
    rows = run_configs(configs, plugins.registry, out, settings.population, settings.population_size, args.rerun, level)
    args.made = (out, rows)  # what gbench.run returns (gbench/api.py)
    display.print_results(rows, f"gbench run {args.target}", run_ids=False, out=str(out))
    display.console.print(
        f"results: {out / store.RESULTS}  (run folders under {out}/)", highlight=False, soft_wrap=True
    )
    return 0
