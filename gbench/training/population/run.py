"""Run configs that differ only in seed as one population, each member an ordinary run.

:func:`execute_population` is :func:`gbench.training.runner.execute` for a group: every
member is prepared and stored by the runner's own ``prepare_run`` and ``finish_run``
(its folder, observers, interrupted marker, checkpoint, results row), and only
the training in between is one batched loop (:mod:`gbench.training.population.loop`). When the
members cannot train batched, they train one by one and the reason comes back.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

import torch

from gbench.config import RunConfig
from gbench.plugins.registry import Registry
from gbench.training.population.batchable import trial_step_failure, unbatchable_reason
from gbench.training.population.loop import Member, train_population
from gbench.training.runner import DataCache, PreparedRun, RunHooks, finish_run, prepare_run, train_guarded, train_solo


def execute_population(
    configs: list[RunConfig],
    registry: Registry,
    out: str | os.PathLike,
    hooks: RunHooks | list[RunHooks] | None = None,
    cache: DataCache | None = None,
    extra_columns: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Train configs that differ only in seed as one population; their rows, in order, and why
    they were trained one by one instead (None when they trained together).

    Every member is an ordinary run (folder, metrics, samples, generator.pt,
    evaluation, row); the row's ``population`` says how many trained together.
    ``hooks``: one RunHooks for every member, or a list with one per config.
    """
    cache = cache or DataCache()
    per_run = (
        hooks if isinstance(hooks, list) else [hooks or RunHooks()] * len(configs)
    )  # a list: each member's own hooks
    runs = [prepare_run(config, registry, Path(out), run_hooks, cache) for config, run_hooks in zip(configs, per_run)]
    pending = [run for run in runs if isinstance(run, PreparedRun)]
    reason = _population_problem(pending) if len(pending) > 1 else None
    rows: dict[int, dict[str, Any]] = {}
    if reason is not None or len(pending) <= 1:
        for index, run in enumerate(pending):
            # stopped here, the runs not yet trained are marked and closed too: the same command takes their
            # folders back
            (result,) = train_guarded(pending[index:], functools.partial(train_solo, run), training=1)
            rows[id(run)] = finish_run(run, result, extra_columns, population=1)
    else:
        members = [Member(run.nets, run.schedule, run.config.seed, run.callbacks, run.resume) for run in pending]
        first = pending[0]
        results = train_guarded(
            pending, lambda: train_population(members, first.loss, first.data, first.settings, first.conditioning)
        )
        # each result's clock was read as it was packed, a moment apart: the population's wall time is the last
        # one, the same for every member
        wall = max(result.seconds for result in results)
        results = [dataclasses.replace(result, seconds=wall) for result in results]
        for run, result in zip(pending, results):
            rows[id(run)] = finish_run(run, result, extra_columns, population=len(pending))
    return [rows[id(run)] if isinstance(run, PreparedRun) else run for run in runs], reason


def _population_problem(runs: list[PreparedRun]) -> str | None:
    """Why these runs cannot train as one population, in one line; None when they can."""
    first = runs[0]
    if len({run.resume.step if run.resume else 0 for run in runs}) > 1:
        return "their checkpoints are at different steps"
    generator = torch.Generator().manual_seed(0)
    image_shape = tuple(first.data.shape[1:])
    noise = torch.randn(len(runs), 4, first.nets.latent_dim, generator=generator).to(first.data.device)
    # a conditional run's nets take labels too: every class in turn
    labels = (torch.arange(len(runs) * 4) % max(first.nets.num_classes, 1)).view(len(runs), 4).to(first.data.device)
    conditional = (labels,) if first.conditioning is not None else ()
    reason = unbatchable_reason([run.nets.generator for run in runs], (noise, *conditional), "generator")
    if reason is None and first.nets.discriminator is not None:
        images = (torch.rand(len(runs), 4, *image_shape, generator=generator) * 2 - 1).to(first.data.device)
        discriminators = [run.nets.discriminator for run in runs if run.nets.discriminator is not None]
        reason = unbatchable_reason(discriminators, (images, *conditional), "discriminator")
    if reason is None:
        members = [Member(run.nets, run.schedule, run.config.seed) for run in runs]
        reason = trial_step_failure(members, first.loss, first.data, first.settings, first.conditioning)
    return reason
