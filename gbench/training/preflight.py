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
from collections.abc import Callable, Iterable

from gbench.config import RunConfig, resolve_params
from gbench.datasource import DataOptions
from gbench.errors import GbenchError
from gbench.evaluation.evaluate import minimum_images
from gbench.evaluation.extractor_choice import resolve_extractor
from gbench.evaluation.settings import EvalSettings, check_inception_weights_option
from gbench.options import DATA, OPTIONS, option
from gbench.plugins.registry import Registry
from gbench.training.runner import DataCache

#: How a message names an option: ``as_flag`` for the command line (``--eval-samples``), ``as_key`` for a suite
#: or config file (``eval_samples =``); the value follows it.
Spelling = Callable[[str], str]


def as_flag(name: str) -> str:
    return option(name).flag


def as_key(name: str) -> str:
    return f"{name} ="


def check_eval_options(
    config: RunConfig, registry: Registry, notes: list[str] | None = None, spelled: Spelling = as_flag
) -> RunConfig:
    """``--eval-samples``, ``--inception-weights`` and ``--fid-extractor`` of one run (nothing to check with evaluation
    off); the config to run: ``config`` itself, or a copy that trains without evaluation. ``spelled`` names the options.

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
            f"{spelled('eval_samples')} {samples} is too few: the final evaluation needs at least {needed} generated "
            f"images; give {spelled('eval_samples')} {needed} or more (default 10000), "
            f"or {spelled('eval_samples')} 0 to turn evaluation off"
        )
    weights = config.eval.inception_weights
    extractor = config.eval.extractor
    # the one check of the Inception weights file (run's parser makes it too): a file, holding only tensors
    check_inception_weights_option(weights, extractor, spelled("inception_weights"))
    dataset = registry.dataset(config.dataset)
    try:
        resolve_extractor(extractor, dataset, weights)
    except GbenchError as error:
        if extractor is None:
            note = no_extractor_note(config.dataset, dataset.image_shape, str(error), config.data)
            if notes is not None and note not in notes:
                notes.append(note)
            return dataclasses.replace(config, eval=dataclasses.replace(config.eval, samples=0))
        raise GbenchError(f"{spelled('fid_extractor')} {extractor}: {error}") from None  # extractor None returned above
    return config


def no_extractor_note(name: str, image_shape: tuple[int, ...], why: str, data: DataOptions | None = None) -> str:
    """The line said before training when no extractor fits: which option to give, as the user types it (``gbench
    extractor train`` with the run's own --image-size and --channels: a LeNet of the shape the runs train at)."""
    shape = "x".join(map(str, image_shape))
    shaping = "".join(
        f" {o.flag} {getattr(data, o.field)}"
        for o in OPTIONS
        if o.lands == DATA and data is not None and getattr(data, o.field) is not None
    )
    return (
        f"evaluation: no feature extractor fits dataset {name} ({shape}): {why.split('; ')[0]}; "
        "the runs train and store their rows without FID. "
        "For FID give --inception-weights PATH (torch-fidelity's Inception weights file), "
        f"or train a LeNet on it: gbench extractor train {name}{shaping}"
    )


def check_batch_size(
    config: RunConfig, registry: Registry, cache: DataCache, spelled: Spelling = as_flag, searched: str | None = None
) -> None:
    """A batch must fit the training images (``--train-limit`` may leave only a few). ``searched``: the range of a
    tune's ``--space batch_size=...`` (``config`` holds the largest batch size it reaches), for the message."""
    images, _ = cache.split(registry, config.dataset, "train", config.data_root, config.train_limit)
    batch_size, fits = int(config.params["batch_size"]), len(images)
    if batch_size <= fits:
        return
    limit = f" ({spelled('train_limit')} {config.train_limit})" if config.train_limit else ""
    raise_limit = f", or raise {spelled('train_limit').removesuffix(' =')}" if limit else ""
    if searched is not None:
        raise GbenchError(
            f"--space batch_size={searched} reaches {batch_size}, more than the {fits} training images of "
            f"{config.dataset!r}{limit}; search at most {fits}, e.g. --space batch_size=LOW:{fits}{raise_limit}"
        )
    raise GbenchError(
        f"{spelled('batch_size')} {batch_size} is larger than the {fits} training images of {config.dataset!r}{limit}; "
        f"give {spelled('batch_size')} {fits} or less{raise_limit}"
    )


def check_runs(
    configs: Iterable[RunConfig],
    registry: Registry,
    cache: DataCache,
    notes: list[str] | None = None,
    spelled: Spelling = as_flag,
    where: Callable[[RunConfig], str] = lambda config: "",
) -> list[RunConfig]:
    """Check every run's options before the first trains (each distinct combination once); the configs to run
    (those no extractor fits train without evaluation: :func:`check_eval_options`). ``notes`` gets the lines to say
    first; ``where`` names a run in its error (a suite's variant), ``spelled`` its options (:data:`Spelling`)."""
    checked: dict[str, RunConfig] = {}  # each distinct combination's config once checked
    runs = []
    for config in configs:
        key = repr({**config.to_dict(), "seed": None, "run_id": None})
        if key not in checked:
            try:
                checked[key] = check_eval_options(config, registry, notes, spelled)
                check_batch_size(config, registry, cache, spelled)
                check_conditioning(config, registry, cache, spelled)
            except GbenchError as error:
                raise GbenchError(f"{where(config)}{error}") from None
        runs.append(
            dataclasses.replace(config, eval=checked[key].eval)
        )  # every seed of a combination as its first was checked
    return runs


def check_conditioning(config: RunConfig, registry: Registry, cache: DataCache, spelled: Spelling = as_flag) -> None:
    """A conditional architecture needs labelled data; a loss that needs labels (ACGAN), a conditional
    architecture whose discriminator gives class logits. Each mismatch is one line, before any run folder;
    ``spelled`` names the options as the user gave them (``--loss`` on the command line, ``loss =`` in a suite)."""
    import torch

    architecture, loss = registry.architecture(config.architecture), registry.loss(config.loss)
    if loss.needs_labels and not architecture.conditional:
        conditional = [name for name in registry.names("architecture") if registry.architecture(name).conditional]
        raise GbenchError(
            f"{spelled('loss')} {config.loss} needs class labels, "
            f"but architecture {config.architecture!r} is not conditional; "
            f"give a conditional one ({', '.join(conditional) or 'gbench run plugins.conditional'})"
        )
    if not architecture.conditional:
        return
    dataset = registry.dataset(config.dataset)
    _, labels = cache.split(registry, config.dataset, "train", config.data_root, config.train_limit)
    classes = dataset.num_classes
    if classes < 2 or int(labels.unique().numel()) < 2:
        raise GbenchError(
            f"architecture {config.architecture!r} is conditional, but dataset {config.dataset!r} has no class labels "
            f"to condition on ({int(labels.unique().numel())} class in its training images); give a labelled dataset "
            "(mnist; folder:PATH with one subfolder per class; npz:PATH with y), or an unconditional architecture"
        )
    if int(labels.min()) < 0 or int(labels.max()) >= classes:
        raise GbenchError(
            f"dataset {config.dataset!r} has labels {int(labels.min())}..{int(labels.max())} but declares "
            f"num_classes={classes}; its labels must lie in 0..{classes - 1}"
        )
    if loss.needs_labels:
        shape = tuple(dataset.image_shape)
        with torch.random.fork_rng(devices=[]), torch.no_grad():  # a probe: the caller's random stream stays
            params = resolve_params(registry, config)  # a tune's base config holds only what --set gave
            nets = architecture.build(params, shape, num_classes=classes)
            assert nets.discriminator is not None  # validate_configs saw that a conditional architecture builds a GAN
            output = nets.discriminator(torch.zeros(2, *shape), torch.zeros(2, dtype=torch.int64))
        if tuple(output.shape) != (2, 1 + classes):
            fix = "give --set discriminator=projection" if "discriminator" in params else "use another loss"
            raise GbenchError(
                f"{spelled('loss')} {config.loss} reads the discriminator's class logits, "
                f"but architecture {config.architecture!r} "
                f"gives {tuple(output.shape)} for 2 images, not (2, {1 + classes}) with them; {fix}"
            )
