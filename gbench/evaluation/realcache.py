"""The real split's cache: its features, FID statistics, k-NN radii and class counts.

torch-fidelity's own cache key is an input name plus the extractor name,
blind to the data and the weights. gbench names the real split's entry by
``content_hash`` of the images plus the extractor and its weights' SHA-256,
and writes the entry itself (through :mod:`gbench.results.store`'s temp-then-rename
writer) under ``cache_dir()/"fid-stats"``. Nothing here depends on the
generator, so one entry serves every evaluation against the same split.

torch-fidelity never reads this folder: its cache lookup unpickles with
``weights_only=False``, so a file planted there would run its code. gbench
reads every entry itself through :func:`gbench.results.store.load_tensor_file`
(tensors and plain values only), and the FID statistics are stored as
tensors, not the numpy arrays torch-fidelity pickles, so that safe loader can
read them; torch-fidelity's own metric functions get the tensors, never the files.

The cached features keep the real images' row order (the entry's key hashes the images in order, and the
features are computed batch after batch), so row i of the features is real image i and the caller's labels
(``real_labels``, for the class-conditional metrics) stay aligned with them; the labels themselves come with
the images and are not cached.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
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

# Bump when the layout or the meaning of cached entries changes. 2: the FID statistics are tensors
# (version 1 held numpy arrays, which only an unsafe torch.load reads; those entries are never read).
CACHE_VERSION = 2
CACHE_FIX = "delete it (gbench rebuilds its cache entries)"

#: The real split's cache entry as gbench uses it: its features and torch-fidelity's FID statistics ("mu", "sigma").
RealEntry = tuple[torch.Tensor, dict[str, np.ndarray]]


def fid_cache_root() -> Path:
    return cache_dir() / "fid-stats"


def real_cache_name(real_hash: str, extractor: Extractor) -> str:
    """torch-fidelity's ``input2_cache_name``: the split's content, the extractor, its weights."""
    weights = extractors.weights_sha256(extractor.weights)
    key = f"v{CACHE_VERSION}|{real_hash}|{extractor.name}|{weights}|{extractor.channels}"
    return "gbench-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def real_cache_files(name: str, extractor: Extractor, root: Path) -> tuple[Path, Path]:
    """The two files torch-fidelity looks for: the features and the FID statistics of one layer."""
    return (
        root / f"{name}-{extractor.name}-features-{extractor.layer}.pt",
        root / f"{name}-{extractor.name}-stat-fid-{extractor.layer}.pt",
    )


def load_real_cache(name: str, extractor: Extractor, root: Path) -> RealEntry | None:
    """The cached features and FID statistics of the real split, read safely; None when not cached.

    A file that holds code, is damaged, or is not shaped like gbench's entry
    is one GbenchError line naming it: it was not written by gbench.
    """
    features_path, stats_path = real_cache_files(name, extractor, root)
    if not (features_path.is_file() and stats_path.is_file()):
        return None
    features = store.load_tensor_file(features_path, fix=CACHE_FIX)
    if not (torch.is_tensor(features) and features.dim() == 2 and features.is_floating_point()):
        raise GbenchError(f"{str(features_path)!r} is not a gbench feature cache (a 2-D float tensor); {CACHE_FIX}")
    stats = store.load_tensor_file(stats_path, fix=CACHE_FIX)
    width = features.shape[1]
    shapes = {"mu": (width,), "sigma": (width, width)}
    if not (
        isinstance(stats, dict)
        and set(stats) == set(shapes)
        and all(torch.is_tensor(stats[k]) and stats[k].shape == shapes[k] for k in shapes)
    ):
        raise GbenchError(
            f"{str(stats_path)!r} is not gbench's FID statistics (tensors mu and sigma of width {width}); {CACHE_FIX}"
        )
    return features, {key: stats[key].numpy() for key in shapes}


def ensure_real_cache(
    real: torch.Tensor, name: str, extractor: Extractor, root: Path, cuda: bool, batch_size: int
) -> RealEntry:
    """Compute and store the cache entry of the real split (its features and FID statistics), and return it.

    The features come from the same extractor class torch-fidelity builds, in
    the same batches, so the entry equals what torch-fidelity would compute.
    """
    features_path, stats_path = real_cache_files(name, extractor, root)
    model = create_feature_extractor(
        extractor.name, [extractor.layer], cuda=cuda, verbose=False, **extractors.weights_argument(extractor)
    )
    with torch.no_grad():
        parts = [model(batch.cuda() if cuda else batch)[0].cpu() for batch in real.split(batch_size)]
    features = torch.cat(parts)
    stats = fid_features_to_statistics(features)
    store.save_tensor_file(features_path, features)
    store.save_tensor_file(stats_path, {key: torch.from_numpy(value) for key, value in stats.items()})
    return features, stats


def real_radii(real_features: torch.Tensor, k: int, cache_file: Path | None) -> torch.Tensor:
    """The real split's k-NN radii (precision/recall, density/coverage): from ``cache_file`` when given and sound,
    else computed."""
    if cache_file is None:
        return featuremetrics.knn_radii(real_features, k)
    if cache_file.is_file():
        radii = store.load_tensor_file(cache_file, fix=CACHE_FIX)
        if torch.is_tensor(radii) and radii.shape == (len(real_features),):  # else stale: rebuilt below
            return radii
    radii = featuremetrics.knn_radii(real_features, k)
    store.save_tensor_file(cache_file, radii)
    return radii


def radii_cache_file(root: Path, name: str, extractor: Extractor, k: int) -> Path:
    # "unit": of unit-length features (raw ones' files are stale)
    return root / f"{name}-{extractor.name}-knn-radii-k{k}-unit-{extractor.layer}.pt"


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
            raise GbenchError(
                f"real_labels has {len(labels)} entries for {len(real)} real images; pass the labels of the same split"
            )
        return torch.bincount(labels.long().cpu(), minlength=dataset.num_classes).tolist()
    name = extractors.shipped_lenet(dataset.name)
    assert name is not None, "a domain classifier exists only for datasets with a shipped LeNet"
    sha = extractors.weights_sha256(extractors.lenet_weights_path(name))
    path = (
        fid_cache_root()
        / f"gbench-classes-{hashlib.sha256(f'v{CACHE_VERSION}|{real_hash}|{sha}'.encode()).hexdigest()[:32]}.pt"
    )
    if cache and path.is_file():
        cached = store.load_tensor_file(path, fix=CACHE_FIX)
        if torch.is_tensor(cached) and cached.shape == (dataset.num_classes,):  # else stale: rebuilt below
            return cached.tolist()
    counts = torch.bincount(classify(classifier, real, batch_size, device).argmax(1), minlength=dataset.num_classes)
    if cache:
        store.save_tensor_file(path, counts)
    return counts.tolist()
