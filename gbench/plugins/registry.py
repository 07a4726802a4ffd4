"""Name-to-constructor tables for architectures, losses, schedules, datasets and metrics.

Plugins fill a :class:`Registry` through the hooks in :mod:`gbench.plugins.hookspecs`.
A duplicate name fails naming both owners; an unknown name fails listing what
exists and suggesting the closest match. A hyperparameter or metric column
named like another column of the results row fails at registration, naming both.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from gbench.errors import GbenchError
from gbench.names import unknown, with_article
from gbench.plugins import columns
from gbench.plugins.columns import NEEDS, Metric, MetricColumn, MetricInputs

__all__ = [
    "Architecture",
    "Dataset",
    "Hyperparameter",
    "KINDS",
    "Loss",
    "LossTerms",
    "Metric",
    "MetricColumn",
    "MetricInputs",
    "Nets",
    "Registry",
    "Schedule",
]  # the public API (docs/api.md)

Value = int | float | bool | str


# ---------------------------------------------------------------------------
# Hyperparameters
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Hyperparameter:
    """A typed knob with a default and the range it may take (and be tuned in).

    The type is the default's type. Numbers take ``low``/``high`` (inclusive
    bounds of a valid value; ``log`` for a log-uniform search); strings and
    bools take ``choices``. ``search`` narrows the range ``gbench tune``
    searches by default when the valid range is wider (a learning rate may be
    anything positive, but is searched in 1e-5..1e-2). ``tunable=False`` keeps
    it out of the default search space.
    """

    name: str
    default: Value
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Value, ...] | None = None
    tunable: bool = True
    help: str = ""
    search: tuple[float, float] | None = None

    @property
    def type(self) -> type:
        return type(self.default)

    def search_range(self) -> tuple[float, float] | None:
        """The (low, high) ``gbench tune`` searches, or None for choices / unbounded ranges."""
        low, high = self.search if self.search is not None else (self.low, self.high)
        return None if low is None or high is None else (low, high)

    def problem(self) -> str | None:
        """Why this declaration is unusable, or None when it is fine."""
        if self.default is None:
            return f"hyperparameter {self.name!r} has no default"
        if not isinstance(self.default, (int, float, bool, str)):
            return f"hyperparameter {self.name!r} has a default of unsupported type {type(self.default).__name__}"
        if self._integral_float_with_int_bounds():
            return (
                f"hyperparameter {self.name!r} has the float default {self.default!r} but int bounds {self.describe_range()}; "
                f"write the default as {int(self.default)} for an int hyperparameter, or the bounds as floats for a float one"
            )
        try:
            self.check(self.default)
        except GbenchError as error:
            return f"default of hyperparameter {self.name!r} is invalid: {error}"
        if self.log and self.low is not None and self.low <= 0:
            return f"hyperparameter {self.name!r} is log-scaled but its low end {self.low} is not positive"
        if self.search is not None:
            low, high = self.search
            if (
                not low < high
                or (self.low is not None and low < self.low)
                or (self.high is not None and high > self.high)
            ):
                return f"hyperparameter {self.name!r} has a search range {self.search} that is empty or outside its range {self.describe_range()}"
        return None

    def _integral_float_with_int_bounds(self) -> bool:
        """``default=2.0, low=1, high=8``: an int knob whose default was written as a float (its type would be float)."""
        bounds = (self.low, self.high)
        return (
            isinstance(self.default, float)
            and self.default.is_integer()
            and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
        )

    def describe_range(self) -> str:
        if self.choices is not None:
            return "{" + ", ".join(map(str, self.choices)) + "}"
        if self.low is None and self.high is None:
            return "any"
        return f"{self.low if self.low is not None else '-inf'}..{self.high if self.high is not None else 'inf'}" + (
            " (log)" if self.log else ""
        )

    def parse(self, text: str) -> Value:
        """Turn command-line text into a checked value of this type."""
        kind = self.type
        if kind not in (bool, str) and text.strip().lower() in ("true", "false"):
            # "--set depth=True" and "depth = true" in a TOML file are the same mistake: give the same message
            return self.check(text.strip().lower() == "true")
        try:
            if kind is bool:
                lowered = text.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value: Value = lowered in ("true", "1", "yes")
            elif kind is int:
                number = float(text)
                if not number.is_integer():
                    raise ValueError
                value = int(number)
            elif kind is float:
                value = float(text)
            else:
                value = text
        except ValueError:
            raise GbenchError(
                f"{self.name}={text!r} is not a valid {kind.__name__}; give {with_article(kind.__name__)} "
                f"in {self.describe_range()}, for example {self.name}={self.default}"
            ) from None
        return self.check(value)

    def coerce(self, value: Any) -> Value:
        """A checked value from either source: ``--set`` text is parsed, typed values are checked."""
        return self.parse(value) if isinstance(value, str) and self.type is not str else self.check(value)

    def check(self, value: Any) -> Value:
        """Check a value already typed (from TOML, JSON or Optuna)."""
        kind = self.type
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            where = "" if self.describe_range() == "any" else f" in {self.describe_range()}"
            raise GbenchError(
                f"{self.name}={value!r} has type {type(value).__name__}, expected {with_article(kind.__name__)}{where}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise GbenchError(f"{self.name}={value!r} is not a finite number")
        if self.choices is not None and value not in self.choices:
            raise GbenchError(f"{self.name}={value!r} is not one of {self.describe_range()}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise GbenchError(f"{self.name}={value!r} is outside its range {self.describe_range()}")
        return cast(Value, value)


# ---------------------------------------------------------------------------
# What plugins register
# ---------------------------------------------------------------------------


@dataclass
class Nets:
    """What an architecture builds.

    ``generator(z)`` maps ``(B, latent_dim)`` noise to ``(B, *image_shape)``
    images in [-1, 1]. ``discriminator(x)`` maps images to ``(B,)`` or
    ``(B, 1)`` logits. A model that is not a GAN sets ``discriminator=None``
    and gives ``objective(real) -> (loss, metrics)``, which the trainer
    minimises with the generator's optimizer (the generator module then holds
    all trainable parameters, an encoder included).
    """

    generator: Any
    discriminator: Any | None
    latent_dim: int
    objective: Callable[[Any], tuple[Any, dict[str, Any]]] | None = None


@dataclass(frozen=True)
class Architecture:
    """A generator/discriminator pair. ``build(params, image_shape) -> Nets``."""

    name: str
    build: Callable[[dict[str, Value], tuple[int, int, int]], Nets]
    hyperparameters: tuple[Hyperparameter, ...] = ()
    description: str = ""


@dataclass
class LossTerms:
    """One side's loss and the mean discriminator scores it saw (detached).

    ``real_score``/``fake_score`` are D(x) and D(G(z)): probabilities for the
    BCE losses, mean critic outputs otherwise (the Loss's ``score`` says which).
    """

    loss: Any
    real_score: Any | None = None
    fake_score: Any | None = None


@dataclass(frozen=True)
class Loss:
    """An adversarial loss. ``build(params)`` returns an object with
    ``discriminator_loss(D, real, fake) -> LossTerms`` and
    ``generator_loss(D, fake) -> LossTerms``."""

    name: str
    build: Callable[[dict[str, Value]], Any]
    hyperparameters: tuple[Hyperparameter, ...] = ()
    score: Literal["probability", "critic"] = "probability"
    description: str = ""


@dataclass(frozen=True)
class Schedule:
    """How the discriminator and generator steps interleave. ``build(params)``
    returns an object with ``learning_rates(lr) -> (d_lr, g_lr)`` and
    ``discriminator_steps(step, last) -> int``."""

    name: str
    build: Callable[[dict[str, Value]], Any]
    hyperparameters: tuple[Hyperparameter, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Dataset:
    """An image dataset. ``load(split, roots) -> (uint8 images, int64 labels)``."""

    name: str
    load: Callable[[str, list], tuple[Any, Any]]
    image_shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10
    class_names: tuple[str, ...] = ()
    description: str = ""


KINDS = ("architecture", "loss", "schedule", "dataset", "metric")
_TYPES = {"architecture": Architecture, "loss": Loss, "schedule": Schedule, "dataset": Dataset, "metric": Metric}


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------


@dataclass
class Registry:
    """One table per kind; each entry remembers the plugin that registered it."""

    tables: dict[str, dict[str, Any]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    #: the plugin manager's hook relay, for the lifecycle hooks runner.execute fires (see gbench.plugins.observers)
    hook: Any = field(default=None, repr=False, compare=False)

    def register(self, kind: str, spec: Any, owner: str) -> None:
        expected = _TYPES[kind]
        if not isinstance(spec, expected):
            raise GbenchError(
                f"plugin {owner!r} registered {with_article(type(spec).__name__)} as {with_article(kind)}; expected gbench.plugins.registry.{expected.__name__}"
            )
        name = getattr(spec, "name", None)
        if not isinstance(name, str) or not name or name != name.strip() or " " in name:
            raise GbenchError(
                f"plugin {owner!r} registered {with_article(kind)} with an invalid name {name!r}; use a non-empty name without spaces"
            )
        if name in self.tables[kind]:
            raise GbenchError(
                f"{kind} name {name!r} is registered twice: by plugin {self.owners[(kind, name)]!r} and by plugin {owner!r}; rename one of them"
            )
        for hp in getattr(spec, "hyperparameters", ()):
            problem = hp.problem() or self._column_clash(hp.name, f"hyperparameter {hp.name!r}", "the hyperparameter")
            if problem:
                raise GbenchError(f"plugin {owner!r}, {kind} {name!r}: {problem}")
        if isinstance(spec, Metric):
            problem = self._metric_problem(spec)
            if problem:
                raise GbenchError(f"plugin {owner!r}, metric {name!r}: {problem}")
        self.tables[kind][name] = spec
        self.owners[(kind, name)] = owner

    def _column_clash(self, name: str, what: str, fix: str, metric: bool = False) -> str | None:
        """Why a new results column ``name`` cannot be, or None: gbench's own columns and every metric's are taken,
        and for a ``metric`` column also every hyperparameter's (specs may share a hyperparameter: ``latent_dim``)."""
        if name in columns.CORE:
            return f"{what} has the name of gbench's {columns.CORE[name].kind} column {name!r}; rename {fix}"
        for other in self.tables["metric"].values():
            if name in (column.name for column in other.columns):
                return f"{what} has the name of column {name!r} of metric {other.name!r} (plugin {self.owners[('metric', other.name)]!r}); rename {fix}"
        for kind in ("architecture", "loss", "schedule") if metric else ():
            for spec in self.tables[kind].values():
                if name in (hp.name for hp in spec.hyperparameters):
                    return f"{what} has the name of a hyperparameter of {kind} {spec.name!r} (plugin {self.owners[(kind, spec.name)]!r}); rename {fix}"
        return None

    def _metric_problem(self, metric: Metric) -> str | None:
        if not metric.columns or not all(isinstance(column, MetricColumn) for column in metric.columns):
            return "columns must be a non-empty tuple of gbench.plugins.registry.MetricColumn"
        if not callable(metric.compute):
            return "compute must be a function of MetricInputs returning {column: value}"
        unknown_needs = [need for need in metric.needs if need not in NEEDS]
        if unknown_needs:
            return f"needs {unknown_needs[0]!r} is unknown; give some of {', '.join(NEEDS)}"
        names = [column.name for column in metric.columns]
        for column in metric.columns:
            if not column.name.isidentifier():
                return f"column name {column.name!r} is invalid; use letters, digits and underscores"
            if column.direction not in columns.DIRECTIONS:
                return f"column {column.name!r} has direction {column.direction!r}; give 'lower', 'higher' or ''"
            if names.count(column.name) > 1:
                return f"column {column.name!r} is declared twice"
            clash = self._column_clash(column.name, f"column {column.name!r}", "the metric's column", metric=True)
            if clash:
                return clash
        return None

    def metrics(self) -> list[Metric]:
        """The registered metrics in registration order (gbench's built-in ones first)."""
        return list(self.tables["metric"].values())

    def metric_columns(self) -> tuple[columns.Column, ...]:
        """Every registered metric's columns as results columns, in registration order."""
        return tuple(column.as_column() for metric in self.metrics() for column in metric.columns)

    def unregister_owner(self, owner: str) -> None:
        """Drop everything a plugin registered (used when it turns out broken)."""
        for (kind, name), who in list(self.owners.items()):
            if who == owner:
                del self.owners[(kind, name)]
                del self.tables[kind][name]

    def get(self, kind: str, name: str) -> Any:
        table = self.tables[kind]
        if name in table:
            return table[name]
        raise unknown(kind, name, table)

    def names(self, kind: str, pattern: str = "*") -> list[str]:
        return sorted(n for n in self.tables[kind] if fnmatch.fnmatch(n, pattern))

    def owned_by(self, kind: str, owner: str) -> list[str]:
        return sorted(name for (k, name), who in self.owners.items() if k == kind and who == owner)

    def architecture(self, name: str) -> Architecture:
        return self.get("architecture", name)

    def loss(self, name: str) -> Loss:
        return self.get("loss", name)

    def schedule(self, name: str) -> Schedule:
        return self.get("schedule", name)

    def dataset(self, name: str) -> Dataset:
        if name in self.tables["dataset"]:
            return self.tables["dataset"][name]
        raise unknown("dataset", name, self.tables["dataset"], fix=f"; {ADD_A_DATASET}")


#: How to get a dataset that is not registered: the end of the unknown-dataset message.
ADD_A_DATASET = (
    "to use your own images give --dataset folder:PATH (class subfolders become labels) or --dataset npz:PATH (uint8 x, optional y), "
    "or register one in a plugin's gbench_register_datasets hook and load it with --plugin FILE.py (docs/plugins.md)"
)
