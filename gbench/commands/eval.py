"""gbench eval RUN_DIR: re-evaluate a saved generator and update its results row."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from rich.table import Table

from gbench.commands._options import add_verbosity_options, number_option
from gbench.commands._progress import log_line
from gbench.errors import GbenchError
from gbench.results import display, schema, store

HELP = (
    "Re-evaluate a finished run's saved generator (FID, KID, precision/recall, density/coverage, class "
    "coverage) against the test split and update its row in summary.json and OUT/results.csv."
)

DEFAULT_SAMPLES = 10_000

#: (key of EvalResult.as_row(), label, format) shown in the tables of eval and fid.
METRICS = (
    ("fid", "FID", ".4f"),
    ("fid_samples", "FID samples (N)", ".0f"),
    ("fid_infinity", "FID-infinity (N -> inf)", ".4f"),
    ("kid_mean", "KID mean ×10³", "x1000:.3f"),
    ("kid_std", "KID std ×10³", "x1000:.3f"),
    ("precision", "precision", ".4f"),
    ("recall", "recall", ".4f"),
    ("density", "density", ".4f"),
    ("coverage", "coverage", ".4f"),
    ("inception_score", "Inception Score (classifier)", ".3f"),
    ("classes_covered", "classes covered", "s"),
    ("class_kl", "class KL (nats)", ".4f"),
    ("fid_extractor", "extractor", "s"),
    ("eval_seconds", "seconds", ".1f"),
)


def add_eval_options(parser: argparse.ArgumentParser, samples_help: str) -> None:
    """The evaluation options shared by ``gbench eval`` and ``gbench fid``."""
    group = parser.add_argument_group("evaluation")
    group.add_argument(
        "-n", "--eval-samples", type=number_option(int, 2, "--eval-samples"), metavar="N", help=samples_help
    )
    group.add_argument(
        "--fid-extractor",
        metavar="NAME",
        help="feature extractor: lenet-mnist, lenet-fashion-mnist, lenet, inception (default: the dataset's LeNet)",
    )
    group.add_argument(
        "--inception-weights", metavar="PATH", help="path to inception-v3-compat weights (no download needed)"
    )
    group.add_argument(
        "--fid-infinity",
        action="store_true",
        help=(
            "also report FID-infinity (Chong & Forsyth 2020): FID at 15 subset sizes "
            "from N/10 to N, fitted to a + b/N, the intercept a"
        ),
    )
    group.add_argument("--no-kid", action="store_true", help="skip KID (reported as nan)")
    group.add_argument("--no-precision-recall", action="store_true", help="skip precision/recall (reported as nan)")
    group.add_argument(
        "--kid-pr-impl",
        choices=["gbench", "torch-fidelity"],
        default="gbench",
        help=(
            "who computes KID and precision/recall from the features: gbench's batched torch code "
            "(default) or torch-fidelity's own (same numbers, ~8 s slower at 10,000 samples)"
        ),
    )
    group.add_argument("--seed", type=number_option(int, 0, "--seed"), help="noise seed for generated samples")
    group.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="device for the generator and the extractor (default auto)",
    )
    group.add_argument("--data-root", help="folder holding the datasets (else $GBENCH_DATA, the cache, system places)")


def eval_settings(args: argparse.Namespace, num_samples: int):
    from gbench.evaluation.evaluate import EvalSettings

    return EvalSettings(
        num_samples=num_samples,
        extractor=args.fid_extractor,
        inception_weights=args.inception_weights,
        kid_subsets=0 if args.no_kid else EvalSettings.kid_subsets,
        precision_recall=not args.no_precision_recall,
        kid_pr_impl=args.kid_pr_impl,
        fid_infinity=args.fid_infinity,
    )


def metrics_table(
    title: str, now: dict[str, Any], before: dict[str, Any] | None = None, caption: str | None = None
) -> Table:
    table = Table(title=title, header_style="bold", caption=caption)
    table.add_column("metric")
    if before is not None:
        table.add_column("before", justify="right")
    table.add_column("now" if before is not None else "value", justify="right")
    listed = {key for key, _, _ in METRICS}
    plugins = [
        (c.name, c.header or c.name, c.spec)
        for c in schema.metric_columns()
        if c.name not in listed and c.name in now and not c.text
    ]
    for key, label, spec in (*METRICS, *plugins):  # a plugin's metric gets a row too
        cells = [display.format_cell(now.get(key), spec)]
        if before is not None:
            cells.insert(0, display.format_cell(before.get(key), spec))
        table.add_row(label, *cells)
    return table


def plain_line(row: dict[str, Any], **extra: Any) -> str:
    """``fid=12.3456 kid_mean=... extractor=lenet-mnist@712ee890 ...``: one line for scripts."""
    parts = []
    for key in (
        "fid",
        "fid_samples",
        "fid_infinity",
        "kid_mean",
        "kid_std",
        "precision",
        "recall",
        "density",
        "coverage",
    ):
        value = row.get(key)
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        parts.append(f"{key}={'nan' if missing else format(value, '.6g')}")
    parts.append(f"extractor={row['fid_extractor']}")
    parts.extend(f"{key}={value}" for key, value in extra.items())
    return " ".join(parts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_verbosity_options(parser)
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="a finished run's folder (holds config.json, generator.pt, summary.json)"
    )
    add_eval_options(parser, f"generated samples (default {DEFAULT_SAMPLES})")


def run(args: argparse.Namespace) -> int:
    from gbench.data import load_split
    from gbench.plugins.loading import load_plugins
    from gbench.torchtools import resolve_device
    from gbench.training.runner import load_run

    run_dir = Path(args.run_dir)
    device = resolve_device(args.device)
    registry = load_plugins().registry
    config, nets = load_run(run_dir, registry, str(device))
    if not (run_dir / "summary.json").is_file():
        raise GbenchError(
            f"{str(run_dir)!r} has no summary.json: the run did not finish; resume it with `gbench run` first"
        )
    summary = store.read_json(run_dir / "summary.json")
    dataset = registry.dataset(config.dataset)
    real, labels = load_split(dataset, "test", args.data_root or config.data_root)
    from gbench.evaluation.evaluate import evaluate_generator  # slow to import: after the inputs are checked

    settings = eval_settings(args, args.eval_samples or DEFAULT_SAMPLES)
    seed = config.seed if args.seed is None else args.seed
    log_line(
        f"gbench eval {run_dir}: evaluating {settings.num_samples} samples (seed {seed}) against {dataset.name}:test"
    )
    result = evaluate_generator(
        nets.generator,
        nets.latent_dim,
        dataset,
        real,
        settings,
        device,
        seed=seed,
        real_labels=labels,
        num_classes=nets.num_classes,
    )

    before = dict(summary)
    row = schema.json_safe({**summary, **result.as_row()})
    row.setdefault("run_id", config.run_id or run_dir.name)
    store.write_json(run_dir / "summary.json", row)
    out = run_dir.resolve().parent
    store.upsert_result(out, row)

    title = (
        f"gbench eval {row['run_id']}: {result.num_samples} samples (seed {seed}) vs "
        f"{dataset.name}:test, extractor {result.fid_extractor}"
    )
    display.stdout.print(metrics_table(title, row, before), soft_wrap=True)
    display.console.print(
        f"updated {run_dir / 'summary.json'} and {out / store.RESULTS}", highlight=False, soft_wrap=True
    )
    return 0
