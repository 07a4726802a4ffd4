"""One schema for a results row (``results.csv``, ``summary.json``, tune's pruned trials).

Every column of a row is of one of four kinds:

- **identity**: what run it is (``run_id``) and what it ran (``architecture``,
  ``loss``, ``schedule``, ``dataset``, ``seed``);
- **hyperparameter**: a value the run was configured with. These come from
  what the plugins (and gbench's training knobs: ``batch_size``, ``lr``,
  ``beta1``, ``beta2``) declare, so the schema cannot list them: in a stored
  row, a hyperparameter is any column that is neither identity, metric nor
  bookkeeping;
- **metric**: what training and evaluation measured (``fid``, ``d_real``, ...);
- **bookkeeping**: how the run went and where it belongs (``status``,
  ``steps``, ``device``, ``suite``, ...).

:func:`results_row` builds a row from the four parts, so the runner and tune
write the same columns; display, stats, the store and the report read the
kinds from here instead of keeping their own lists. A new metric column must
be added to :data:`COLUMNS` (or start with one of :data:`METRIC_PREFIXES`),
else it would be taken for a hyperparameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

IDENTITY = "identity"
HYPERPARAMETER = "hyperparameter"
METRIC = "metric"
BOOKKEEPING = "bookkeeping"


@dataclass(frozen=True)
class Column:
    """One known column: its kind, and how terminal tables show it."""

    name: str
    kind: str
    header: str = ""  # its header in results tables; "" keeps it out of them
    spec: str = "s"  # format spec of a cell ("s": as text)
    shared: bool = False  # moves to the table's caption when every row has the same value


#: The columns gbench itself writes, in results.csv's order (any others follow alphabetically).
COLUMNS: tuple[Column, ...] = (
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
    Column("fid", METRIC, "FID", ".2f"),
    Column("fid_extractor", METRIC, "extractor", shared=True),
    Column("fid_samples", METRIC, "FID samples", ",.0f", shared=True),  # FID depends on it: every FID names its count
    Column("kid_mean", METRIC, "KID", ".4f"),
    Column("precision", METRIC, "prec", ".3f"),
    Column("recall", METRIC, "recall", ".3f"),
    Column("density", METRIC, "density", ".3f"),
    Column("coverage", METRIC, "cover", ".3f"),
    Column("classes_covered", METRIC, "classes"),
    Column("train_seconds", METRIC, "train s", ".1f"),
    Column("eval_seconds", METRIC, "eval s", ".1f"),
    Column("images_per_second", METRIC, "img/s", ",.0f"),
    Column("device", BOOKKEEPING),
    Column("population", BOOKKEEPING),  # how many members trained together (1: a run trained alone)
    Column("train_precision", BOOKKEEPING),  # --precision: "fp32" or "bf16" (autocast); in SETUP: it tells settings apart
    Column("ema", BOOKKEEPING),  # --ema: the decay whose weight average was evaluated and saved; empty: the last weights. In SETUP
    Column("diverged_step", BOOKKEEPING),
    Column("collapsed_step", BOOKKEEPING),
    # not among the leading columns of results.csv (they sort alphabetically after them)
    Column("kid_std", METRIC),
    Column("fid_infinity", METRIC, "FID∞", ".2f"),
    Column("inception_score", METRIC),
    Column("class_kl", METRIC),
    Column("class_counts", METRIC),  # text: "15 7 6 ...", one count per class
    Column("created", BOOKKEEPING),
    Column("suite", BOOKKEEPING),  # gbench sweep: the suite and its variant
    Column("variant", BOOKKEEPING),
    Column("seeds_auto", BOOKKEEPING),  # gbench sweep --seeds auto: its design, e.g. "auto:10" (gbench.analysis.adaptive)
    Column("study", BOOKKEEPING),  # gbench tune: the Optuna study and trial number
    Column("trial", BOOKKEEPING),
)
#: results.csv starts with these columns, in this order.
LEADING = tuple(column.name for column in COLUMNS[: [c.name for c in COLUMNS].index("collapsed_step") + 1])
#: Columns that name what a run set up besides its hyperparameters: identity without run_id and seed.
SETUP = ("architecture", "loss", "schedule", "dataset", "train_precision", "ema")
#: Columns whose values are text even when they look like numbers.
TEXT_METRICS = ("fid_extractor", "class_counts")
#: Metrics gbench does not list yet but that are measurements by name (fid_infinity, density, ...).
METRIC_PREFIXES = ("fid", "kid", "precision", "recall", "class", "inception", "eval_", "train_", "density", "coverage")

_BY_NAME = {column.name: column for column in COLUMNS}


def kind_of(name: str) -> str:
    """The kind of a column: identity, hyperparameter, metric or bookkeeping."""
    column = _BY_NAME.get(name)
    if column is not None:
        return column.kind
    return METRIC if name.startswith(METRIC_PREFIXES) else HYPERPARAMETER


def column(name: str) -> Column:
    """The known column; for one the schema does not know, a hyperparameter headed by its own name
    (as ``--set`` takes it), or an unshown metric."""
    known = _BY_NAME.get(name)
    if known is not None:
        return known
    kind = kind_of(name)
    return Column(name, kind, name if kind == HYPERPARAMETER else "", "s", kind == HYPERPARAMETER)


def is_hyperparameter(name: str) -> bool:
    return kind_of(name) == HYPERPARAMETER


def is_setting_column(name: str) -> bool:
    """Whether a column tells settings apart: the set-up (architecture, loss, ...) and every hyperparameter."""
    return name in SETUP or is_hyperparameter(name)


def hyperparameter_columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The hyperparameters among the rows' columns, in order of first appearance."""
    seen: dict[str, None] = {}
    for row in rows:
        for name in row:
            if name not in seen and is_hyperparameter(name):
                seen[name] = None
    return list(seen)


