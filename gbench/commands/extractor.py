"""gbench extractor train DATASET: reproduce a shipped LeNet extractor,
or train and register a domain LeNet for any labelled dataset."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from gbench.commands._options import add_option, number_option
from gbench.errors import GbenchError
from gbench.options import DATA, OPTIONS
from gbench.results import display, store

HELP = (
    "Feature extractors: `gbench extractor train DATASET` retrains a "
    "shipped LeNet from its seed and checks its SHA-256, "
    "or trains a LeNet for any other labelled dataset and registers it as that data's default FID extractor."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    train = actions.add_parser(
        "train",
        help=(
            "train the LeNet extractor of a dataset (1-3 min on 2 CPU cores for MNIST); print test accuracy and SHA-256"
        ),
        description="Train the LeNet extractor of DATASET from --seed and print its test accuracy and SHA-256. "
        "For mnist and fashion-mnist it reproduces the shipped weights (seed 0) "
        "and writes nothing unless -o or --install is given. "
        "For any other labelled dataset it trains a domain LeNet for the data's "
        "channels and size and registers it in the cache "
        "(cache/extractors/), so FIDs on the same data (the same content hash of its test split) use it by default.",
    )
    train.add_argument(
        "dataset",
        metavar="DATASET",
        help="mnist, fashion-mnist, or any labelled dataset (cifar10, svhn, a plugin's, folder:PATH or npz:PATH)",
    )
    train.add_argument(
        "--epochs",
        type=number_option(int, 1, "--epochs"),
        help="epochs for a domain LeNet (default 10); the shipped ones use their recipe",
    )
    train.add_argument(
        "--seed",
        type=number_option(int, 0, "--seed"),
        default=0,
        help="training seed (default 0, that of the shipped weights)",
    )
    train.add_argument("-o", "--output", metavar="PATH", help="write the trained weights to PATH (a .pt state dict)")
    train.add_argument(
        "--install",
        action="store_true",
        help="replace the shipped weights file, only when the SHA-256 matches the shipped one",
    )
    train.add_argument("--data-root", help="folder holding the datasets (else $GBENCH_DATA, the cache, system places)")
    # --image-size, --channels, --holdout: own data shaped as the runs that will use the LeNet shape it
    for declared in OPTIONS:
        if declared.lands == DATA:
            add_option(train, declared)


def _check_output(output: str | None, shipped: Path, install: bool) -> Path | None:
    if output is None:
        return None
    path = Path(output).expanduser()
    if path.is_dir():
        raise GbenchError(f"-o {output!r} is a folder; give a file path such as -o lenet-retrained.pt")
    if path.resolve() == shipped.resolve():
        fix = (
            "drop -o: --install alone replaces it (when the SHA-256 matches)"
            if install
            else "write elsewhere, or use --install to replace it"
        )
        raise GbenchError(f"-o {output!r} is the shipped weights file; {fix}")
    return path


def run(args: argparse.Namespace) -> int:
    # argparse lets only the "train" action through (required subparsers), so there is no other action to handle.
    from gbench import owndata
    from gbench.datasource import DataOptions, is_own_data
    from gbench.plugins.loading import load_plugins

    registry = load_plugins().registry
    data = DataOptions(**{o.field: getattr(args, o.name) for o in OPTIONS if o.lands == DATA})
    data.check_for(args.dataset)  # --image-size on mnist: refused, as gbench run refuses it
    if is_own_data(args.dataset):  # folder:PATH / npz:PATH: scanned and registered under the name as typed
        owndata.register(registry, args.dataset, data)
    dataset = registry.dataset(args.dataset)  # unknown dataset: one line with the known ones
    # imports torch-fidelity (seconds): after the cheap checks
    from gbench.evaluation import extractor_training, extractors, weights_files

    name = extractors.shipped_lenet(dataset.name)
    if name is None or dataset.name not in extractor_training.RECIPES:
        return _train_domain(args, dataset)
    if args.epochs is not None:
        raise GbenchError(
            f"--epochs {args.epochs} applies to domain LeNets; {name} is trained by its fixed "
            "recipe so that it reproduces the shipped file: drop --epochs"
        )
    shipped_path = extractors.lenet_weights_path(name)
    output = _check_output(args.output, shipped_path, args.install)

    display.console.print(f"training {name} from seed {args.seed} (1-3 minutes on 2 CPU cores)", highlight=False)
    state, accuracy = extractor_training.train_extractor(dataset, seed=args.seed, data_root=args.data_root)
    blob = weights_files.state_dict_bytes(state)
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
                    f"not installed: SHA-256 {sha[:8]} differs from the shipped "
                    f"{shipped[:8]}, so gbench would refuse the file; "
                    f"keep it with -o PATH (another CPU or torch version can change the last bits)"
                )
            store.atomic_write_bytes(shipped_path, blob)
            display.console.print(f"installed {shipped_path}", highlight=False)
    except OSError as error:
        raise GbenchError(f"cannot write the weights ({error.strerror or error}); give a writable -o PATH") from None
    return 0


def _train_domain(args: argparse.Namespace, dataset) -> int:
    """Train a LeNet for a dataset with no shipped one, and register it as that data's default FID extractor."""
    from gbench.data import content_hash, load_split
    from gbench.evaluation import domain_extractors, extractor_training, extractors

    if args.install:
        raise GbenchError(
            f"--install replaces shipped weights, and {dataset.name!r} has none; drop "
            "it: the trained LeNet is registered in the cache"
        )
    output = _check_output(args.output, domain_extractors.domain_dir() / "none", False)
    train_x, train_y = load_split(dataset, "train", args.data_root)  # missing files: one line naming where it looked
    test_x, test_y = load_split(dataset, "test", args.data_root)
    epochs = args.epochs or extractor_training.DOMAIN_RECIPE[0]
    shape = "x".join(map(str, dataset.image_shape))
    display.console.print(
        f"training {domain_extractors.domain_name(dataset.name)} ({shape}, "
        f"{dataset.num_classes} classes) from seed {args.seed}, {epochs} epochs",
        highlight=False,
    )
    state, accuracy = extractor_training.train_extractor(
        dataset, seed=args.seed, epochs=epochs, splits=(train_x, train_y, test_x, test_y)
    )
    entry = domain_extractors.register_domain_lenet(
        dataset, state, accuracy, content_hash(train_x), content_hash(test_x), args.seed, epochs
    )
    label = extractors.extractor_label(entry.name, entry.weights_path)
    print(
        f"{entry.name}: test accuracy {accuracy:.4f}, sha256 {entry.sha256}; registered "
        f"as {label} for {dataset.name} data {entry.test_hash[:8]}",
        flush=True,
    )
    display.console.print(f"wrote {entry.weights_path}; FIDs on this data now use {label} by default", highlight=False)
    if output is not None:
        try:
            store.atomic_write_bytes(output, entry.weights_path.read_bytes())
        except OSError as error:
            raise GbenchError(
                f"cannot write the weights ({error.strerror or error}); give a writable -o PATH"
            ) from None
        display.console.print(f"wrote {output}", highlight=False)
    return 0
