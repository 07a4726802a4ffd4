"""Image sets for ``gbench fid`` / ``gbench sample``: load them from anywhere, write them out.

An image set is given as one string:

- ``DATASET:SPLIT`` (``mnist:test``, ``fashion-mnist:train``): a dataset split,
  with its labels;
- a run folder (holds ``config.json`` and ``generator.pt``): its generator's
  samples, from seeded noise;
- a folder of PNG files, read in sorted name order;
- an ``.npz`` file (key ``images``, else its first array), an ``.npy`` file or
  a ``.pt`` file (a tensor, or a dict with key ``images``) of uint8 images
  shaped ``(N, C, H, W)`` or ``(N, H, W)``.

Everything comes back as a uint8 ``(N, C, H, W)`` CPU tensor.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gbench.data import SPLITS, load_split, to_uint8
from gbench.errors import GbenchError
from gbench.evaluation.conditional import balanced_labels
from gbench.plugins.registry import Nets, Registry
from gbench.results import store
from gbench.torchtools import eval_mode

ARRAY_SUFFIXES = (".npz", ".npy", ".pt", ".pth")
SAMPLE_BATCH = 500


@dataclass
class ImageSource:
    images: torch.Tensor  # uint8 (N, C, H, W), CPU
    labels: torch.Tensor | None  # int64 (N,) for dataset splits, else None
    dataset: str | None  # the dataset it comes from, when known (a split or a run)
    kind: str  # "split", "run", "png folder", "array file"
    spec: str

    def describe(self) -> str:
        return f"{self.spec} ({self.kind}, {len(self.images)} images)"


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file() and (path / "generator.pt").is_file()


# ---------------------------------------------------------------------------
# Generated samples
# ---------------------------------------------------------------------------


@torch.no_grad()
def generate(
    nets: Nets,
    count: int,
    seed: int,
    device: torch.device | str = "cpu",
    batch: int = SAMPLE_BATCH,
    num_classes: int = 0,
) -> torch.Tensor:
    """``count`` uint8 samples of the generator from N(0, 1) noise drawn with ``seed`` (CPU generator, so any device
    gives the same noise). ``num_classes`` > 0: a conditional generator, called as ``generator(z, y)`` with
    ``y = arange(count) % num_classes`` in sample order (:func:`gbench.evaluation.conditional.balanced_labels`);
    the noise is the same as without."""
    noise_source = torch.Generator().manual_seed(seed)
    # a conditional run's nets know their classes: sample i of class i % num_classes, as evaluation draws them
    num_classes = num_classes or nets.num_classes
    labels = balanced_labels(count, num_classes) if num_classes > 0 else None
    parts = []
    with eval_mode(nets.generator):
        for start in range(0, count, batch):
            z = torch.randn(min(batch, count - start), nets.latent_dim, generator=noise_source).to(device)
            if labels is None:
                fake = nets.generator(z)
            else:
                fake = nets.generator(z, labels[start : start + len(z)].to(device))
            parts.append(to_uint8(fake).cpu())
    return torch.cat(parts) if parts else torch.empty(0, dtype=torch.uint8)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def _as_images(array, where: str) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(array)) if not torch.is_tensor(array) else array.detach().cpu()
    if tensor.dtype != torch.uint8:
        raise GbenchError(
            f"{where} holds {tensor.dtype} values; gbench needs uint8 images in 0..255 "
            "(e.g. ((x + 1) * 127.5).round().clip(0, 255).astype('uint8'))"
        )
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(1)
    if tensor.dim() != 4 or tensor.shape[1] not in (1, 3):
        raise GbenchError(
            f"{where} has shape {tuple(tensor.shape)}; give images shaped (N, 1, H, W), (N, 3, H, W) or (N, H, W)"
        )
    return tensor.contiguous()


def _load_array_file(path: Path) -> torch.Tensor:
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if not archive.files:
                    raise GbenchError(
                        f"{str(path)!r} holds no arrays; save the images with numpy.savez(path, images=array)"
                    )
                key = "images" if "images" in archive.files else archive.files[0]
                array = archive[key]
        elif suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            # weights_only: a .pt never runs code
            obj = store.load_tensor_file(path, fix="give a .npz/.npy/.pt file of uint8 images")
            if isinstance(obj, dict):
                tensors = {k: v for k, v in obj.items() if torch.is_tensor(v)}
                if not tensors:
                    raise GbenchError(
                        f"{str(path)!r} holds a dict without tensors; "
                        "save the images tensor itself, or under key 'images'"
                    )
                obj = tensors.get("images", next(iter(tensors.values())))
            if not torch.is_tensor(obj):
                raise GbenchError(
                    f"{str(path)!r} holds a {type(obj).__name__}, not a tensor; "
                    "save a uint8 image tensor with torch.save"
                )
            array = obj
    except GbenchError:
        raise
    except Exception as error:  # a damaged or foreign file: zipfile, pickle and numpy raise many kinds
        reason = (str(error).splitlines() or [""])[0][:160]  # numpy's and zipfile's messages can run to several lines
        raise GbenchError(
            f"cannot read {str(path)!r} as a {suffix} image array ({type(error).__name__}: {reason}); "
            "give a .npz/.npy/.pt file of uint8 images"
        ) from None
    return _as_images(array, repr(str(path)))


def _load_png_folder(path: Path) -> torch.Tensor:
    from PIL import Image

    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png" and p.is_file())
    if not files:
        raise GbenchError(
            f"{str(path)!r} is neither a gbench run folder (config.json + generator.pt) nor a folder of .png images; "
            "give a run folder, a PNG folder, an .npz/.pt file or DATASET:SPLIT"
        )
    arrays, first = [], None
    for file in files:
        try:
            with Image.open(file) as opened:
                bands = opened.getbands()
                array = np.asarray(
                    opened.convert("L" if len(bands) == 1 or bands == ("L", "A") else "RGB"), dtype=np.uint8
                )
        except OSError as error:
            raise GbenchError(f"cannot read {str(file)!r} as a PNG ({error}); remove or replace it") from None
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        if first is None:
            first = array.shape
        elif array.shape != first:
            raise GbenchError(
                f"{str(file)!r} is {'x'.join(map(str, array.shape))} but {str(files[0])!r} is "
                f"{'x'.join(map(str, first))}; all PNGs in a folder must have one size and mode"
            )
        arrays.append(array)
    return torch.from_numpy(np.stack(arrays))


def _split(spec: str, registry: Registry, data_root: str | None, limit: int | None) -> ImageSource:
    name, _, split = spec.partition(":")
    dataset = registry.dataset(name)  # unknown name: one line with the known ones
    if split not in SPLITS:
        raise GbenchError(f"unknown split {split!r} in {spec!r}; use {' or '.join(f'{name}:{s}' for s in SPLITS)}")
    images, labels = load_split(dataset, split, data_root, limit)
    return ImageSource(images, labels, dataset.name, "split", spec)


def load_image_set(
    spec: str,
    registry: Registry,
    count: int | None = None,
    seed: int = 0,
    data_root: str | None = None,
    device: str = "cpu",
) -> ImageSource:
    """The images ``spec`` names (see the module docstring).

    ``count`` is the number of samples drawn from a run (default 10,000) and
    caps every other set at its first ``count`` images.
    """
    path = Path(spec).expanduser()
    if not path.exists():
        if ":" in spec and os.sep not in spec.partition(":")[0]:
            return _split(spec, registry, data_root, count)
        raise GbenchError(
            f"{spec!r} does not exist; give a run folder, a folder of PNGs, an .npz/.npy/.pt file, "
            "or DATASET:SPLIT such as mnist:test"
        )
    if is_run_dir(path):
        from gbench.training.runner import load_run  # points back up: read a run folder as the run saved it

        config, nets = load_run(path, registry, device)
        images = generate(nets, count or 10_000, seed, device)
        return ImageSource(images, None, config.dataset, "run", spec)
    if path.is_dir():
        images = _load_png_folder(path)
        kind = "png folder"
    elif path.suffix.lower() in ARRAY_SUFFIXES:
        images = _load_array_file(path)
        kind = "array file"
    else:
        raise GbenchError(
            f"{spec!r} has suffix {path.suffix or '(none)'!r}; "
            "image files must be .npz, .npy or .pt (or give a folder of PNGs)"
        )
    if count is not None:
        images = images[:count]
    return ImageSource(images, None, None, kind, spec)


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def png_bytes(image: torch.Tensor) -> bytes:
    """One uint8 (C, H, W) image as PNG bytes (grey for one channel)."""
    from PIL import Image

    array = image.numpy()
    array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_npz(path: Path, images: torch.Tensor) -> None:
    """``numpy.savez_compressed(images=...)`` through a temp file and rename."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images.numpy())
    store.atomic_write_bytes(path, buffer.getvalue())


def write_png_folder(path: Path, images: torch.Tensor) -> list[Path]:
    """``000000.png``, ``000001.png``, ... each written atomically."""
    width = max(6, len(str(len(images) - 1)))
    paths = []
    for index, image in enumerate(images):
        target = path / f"{index:0{width}d}.png"
        store.atomic_write_bytes(target, png_bytes(image))
        paths.append(target)
    return paths
