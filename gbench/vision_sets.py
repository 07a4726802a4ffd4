"""torchvision's colour datasets read from their own files: CIFAR-10/100, SVHN, STL-10, CelebA.

Each loader reads the layout torchvision's own ``download=True`` writes under
its root, so an existing torchvision download works as it is, and returns
uint8 ``(N, C, H, W)`` images with int64 labels. The search follows
:mod:`gbench.data`: an explicit ``--data-root`` only, else ``$GBENCH_DATA``
then the cache; torchvision downloads into the cache only when none of those
has the files and ``GBENCH_OFFLINE`` is not set.

No file read here can run code. CIFAR's python batches are pickles, so they
go through :class:`ArrayUnpickler` (:mod:`gbench.safe_pickle`), which resolves
only numpy's array reconstruction names and refuses every other global
(``os.system`` in a planted file is one error line, never a call). SVHN's
``.mat`` is read with ``scipy.io.loadmat`` (MATLAB data, no code), STL-10 and
CIFAR's binary version are raw bytes, CelebA (:mod:`gbench.celeba`) is JPEG
files and two text files (its resized pixels are cached as a plain ``.npy``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from gbench import env
from gbench.celeba import celeba_reader
from gbench.data import ExplicitRoot, cache_dir
from gbench.errors import GbenchError
from gbench.plugins.registry import Dataset
from gbench.safe_pickle import ArrayUnpickler, safe_unpickle

__all__ = ["ArrayUnpickler", "celeba_dataset", "cifar_dataset", "safe_unpickle", "stl10_dataset", "svhn_dataset"]

#: (images, labels) of one split, or None when a folder lacks its files.
Split = tuple[np.ndarray, np.ndarray]
Reader = Callable[[Path, str], "Split | None"]

# ---------------------------------------------------------------------------
# CIFAR
# ---------------------------------------------------------------------------

#: name -> (python folder, binary folder, train files, test files, label key, binary label bytes, classes)
_CIFAR = {
    "cifar10": (
        "cifar-10-batches-py",
        "cifar-10-batches-bin",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        "labels",
        1,
        10,
    ),
    "cifar100": ("cifar-100-python", "cifar-100-binary", ["train"], ["test"], "fine_labels", 2, 100),
}


def _cifar_python_batch(path: Path, label_key: str, fix: str) -> Split:
    batch = safe_unpickle(path, fix)
    data = batch.get("data") if isinstance(batch, dict) else None
    labels = batch.get(label_key) if isinstance(batch, dict) else None
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == 3072
        and isinstance(labels, list)
    ):
        raise GbenchError(
            f"{str(path)!r} is not a CIFAR batch (a dict with uint8 'data' of N x 3072 and a list {label_key!r}); {fix}"
        )
    if len(labels) != len(data) or not all(isinstance(label, int) for label in labels):
        raise GbenchError(f"{str(path)!r} holds {len(data)} images but {len(labels)} integer labels; {fix}")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def _cifar_binary_batch(path: Path, label_bytes: int, fix: str) -> Split:
    """Fixed records: label byte(s) (CIFAR-100: coarse then fine), then 3072 bytes R, G, B planes."""
    raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + 3072
    if raw.size == 0 or raw.size % record:
        raise GbenchError(
            f"{str(path)!r} is {raw.size} bytes, not a whole number of {record}-byte CIFAR records; {fix}"
        )
    rows = raw.reshape(-1, record)
    return rows[:, label_bytes:].reshape(-1, 3, 32, 32), rows[:, label_bytes - 1].astype(np.int64)


def _cifar_reader(name: str) -> Reader:
    python_dir, binary_dir, train, test, label_key, label_bytes, _ = _CIFAR[name]
    fix = f"replace it with the file from torchvision's {name} download"

    def read(folder: Path, split: str) -> Split | None:
        files = train if split == "train" else test
        if all((folder / python_dir / f).is_file() for f in files):
            parts = [_cifar_python_batch(folder / python_dir / f, label_key, fix) for f in files]
        elif all((folder / binary_dir / f"{f}.bin").is_file() for f in files):
            parts = [_cifar_binary_batch(folder / binary_dir / f"{f}.bin", label_bytes, fix) for f in files]
        else:
            return None
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    return read


# ---------------------------------------------------------------------------
# SVHN and STL-10
# ---------------------------------------------------------------------------


def _svhn_read(folder: Path, split: str) -> Split | None:
    path = folder / f"{split}_32x32.mat"
    if not path.is_file():
        return None
    import scipy.io

    fix = "replace it with torchvision's SVHN file (http://ufldl.stanford.edu/housenumbers/)"
    try:
        mat = scipy.io.loadmat(path, variable_names=["X", "y"])
    except (ValueError, TypeError, OSError, NotImplementedError) as error:
        raise GbenchError(f"{str(path)!r} is not a readable .mat file ({str(error)[:80]}); {fix}") from None
    images, labels = mat.get("X"), mat.get("y")
    if not (
        isinstance(images, np.ndarray)
        and images.dtype == np.uint8
        and images.ndim == 4
        and images.shape[:3] == (32, 32, 3)
    ):
        raise GbenchError(f"{str(path)!r} has no uint8 'X' of shape 32x32x3xN; {fix}")
    if not (isinstance(labels, np.ndarray) and labels.size == images.shape[3]):
        raise GbenchError(
            f"{str(path)!r} has {images.shape[3]} images but 'y' holds {getattr(labels, 'size', 0)} labels; {fix}"
        )
    labels = labels.reshape(-1).astype(np.int64) % 10  # SVHN writes the digit 0 as label 10
    return np.ascontiguousarray(images.transpose(3, 2, 0, 1)), labels


def _stl10_read(folder: Path, split: str) -> Split | None:
    images_path, labels_path = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
    if not (images_path.is_file() and labels_path.is_file()):
        return None
    fix = "replace it with the file of torchvision's STL-10 download (stl10_binary)"
    raw = np.fromfile(images_path, dtype=np.uint8)
    labels = np.fromfile(labels_path, dtype=np.uint8).astype(np.int64) - 1  # stored 1..10
    if raw.size % (3 * 96 * 96) or raw.size // (3 * 96 * 96) != labels.size:
        raise GbenchError(
            f"{str(images_path)!r} holds {raw.size / (3 * 96 * 96):g} images of 3x96x96 "
            f"but {str(labels_path)!r} {labels.size} labels; {fix}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise GbenchError(f"{str(labels_path)!r} holds labels outside 1..10; {fix}")
    # Each image is stored column-major (MATLAB order): channel planes of 96 columns of 96 pixels.
    return np.ascontiguousarray(raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)), labels


# ---------------------------------------------------------------------------
# The Dataset specs
# ---------------------------------------------------------------------------


def _download(torchvision_class: str, root: Path, split: str) -> None:
    """Best effort: torchvision fetches the split into the cache where the network allows."""
    try:
        import torchvision

        cls = getattr(torchvision.datasets, torchvision_class)
        if torchvision_class in ("CIFAR10", "CIFAR100"):
            cls(root=str(root), train=split == "train", download=True)
        else:  # SVHN, STL10, CelebA take a split name
            cls(
                root=str(root),
                split=split,
                download=True,
                **({"target_type": "attr"} if torchvision_class == "CelebA" else {}),
            )
    except Exception:  # no network, a mirror down, a quota hit: the caller reports the missing files
        pass


def vision_dataset(
    name: str,
    read: Reader,
    subdirs: tuple[str, ...],
    expected: str,
    torchvision_class: str,
    image_shape: tuple[int, int, int],
    class_names: tuple[str, ...],
    description: str,
) -> Dataset:
    """A :class:`Dataset` whose ``read(folder, split)`` finds the files in one of ``root/subdir`` of the search roots.

    :param expected: the files, for the not-found line (``"cifar-10-batches-py/"``).
    :param subdirs: folders below each root, the first the one torchvision downloads into (``""``: the root itself).
    """

    def find(split: str, roots: list[Path]) -> Split | None:
        for folder in (root / sub for root in roots for sub in subdirs):
            if folder.is_dir() and (found := read(folder, split)) is not None:
                return found
        return None

    def load(split: str, roots: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in ("train", "test"):
            raise GbenchError(f"dataset {name!r} has no split {split!r}; splits: train, test")
        found = find(split, roots)
        download_root = cache_dir() / "data" / subdirs[0] if torchvision_class in ("SVHN",) else cache_dir() / "data"
        if found is None and not isinstance(roots, ExplicitRoot) and not env.flag("GBENCH_OFFLINE"):
            _download(torchvision_class, download_root, split)
            found = find(split, list(dict.fromkeys([*roots, cache_dir() / "data"])))
        if found is None:
            places = (
                " or ".join(str(Path(roots[0]) / sub) if sub else str(roots[0]) for sub in subdirs)
                if roots
                else str(download_root)
            )
            if isinstance(roots, ExplicitRoot):
                how = "put them there, or leave --data-root out to search $GBENCH_DATA and the cache"
            else:
                how = (
                    f"put them in {places}, point --data-root / GBENCH_DATA at the folder holding them, or unset "
                    f"GBENCH_OFFLINE to let torchvision download them into {cache_dir() / 'data'}"
                )
            searched = "; ".join(str(r) for r in roots)
            raise GbenchError(f"{name} {split} data not found: expected {expected} (searched: {searched}); {how}")
        images, labels = found
        return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)

    return Dataset(
        name=name,
        load=load,
        image_shape=image_shape,
        num_classes=len(class_names),
        class_names=class_names,
        description=description,
    )


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")


def cifar_dataset(name: str) -> Dataset:
    """``cifar10`` or ``cifar100`` (fine labels), from torchvision's python batches or CIFAR's binary version."""
    python_dir, binary_dir, *_, classes = _CIFAR[name]
    names = CIFAR10_CLASSES if classes == 10 else tuple(str(i) for i in range(classes))
    return vision_dataset(
        name,
        _cifar_reader(name),
        ("", "cifar"),
        f"{python_dir}/ (torchvision's download) or {binary_dir}/",
        "CIFAR10" if classes == 10 else "CIFAR100",
        (3, 32, 32),
        names,
        f"CIFAR-{classes} colour images, 50,000 train + 10,000 test, 3x32x32",
    )


def svhn_dataset() -> Dataset:
    return vision_dataset(
        "svhn",
        _svhn_read,
        ("svhn", "SVHN", ""),
        "train_32x32.mat and test_32x32.mat",
        "SVHN",
        (3, 32, 32),
        tuple(str(d) for d in range(10)),
        "SVHN house-number digits, 73,257 train + 26,032 test, 3x32x32 (label 10 read as 0)",
    )


def stl10_dataset() -> Dataset:
    return vision_dataset(
        "stl10",
        _stl10_read,
        ("stl10_binary",),
        "stl10_binary/{train,test}_X.bin and _y.bin",
        "STL10",
        (3, 96, 96),
        STL10_CLASSES,
        "STL-10 labelled images, 5,000 train + 8,000 test, 3x96x96",
    )


def celeba_dataset(name: str = "celeba", attribute: str | None = "Male", size: int = 64) -> Dataset:
    """CelebA's aligned faces, central square resized to ``size``;
    labels: ``attribute`` (1 present, 0 absent), all 0 when None."""
    return vision_dataset(
        name,
        celeba_reader(attribute, size),
        ("celeba",),
        "celeba/img_align_celeba/, celeba/list_attr_celeba.txt and celeba/list_eval_partition.txt",
        "CelebA",
        (3, size, size),
        (f"not {attribute}", attribute) if attribute else ("face",),
        "CelebA aligned faces, partition 0 train (162,770) + partition 2 test (19,962), centre "
        f"square resized to 3x{size}x{size}; labels: {attribute or 'none'}",
    )
