"""Domain LeNets: a LeNet trained on any labelled dataset, hashed and registered for FID on that data.

``gbench extractor train DATASET`` (for a dataset without a shipped LeNet)
trains :class:`gbench.evaluation.extractors.LeNet` for the dataset's C x H x W
and classes, and registers it here: in ``cache_dir()/"extractors"`` a weights
file ``lenet-DATASET-SHA8.pt`` (the state dict plus its input shape, so the
file alone rebuilds the net) and beside it ``lenet-DATASET-SHA8.json``, which
records the weights' SHA-256 and the content hashes of the train and test
splits it was trained and scored on. One file pair per trained net, the JSON
written last, so concurrent trainings never edit a shared index and a
half-written pair is never registered.

Evaluation on that dataset then uses it by default when the test split's
content hash (:func:`gbench.data.content_hash`) equals the recorded one, so a
net trained on other files of the same name is never picked silently; its FID
label names it (``lenet-cifar10@1a2b3c4d``). JSON and ``weights_only`` loads
only: no file here can run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from gbench.data import cache_dir, content_hash, load_split
from gbench.errors import GbenchError
from gbench.evaluation import extractors, weights_files
from gbench.plugins.registry import Dataset
from gbench.results import store

__all__ = ["DomainLeNet", "default_domain_lenet", "domain_lenets", "register_domain_lenet", "split_hash"]

_FIX = "delete it, or train again with `gbench extractor train DATASET`"


def domain_dir() -> Path:
    return cache_dir() / "extractors"


def domain_name(dataset_name: str) -> str:
    """The extractor name of a dataset's domain LeNet: ``lenet-cifar10``, as the shipped ``lenet-mnist``; own data's
    path (``folder:PATH``) in characters a file name and an extractor name may hold: ``lenet-folder_data_cats``."""
    return "lenet-" + (re.sub(r"[^A-Za-z0-9._-]+", "_", dataset_name).strip("_") or "data")


@dataclass(frozen=True)
class DomainLeNet:
    """One registered domain LeNet, as its JSON file records it."""

    name: str
    dataset: str
    sha256: str
    weights: str  # the file name, beside the JSON
    image_shape: tuple[int, int, int]
    num_classes: int
    train_hash: str
    test_hash: str
    test_accuracy: float
    seed: int
    epochs: int

    @property
    def weights_path(self) -> Path:
        return domain_dir() / self.weights

    def checked_weights(self) -> Path:
        """The weights file, after checking that its SHA-256 is the registered one."""
        path = self.weights_path
        if not path.is_file():
            raise GbenchError(
                f"weights of {self.name} are missing at {path}; train again with "
                f"`gbench extractor train {self.dataset}`"
            )
        actual = weights_files.weights_sha256(path)
        if actual != self.sha256:
            raise GbenchError(f"{path} has SHA-256 {actual[:8]}..., not the registered {self.sha256[:8]}...; {_FIX}")
        return path


def register_domain_lenet(
    dataset: Dataset,
    state: dict[str, torch.Tensor],
    test_accuracy: float,
    train_hash: str,
    test_hash: str,
    seed: int,
    epochs: int,
) -> DomainLeNet:
    """Write a trained domain LeNet's weights and record, and return the record."""
    blob = weights_files.state_dict_bytes(
        {**state, extractors.IMAGE_SHAPE_KEY: torch.tensor(list(dataset.image_shape))}
    )
    sha = hashlib.sha256(blob).hexdigest()
    name = domain_name(dataset.name)
    stem = f"{name}-{sha[:8]}"
    entry = DomainLeNet(
        name,
        dataset.name,
        sha,
        f"{stem}.pt",
        dataset.image_shape,
        int(state["fc2.bias"].shape[0]),
        train_hash,
        test_hash,
        test_accuracy,
        seed,
        epochs,
    )
    try:
        store.atomic_write_bytes(domain_dir() / entry.weights, blob)
        store.atomic_write_text(domain_dir() / f"{stem}.json", json.dumps(asdict(entry), indent=2) + "\n")
    except OSError as error:
        raise GbenchError(
            f"cannot write the extractor into {domain_dir()} "
            f"({error.strerror or error}); make it writable or set GBENCH_CACHE"
        ) from None
    return entry


def _read_record(path: Path) -> DomainLeNet:
    try:
        record = json.loads(path.read_text())
        entry = DomainLeNet(**{**record, "image_shape": tuple(record["image_shape"])})
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise GbenchError(f"{str(path)!r} is not a domain extractor record ({type(error).__name__}); {_FIX}") from None
    if not (
        isinstance(entry.weights, str)
        and entry.weights == Path(entry.weights).name
        and entry.name == domain_name(entry.dataset)
    ):
        raise GbenchError(f"{str(path)!r} names a weights file outside its folder or another extractor; {_FIX}")
    return entry


def domain_lenets(dataset_name: str) -> list[DomainLeNet]:
    """The domain LeNets registered for a dataset, newest first."""
    folder = domain_dir()
    if not folder.is_dir():
        return []
    records = sorted(
        folder.glob(f"{domain_name(dataset_name)}-*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True
    )
    return [entry for entry in map(_read_record, records) if entry.dataset == dataset_name]


_SPLIT_HASHES: dict[tuple[str, str, tuple[str, ...]], str | None] = {}


def split_hash(dataset: Dataset, split: str = "test") -> str | None:
    """The content hash of a split as the default search finds
    it (memoised per process); None when it cannot be loaded."""
    roots = (os.environ.get("GBENCH_DATA", ""), str(cache_dir()))
    key = (dataset.name, split, roots)
    if key not in _SPLIT_HASHES:
        try:
            _SPLIT_HASHES[key] = content_hash(load_split(dataset, split)[0])
        except GbenchError:
            _SPLIT_HASHES[key] = None
    return _SPLIT_HASHES[key]


def default_domain_lenet(dataset: Dataset, real_hash: str | None = None) -> DomainLeNet | None:
    """The newest domain LeNet trained on this data: its test split's
    content hash is ``real_hash`` (default: the test split found now)."""
    entries = domain_lenets(dataset.name)
    if not entries:
        return None  # nothing registered: no need to read the data
    wanted = real_hash or split_hash(dataset)
    return next((entry for entry in entries if entry.test_hash == wanted), None)
