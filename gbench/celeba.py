"""CelebA's aligned faces read from torchvision's download: JPEG files and two text files.

``list_eval_partition.txt`` names each split's files, ``list_attr_celeba.txt``
their attributes (one chosen attribute is the label). Decoding and resizing the
JPEGs takes minutes, so the resized pixels are cached as a plain ``.npy`` (read
with ``allow_pickle=False``: no code runs).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gbench.data import cache_dir
from gbench.errors import GbenchError

__all__ = ["CELEBA_PARTITIONS", "celeba_image", "celeba_reader"]


#: list_eval_partition.txt's codes for gbench's splits; the validation partition (1) is not used.
CELEBA_PARTITIONS = {"train": "0", "test": "2"}


def celeba_reader(attribute: str | None, size: int) -> Callable[[Path, str], tuple[np.ndarray, np.ndarray] | None]:
    """``read(folder, split)``: the split's images and ``attribute`` labels (all 0 when None),
    or None when ``folder`` lacks CelebA's files."""

    def read(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray] | None:
        images_dir, attr_path, part_path = (
            folder / "img_align_celeba",
            folder / "list_attr_celeba.txt",
            folder / "list_eval_partition.txt",
        )
        if not (images_dir.is_dir() and attr_path.is_file() and part_path.is_file()):
            return None
        fix = "replace it with the file of torchvision's CelebA download"
        wanted = CELEBA_PARTITIONS[split]
        files = [
            parts[0]
            for parts in (line.split() for line in part_path.read_text().splitlines())
            if len(parts) == 2 and parts[1] == wanted
        ]
        labels = np.zeros(len(files), dtype=np.int64)
        if attribute is not None:
            lines = attr_path.read_text().splitlines()
            names = lines[1].split() if len(lines) > 1 else []
            if attribute not in names:
                raise GbenchError(f"{str(attr_path)!r} has no attribute {attribute!r} on its second line; {fix}")
            column = names.index(attribute) + 1
            values = {
                parts[0]: parts[column]
                for parts in (line.split() for line in lines[2:])
                if len(parts) == len(names) + 1
            }
            missing = [f for f in files if f not in values]
            if missing:
                raise GbenchError(
                    f"{str(attr_path)!r} has no row for {missing[0]} (and {len(missing) - 1} more); {fix}"
                )
            labels = np.array([values[f] == "1" for f in files], dtype=np.int64)  # -1 means absent
        return _celeba_pixels(images_dir, files, size, f"{split}|{part_path.stat().st_mtime_ns}"), labels

    return read


def _celeba_pixels(images_dir: Path, files: list[str], size: int, salt: str) -> np.ndarray:
    """The split's resized images, from the cache when the same JPEGs were resized before.

    Decoding and resizing 162,770 JPEGs takes minutes; the result is kept as a
    plain ``.npy`` (read with ``allow_pickle=False``, so it runs no code) under
    ``cache_dir()/"celeba"``, keyed by the folder, the size and each file's
    name, size and mtime. A damaged or stale entry is rebuilt.
    """
    key = hashlib.sha256(f"{images_dir.resolve()}|{size}|{salt}".encode())
    for filename in files:
        stat = (images_dir / filename).stat() if (images_dir / filename).is_file() else None
        key.update(f"{filename}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}\n".encode())
    cached = cache_dir() / "celeba" / f"celeba-{size}-{key.hexdigest()[:32]}.npy"
    if cached.is_file():
        try:
            images = np.load(cached, allow_pickle=False)
            if images.dtype == np.uint8 and images.shape == (len(files), 3, size, size):
                return images
        except (OSError, ValueError):
            pass  # damaged: rebuilt below
    images = np.empty((len(files), 3, size, size), dtype=np.uint8)
    for index, filename in enumerate(files):
        images[index] = celeba_image(images_dir / filename, size)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        temp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        with open(temp, "wb") as handle:
            np.save(handle, images, allow_pickle=False)
        os.replace(temp, cached)  # whole or absent: a reader never sees half a file
    except OSError:
        pass  # a read-only cache only costs the next load its decoding time
    return images


def celeba_image(path: Path, size: int) -> np.ndarray:
    """One CelebA JPEG as uint8 ``(3, size, size)``: its central square (178x178 of 178x218), resized with Lanczos."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (OSError, UnidentifiedImageError) as error:
        raise GbenchError(
            f"{str(path)!r} is missing or not a readable image ({str(error)[:80]}); "
            "replace it with the file of torchvision's CelebA download"
        ) from None
    width, height = rgb.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = rgb.crop((left, top, left + side, top + side))
    if side != size:
        square = square.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(square, dtype=np.uint8).transpose(2, 0, 1)
