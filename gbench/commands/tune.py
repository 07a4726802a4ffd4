"""gbench tune [TARGET]: search hyperparameters with Optuna (see docs/tune.md)."""

from __future__ import annotations

import argparse

from gbench.commands._options import _number, add_run_options
from gbench.study import DEFAULT_HEARTBEAT

HELP = "Search hyperparameters with Optuna: every trial is a gbench run; prunes bad trials early; resumable and shareable across workers."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        nargs="?",
        default="mlp",
        help="plugin whose architectures (or losses, schedules) to tune, as in `gbench run` (default: mlp, the built-in MLP architectures)",
    )
    group = parser.add_argument_group("search")
    group.add_argument(
        "--trials", type=int, default=50, help="trials to reach in the study, complete plus pruned, across all workers (default 50); running again resumes"
    )
    group.add_argument(
        "--space",
        action="append",
        metavar="KEY=LOW:HIGH[:log]|KEY=A,B,C",
        help="narrow or replace a search range (repeatable); architecture, loss and schedule may be searched too: --space architecture=mlp,mlp-batchnorm",
    )
    group.add_argument("--objective", default="fid", help="what to minimise: fid (default), kid, wall_time, or two of them for a Pareto front: fid,wall_time")
    group.add_argument(
        "--pruner",
        choices=["median", "hyperband", "none"],
        default="median",
        help="stop clearly bad trials at an evaluation during training (--eval-every); default median",
    )
    group.add_argument(
        "--pruner-startup", type=_number(int, 0, "--pruner-startup"), default=5, help="complete trials before the median pruner prunes anything (default 5)"
    )
    group.add_argument(
        "--pruner-warmup",
        type=_number(int, 0, "--pruner-warmup"),
        default=0,
        metavar="STEPS",
        help="prune no trial before this generator step (median: Optuna's n_warmup_steps; hyperband: its min_resource); default 0",
    )
    group.add_argument("--sampler-seed", type=int, help="seed of the TPE sampler, for a repeatable search")
    group.add_argument("--n-jobs", type=_number(int, 1, "--n-jobs"), default=1, help="trials at once in this process (threads; default 1)")
    study = parser.add_argument_group("study storage")
    study.add_argument("--storage", help="Optuna storage URL shared by workers, e.g. postgresql://user@host/db (default: sqlite:///OUT/tune.db)")
    study.add_argument("--study-name", help="study name in the storage (default: tune-TARGET)")
    study.add_argument(
        "--heartbeat",
        type=_number(int, 1, "--heartbeat"),
        default=DEFAULT_HEARTBEAT,
        help=f"seconds between a running trial's heartbeats; a worker silent for 3 of them is dead and its trial re-run (default {DEFAULT_HEARTBEAT})",
    )
    add_run_options(parser)


def run(args: argparse.Namespace) -> int:
    from gbench.tune import tune

    return tune(args)
