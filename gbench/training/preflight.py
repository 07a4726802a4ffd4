"""Every option of a run checked against the others, the data and the extractor, before any run trains.

What argparse and :mod:`gbench.config` cannot see alone: ``--eval-samples``
against what the final evaluation needs, ``--fid-extractor`` and
``--inception-weights`` against the dataset, ``--batch-size`` against the
training images ``--train-limit`` leaves. Each bad value is one
:class:`GbenchError` naming the option as the user types it, found before
any run folder is made (before, ``--eval-samples 1`` trained first and left
a folder holding only config.json).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from gbench.config import RunConfig
from gbench.datasource import DataOptions
from gbench.errors import GbenchError
from gbench.evaluation.evaluate import minimum_images
from gbench.evaluation.extractor_choice import resolve_extractor
from gbench.evaluation.settings import EvalSettings
from gbench.options import DATA, OPTIONS
from gbench.plugins.registry import Registry
from gbench.training.runner import DataCache


def check_eval_options(config: RunConfig, registry: Registry, notes: list[str] | None = None) -> RunConfig:
    """``--eval-samples``, ``--inception-weights`` and ``--fid-extractor`` of one run (nothing to check with evaluation off);
    the config to run: ``config`` itself, or a copy that trains without evaluation.

    With no ``--fid-extractor`` given and none that fits the data (LeNet takes 1x28x28, Inception's weights
    are not on this offline machine), the run trains without evaluation (the copy's ``eval.samples`` is 0,
    so its config.json says so) and ``notes`` gets the one line saying what to provide.
    """
    samples = config.eval.samples
    if samples == 0:
        return config
    needed = minimum_images(EvalSettings(num_samples=samples))  # the final evaluation's: precision/recall need the most
    if samples < needed:
        raise GbenchError(
            f"--eval-samples {samples} is too few: the final evaluation needs at least {needed} generated images; "
            f"give --eval-samples {needed} or more (default 10000), or --eval-samples 0 to turn evaluation off"
        )
    weights = config.eval.inception_weights
    if weights is not None and not Path(weights).expanduser().is_file():
        raise GbenchError(
            f"--inception-weights {weights!r} is not a file; give the path of torch-fidelity's Inception weights, or leave it out"
        )
    extractor = config.eval.extractor
    dataset = registry.dataset(config.dataset)
    try:
        resolve_extractor(extractor, dataset, weights)
    except GbenchError as error:
        if extractor is None:
            note = no_extractor_note(config.dataset, dataset.image_shape, str(error), config.data)
            if notes is not None and note not in notes:
                notes.append(note)
            return dataclasses.replace(config, eval=dataclasses.replace(config.eval, samples=0))
        asked = f"--fid-extractor {extractor}" if extractor else f"the default extractor of dataset {config.dataset!r}"
        raise GbenchError(f"{asked}: {error}") from None
    return config


def no_extractor_note(name: str, image_shape: tuple[int, ...], why: str, data: DataOptions | None = None) -> str:
    """The line said before training when no extractor fits: which option to give, as the user types it
    (``gbench extractor train`` with the run's own --image-size and --channels: a LeNet of the shape the runs train at)."""
    shape = "x".join(map(str, image_shape))
    shaping = "".join(
        f" {o.flag} {getattr(data, o.field)}"
        for o in OPTIONS
        if o.lands == DATA and data is not None and getattr(data, o.field) is not None
    )
    return (
        f"evaluation: no feature extractor fits dataset {name} ({shape}): {why.split('; ')[0]}; the runs train and store their rows without FID. "
        f"For FID give --inception-weights PATH (torch-fidelity's Inception weights file), or train a LeNet on it: gbench extractor train {name}{shaping}"
    )


def check_batch_size(config: RunConfig, registry: Registry, cache: DataCache) -> None:
    """A batch must fit the training images (``--train-limit`` may leave only a few)."""
    images, _ = cache.split(registry, config.dataset, "train", config.data_root, config.train_limit)
    batch_size = int(config.params["batch_size"])
    if batch_size > len(images):
        limit = f" (--train-limit {config.train_limit})" if config.train_limit else ""
        raise GbenchError(
            f"--batch-size {batch_size} is larger than the {len(images)} training images of {config.dataset!r}{limit}; "
            f"give --batch-size {len(images)} or less{', or raise --train-limit' if limit else ''}"
        )


def check_runs(
    configs: Iterable[RunConfig], registry: Registry, cache: DataCache, notes: list[str] | None = None
) -> list[RunConfig]:
    """Check every run's options before the first trains (each distinct combination once); the configs to run
    (those no extractor fits train without evaluation: :func:`check_eval_options`). ``notes`` gets the lines to say first."""
    checked: dict[str, RunConfig] = {}  # each distinct combination's config once checked
    runs = []
    for config in configs:
        key = repr({**config.to_dict(), "seed": None, "run_id": None})
        if key not in checked:
            checked[key] = check_eval_options(config, registry, notes)
            check_batch_size(config, registry, cache)
        runs.append(
            dataclasses.replace(config, eval=checked[key].eval)
        )  # every seed of a combination as its first was checked
    return runs
