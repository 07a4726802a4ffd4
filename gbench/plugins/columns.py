"""The columns of a results row: the ones gbench writes itself, and the :class:`Metric` specs that declare the others.

They live in the plugin API (not in :mod:`gbench.results.schema`, which
builds rows from them) because registration needs them: a plugin's
hyperparameter or metric column named like one of these is refused when it
registers, before anything trains. The evaluation metrics (FID, KID, ...)
are not listed here: gbench's built-in ``metrics`` plugin declares them
through ``gbench_register_metrics`` like any third-party metric, and
:func:`declare` records the columns of the most recently loaded registry for
the readers of stored rows (``show``, ``export``, the report), which are
handed rows, not a registry; :func:`remembered` gives them the installed
plugins' columns without loading the plugins.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, get_args

IDENTITY = "identity"
HYPERPARAMETER = "hyperparameter"
METRIC = "metric"
BOOKKEEPING = "bookkeeping"

#: What a metric column's direction may be: which way is better, or "" (neither: a count, a spread, text).
DIRECTIONS = ("lower", "higher", "")


@dataclass(frozen=True)
class Column:
    """One known column: its kind, and how terminal tables show it."""

    name: str
    kind: str
    header: str = ""  # its header in results tables; "" keeps it out of them
    spec: str = "s"  # format spec of a cell ("s": as text)
    shared: bool = False  # moves to the table's caption when every row has the same value
    direction: str = ""  # a metric's better direction: "lower", "higher" or "" (neither)
    description: str = ""  # one line for docs and `gbench plugins`
    text: bool = False  # its values are text even when they look like numbers
    mean_spec: str = ""  # format of a mean over seeds in the report ("" -> spec)


#: The columns before the evaluation metrics in results.csv, in order.
BEFORE_METRICS: tuple[Column, ...] = (
    Column("run_id", IDENTITY, "run"),
    Column("status", BOOKKEEPING, "status"),
    Column("architecture", IDENTITY, "arch"),
    Column("loss", IDENTITY, "loss", shared=True),
    Column("schedule", IDENTITY, "schedule", shared=True),
    Column("dataset", IDENTITY, "dataset", shared=True),
    Column("seed", IDENTITY, "seed", shared=True),
    Column("steps", BOOKKEEPING, "steps", shared=True),
    Column("epochs", BOOKKEEPING),
    # gbench's own training knobs: declared in gbench.config like any plugin's hyperparameter
    Column("batch_size", HYPERPARAMETER, "batch", shared=True),
    Column("lr", HYPERPARAMETER, "lr", "g", shared=True),
    Column("d_loss", METRIC, "d_loss", ".3f"),
    Column("g_loss", METRIC, "g_loss", ".3f"),
    Column("d_real", METRIC, "D(x)", ".3f"),
    Column("d_fake", METRIC, "D(G(z))", ".3f"),
    Column("score", BOOKKEEPING),  # "probability" or "critic": what d_real and d_fake hold
)
#: The columns after the evaluation metrics: what every evaluation writes whatever metrics are registered, then
#: bookkeeping.
AFTER_METRICS: tuple[Column, ...] = (
    Column("fid_extractor", METRIC, "extractor", shared=True, text=True),  # the extractor every feature metric used
    Column("fid_samples", METRIC, "FID samples", ",.0f", shared=True),  # FID depends on it: every FID names its count
    Column("train_seconds", METRIC, "train s", ".1f"),
    Column("eval_seconds", METRIC, "eval s", ".1f"),
    Column("images_per_second", METRIC, "img/s", ",.0f"),
    Column("device", BOOKKEEPING),
    Column("population", BOOKKEEPING),  # how many members trained together (1: a run trained alone)
    # --precision: "fp32" or "bf16" (autocast); in SETUP: it tells settings apart
    Column("train_precision", BOOKKEEPING),
    # --ema: the decay whose weight average was evaluated and saved; empty: the last weights. In SETUP
    Column("ema", BOOKKEEPING),
    Column("diverged_step", BOOKKEEPING),
    Column("collapsed_step", BOOKKEEPING),
    # not among the leading columns of results.csv (they sort alphabetically after them)
    Column("created", BOOKKEEPING),
    Column("suite", BOOKKEEPING),  # gbench sweep: the suite and its variant
    Column("variant", BOOKKEEPING),
    # gbench sweep --seeds auto: its design, e.g. "auto:10" (gbench.analysis.adaptive)
    Column("seeds_auto", BOOKKEEPING),
    Column("study", BOOKKEEPING),  # gbench tune: the Optuna study and trial number
    Column("trial", BOOKKEEPING),
    # issue #34: wall time, the winning-discriminator flag and provenance (gbench.results.flags,
    # gbench.results.provenance). population_seconds: the training loop's wall time (train_seconds: the run's
    # share); reports head it "population s"
    Column("population_seconds", METRIC),
    Column("discriminator_wins", BOOKKEEPING),  # D(x) >= 0.99 and d_loss <= 0.02 at the end (gbench.results.flags)
    Column("hardware", BOOKKEEPING),  # GPU name, or CPU model with threads
    Column("gbench_version", BOOKKEEPING),  # version and commit
    # issue #33: own data (--dataset folder:PATH / npz:PATH; gbench.owndata.result_columns)
    Column("data_hash", BOOKKEEPING),  # the SHA-256 of its content (gbench.imagefiles)
    Column("image_shape", BOOKKEEPING),  # the shape it trained at, e.g. "3x32x32" (--image-size, --channels)
)
#: The last of results.csv's leading columns; the columns after it sort alphabetically.
LAST_LEADING = "collapsed_step"
#: Every column gbench writes itself, by name: a plugin's hyperparameter or metric column may take none of these names.
CORE = {column.name: column for column in (*BEFORE_METRICS, *AFTER_METRICS)}

#: What a metric may need besides the extractor's features: the domain classifier's labels, the generated images,
#: the classes the samples were generated for. A metric needing "sample_labels" measures class-conditional generators
#: only: on an unconditional evaluation its columns are NaN and nothing is computed for it (not even its other needs).
Need = Literal["features", "labels", "samples", "sample_labels"]
NEEDS: tuple[Need, ...] = get_args(Need)


#: A format spec may start with a scale, "x1000:.2f": the value times 1000, then ".2f" (KID as papers print it).
SCALE_SEPARATOR = ":"


def format_number(number: float, spec: str) -> str:
    """``number`` by a format ``spec``, with an optional leading scale ``xN:`` (results.csv keeps the unscaled
    value)."""
    if spec.startswith("x") and SCALE_SEPARATOR in spec:
        scale, spec = spec[1:].split(SCALE_SEPARATOR, 1)
        number = number * float(scale)
    return format(number, spec)


@dataclass(frozen=True)
class MetricColumn:
    """One results column a metric writes."""

    name: str
    direction: Literal["lower", "higher", ""] = ""  # which way is better; "" for neither (a spread, a count)
    header: str = ""  # its header in `gbench show` tables; "" keeps it out of them (results.csv and export have it)
    format: str = "s"  # format spec of a table cell, e.g. ".3f"; "x1000:.2f" shows the value times 1000 (format_number)
    description: str = ""  # one line: what it measures
    text: bool = False  # its values are text (or a list of numbers, written as text)
    mean_format: str = ""  # format of its mean over seeds in a report ("" -> format)

    def as_column(self) -> Column:
        return Column(
            self.name,
            METRIC,
            self.header,
            self.format,
            direction=self.direction,
            description=self.description,
            text=self.text,
            mean_spec=self.mean_format,
        )


@dataclass(frozen=True)
class MetricInputs:
    """What an evaluation hands every metric's ``compute``; features are computed once per evaluation, not per metric.

    ``fake_features``/``real_features``: the extractor's (N, D) float32 CPU features of the generated
    and the real images; ``real_statistics``: the real side's FID statistics ``{"mu", "sigma"}``;
    ``real_radii(k)``: the real features' k-NN radii (cached); ``fake_logits``: the domain classifier's
    logits of the generated images and ``real_class_counts`` the real split's class counts (both None
    without a classifier, or when no metric needs "labels"); ``samples``: the generated uint8 images
    (None unless a metric needs "samples"); ``settings``: the EvalSettings; ``seed``: the evaluation's seed;
    ``dataset``: the name of the data set the real images come from, for a metric that applies to one data set
    only (Stacked MNIST's modes); "" when the caller did not say.

    ``sample_labels``: int64 CPU (N,), the class each generated sample was generated for, in sample order
    (None for an unconditional generator); ``real_labels``: int64 CPU (M,), the real split's labels aligned
    row by row with ``real_features`` (None when the caller has none); ``num_classes``: the classes the
    generator was conditioned on (0: unconditional).
    """

    fake_features: Any
    real_features: Any
    real_statistics: dict[str, Any]
    real_radii: Callable[[int], Any]
    fake_logits: Any | None
    real_class_counts: list[int] | None
    samples: Any | None
    settings: Any
    seed: int
    dataset: str = ""  # a default, so that a plugin's own tests that build MetricInputs keep working
    sample_labels: Any | None = None
    real_labels: Any | None = None
    num_classes: int = 0


@dataclass(frozen=True)
class Metric:
    """A measurement of the generated images. ``compute(inputs: MetricInputs) -> {column name: value}``,
    one value per declared column (NaN when it does not apply, e.g. KID with ``kid_subsets=0``)."""

    name: str
    columns: tuple[MetricColumn, ...]
    compute: Callable[[MetricInputs], dict[str, Any]]
    needs: tuple[Need, ...] = ("features",)
    description: str = ""
    # the data sets it measures (empty: all); on others its columns are NaN and nothing is kept for it
    datasets: tuple[str, ...] = ()

    def applies_to(self, dataset: str, conditional: bool = False) -> bool:
        """Whether an evaluation on ``dataset`` measures it (``conditional``: the samples carry their classes)."""
        return (not self.datasets or dataset in self.datasets) and (conditional or "sample_labels" not in self.needs)


_declared: tuple[Column, ...] | None = None


def declare(metric_columns: tuple[Column, ...], installed_only: bool) -> None:
    """Record the metric columns of the registry just loaded (``load_plugins`` calls it); those of the
    installed plugins alone are also remembered on disk for :func:`remembered`."""
    global _declared
    _declared = metric_columns
    if installed_only:
        try:
            _memo_file().parent.mkdir(parents=True, exist_ok=True)
            temporary = _memo_file().with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(
                json.dumps({"installed": _installed(), "columns": [dataclasses.asdict(c) for c in metric_columns]})
            )
            temporary.replace(_memo_file())  # whole or not at all, for a reader in another process
        except OSError:  # a read-only cache: readers load the plugins instead
            pass


def declared() -> tuple[Column, ...] | None:
    """The metric columns of the most recently loaded registry; None before any was loaded in this process."""
    return _declared


def remembered() -> tuple[Column, ...] | None:
    """The metric columns the installed plugins declared when last loaded, if the same plugins are installed now.

    ``gbench show`` and ``export`` read stored rows and need only the columns: loading the plugins
    would import torch (about 2 s) for them. A plain JSON file, so reading it runs no code.
    """
    global _declared
    try:
        memo = json.loads(_memo_file().read_text())
        if memo["installed"] != _installed():
            return None
        _declared = tuple(Column(**fields) for fields in memo["columns"])  # read once per process, like a load
    except (OSError, ValueError, KeyError, TypeError):  # none yet, damaged or of another layout: load the plugins
        return None
    return _declared


def _memo_file() -> Path:
    # gbench.data.cache_dir(), without importing gbench.data (it imports torch)
    return Path(os.environ.get("GBENCH_CACHE") or Path.home() / ".cache" / "gbench") / "metric-columns.json"


def _installed() -> list[str]:
    """What decides which plugins load: the gbench entry points installed and the switches that pick among them."""
    points = sorted(
        f"{ep.name}={ep.value} ({ep.dist.name if ep.dist else ''} {ep.dist.version if ep.dist else ''})"
        for ep in metadata.entry_points(group="gbench")
    )
    switches = [f"{name}={os.environ.get(name, '')}" for name in ("GBENCH_PLUGINS", "GBENCH_DISABLE_PLUGIN_AUTOLOAD")]
    return [*points, *switches]
