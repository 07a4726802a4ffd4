"""gbench fid A B: FID, KID, precision/recall, density/coverage between any two image sets."""

from __future__ import annotations

import argparse

from gbench.commands._options import add_verbosity_options
from gbench.commands._progress import log_line
from gbench.commands.eval import DEFAULT_SAMPLES, add_eval_options, eval_settings, metrics_table, plain_line
from gbench.errors import GbenchError
from gbench.results import display

HELP = (
    "Compare two image sets (FID, KID, precision/recall, density/coverage). "
    "Each of A and B is DATASET:SPLIT (mnist:test), "
    "a run folder (its generator's samples), a folder of PNGs, or an .npz/.npy/.pt file of uint8 images. "
    "B is the reference side (its statistics are cached)."
)

SETS = "DATASET:SPLIT, a run folder, a folder of PNGs, or an .npz/.npy/.pt file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_verbosity_options(parser)
    parser.add_argument("a", metavar="A", help=f"the set to score (generated side): {SETS}")
    parser.add_argument("b", metavar="B", help=f"the reference set (real side, cached): {SETS}")
    parser.add_argument(
        "--dataset", help="whose extractor and classifier to use (default: inferred from a split or run among A and B)"
    )
    add_eval_options(
        parser, f"samples drawn from a run (default {DEFAULT_SAMPLES}); every other set is cut to its first N images"
    )


def pick_dataset(explicit: str | None, a, b) -> str:
    if explicit:
        return explicit
    known = {source.dataset for source in (a, b) if source.dataset}
    if len(known) == 1:
        return known.pop()
    if not known:
        raise GbenchError(
            f"cannot tell which dataset {a.spec!r} and {b.spec!r} belong to (neither is a "
            "split or a run); pass --dataset, e.g. --dataset mnist"
        )
    raise GbenchError(
        f"{a.spec!r} is {a.dataset} but {b.spec!r} is {b.dataset}; pass --dataset to choose whose extractor to use"
    )


def _check_shape(source, dataset) -> None:
    shape = tuple(source.images.shape[1:])
    if shape != tuple(dataset.image_shape):
        raise GbenchError(
            f"{source.spec!r} holds {'x'.join(map(str, shape))} images but dataset "
            f"{dataset.name!r} has {'x'.join(map(str, dataset.image_shape))}; "
            f"give images of that shape (grey 28x28 saved as (N, 1, 28, 28) or (N, 28, 28) uint8)"
        )


def _check_count(source, settings) -> None:
    # The library's minimum, so that the command and evaluate_images
    # accept the same sets (2 images without precision/recall).
    from gbench.evaluation.evaluate import MIN_IMAGES, minimum_images

    minimum = minimum_images(settings)
    if len(source.images) < minimum:
        hint = f"; --no-precision-recall needs only {MIN_IMAGES}" if minimum > MIN_IMAGES else ""
        raise GbenchError(
            f"{source.spec!r} holds {len(source.images)} images; the metrics need at least {minimum}{hint}"
        )


def run(args: argparse.Namespace) -> int:
    from gbench.evaluation.imagesets import load_image_set
    from gbench.plugins.loading import load_plugins
    from gbench.torchtools import resolve_device

    device = resolve_device(args.device)
    registry = load_plugins().registry
    if args.dataset:
        registry.dataset(args.dataset)  # an unknown name fails before any loading
    seed = args.seed or 0
    a = load_image_set(args.a, registry, args.eval_samples, seed, args.data_root, str(device))
    b = load_image_set(args.b, registry, args.eval_samples, seed, args.data_root, str(device))
    dataset = registry.dataset(pick_dataset(args.dataset, a, b))
    for source in (a, b):
        _check_shape(source, dataset)
    # torch-fidelity takes seconds to import: not before the inputs are checked
    from gbench.evaluation.evaluate import MIN_IMAGES, evaluate_images

    settings = eval_settings(args, max(len(a.images), MIN_IMAGES))
    for source in (a, b):
        _check_count(source, settings)
    log_line(f"gbench fid: evaluating A = {a.describe()} against B = {b.describe()}")
    result = evaluate_images(a.images, dataset, b.images, settings, device, seed=seed, real_labels=b.labels)
    row = result.as_row()
    title = f"gbench fid: A = {a.describe()} vs B = {b.describe()}, extractor {result.fid_extractor}"
    caption = (
        "class metrics: the dataset's classifier on A, against B's labels"
        if b.labels is not None
        else "class metrics: the dataset's classifier on A and on B"
    )
    display.console.print(metrics_table(title, row, caption=caption), soft_wrap=True)
    print(plain_line(row, a=len(a.images), b=len(b.images), dataset=dataset.name), flush=True)
    _print_stacked_modes(dataset.name, a.images)
    return 0


def _print_stacked_modes(dataset_name: str, images) -> None:
    """Stacked MNIST: A's modes covered and KL(p_gen || uniform), the numbers of VEEGAN's and PacGAN's tables."""
    from gbench.evaluation import stacked_modes

    if dataset_name != stacked_modes.STACKED_DATASET:
        return
    modes = stacked_modes.stacked_mnist_modes(images.cpu())
    note = (
        ""
        if len(images) >= stacked_modes.STACKED_SAMPLES
        else f" (the papers use {stacked_modes.STACKED_SAMPLES:,}: -n {stacked_modes.STACKED_SAMPLES})"
    )
    display.console.print(
        f"Stacked MNIST, A: {modes['stacked_modes_covered']:.0f} of 1000 modes covered, "
        f"KL(p_gen || uniform) {modes['stacked_mode_kl']:.4f} nats, "
        f"on {len(images):,} samples{note}",
        highlight=False,
    )
    print(
        f"stacked_modes_covered={modes['stacked_modes_covered']:.0f} "
        f"stacked_mode_kl={modes['stacked_mode_kl']!r} stacked_samples={len(images)}",
        flush=True,
    )
