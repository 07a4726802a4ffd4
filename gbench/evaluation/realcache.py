"""The real split's cache: its features, FID statistics, k-NN radii and class counts.

torch-fidelity's own cache key is an input name plus the extractor name,
blind to the data and the weights. gbench names the real split's entry by
``content_hash`` of the images plus the extractor and its weights' SHA-256,
and writes the entry itself (through :mod:`gbench.results.store`'s temp-then-rename
writer) under ``cache_dir()/"fid-stats"``, in the layout torch-fidelity
reads back. Nothing here depends on the generator, so one entry serves every
evaluation against the same split.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch_fidelity.metric_fid import fid_features_to_statistics
from torch_fidelity.utils import create_feature_extractor

from gbench.data import cache_dir
from gbench.errors import GbenchError
from gbench.evaluation import extractors, featuremetrics
from gbench.evaluation.classmetrics import classify
from gbench.evaluation.extractor_choice import Extractor
from gbench.plugins.registry import Dataset
from gbench.results import store

CACHE_VERSION = 1  # bump when the layout or the meaning of cached entries changes


def fid_cache_root() -> Path:
    return cache_dir() / "fid-stats"


def real_cache_name(real_hash: str, extractor: Extractor) -> str:
    """torch-fidelity's ``input2_cache_name``: the split's content, the extractor, its weights."""
    key = f"v{CACHE_VERSION}|{real_hash}|{extractor.name}|{extractors.weights_sha256(extractor.weights)}|{extractor.channels}"
    return "gbench-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def real_cache_files(name: str, extractor: Extractor, root: Path) -> tuple[Path, Path]:
    """The two files torch-fidelity looks for: the features and the FID statistics of one layer."""
    return (
        root / f"{name}-{extractor.name}-features-{extractor.layer}.pt",
        root / f"{name}-{extractor.name}-stat-fid-{extractor.layer}.pt",
    )


def ensure_real_cache(real: torch.Tensor, name: str, extractor: Extractor, root: Path, cuda: bool, batch_size: int) -> bool:
    """Fill the cache entry for the real split unless present; True when it was already there.

    The features come from the same extractor class torch-fidelity builds, in
    the same batches, so the entry equals what torch-fidelity would have cached.
    """
    features_path, stats_path = real_cache_files(name, extractor, root)
    if features_path.is_file() and stats_path.is_file():
        return True
    kwargs = {"verbose": False, "feature_extractor_weights_path": str(extractor.weights) if extractor.pass_weights else None}
    model = create_feature_extractor(extractor.name, [extractor.layer], cuda=cuda, **kwargs)
    with torch.no_grad():
        parts = [model(batch.cuda() if cuda else batch)[0].cpu() for batch in real.split(batch_size)]
    features = torch.cat(parts)
    store.save_tensor_file(features_path, features)
    store.save_tensor_file(stats_path, fid_features_to_statistics(features))
    return False


def real_radii(real_features: torch.Tensor, k: int, cache_file: Path | None) -> torch.Tensor:
    """The real split's k-NN radii (precision/recall, density/coverage): from ``cache_file`` when given and sound, else computed."""
    if cache_file is None:
        return featuremetrics.knn_radii(real_features, k)
    if cache_file.is_file():
        radii = torch.load(cache_file, weights_only=True)
        if radii.shape == (len(real_features),):
            return radii
    radii = featuremetrics.knn_radii(real_features, k)
    store.save_tensor_file(cache_file, radii)
    return radii


def radii_cache_file(root: Path, name: str, extractor: Extractor, k: int) -> Path:
    return root / f"{name}-{extractor.name}-knn-radii-k{k}-{extractor.layer}.pt"


def reference_counts(
    real: torch.Tensor,
    real_hash: str,
    labels: torch.Tensor | None,
    classifier: torch.nn.Module,
    dataset: Dataset,
    cache: bool,
    batch_size: int,
    device: torch.device,
) -> list[int]:
    """The test split's class counts: from its labels when given, else as the classifier labels it (cached)."""
    if labels is not None:
        if len(labels) != len(real):
            raise GbenchError(f"real_labels has {len(labels)} entries for {len(real)} real images; pass the labels of the same split")
        return torch.bincount(labels.long().cpu(), minlength=dataset.num_classes).tolist()
    name = extractors.shipped_lenet(dataset.name)
    assert name is not None, "a domain classifier exists only for datasets with a shipped LeNet"
    sha = extractors.weights_sha256(extractors.lenet_weights_path(name))
    path = fid_cache_root() / f"gbench-classes-{hashlib.sha256(f'v{CACHE_VERSION}|{real_hash}|{sha}'.encode()).hexdigest()[:32]}.pt"
    if cache and path.is_file():
        return torch.load(path, weights_only=True).tolist()
    counts = torch.bincount(classify(classifier, real, batch_size, device).argmax(1), minlength=dataset.num_classes)
    if cache:
        store.save_tensor_file(path, counts)
    return counts.tolist()
