"""gbench tune [TARGET]: search hyperparameters with Optuna (see docs/tune.md).

This module is the command: options in, tables and the ready-to-paste
``gbench run`` line out. The search space is :mod:`gbench.studies.tune.searchspace`, the
study and its workers :mod:`gbench.studies.tune.tune`.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gbench.commands import _progress
from gbench.commands._options import (
    add_precision_option,
    add_run_options,
    add_verbosity_options,
    note_slow_bf16,
    number_option,
)
from gbench.studies import DEFAULT_HEARTBEAT

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from gbench.config import RunConfig, RunSettings
    from gbench.plugins.registry import Registry
    from gbench.studies.tune.searchspace import SearchSpace
    from gbench.studies.tune.tune import TuneOptions

PRUNER_CHOICES = [
    "median",
    "hyperband",
    "none",
]  # gbench.studies.tune.tune.PRUNERS; not imported here: `gbench tune --help` stays light

HELP = (
    "Search hyperparameters with Optuna: every trial is a gbench run; prunes bad trials early; resumable and shareable "
    "across workers."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        nargs="?",
        default="mlp",
        help="plugin whose architectures (or losses, schedules) to tune, as in `gbench run` "
        "(default: mlp, the built-in MLP architectures)",
    )
    group = parser.add_argument_group("search")
    group.add_argument(
        "--trials",
        type=int,
        default=50,
        help="trials to reach in the study, complete plus pruned, across all workers (default 50); "
        "running again resumes",
    )
    group.add_argument(
        "--space",
        action="append",
        metavar="KEY=LOW:HIGH[:log]|KEY=A,B,C",
        help="narrow or replace a search range (repeatable); architecture, loss and schedule may be searched too: "
        "--space architecture=mlp,mlp-batchnorm",
    )
    group.add_argument(
        "--objective",
        default="fid",
        help="what to minimise: fid (default), kid, wall_time, or two of them for a Pareto front: fid,wall_time",
    )
    group.add_argument(
        "--pruner",
        choices=PRUNER_CHOICES,
        default="median",
        help="stop clearly bad trials at an evaluation during training (--eval-every); default median",
    )
    group.add_argument(
        "--pruner-startup",
        type=number_option(int, 0, "--pruner-startup"),
        default=5,
        help="complete trials before the median pruner prunes anything (default 5)",
    )
    group.add_argument(
        "--pruner-warmup",
        type=number_option(int, 0, "--pruner-warmup"),
        default=0,
        metavar="STEPS",
        help="prune no trial before this generator step (median: Optuna's n_warmup_steps; hyperband: its "
        "min_resource); default 0",
    )
    group.add_argument("--sampler-seed", type=int, help="seed of the TPE sampler, for a repeatable search")
    group.add_argument(
        "--n-jobs",
        type=number_option(int, 1, "--n-jobs"),
        default=1,
        help="trials at once in this process (threads; default 1)",
    )
    add_verbosity_options(parser)
    study = parser.add_argument_group("study storage")
    study.add_argument(
        "--storage",
        help="Optuna storage URL shared by workers, e.g. postgresql://user@host/db (default: sqlite:///OUT/tune.db)",
    )
    study.add_argument("--study-name", help="study name in the storage (default: tune-TARGET)")
    study.add_argument(
        "--heartbeat",
        type=number_option(int, 1, "--heartbeat"),
        default=DEFAULT_HEARTBEAT,
        help="seconds between a running trial's heartbeats; a worker silent for 3 of them is dead and its trial "
        f"re-run (default {DEFAULT_HEARTBEAT})",
    )
    add_run_options(parser)
    add_precision_option(parser)


def run(args: argparse.Namespace) -> int:
    from gbench import owndata
    from gbench.commands import tuning
    from gbench.commands._options import settings_from_args
    from gbench.commands.run import combos_for_target, warn_broken
    from gbench.errors import GbenchError
    from gbench.plugins.loading import resolve_target
    from gbench.results import display, store
    from gbench.studies.storage import check_server, close_study_name, shown_url
    from gbench.studies.tune.searchspace import build_space, check_reachable
    from gbench.studies.tune.tune import OBJECTIVES, TuneOptions, open_study, parse_objectives, safe_name
    from gbench.studies.workers import count, counted_trials
    from gbench.training import preflight
    from gbench.training.runner import DataCache

    settings = settings_from_args(args)
    options = TuneOptions(
        trials=args.trials,
        objectives=parse_objectives(args.objective),
        pruner=args.pruner,
        pruner_startup=args.pruner_startup,
        pruner_warmup=args.pruner_warmup,
        sampler_seed=args.sampler_seed,
        n_jobs=args.n_jobs,
        devices=list(settings.devices),
        storage=args.storage,
        study_name=args.study_name or safe_name(f"tune-{args.target}"),
        heartbeat=args.heartbeat,
        target=args.target,
        seeds=list(settings.seeds),
    )
    plugins, owner = resolve_target(args.target, args.plugin or ())
    warn_broken(plugins)
    registry = plugins.registry
    settings = owndata.resolve(
        registry, settings
    )  # folder:PATH / npz:PATH scanned and registered, its content hash in every trial's config
    registry.dataset(settings.run.dataset)
    combos = combos_for_target(registry, owner, settings)
    base = base_config(settings, combos[0])
    notes: list[str] = []
    base = preflight.check_eval_options(
        base, registry, notes
    )  # --fid-extractor against the data, before any trial (no extractor fits: no FID)
    if notes and any(OBJECTIVES[name] != "wall_time" for name in options.objectives):
        raise GbenchError(
            notes[0].split("; the runs train")[0]
            + "; the objective needs FID: give --inception-weights PATH, or --objective wall_time"
        )
    for line in notes:  # wall time alone: the trials train without evaluation
        display.console.print(line, highlight=False, soft_wrap=True)
    options.check(base)
    # a conditional mismatch (acgan without class logits): one line, before any trial
    fixed = dataclasses.replace(base, params={**base.params, **settings.params})  # --set's values, as every trial's
    cache = DataCache()
    preflight.check_conditioning(fixed, registry, cache)
    space = build_space(registry, combos, settings.params, args.space)
    check_reachable(space, base, cache)  # every batch size the search reaches against the data, before OUT is made
    check_server(options.storage)
    out = store.ensure_writable(settings.out)
    note_slow_bf16(settings)
    opened = open_study(registry, base, space, options, out, cache)
    args.made = opened  # what gbench.tune returns its study and runs from (gbench/api.py)
    console = display.console
    opened.tuner.on_note = lambda text: console.print(text, highlight=False, soft_wrap=True)
    if len(options.objectives) > 1 and options.pruner != "none":
        console.print(
            "note: Optuna cannot prune multi-objective trials; running without pruning", highlight=False, soft_wrap=True
        )
    elif options.pruning and not base.eval.every:
        console.print(
            "note: pruning needs evaluations during training; give --eval-every N, or no trial can be pruned",
            highlight=False,
            soft_wrap=True,
        )
    before = count(counted_trials(opened.study))
    if opened.created and (near := close_study_name(opened.shared.storage, options.study_name)):
        console.print(
            f"note: study {options.study_name!r} is new; the storage holds {near!r} "
            f"(did you mean --study-name {near}?)",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        f"study {options.study_name!r} in {shown_url(opened.storage_url)}: "
        f"{before.done} of {options.trials} trials done"
        f"{'' if opened.created else ' (resumed)'}; searching {space.describe()}",
        highlight=False,
        soft_wrap=True,
    )
    from gbench.studies.storage import connection_kept

    with connection_kept(opened.storage_url):  # the server stopping mid-tune: one line, and the same command resumes
        trials, ran = tuning.optimize(opened, options, _progress.verbosity(args))
    report(opened.study, registry, base, space, options, out, trials, opened.storage_url, ran)
    return 0


def base_config(settings: RunSettings, combo: tuple[str, str, str]) -> RunConfig:
    """Every trial's settings, from the merged options (``settings_from_args``); a trial replaces combo and params."""
    from gbench.config import config_from_settings

    return config_from_settings(settings, combo, settings.seeds[0])


