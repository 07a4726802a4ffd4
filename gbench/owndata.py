"""``--dataset folder:PATH`` and ``--dataset npz:PATH``: your own images as a registered dataset.

:func:`resolve` runs at a command's edge, before any run is configured: it
scans the files (:mod:`gbench.imagefiles`), settles the image shape
(``--image-size``, ``--channels``, else the data's own), checks that the set
fits in memory, and registers an :class:`OwnDataset` under the name as typed,
so that everything downstream (the architecture's image shape, the extractor
choice, the data cache) takes it as it takes mnist. The content hash goes into
the run's config (its identity and its run id) and into every FID's label.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from gbench.config import RunConfig, RunSettings
from gbench.datasource import PREFIXES, DataOptions, is_own_data
from gbench.errors import GbenchError
from gbench.imagefiles import decode_images, load_npz, scan_folder, scan_npz
from gbench.options import DEFAULT_HOLDOUT
from gbench.plugins.registry import Dataset, Registry

#: The held-out split is drawn with this seed, not the run's: every run of the data shares one test split
#: (and one cached set of real statistics), whatever its seed.
HOLDOUT_SEED = 0
#: A set loads as uint8 and trains as a float32 copy: 1 + 4 bytes per pixel.
BYTES_PER_PIXEL = 5
OWNER = "gbench (own data)"


@dataclasses.dataclass(frozen=True)
class OwnDataset(Dataset):
    """A :class:`Dataset` read from your files; ``holdout`` is
    the fraction held out (None: the data has a test split)."""

    content_hash: str = ""
    source: str = ""  # the folder's or file's name (no path): for run ids and labels
    holdout: float | None = None

    @property
    def data_label(self) -> str:
        """``cats@1a2b3c4d``: the data's name and the first 8 hex
        digits of its content hash, as extractors are labelled."""
        return f"{self.source}@{self.content_hash[:8]}"


def resolve(registry: Registry, settings: RunSettings) -> RunSettings:
    """``settings`` with its own data registered and its ``data`` options completed (the content hash).

    A registered dataset with ``--image-size``, ``--channels`` or ``--holdout`` is refused: they would change nothing.
    """
    name, options = settings.run.dataset, settings.run.data
    options.check_for(name)
    if not is_own_data(name):
        return settings
    dataset = register(registry, name, options)
    completed = dataclasses.replace(options, content_hash=dataset.content_hash, holdout=dataset.holdout)
    return dataclasses.replace(settings, run=dataclasses.replace(settings.run, data=completed))


def register(registry: Registry, name: str, options: DataOptions, expected_hash: str | None = None) -> OwnDataset:
    """Build the dataset ``name`` names and put it in ``registry`` (once per shape: a second, other shape is an error).

    ``expected_hash``: a finished run's, whose data must not have changed since (its FID would describe other data).
    """
    dataset = own_dataset(name, options)
    if expected_hash and dataset.content_hash != expected_hash:
        raise GbenchError(
            f"the images of {name} changed since the run was trained (content hash "
            f"{dataset.content_hash[:8]}, the run's {expected_hash[:8]}); "
            "restore them, or train a new run on them"
        )
    existing = registry.tables["dataset"].get(name)
    if existing is not None:
        seen = (existing.image_shape, getattr(existing, "content_hash", None), getattr(existing, "holdout", None))
        if seen != (dataset.image_shape, dataset.content_hash, dataset.holdout):
            raise GbenchError(
                f"dataset {name} is used with two shapes in one command; give it "
                "one --image-size, --channels and --holdout"
            )
        return existing
    # set directly, not through Registry.register: a path may hold spaces, which a plugin's name may not
    registry.tables["dataset"][name] = dataset
    registry.owners[("dataset", name)] = OWNER
    return dataset


def own_dataset(name: str, options: DataOptions, memory: int | None = None) -> OwnDataset:
    """Scan ``folder:PATH`` or ``npz:PATH`` and return its dataset; nothing is decoded until a split is loaded.

    ``memory``: the bytes the set may take (default: what the machine has available now).
    """
    prefix = next(p for p in PREFIXES if name.startswith(p))
    text = name[len(prefix) :]
    path = Path(text).expanduser()
    kind = "folder" if prefix == "folder:" else "file"
    if not text or not (path.is_dir() if kind == "folder" else path.is_file()):
        what = "is not a folder" if path.exists() else "does not exist"
        example = "folder:path/to/images (class subfolders, or flat)" if kind == "folder" else "npz:path/to/images.npz"
        raise GbenchError(f"--dataset {name}: {str(path)!r} {what}; give --dataset {example}")
    if kind == "folder":
        return _folder_dataset(name, path, options, memory)
    return _npz_dataset(name, path, options, memory)


def _folder_dataset(name: str, path: Path, options: DataOptions, memory: int | None) -> OwnDataset:
    scan = scan_folder(path)
    shape = _image_shape(name, options, scan.sizes, 3 if scan.colour else 1)
    count = sum(len(images) for images in scan.splits.values())
    check_fits(name, count, shape, memory)
    holdout = None if "test" in scan.splits else (options.holdout or DEFAULT_HOLDOUT)
    check_holdout(name, count, holdout)

    def load_all() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        if holdout is None:
            return {
                split: _with_labels(decode_images(images, shape), [i.label for i in images])
                for split, images in scan.splits.items()
            }
        images = scan.splits["all"]
        order = held_out_order(len(images), holdout)
        decoded = decode_images([images[i] for i in order], shape)
        return _split(
            decoded,
            torch.tensor([images[i].label for i in order], dtype=torch.int64),
            len(images) - _test_count(len(images), holdout),
        )

    classes = scan.class_names
    return _dataset(name, path, shape, scan.content_hash, holdout, classes, load_all, count)


def _npz_dataset(name: str, path: Path, options: DataOptions, memory: int | None) -> OwnDataset:
    scan = scan_npz(path)
    own = scan.image_shape("x")
    height, width = own[1], own[2]
    shape = _image_shape(name, options, [(width, height)], own[0])
    count = sum(scan.shapes[a][0] for a in ("x", "x_test") if a in scan.shapes)
    check_fits(name, count, shape, memory)
    holdout = None if "x_test" in scan.shapes else (options.holdout or DEFAULT_HOLDOUT)
    check_holdout(name, scan.shapes["x"][0], holdout)

    def labels_for(arrays: dict[str, torch.Tensor], images: str, labels: str) -> torch.Tensor:
        return arrays[labels] if labels in arrays else torch.zeros(len(arrays[images]), dtype=torch.int64)

    def load_all() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        arrays = load_npz(path, scan, shape)
        if holdout is None:
            return {
                "train": (arrays["x"], labels_for(arrays, "x", "y")),
                "test": (arrays["x_test"], labels_for(arrays, "x_test", "y_test")),
            }
        total = len(arrays["x"])
        order = torch.tensor(held_out_order(total, holdout))
        return _split(arrays["x"][order], labels_for(arrays, "x", "y")[order], total - _test_count(total, holdout))

    classes: tuple[str, ...] = ()
    if "y" in scan.shapes:  # the class count needs the labels: they are small, read them now
        with np.load(path, allow_pickle=False) as arrays:
            top = max([int(arrays[a].max()) for a in ("y", "y_test") if a in scan.shapes and len(arrays[a])] or [0])
        classes = tuple(str(label) for label in range(top + 1))
    return _dataset(name, path, shape, scan.content_hash, holdout, classes, load_all, count)


def _dataset(
    name: str,
    path: Path,
    shape: tuple[int, int, int],
    content_hash: str,
    holdout: float | None,
    classes: tuple[str, ...],
    load_all: Callable[[], dict[str, tuple[torch.Tensor, torch.Tensor]]],
    count: int,
) -> OwnDataset:
    """The Dataset of ``count`` images at ``path``; ``load_all`` (both splits) runs once, at the first load."""
    load_once = _once(load_all)

    def load(split: str, roots: list) -> tuple[torch.Tensor, torch.Tensor]:
        splits = load_once()
        if split not in splits:
            raise GbenchError(f"dataset {name} has no split {split!r}; splits: {', '.join(splits)}")
        return splits[split]

    return OwnDataset(
        name=name,
        load=load,
        image_shape=shape,
        num_classes=len(classes) or 1,
        class_names=classes,
        description=f"{count:,} images of {_text(shape)} from {path}",
        content_hash=content_hash,
        source=re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem) or "data",
        holdout=holdout,
    )


def _image_shape(name: str, options: DataOptions, sizes: list[tuple[int, int]], channels: int) -> tuple[int, int, int]:
    """``(C, H, W)``: ``--channels`` else the data's; ``--image-size`` square, else the one size all images share."""
    channels = options.channels or channels
    if options.image_size:
        return (channels, options.image_size, options.image_size)
    if len(sizes) > 1:
        (w1, h1), (w2, h2) = sizes[0], sizes[-1]
        raise GbenchError(
            f"the images of {name} have {len(sizes)} sizes, e.g. {w1}x{h1} and {w2}x{h2}; give "
            "--image-size N to resize and centre-crop them all to NxN"
        )
    width, height = sizes[0]
    return (channels, height, width)


