"""Read your own images: a folder of PNG/JPEG/WebP files, or a .npz of uint8 arrays.

A scan reads every file's bytes once (for the content hash) and the image
headers (size and colour), never decoding pixels, so that the shape, the
memory check and the hash are known before anything is loaded. Decoding
comes later, into one preallocated uint8 ``(N, C, H, W)`` tensor.

The content hash covers what the data is, not where it lies: each image's
bytes, its split and its class folder's name (the labels are data), in a
sorted order. File names and the folder's own path do not count: a folder
moved or renamed keeps its hash (and its cached statistics); one changed
image, or a class folder renamed, makes new ones. Images load in the same
sorted order, so the held-out split does not depend on file names either.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gbench.errors import GbenchError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
#: PIL modes without colour: such images load as 1 channel unless another image of the set has colour.
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
#: The arrays a .npz may hold; ``x`` is required.
NPZ_ARRAYS = ("x", "y", "x_test", "y_test")
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class ImageFile:
    """One image file of a folder: its label, header size ``(width, height)`` and colour, its bytes' SHA-256."""

    path: Path
    label: int
    size: tuple[int, int]
    colour: bool
    digest: str


@dataclass(frozen=True)
class FolderScan:
    """A folder's images by split (``"all"`` when it has no train/test subfolders), its class names and content hash."""

    splits: dict[str, list[ImageFile]]
    class_names: tuple[str, ...]
    content_hash: str

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return sorted({image.size for images in self.splits.values() for image in images})

    @property
    def colour(self) -> bool:
        return any(image.colour for images in self.splits.values() for image in images)


def scan_folder(root: Path) -> FolderScan:
    """Every image under ``root``: ``train/`` and ``test/`` subfolders are the splits, else one split ``"all"``;
    class subfolders (as torchvision's ImageFolder) are labels, a flat folder is unlabelled (label 0)."""
    subfolders = {path.name for path in root.iterdir() if path.is_dir()}
    split_dirs = {"train": root / "train", "test": root / "test"} if {"train", "test"} <= subfolders else {"all": root}
    class_names = _class_names(split_dirs.get("train", root))
    splits = {split: _images_of(folder, class_names) for split, folder in split_dirs.items()}
    digest = hashlib.sha256()
    for split, images in splits.items():
        for image in images:  # already sorted by label and bytes
            digest.update(f"{split}\0{class_names[image.label] if class_names else ''}\0{image.digest}\n".encode())
    return FolderScan(splits, class_names, digest.hexdigest())


def _class_names(folder: Path) -> tuple[str, ...]:
    """Sorted subfolders that hold images: the classes; none: an unlabelled folder."""
    return tuple(
        sorted(
            path.name
            for path in folder.iterdir()
            if path.is_dir() and not path.name.startswith(".") and any(_image_paths(path))
        )
    )


def _image_paths(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not path.name.startswith(".")
    )


def _images_of(folder: Path, class_names: tuple[str, ...]) -> list[ImageFile]:
    if not class_names:
        paths = [(path, 0) for path in _image_paths(folder)]
    else:
        loose = [path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES]
        if loose:
            raise GbenchError(
                f"{str(loose[0])!r} lies beside class subfolders of {str(folder)!r}; "
                "move it into a class subfolder, or remove it"
            )
        unknown = sorted(
            path.name
            for path in folder.iterdir()
            if path.is_dir() and path.name not in class_names and any(_image_paths(path))
        )
        if unknown:
            raise GbenchError(
                f"class folder {str(folder / unknown[0])!r} is not a class of the training "
                f"split ({', '.join(class_names)}); rename or remove it"
            )
        paths = [
            (path, label)
            for label, name in enumerate(class_names)
            if (folder / name).is_dir()
            for path in _image_paths(folder / name)
        ]
    if not paths:
        raise GbenchError(
            f"{str(folder)!r} holds no PNG, JPEG or WebP images; put the images there, in class subfolders or flat"
        )
    images = [_scan_image(path, label) for path, label in paths]
    return sorted(images, key=lambda image: (image.label, image.digest))