def numeric_metrics() -> list[str]:
    """The known metrics that are numbers (averaged over seeds in study tables)."""
    return [c.name for c in COLUMNS if c.kind == METRIC and c.name not in TEXT_METRICS]


def csv_columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The columns of results.csv for these rows: :data:`LEADING` first, the rest alphabetically."""
    seen = {name for row in rows for name in row}
    leading = [name for name in LEADING if name in seen]
    return leading + sorted(seen - set(leading))


def json_safe(value: Any) -> Any:
    """JSON has no NaN or inf: they become None (null), in nested dicts and lists too."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def results_row(
    identity: Mapping[str, Any],
    params: Mapping[str, Any],
    metrics: Mapping[str, Any] | None = None,
    bookkeeping: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One results row from its four parts, checked against the schema, NaN and inf as None.

    :param identity: exactly the identity columns (run_id, architecture, loss, schedule, dataset, seed).
    :param params: the run's resolved hyperparameters (``RunConfig.params``).
    :param metrics: measured values; each must be a metric column.
    :param bookkeeping: status, steps, created, a sweep's suite and variant, ...

    A hyperparameter named like a core column, or a metric or bookkeeping
    column the schema does not know, is a bug in gbench or a plugin, so it
    raises ValueError instead of writing a row that tables would misread.
    """
    wanted = [c.name for c in COLUMNS if c.kind == IDENTITY]
    if sorted(identity) != sorted(wanted):
        raise ValueError(f"results row: identity columns {sorted(identity)} should be {sorted(wanted)}")
    for name in params:
        if not is_hyperparameter(name):
            raise ValueError(f"results row: hyperparameter {name!r} has the name of a {kind_of(name)} column; rename the hyperparameter")
    for part, kind in ((metrics or {}, METRIC), (bookkeeping or {}, BOOKKEEPING)):
        for name in part:
            if kind_of(name) != kind:
                raise ValueError(f"results row: {name!r} is not a {kind} column of gbench.results.schema; add it to schema.COLUMNS")
    ordered = {name: identity[name] for name in wanted}
    return json_safe({**ordered, **(bookkeeping or {}), **params, **(metrics or {})})
