"""gbench sample RUN_DIR -n N -o FILE.npz|DIR: write a saved generator's samples for other tools."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from gbench.commands._options import add_run_plugin_option, number_option
from gbench.errors import GbenchError
from gbench.results import display

if TYPE_CHECKING:
    from gbench.plugins.registry import Nets

HELP = (
    "Write N samples of a finished run's generator as uint8 images: a folder of PNGs (000000.png ...), the format "
    "other tools read (torch-fidelity, clean-fid), or an .npz (key 'images', shape (N, C, H, W)) for gbench fid "
    "and numpy. A conditional run's samples are of every class in turn (sample i of class i mod K), or all of "
    "--label's class."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="a finished run's folder (holds config.json and generator.pt)"
    )
    parser.add_argument(
        "-n", "--num-samples", type=number_option(int, 1, "-n"), required=True, metavar="N", help="how many samples"
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="FILE.npz|DIR", help="an .npz file, or a new or empty folder for PNGs"
    )
    add_run_plugin_option(parser)
    parser.add_argument(
        "--seed",
        type=number_option(int, 0, "--seed"),
        default=0,
        help="noise seed (default 0): the same seed gives the same images",
    )
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto", help="device for the generator (default auto)"
    )
    parser.add_argument(
        "--label",
        type=number_option(int, 0, "--label"),
        metavar="CLASS",
        help="a conditional run only: every sample of this class (0..K-1, the dataset's class numbers)",
    )


def _target(output: str) -> tuple[Path, str]:
    path = Path(output).expanduser()
    if path.suffix.lower() == ".npz":
        if path.is_dir():
            raise GbenchError(
                f"-o {output!r} is a folder; give a file name ending in .npz, or a folder name without .npz"
            )
        return path, "npz"
    if path.exists() and not path.is_dir():
        raise GbenchError(f"-o {output!r} is an existing file that is not .npz; give FILE.npz or a folder for PNGs")
    if path.suffix and not path.exists():
        raise GbenchError(
            f"-o {output!r} ends in {path.suffix!r}; give FILE.npz, or a folder (create it first if its name has a dot)"
        )
    if path.is_dir() and any(p.suffix.lower() == ".png" for p in path.iterdir()):
        raise GbenchError(
            f"-o {output!r} already holds PNG files; give a new or empty folder so old images do not mix with new ones"
        )
    return path, "png"


def run(args: argparse.Namespace) -> int:
    from gbench.evaluation.imagesets import generate, write_npz, write_png_folder
    from gbench.plugins.loading import load_plugins
    from gbench.torchtools import resolve_device
    from gbench.training.runner import load_run

    target, kind = _target(args.output)
    device = resolve_device(args.device)
    config, nets = load_run(args.run_dir, load_plugins(extra=args.plugin or ()).registry, device=str(device))
    images = generate(labelled(nets, args.label, config.architecture), args.num_samples, args.seed, device)
    try:
        if kind == "npz":
            write_npz(target, images)
        else:
            write_png_folder(target, images)
    except OSError as error:
        raise GbenchError(
            f"cannot write {str(target)!r} ({error.strerror or error}); give a writable path with -o"
        ) from None
    shape = "x".join(map(str, images.shape))
    where = f"{target} (key 'images')" if kind == "npz" else f"{target}/ as {len(images)} PNG files"
    which = f", class {args.label}" if args.label is not None else (", every class in turn" if nets.num_classes else "")
    display.console.print(
        f"wrote {shape} uint8 samples (seed {args.seed}{which}) to {where}", highlight=False, soft_wrap=True
    )
    return 0


def labelled(nets: Nets, label: int | None, architecture: str) -> Nets:
    """The nets to sample: with ``--label``, a conditional generator as ``generator(z)`` of that class (without,
    imagesets.generate draws every class in turn); ``--label`` for an unconditional run, or out of the run's
    classes, is refused in one line."""
    from gbench.plugins.labels import FixedLabels

    if label is None:
        return nets
    if not nets.num_classes:
        raise GbenchError(
            f"--label {label}: the run's architecture {architecture!r} is not conditional, so its samples have no "
            "class to choose; leave --label out"
        )
    if label >= nets.num_classes:
        raise GbenchError(f"--label {label} is not a class of this run; give one of 0..{nets.num_classes - 1}")
    return dataclasses.replace(nets, generator=FixedLabels(nets.generator, label), num_classes=0)  # now G(z)
