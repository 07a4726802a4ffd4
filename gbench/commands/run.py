"""gbench run TARGET: train every architecture a plugin provides."""

from __future__ import annotations

import argparse
from pathlib import Path

from gbench.commands._options import add_population_options, add_run_options, note_slow_bf16, settings_from_args
from gbench.config import RunConfig, RunSettings, configs_for
from gbench.errors import GbenchError
from gbench.names import suggestion
from gbench.plugins.loading import Plugins, resolve_target
from gbench.plugins.registry import Registry
from gbench.results import display, store
from gbench.training import preflight
from gbench.training.batch import prepare_runs
from gbench.training.population.run import execute_population
from gbench.training.runner import RunHooks
from gbench.training.validate import validate_configs

HELP = "Train and evaluate every architecture a plugin provides (one run per seed), and store the results."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="plugin: an installed plugin's name, a module path (plugins.mlp) or a path/to/file.py with @hookimpl functions")
    add_run_options(parser)
    add_population_options(parser)
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="train new runs even where OUT holds finished runs with the same configuration and seed (by default they are kept, not trained again)",
    )


def combos_for_target(registry: Registry, owner: str, settings: RunSettings) -> list[tuple[str, str, str]]:
    """What TARGET runs: its architectures (or those of them ``--architecture`` names); else the default MLP with its losses or schedules."""
    loss, schedule = settings.run.loss, settings.run.schedule
    architectures = registry.owned_by("architecture", owner)
    for name in settings.architectures:
        if name not in architectures:
            raise GbenchError(
                f"architecture {name!r}: plugin {owner!r} provides no such architecture{suggestion(name, architectures)}; "
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
    raise GbenchError(f"plugin {owner!r} provides no architecture, loss or schedule to run; try `gbench run plugins.mlp`")


def warn_broken(plugins: Plugins) -> None:
    for info in plugins.broken:
        display.console.print(f"[yellow]warning:[/] plugin {info.name!r} is broken and was skipped: {info.error}", highlight=False, soft_wrap=True)


def run_configs(
    configs: list[RunConfig],
    registry: Registry,
    out: Path,
    hooks: RunHooks | None = None,
    population: str = "auto",
    population_size: int | None = None,
    rerun: bool = False,
) -> list[dict]:
    """Run configs under one progress bar per population (or per run with --population off); finished ones are kept unless ``rerun``."""
    validate_configs(registry, configs)  # build and check every combination on the CPU before any run trains
    notes: list[str] = []
    cache, groups, why = prepare_runs(configs, registry, out, population, population_size, check=preflight.check_runs, rerun=rerun, notes=notes)
    for line in [*notes, why] if why else notes:
        display.console.print(line, highlight=False, soft_wrap=True)
    rows = []
    with display.progress() as progress:
        for index, group in enumerate(groups, 1):
            first = group[0]
            seeds = ",".join(str(config.seed) for config in group)
            label = f"[{index}/{len(groups)}] {first.architecture} {first.loss} {first.schedule} seed{'s' if len(group) > 1 else ''} {seeds}"
            task = progress.add_task(label, total=None)

            def on_progress(done: int, total: int, _task=task) -> None:
                progress.update(_task, completed=done, total=total)

            def on_resume(run_id: str, step: int, total: int) -> None:
                progress.console.print(f"resumed interrupted run {run_id} from step {step}/{total}", highlight=False, soft_wrap=True)

            run_hooks = RunHooks(on_progress=on_progress, on_eval=hooks.on_eval if hooks else None, on_resume=on_resume)
            try:
                group_rows, reason = execute_population(group, registry, out, run_hooks, cache)
            except GbenchError:
                progress.live.transient = True  # the error is the one line to show, not a half-drawn bar above it
                raise
            if reason:
                progress.console.print(f"seeds {seeds} trained one by one, not as a population: {reason}", highlight=False, soft_wrap=True)
            statuses = ",".join(sorted({row["status"] for row in group_rows}))
            progress.update(task, description=progress.tasks[task].description + f" [{statuses}]")
            rows.extend(group_rows)
    return rows


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if settings.devices:
        raise GbenchError(
            "--devices is for parallel workers (gbench tune --n-jobs N); gbench run trains one run at a time: give one device, e.g. --device cuda:1"
        )
    plugins, owner = resolve_target(args.target)
    warn_broken(plugins)
    configs = configs_for(plugins.registry, settings, combos_for_target(plugins.registry, owner, settings))
    out = store.ensure_writable(settings.out)
    note_slow_bf16(settings)
    rows = run_configs(configs, plugins.registry, out, population=settings.population, population_size=settings.population_size, rerun=args.rerun)
    display.stdout.print(display.results_table(rows, title=f"gbench run {args.target}", run_ids=False))
    display.console.print(f"results: {out / store.RESULTS}  (run folders under {out}/)", highlight=False)
    return 0
