"""One schema for a results row (``results.csv``, ``summary.json``, tune's pruned trials).

Every column of a row is of one of four kinds:

- **identity**: what run it is (``run_id``) and what it ran (``architecture``,
  ``loss``, ``schedule``, ``dataset``, ``seed``);
- **hyperparameter**: a value the run was configured with. These come from
  what the plugins (and gbench's training knobs: ``batch_size``, ``lr``,
  ``beta1``, ``beta2``) declare, so the schema cannot list them: in a stored
  row, a hyperparameter is any column that is neither identity, metric nor
  bookkeeping;
- **metric**: what training and evaluation measured (``d_real``, ``fid``, ...);
- **bookkeeping**: how the run went and where it belongs (``status``,
  ``steps``, ``device``, ``suite``, ...).

gbench's own columns are declared in :mod:`gbench.plugins.columns`; the
evaluation metrics' columns are declared by the registered metrics
(``gbench_register_metrics``: gbench's built-in FID, KID, ... and any
plugin's), so a new metric's columns reach results.csv, ``gbench show``,
``gbench export`` and the report without an edit here. A hyperparameter is
any other column: a name the plugins declare, which registration keeps apart
from every column above (no name patterns decide a kind). A column of a
stored row that nothing declares now (a metric of a plugin not loaded) reads
as a hyperparameter.

:func:`results_row` builds a row from the four parts, so the runner and tune
write the same columns; display, stats, the store and the report read the
kinds from here instead of keeping their own lists.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from gbench.plugins import columns as declarations
from gbench.plugins.columns import BOOKKEEPING, HYPERPARAMETER, IDENTITY, METRIC, Column

# re-exported: the kinds as the readers of rows name them
__all__ = ["BOOKKEEPING", "HYPERPARAMETER", "IDENTITY", "METRIC", "Column"]

#: Columns that name what a run set up besides its hyperparameters: identity without run_id and seed.
SETUP = ("architecture", "loss", "schedule", "dataset", "train_precision", "ema")


def metric_columns() -> tuple[Column, ...]:
    """The registered metrics' columns: those of the plugins loaded last in this process, else those the
    installed plugins declared when last loaded, else theirs loaded now (``show`` and ``export`` load none)."""
    declared = declarations.declared() or declarations.remembered()
    if declared is None:
        from gbench.plugins.loading import load_plugins

        declared = load_plugins().registry.metric_columns()
    return declared


def known_columns() -> tuple[Column, ...]:
    """Every column the schema knows, in results.csv's order: gbench's own with the registered metrics' in between."""
    return (*declarations.BEFORE_METRICS, *metric_columns(), *declarations.AFTER_METRICS)


def leading() -> list[str]:
    """results.csv starts with these columns, in this order: up to
    ``collapsed_step``, the metrics with a table header among them."""
    after = [column.name for column in declarations.AFTER_METRICS]
    shown = [column.name for column in metric_columns() if column.header]
    return (
        [column.name for column in declarations.BEFORE_METRICS]
        + shown
        + after[: after.index(declarations.LAST_LEADING) + 1]
    )


_index: tuple[tuple[Column, ...], dict[str, Column]] = ((), {})


def _by_name() -> dict[str, Column]:
    """Every known column by name, rebuilt only when another registry declared its metrics (tables ask per cell)."""
    global _index
    metrics = metric_columns()
    if _index[0] is not metrics:
        _index = (
            metrics,
            {column.name: column for column in (*declarations.BEFORE_METRICS, *metrics, *declarations.AFTER_METRICS)},
        )
    return _index[1]


def kind_of(name: str) -> str:
    """The kind of a column: identity, hyperparameter, metric or bookkeeping."""
    column = _by_name().get(name)
    return column.kind if column is not None else HYPERPARAMETER


def column(name: str) -> Column:
    """The known column; for one the schema does not know, a
    hyperparameter headed by its own name (as ``--set`` takes it)."""
    known = _by_name().get(name)
    return known if known is not None else Column(name, HYPERPARAMETER, name, "s", True)


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
    return [c.name for c in known_columns() if c.kind == METRIC and not c.text]


def scored_metrics() -> list[Column]:
    """The registered metrics' numeric columns with a better direction: the ones a report compares settings by."""
    return [c for c in metric_columns() if c.direction and not c.text]


def csv_columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The columns of results.csv for these rows: :func:`leading` first, the rest alphabetically."""
    seen = {name for row in rows for name in row}
    leading_present = [name for name in leading() if name in seen]
    return leading_present + sorted(seen - set(leading_present))


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
    wanted = [c.name for c in declarations.BEFORE_METRICS if c.kind == IDENTITY]
    if sorted(identity) != sorted(wanted):
        raise ValueError(f"results row: identity columns {sorted(identity)} should be {sorted(wanted)}")
    for name in params:
        if not is_hyperparameter(name):
            raise ValueError(
                f"results row: hyperparameter {name!r} has the name of a "
                f"{kind_of(name)} column; rename the hyperparameter"
            )
    for part, kind in ((metrics or {}, METRIC), (bookkeeping or {}, BOOKKEEPING)):
        for name in part:
            if kind_of(name) != kind:
                raise ValueError(
                    f"results row: {name!r} is not a {kind} column of gbench.results.schema; "
                    "declare it (a metric's columns, or gbench.plugins.columns)"
                )
    ordered = {name: identity[name] for name in wanted}
    return json_safe({**ordered, **(bookkeeping or {}), **params, **(metrics or {})})
