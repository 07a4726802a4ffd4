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

from collections.abc import Iterable
from pathlib import Path

from gbench.config import RunConfig
from gbench.errors import GbenchError
from gbench.evaluation.evaluate import minimum_images
from gbench.evaluation.extractor_choice import resolve_extractor
from gbench.evaluation.settings import EvalSettings
from gbench.plugins.registry import Registry
from gbench.training.runner import DataCache


def check_eval_options(config: RunConfig, registry: Registry) -> None:
    """``--eval-samples``, ``--inception-weights`` and ``--fid-extractor`` of one run (nothing to check with evaluation off)."""
    samples = config.eval.samples
    if samples == 0:
        return
    needed = minimum_images(EvalSettings(num_samples=samples))  # the final evaluation's: precision/recall need the most
    if samples < needed:
        raise GbenchError(
            f"--eval-samples {samples} is too few: the final evaluation needs at least {needed} generated images; "
            f"give --eval-samples {needed} or more (default 10000), or --eval-samples 0 to turn evaluation off"
        )
    weights = config.eval.inception_weights
    if weights is not None and not Path(weights).expanduser().is_file():
        raise GbenchError(f"--inception-weights {weights!r} is not a file; give the path of torch-fidelity's Inception weights, or leave it out")
    extractor = config.eval.extractor
    try:
        resolve_extractor(extractor, registry.dataset(config.dataset), weights)
    except GbenchError as error:
        asked = f"--fid-extractor {extractor}" if extractor else f"the default extractor of dataset {config.dataset!r}"
        raise GbenchError(f"{asked}: {error}") from None


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


def check_runs(configs: Iterable[RunConfig], registry: Registry, cache: DataCache) -> None:
    """Check every run's options before the first trains (each distinct combination once)."""
    seen: set[str] = set()
    for config in configs:
        key = repr({**config.to_dict(), "seed": None, "run_id": None})
        if key in seen:
            continue
        seen.add(key)
        check_eval_options(config, registry)
        check_batch_size(config, registry, cache)
