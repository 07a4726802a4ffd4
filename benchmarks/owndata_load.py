"""What loading your own images costs: a folder of PNG files and the same images
as a .npz, against MNIST's IDX test split, in one process (not a timed test).

    GBENCH_DATA=../shared/data python benchmarks/owndata_load.py [--images 10000] [--size 32] [--rounds 3]

Writes ``--images`` random-noise ``--size``x``--size`` RGB PNG files (two class folders) and one .npz of the same pixels
into a temporary folder, then loads each the way ``gbench run --dataset folder:PATH`` / ``npz:PATH`` does: the scan
(headers, content hash, memory check) and the decoding of both splits. Noise is the worst case for PNG (no compression),
so the files are as large as they get. Each round loads the three back to back; the figure is the median over rounds.

Last line: folder_seconds=X npz_seconds=Y mnist_seconds=Z folder_over_mnist=R (medians; R is the folder's time over the
IDX files' for the same image count).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402

from gbench.data import load_split  # noqa: E402
from gbench.datasource import DataOptions  # noqa: E402
from gbench.owndata import own_dataset  # noqa: E402
from gbench.plugins.loading import load_plugins  # noqa: E402


def write_images(root: Path, count: int, size: int) -> np.ndarray:
    """``count`` noise images in two class folders of ``root``, and the same pixels as an array (NHWC)."""
    pixels = np.random.default_rng(0).integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    for index, image in enumerate(pixels):
        folder = root / "images" / ("a" if index % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:06d}.png")
    np.savez(root / "images.npz", x=pixels, y=np.arange(count) % 2)
    return pixels


def load_own(name: str) -> tuple[float, float]:
    """Seconds to scan and to decode both splits of own data ``name``."""
    started = time.perf_counter()
    dataset = own_dataset(name, DataOptions())
    scanned = time.perf_counter()
    dataset.load("train", [])
    dataset.load("test", [])
    return scanned - started, time.perf_counter() - scanned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {cpu_model()}")
    mnist = load_plugins().registry.dataset("mnist")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        started = time.perf_counter()
        pixels = write_images(root, args.images, args.size)
        files = sorted((root / "images").rglob("*.png"))
        on_disk = sum(path.stat().st_size for path in files)
        print(
            f"wrote {len(files):,} PNG files of {args.size}x{args.size} RGB noise "
            f"({on_disk / 2**20:.1f} MiB) in {time.perf_counter() - started:.1f} s"
        )
        print(
            f"in memory: {pixels.nbytes / 2**20:.1f} MiB uint8, "
            f"{pixels.nbytes * 4 / 2**20:.1f} MiB as the float32 training copy"
        )
        timings: dict[str, list[float]] = {"folder": [], "npz": [], "mnist": []}
        loaders: dict[str, Callable[[], tuple[float, float]]] = {
            "folder": lambda: load_own(f"folder:{root / 'images'}"),
            "npz": lambda: load_own(f"npz:{root / 'images.npz'}"),
            "mnist": lambda: (0.0, _timed(lambda: load_split(mnist, "test", limit=args.images))),
        }
        for round_number in range(args.rounds):
            parts = []
            for name, load in loaders.items():
                scan, decode = load()
                timings[name].append(scan + decode)
                parts.append(f"{name} {scan:.2f} s scan + {decode:.2f} s decode")
            print(f"round {round_number + 1}: " + "; ".join(parts))
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print(
        f"folder_seconds={medians['folder']:.2f} npz_seconds={medians['npz']:.2f} mnist_seconds={medians['mnist']:.3f} "
        f"folder_over_mnist={medians['folder'] / medians['mnist']:.0f}"
    )


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
