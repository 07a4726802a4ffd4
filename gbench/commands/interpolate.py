"""gbench interpolate RUN_DIR: a latent interpolation and extrapolation strip (study S4)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gbench.commands._options import add_run_plugin_option, number_option
from gbench.errors import GbenchError
from gbench.results import display

HELP = (
    "Draw images along a line between two latent vectors of a finished run (alpha 0..1) and beyond it "
    "(alpha -1..2); for a conditional run, --from-label A --to-label B walks from class A to class B at one z."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="a finished run's folder (holds config.json and generator.pt)"
    )
    parser.add_argument("-o", "--output", metavar="FILE.png", help="PNG to write (default RUN_DIR/interpolation.png)")
    parser.add_argument(
        "--steps", type=number_option(int, 2, "--steps"), default=10, help="images per row (default 10)"
    )
    add_run_plugin_option(parser)
    parser.add_argument(
        "--seed", type=number_option(int, 0, "--seed"), default=0, help="seed of the two latent vectors (default 0)"
    )
    parser.add_argument(
        "--from-label",
        type=number_option(int, 0, "--from-label"),
        metavar="A",
        help="a conditional run: the class at alpha 0 (with --to-label: move between classes at one z; alone: "
        "the latent interpolation at this class; default class 0)",
    )
    parser.add_argument(
        "--to-label",
        type=number_option(int, 0, "--to-label"),
        metavar="B",
        help="a conditional run: the class at alpha 1 (give --from-label too)",
    )


def run(args: argparse.Namespace) -> int:
    from gbench.plugins.loading import load_plugins
    from gbench.report.interpolation import write_interpolation

    output = Path(args.output) if args.output else Path(args.run_dir) / "interpolation.png"
    if output.suffix.lower() != ".png":
        raise GbenchError(f"-o {str(output)!r} must be a .png file, e.g. -o interpolation.png")
    if args.to_label is not None and args.from_label is None:
        raise GbenchError(f"--to-label {args.to_label} needs --from-label: give the class to start from too")
    labels = None
    if args.from_label is not None:
        labels = (args.from_label, args.from_label if args.to_label is None else args.to_label)
    try:
        registry = load_plugins(extra=args.plugin or ()).registry
        path = write_interpolation(args.run_dir, output, registry, steps=args.steps, seed=args.seed, labels=labels)
    except OSError as error:
        raise GbenchError(
            f"cannot write {str(output)!r} ({error.strerror or error}); give a writable path with -o"
        ) from None
    moving = f"class {labels[0]} to class {labels[1]} at one z, " if labels and labels[0] != labels[1] else ""
    display.console.print(
        f"wrote {path}: {moving}top row alpha 0 to 1, bottom row alpha -1 to 2, {args.steps} images each",
        highlight=False,
    )
    return 0
