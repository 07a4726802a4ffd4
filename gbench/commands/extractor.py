"""gbench extractor train DATASET: reproduce the shipped LeNet extractor weights."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from gbench.commands._options import number_option
from gbench.errors import GbenchError
from gbench.results import display, store

HELP = "Feature extractors: `gbench extractor train DATASET` retrains the shipped LeNet from its seed and checks its SHA-256 against the shipped weights."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = actions.add_parser(
        "train",
        help="train the LeNet extractor of a dataset (1-3 min on 2 CPU cores); print test accuracy and SHA-256",
        description="Train the LeNet extractor of DATASET from --seed (the shipped weights use seed 0) and print its test accuracy, "
        "its SHA-256 and whether it matches the shipped file. Nothing is written unless -o or --install is given.",
    )
    train.add_argument("dataset", metavar="DATASET", help="mnist or fashion-mnist")
    train.add_argument("--seed", type=number_option(int, 0, "--seed"), default=0, help="training seed (default 0, that of the shipped weights)")
    train.add_argument("-o", "--output", metavar="PATH", help="write the trained weights to PATH (a .pt state dict)")
    train.add_argument("--install", action="store_true", help="replace the shipped weights file, only when the SHA-256 matches the shipped one")
    train.add_argument("--data-root", help="folder holding the datasets (else $GBENCH_DATA, the cache, system places)")


def _check_output(output: str | None, shipped: Path, install: bool) -> Path | None:
    if output is None:
        return None
    path = Path(output).expanduser()
    if path.is_dir():
        raise GbenchError(f"-o {output!r} is a folder; give a file path such as -o lenet-retrained.pt")
    if path.resolve() == shipped.resolve():
        fix = "drop -o: --install alone replaces it (when the SHA-256 matches)" if install else "write elsewhere, or use --install to replace it"
        raise GbenchError(f"-o {output!r} is the shipped weights file; {fix}")
    return path


def run(args: argparse.Namespace) -> int:
    # argparse lets only the "train" action through (required subparsers), so there is no other action to handle.
    from gbench.plugins.loading import load_plugins

    dataset = load_plugins().registry.dataset(args.dataset)  # unknown dataset: one line with the known ones
    from gbench.evaluation import extractor_training, extractors  # imports torch-fidelity (seconds): after the cheap checks

    name = extractors.shipped_lenet(dataset.name)
    if name is None or dataset.name not in extractor_training.RECIPES:
        raise GbenchError(f"dataset {args.dataset!r} has no LeNet extractor recipe; choose one of {', '.join(sorted(extractor_training.RECIPES))}")
    shipped_path = extractors.lenet_weights_path(name)
    output = _check_output(args.output, shipped_path, args.install)

    display.console.print(f"training {name} from seed {args.seed} (1-3 minutes on 2 CPU cores)", highlight=False)
    state, accuracy = extractor_training.train_extractor(dataset, seed=args.seed, data_root=args.data_root)
    blob = extractors.state_dict_bytes(state)
    sha = hashlib.sha256(blob).hexdigest()
    shipped = extractors.EXTRACTOR_SHA256.get(name, "")
    matches = sha == shipped
    verdict = "matches the shipped weights" if matches else f"differs from the shipped {shipped[:8] or '(none)'}"
    print(f"{name}: test accuracy {accuracy:.4f}, sha256 {sha} ({verdict})", flush=True)

    try:
        if output is not None:
            store.atomic_write_bytes(output, blob)
            display.console.print(f"wrote {output}", highlight=False)
        if args.install:
            if not matches:
                raise GbenchError(
                    f"not installed: SHA-256 {sha[:8]} differs from the shipped {shipped[:8]}, so gbench would refuse the file; "
                    f"keep it with -o PATH (another CPU or torch version can change the last bits)"
                )
            store.atomic_write_bytes(shipped_path, blob)
            display.console.print(f"installed {shipped_path}", highlight=False)
    except OSError as error:
        raise GbenchError(f"cannot write the weights ({error.strerror or error}); give a writable -o PATH") from None
    return 0
