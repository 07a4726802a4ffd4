"""Find and load image datasets as whole tensors (no DataLoader in the hot loop).

An explicit root (``--data-root``, or a config's or suite's ``data_root``) is
the only place gbench looks: a missing folder, or one without the dataset's
files, is an error naming it. With no root given the search order is
``$GBENCH_DATA``, gbench's cache directory (``$GBENCH_CACHE`` or
``~/.cache/gbench``), then the dataset's system places (Debian's
``/usr/share/datasets/fashion-mnist``); torchvision downloads into the cache
only when none of those has the files, and never when ``GBENCH_OFFLINE=1``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from gbench import env
from gbench.errors import GbenchError
from gbench.plugins.registry import Dataset

# the public API (docs/api.md)
__all__ = ["cache_dir", "content_hash", "idx_dataset", "load_split", "read_idx", "to_uint8"]

SPLITS = ("train", "test")


def cache_dir() -> Path:
    return Path(os.environ.get("GBENCH_CACHE") or Path.home() / ".cache" / "gbench")


class ExplicitRoot(list):
    """The one folder the user named: search nothing else, download nothing.

    A list (of one Path), so a plugin's ``load(split, roots)`` takes it as it
    takes the search order; :func:`idx_dataset` checks for this type.
    """


def search_roots(data_root: str | os.PathLike | None = None) -> list[Path]:
    """Where to look for data, in order: only ``data_root`` when one is given."""
    if data_root:
        root = Path(data_root).expanduser()
        if not root.is_dir():
            what = "is a file, not a folder" if root.exists() else "does not exist"
            raise GbenchError(
                f"--data-root {str(root)!r} {what}; give the folder that holds the dataset files, or "
                "leave --data-root out to search $GBENCH_DATA and the cache"
            )
        return ExplicitRoot([root])
    roots = []
    if os.environ.get("GBENCH_DATA"):
        roots.append(Path(os.environ["GBENCH_DATA"]))
    roots.append(cache_dir() / "data")
    return list(dict.fromkeys(roots))  # the same folder twice is searched once


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise GbenchError(f"{path} is not an unsigned-byte IDX file; replace it with the original dataset file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise GbenchError(
            f"{path} is truncated ({data.size} bytes of data, expected "
            f"{int(np.prod(dims))}); replace it with the original file"
        )
    return data.reshape(dims)


def idx_dataset(
    name: str,
    files: dict[str, tuple[str, str]],
    subdirs: tuple[str, ...],
    system_dirs: tuple[str, ...] = (),
    torchvision_class: str | None = None,
    image_shape: tuple[int, int, int] = (1, 28, 28),
    class_names: tuple[str, ...] = (),
    description: str = "",
) -> Dataset:
    """A :class:`Dataset` stored as IDX files (plain or ``.gz``).

    :param files: split -> (images file, labels file), names without ``.gz``.
    :param subdirs: folders below each search root that may hold the files
        (``"MNIST/raw"`` is torchvision's layout; ``""`` means the root itself).
    :param system_dirs: absolute folders searched after the roots.
    :param torchvision_class: the torchvision dataset class that can download it.
    """

    def find(split: str, roots: list[Path]) -> tuple[Path, Path] | None:
        folders = [root / sub for root in roots for sub in subdirs]
        if not isinstance(roots, ExplicitRoot):
            folders += [Path(d) for d in system_dirs]
        for folder in folders:
            found = []
            for filename in files[split]:
                for candidate in (folder / filename, folder / f"{filename}.gz"):
                    if candidate.is_file():
                        found.append(candidate)
                        break
            if len(found) == 2:
                return found[0], found[1]
        return None

    def load(split: str, roots: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in files:
            raise GbenchError(f"dataset {name!r} has no split {split!r}; splits: {', '.join(files)}")
        paths = find(split, roots)
        if paths is None and isinstance(roots, ExplicitRoot):
            places = " or ".join(str(roots[0] / sub) if sub else str(roots[0]) for sub in subdirs)
            raise GbenchError(
                f"{name} {split} data not found in --data-root {str(roots[0])!r}: expected "
                f"{files[split][0]} and {files[split][1]} (or their .gz) in {places}; "
                "put them there, or leave --data-root out to search $GBENCH_DATA and the cache"
            )
        if paths is None and torchvision_class and not env.flag("GBENCH_OFFLINE"):
            _try_download(torchvision_class, cache_dir() / "data")
            paths = find(split, list(dict.fromkeys(roots + [cache_dir() / "data"])))
        if paths is None:
            where = ", ".join(str(root / subdirs[0]) for root in roots[:1]) or str(cache_dir() / "data" / subdirs[0])
            searched = "; ".join(str(r) for r in roots + [Path(d) for d in system_dirs])
            raise GbenchError(
                f"{name} {split} data not found: put {files[split][0]} and {files[split][1]} (or their .gz) "
                f"in {where}, or point --data-root / GBENCH_DATA at a folder holding "
                f"{subdirs[0] or 'them'} (searched: {searched})"
            )
        images = torch.from_numpy(read_idx(paths[0]).copy()).reshape(-1, *image_shape)
        labels = torch.from_numpy(read_idx(paths[1]).astype(np.int64))
        if len(images) != len(labels):
            raise GbenchError(
                f"{paths[0]} holds {len(images)} images but {paths[1]} holds "
                f"{len(labels)} labels; replace the damaged file"
            )
        return images, labels

    return Dataset(
        name=name,
        load=load,
        image_shape=image_shape,
        num_classes=len(class_names) or 10,
        class_names=class_names,
        description=description,
    )


def _try_download(torchvision_class: str, root: Path) -> None:
    """Best effort: fetch with torchvision where the network allows."""
    try:
        import torchvision

        getattr(torchvision.datasets, torchvision_class)(root=str(root), train=True, download=True)
        getattr(torchvision.datasets, torchvision_class)(root=str(root), train=False, download=True)
    except Exception:  # no network, or the mirror is down: the caller reports the missing files
        pass


def load_split(
    dataset: Dataset, split: str, data_root: str | os.PathLike | None = None, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``(N, C, H, W)`` and int64 labels of one split, the first ``limit`` if given."""
    images, labels = dataset.load(split, search_roots(data_root))
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != tuple(dataset.image_shape):
        raise GbenchError(
            f"dataset {dataset.name!r} loaded images of dtype {images.dtype} and shape {tuple(images.shape[1:])}; "
            f"its plugin must return uint8 images of shape {tuple(dataset.image_shape)}"
        )
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def to_training_tensor(images: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], moved to the training device once."""
    return images.to(device=device).float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], the form metrics and image files take."""
    return images.detach().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def content_hash(images: torch.Tensor) -> str:
    """SHA-256 of a uint8 image tensor's bytes: keys caches by content, not by name."""
    array = images.detach().cpu().contiguous().numpy()
    digest = hashlib.sha256()
    digest.update(str(array.shape).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()