def _scan_image(path: Path, label: int) -> ImageFile:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    try:
        with Image.open(path) as image:
            size, mode = image.size, image.mode
    except Exception as error:  # PIL raises several types for a damaged file
        raise _unreadable(path, error) from None
    return ImageFile(path, label, size, mode not in GREY_MODES, digest.hexdigest())


def _unreadable(path: Path, error: Exception) -> GbenchError:
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:120]
    return GbenchError(
        f"{str(path)!r} is not a readable PNG, JPEG or WebP image ({reason}); replace it or remove it from the folder"
    )


def decode_images(images: list[ImageFile], shape: tuple[int, int, int]) -> torch.Tensor:
    """The files as one uint8 ``(N, C, H, W)`` tensor, each
    converted and, where its size differs, fitted to ``shape``."""
    out = torch.empty((len(images), *shape), dtype=torch.uint8)
    for index, item in enumerate(images):
        try:
            with Image.open(item.path) as image:
                out[index] = torch.from_numpy(fit_image(image, shape))
        except GbenchError:
            raise
        except Exception as error:  # a file truncated after its header decodes only this far
            raise _unreadable(item.path, error) from None
    return out


def fit_image(image: Image.Image, shape: tuple[int, int, int]) -> np.ndarray:
    """A PIL image as a ``(C, H, W)`` uint8 array: converted to grey or RGB, then, if its size differs,
    cropped to its centred square (an odd extra pixel goes from the right or bottom) and resized to the
    target (always square: ``--image-size N``), bicubic with PIL's antialiasing."""
    channels, height, width = shape
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (width, height):
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((width, height), Image.Resampling.BICUBIC)
    array = np.array(image, dtype=np.uint8)  # a copy: PIL's buffer is read-only
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


# ---------------------------------------------------------------------------
# .npz files: read without pickle (np.load(allow_pickle=False)); shapes from the headers first
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NpzScan:
    """A .npz's arrays (name -> shape), the layout of ``x``, its content hash."""

    shapes: dict[str, tuple[int, ...]]
    channels_last: bool
    content_hash: str

    def image_shape(self, name: str = "x") -> tuple[int, int, int]:
        shape = self.shapes[name]
        if len(shape) == 3:
            return (1, shape[1], shape[2])
        return (shape[3], shape[1], shape[2]) if self.channels_last else (shape[1], shape[2], shape[3])


