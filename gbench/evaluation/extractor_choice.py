"""Which feature extractor an evaluation uses, checked against the dataset.

``EvalSettings.extractor`` names it: None (the dataset's shipped LeNet when
it has one, else Inception), ``"lenet"`` (the dataset's LeNet, or an error
when there is none), ``"inception"`` / ``"inception-v3-compat"``, or a LeNet
by its full name. A dataset without a shipped LeNet uses the domain LeNet
``gbench extractor train DATASET`` registered for the same data (content
hash), when there is one (:mod:`gbench.evaluation.domain_extractors`). The result is
an :class:`Extractor`: everything the torch-fidelity call and the cache key need.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from gbench.errors import GbenchError
from gbench.evaluation import domain_extractors, extractors, stacked_modes
from gbench.evaluation.inception_weights import INCEPTION, resolve_inception_weights
from gbench.plugins.registry import Dataset


@dataclass(frozen=True)
class Extractor:
    """A resolved extractor: torch-fidelity name, weights file, label, layer, input channels."""

    name: str
    weights: Path
    label: str
    layer: str
    channels: int
    pass_weights: bool  # hand ``weights`` to torch-fidelity (LeNet finds its shipped file by name)


def known_extractors() -> list[str]:
    return sorted(["inception", INCEPTION, "lenet", *extractors.LENET_DATASETS, stacked_modes.PER_CHANNEL])


def resolve_extractor(
    wanted: str | None,
    dataset: Dataset,
    inception_weights: str | None = None,
    feature_layer: str | None = None,
    real_hash: str | None = None,
) -> Extractor:
    """Turn an extractor name (see the module docstring) into an :class:`Extractor`; GbenchError names the bad value.

    ``real_hash``, the content hash of the real images, picks the domain LeNet trained on them;
    without it, that of the dataset's test split as the default search finds it.
    """
    extractors.register_extractors()
    # Stacked MNIST's shipped extractor is the MNIST LeNet on each channel (VEEGAN/PacGAN's protocol).
    shipped = extractors.shipped_lenet(dataset.name) or (
        stacked_modes.PER_CHANNEL if dataset.name == stacked_modes.STACKED_DATASET else None
    )
    domain = (
        None
        if shipped or wanted not in (None, "lenet", domain_extractors.domain_name(dataset.name))
        else domain_extractors.default_domain_lenet(dataset, real_hash)
    )
    asked = wanted
    if wanted is None:
        wanted = shipped or (domain.name if domain else "inception")
    elif wanted == "lenet":
        if shipped is None and domain is None:
            raise GbenchError(
                "extractor 'lenet' has no shipped or trained weights for dataset "
                f"{dataset.name!r}; train one with `gbench extractor train {dataset.name}`, "
                f"or use one of {', '.join(extractors.LENET_DATASETS)} or 'inception'"
            )
        wanted = shipped or domain.name  # type: ignore[union-attr]
    if domain is not None and wanted == domain.name:
        weights = domain.checked_weights()
        extractors.register_domain_lenet(domain.name)
        name, channels, pass_weights = domain.name, dataset.image_shape[0], True
    elif wanted == domain_extractors.domain_name(dataset.name) and shipped is None:
        raise GbenchError(
            f"no {wanted} is trained on this {dataset.name} data (its content hash); "
            f"train one with `gbench extractor train {dataset.name}`"
        )
    elif wanted == stacked_modes.PER_CHANNEL:
        if tuple(dataset.image_shape) != (3, 28, 28):
            raise GbenchError(
                f"extractor {wanted!r} takes 3x28x28 Stacked MNIST images; dataset "
                f"{dataset.name!r} has {'x'.join(map(str, dataset.image_shape))}"
            )
        stacked_modes.register_per_channel()
        weights = extractors.lenet_weights_path("lenet-mnist")
        extractors.load_lenet("lenet-mnist")  # fails early, with a fix, when the shipped file is missing or altered
        name, channels, pass_weights = wanted, 3, False
    elif wanted in ("inception", INCEPTION):
        if dataset.image_shape[0] not in (1, 3):
            raise GbenchError(
                "extractor 'inception' takes 1- or 3-channel images; dataset "
                f"{dataset.name!r} has {dataset.image_shape[0]} channels"
            )
        weights = resolve_inception_weights(inception_weights)
        name, channels, pass_weights = INCEPTION, 3, True
    elif wanted in extractors.LENET_DATASETS:
        if tuple(dataset.image_shape) != (1, 28, 28):
            raise GbenchError(
                f"extractor {wanted!r} takes 1x28x28 images; dataset {dataset.name!r} has "
                f"{'x'.join(map(str, dataset.image_shape))}; use extractor 'inception'"
            )
        weights = extractors.lenet_weights_path(wanted)
        extractors.load_lenet(wanted)  # fails early, with a fix, when the shipped file is missing or altered
        name, channels, pass_weights = wanted, 1, False
    else:
        raise GbenchError(f"unknown extractor {asked!r}; known: {', '.join(known_extractors())}")
    provided = FEATURE_EXTRACTORS_REGISTRY[name].get_provided_features_list()
    layer = feature_layer or FEATURE_EXTRACTORS_REGISTRY[name].get_default_feature_layer_for_metric("fid")
    if layer not in provided:
        raise GbenchError(f"feature_layer {layer!r} is not a layer of {name}; choose one of {', '.join(provided)}")
    label = (
        stacked_modes.stacked_fid_label()
        if name == stacked_modes.PER_CHANNEL
        else extractors.extractor_label(name, weights)
    )
    return Extractor(name, weights, label, layer, channels, pass_weights)


def domain_classifier(dataset: Dataset, device: torch.device) -> extractors.LeNet | None:
    """The dataset's shipped LeNet (for coverage and IS), or None when it has none."""
    name = extractors.shipped_lenet(dataset.name)
    return extractors.load_lenet(name, device) if name is not None else None