def report(
    study: optuna.Study,
    registry: Registry,
    base: RunConfig,
    space: SearchSpace,
    options: TuneOptions,
    out: Path,
    trials: list[FrozenTrial],
    storage_url: str,
    ran: int,
) -> None:
    """The best trials, the counts, and the best one as a `gbench run` line."""
    from optuna.trial import TrialState

    from gbench.results import display, store
    from gbench.studies.storage import shown_url
    from gbench.studies.tune.trials import format_cell, trial_table
    from gbench.studies.workers import count

    objectives = options.objectives
    counts = count(trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    stdout = display.stdout
    if len(objectives) > 1:
        front = sorted(study.best_trials, key=lambda t: tuple(t.values)) if complete else []
        stdout.print(
            trial_table(
                front,
                objectives,
                f"Pareto front ({len(front)} of {len(complete)} complete trials): {', '.join(objectives)}",
                limit=None,
            )
        )
        best = front[0] if front else None
    else:
        top = sorted(complete, key=lambda t: t.values[0])[:5]
        stdout.print(
            trial_table(
                top,
                objectives,
                f"top {len(top)} of {len(complete)} complete trials (lowest {objectives[0].upper()} first)",
                limit=None,
            )
        )
        best = top[0] if top else None
    stdout.print(
        f"{counts.done} trials counted ({counts.complete} complete, {counts.pruned} pruned; "
        f"{counts.failed} failed, not counted); this process ran {ran}",
        highlight=False,
    )
    if best is not None:
        line, config_file = run_command(best, registry, base, space, out, options.seeds)
        if config_file:
            store.atomic_write_text(out / "best.toml", "".join(f'{k} = "{v}"\n' for k, v in config_file.items()))
        stdout.print(
            f"best trial #{best.number} "
            f"({', '.join(f'{n}={format_cell(v)}' for n, v in zip(objectives, best.values))}); run it with:",
            highlight=False,
        )
        stdout.print(line, highlight=False, soft_wrap=True, markup=False)
    stdout.print(
        f"trials: {out / 'trials.csv'}  runs: {out / store.RESULTS}  "
        f"dashboard: optuna-dashboard {shlex.quote(shown_url(storage_url))}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )


def run_command(
    trial: FrozenTrial,
    registry: Registry,
    base: RunConfig,
    space: SearchSpace,
    out: Path,
    seeds: list[int] | None = None,
) -> tuple[str, dict[str, Any] | None]:
    """A ready-to-paste ``gbench run`` line that reproduces a trial, and a config file it needs (if any).

    It carries every setting that decides the run's result (what
    :func:`gbench.studies.tune.tune.run_key` hashes): training length and data, seed,
    device and threads, evaluation, and every fixed or searched
    hyperparameter (``--batch-size`` is one of them, as ``--set batch_size=``).
    """
    from gbench.options import default, option
    from gbench.studies.tune.searchspace import AXES

    seeds = seeds or [base.seed]

    architecture, loss, schedule = (str(trial.params.get(axis, space.axes[axis][0])) for axis in AXES)
    owner = registry.owners[("architecture", architecture)]
    params = {
        **space.fixed_for((architecture, loss, schedule)),
        **{k: v for k, v in trial.params.items() if k not in AXES},
    }
    parts = ["gbench", "run", owner]
    config_file = None
    if len(registry.owned_by("architecture", owner)) > 1:
        config_file = {"architecture": architecture}
        parts += ["--config", str(out / "best.toml")]
    values: list[tuple[str, Any]] = [  # None, or a default that the line need not repeat, is left out
        ("loss", loss if loss != default("loss") else None),
        ("schedule", schedule if schedule != default("schedule") else None),
        ("dataset", base.dataset if base.dataset != default("dataset") else None),
        ("seeds", ",".join(map(str, seeds)) if seeds != list(default("seeds")) else None),
        ("steps", base.steps),
        ("epochs", repr(base.epochs) if isinstance(base.epochs, float) else base.epochs),
        ("train_limit", base.train_limit),
        ("device", base.device if base.device != default("device") else None),
        ("threads", base.threads),
        ("data_root", base.data_root),
        ("eval_samples", base.eval.samples),
        ("eval_every", base.eval.every),
        ("fid_extractor", base.eval.extractor),
        ("inception_weights", base.eval.inception_weights),
    ]
    for name, value in values:
        if value is not None:
            parts += [option(name).flag, str(value)]
    for name, value in params.items():
        parts += ["--set", f"{name}={value!r}" if isinstance(value, float) else f"{name}={value}"]
    return " ".join(shlex.quote(p) for p in parts), config_file