def check_holdout(name: str, count: int, holdout: float | None) -> None:
    """At scan time: the held-out split (2 images at least) must leave one image or more to train on."""
    if holdout is not None and count - _test_count(count, holdout) < 1:
        raise GbenchError(
            f"{name} holds {count} images, too few to hold out --holdout {holdout} of "
            "them (2 at least) and train on the rest; add images"
        )


def held_out_order(count: int, holdout: float) -> list[int]:
    """A permutation of ``range(count)`` whose first :func:`_test_count`
    indices are the test split, drawn with :data:`HOLDOUT_SEED`."""
    generator = torch.Generator().manual_seed(HOLDOUT_SEED)
    return torch.randperm(count, generator=generator).tolist()


def _test_count(count: int, holdout: float) -> int:
    return max(2, round(count * holdout))  # FID needs 2 images for a covariance


def _split(images: torch.Tensor, labels: torch.Tensor, train: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The held-out order's tail is the training split, its head the test split: views, no copies."""
    test = len(images) - train
    return {"test": (images[:test], labels[:test]), "train": (images[test:], labels[test:])}


def _with_labels(images: torch.Tensor, labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    return images, torch.tensor(labels, dtype=torch.int64)


T = TypeVar("T")


def _once(load: Callable[[], T]) -> Callable[[], T]:
    """Decode once: the train and test splits of a held-out set come from one decoding."""
    kept: list[T] = []

    def cached() -> T:
        if not kept:
            kept.append(load())
        return kept[0]

    return cached


def available_memory() -> int:
    """Bytes this machine can give now: MemAvailable from /proc/meminfo, else free physical pages."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fits(name: str, count: int, shape: tuple[int, int, int], memory: int | None = None) -> None:
    """Refuse, before loading, a set whose uint8 tensor and float32 training copy would not fit in ``memory``."""
    limit = available_memory() if memory is None else memory
    needed = count * shape[0] * shape[1] * shape[2] * BYTES_PER_PIXEL
    if needed > limit:
        raise GbenchError(
            f"{name}: {count:,} images of {_text(shape)} need {_gib(needed)} in "
            "memory (a uint8 copy and a float32 one to train on), "
            f"more than the {_gib(limit)} available; give a smaller --image-size, or fewer images"
        )


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB" if size >= 2**27 else f"{size / 2**20:.1f} MiB"


def _text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def run_name(dataset: str, data: Any) -> str:
    """The dataset's part of a run id: its name, or for own data the folder's name and hash (a path has slashes)."""
    if not is_own_data(dataset):
        return dataset
    text = dataset.split(":", 1)[1].rstrip("/\\")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(text).stem) or "data"
    return f"{stem}-{(getattr(data, 'content_hash', None) or '')[:8]}".rstrip("-")


def dataset_for(registry: Registry, config: RunConfig) -> Dataset:
    """The dataset of ``config``; own data not registered in this process (a finished run loaded again by
    ``gbench eval``, ``sample``) is scanned again, and must still be the data the run trained on."""
    if is_own_data(config.dataset) and config.dataset not in registry.tables["dataset"]:
        register(registry, config.dataset, config.data, expected_hash=config.data.content_hash)
    return registry.dataset(config.dataset)


def result_columns(data: DataOptions, shape: tuple[int, ...]) -> dict[str, str]:
    """A results row's ``data_hash`` and ``image_shape`` for own
    data (none for a registered dataset: its name says both)."""
    if not data.content_hash:
        return {}
    return {"data_hash": data.content_hash, "image_shape": _text(tuple(shape[1:]))}


def fid_label(extractor_label: str, dataset: Dataset) -> str:
    """Every FID's label: the extractor's, and for own data the data's (FIDs on different data never share a table)."""
    return f"{extractor_label} on {dataset.data_label}" if isinstance(dataset, OwnDataset) else extractor_label