def scan_npz(path: Path) -> NpzScan:
    """Check a .npz from its array headers (no data read into memory) and hash its arrays' bytes."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise GbenchError(
            f"{str(path)!r} is not a .npz file ({error}); save the images with numpy.savez(path, x=images, y=labels)"
        ) from None
    with archive:
        members = {Path(name).stem: name for name in archive.namelist() if name.endswith(".npy")}
        if "x" not in members:
            held = ", ".join(sorted(members)) or "no arrays"
            raise GbenchError(
                f"{str(path)!r} has no array 'x' (it holds {held}); save the uint8 "
                "images as x: numpy.savez(path, x=images, y=labels)"
            )
        extra = sorted(set(members) - set(NPZ_ARRAYS))
        if extra:
            raise GbenchError(
                f"{str(path)!r} holds an array {extra[0]!r} gbench does not read; keep only {', '.join(NPZ_ARRAYS)}"
            )
        shapes: dict[str, tuple[int, ...]] = {}
        digest = hashlib.sha256()
        for name in [n for n in NPZ_ARRAYS if n in members]:
            with archive.open(members[name]) as handle:
                shapes[name] = _npy_header(path, name, handle)
            with archive.open(members[name]) as handle:  # the .npy bytes: its header (dtype, shape) and data
                digest.update(f"{name}\0".encode())
                while chunk := handle.read(_READ_CHUNK):
                    digest.update(chunk)
    if ("x_test" in shapes) != ("y_test" in shapes) and "y" in shapes:
        raise GbenchError(
            f"{str(path)!r} has labels y but its test split x_test has none; save y_test beside x_test, or leave y out"
        )
    channels_last = _channels_last(path, shapes["x"])
    scan = NpzScan(shapes, channels_last, digest.hexdigest())
    for images, labels in (("x", "y"), ("x_test", "y_test")):
        if images in shapes and scan.image_shape(images) != scan.image_shape("x"):
            raise GbenchError(
                f"{str(path)!r}: x_test images are {_text(scan.image_shape(images))}, x "
                f"images {_text(scan.image_shape('x'))}; give both one shape"
            )
        if labels in shapes and (images not in shapes or shapes[labels] != (shapes[images][0],)):
            raise GbenchError(
                f"{str(path)!r}: {labels} has shape {shapes[labels]}; give one label per "
                f"image of {images}, shape ({shapes.get(images, (0,))[0]},)"
            )
    return scan


def _npy_header(path: Path, name: str, handle) -> tuple[int, ...]:
    try:
        version = np.lib.format.read_magic(handle)  # the header alone: no data read, no pickle
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(handle)
    except ValueError as error:
        raise GbenchError(
            f"{str(path)!r}: array {name!r} is damaged ({error}); save it again with numpy.savez"
        ) from None
    wanted = "uint8" if name.startswith("x") else "integers"
    if dtype.hasobject or (dtype != np.uint8 if name.startswith("x") else dtype.kind not in "iu"):
        raise GbenchError(
            f"{str(path)!r}: array {name!r} has dtype {dtype}; gbench reads {wanted} "
            f"only (never pickled objects): save {name} as {wanted}"
        )
    if name.startswith("x") and len(shape) not in (3, 4):
        raise GbenchError(f"{str(path)!r}: array {name!r} has shape {shape}; give images as (N, H, W), NHWC or NCHW")
    return tuple(int(side) for side in shape)


def _channels_last(path: Path, shape: tuple[int, ...]) -> bool:
    if len(shape) == 3 or shape[3] in (1, 3):
        return True
    if shape[1] in (1, 3):
        return False
    raise GbenchError(
        f"{str(path)!r}: x has shape {shape}: neither NHWC nor NCHW with 1 or 3 "
        "channels; save it as (N, H, W, C) or (N, C, H, W)"
    )


def _text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def load_npz(path: Path, scan: NpzScan, shape: tuple[int, int, int]) -> dict[str, torch.Tensor]:
    """The arrays as tensors: images uint8 ``(N, C, H, W)`` fitted to ``shape``, labels int64."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            loaded = {name: arrays[name] for name in scan.shapes}
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise GbenchError(f"{str(path)!r} cannot be read ({error}); save it again with numpy.savez") from None
    tensors = {}
    for name, array in loaded.items():
        if name.startswith("y"):
            if len(array) and array.min() < 0:
                raise GbenchError(
                    f"{str(path)!r}: {name} holds the negative label "
                    f"{int(array.min())}; labels are class numbers 0, 1, ..."
                )
            tensors[name] = torch.from_numpy(array.astype(np.int64))
            continue
        if array.ndim == 3:
            array = array[:, None]
        elif scan.channels_last:
            array = array.transpose(0, 3, 1, 2)
        if tuple(array.shape[1:]) == shape:
            tensors[name] = torch.from_numpy(np.ascontiguousarray(array))
        else:  # through PIL, exactly as a folder's images
            mode = "L" if array.shape[1] == 1 else "RGB"
            fitted = [
                fit_image(Image.fromarray(image[0] if mode == "L" else image.transpose(1, 2, 0), mode), shape)
                for image in array
            ]
            tensors[name] = (
                torch.from_numpy(np.stack(fitted)) if fitted else torch.empty((0, *shape), dtype=torch.uint8)
            )
    return tensors
