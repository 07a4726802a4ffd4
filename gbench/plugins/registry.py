"""Name-to-constructor tables for architectures, losses, schedules, datasets and metrics.

Plugins fill a :class:`Registry` through the hooks in :mod:`gbench.plugins.hookspecs`.
A duplicate name fails naming both owners; an unknown name fails listing what
exists and suggesting the closest match. A hyperparameter or metric column
named like another column of the results row fails at registration, naming both.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from gbench.errors import GbenchError
from gbench.names import unknown, with_article
from gbench.plugins import columns
from gbench.plugins.columns import NEEDS, Metric, MetricColumn, MetricInputs
from gbench.plugins.hyperparameter import Hyperparameter, Value  # Hyperparameter's public path is this module

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

    A conditional architecture's nets take int64 class labels ``y`` of shape ``(B,)``
    too: ``generator(z, y)`` and ``discriminator(x, y)``, which may return ``(B, 1 + num_classes)``:
    column 0 the score, the rest an auxiliary classifier's class logits (what ACGAN's loss reads).
    ``num_classes`` is gbench's to set (0: unconditional; the data's class count when the
    :class:`Architecture` is ``conditional``), not the plugin's.
    """

    generator: Any
    discriminator: Any | None
    latent_dim: int
    objective: Callable[[Any], tuple[Any, dict[str, Any]]] | None = None
    num_classes: int = 0


@dataclass(frozen=True)
class Architecture:
    """A generator/discriminator pair. ``build(params, image_shape) -> Nets``.

    ``conditional=True``: the nets take class labels (see :class:`Nets`), and ``build`` gets the
    data's class count as a keyword, ``build(params, image_shape, num_classes=N)``; an
    unconditional build is called as ever, without it.
    """

    name: str
    build: Callable[..., Nets]
    hyperparameters: tuple[Hyperparameter, ...] = ()
    description: str = ""
    conditional: bool = False


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
    ``generator_loss(D, fake) -> LossTerms``.

    With a conditional architecture ``D`` is the discriminator with each batch's labels bound
    (``D(real)`` judges real images with their labels, ``D(fake)`` fake ones with theirs,
    any other batch with the real labels), so a loss written for unconditional nets works
    unchanged. ``needs_labels=True`` (ACGAN): the loss works only with a conditional
    architecture and also gets the labels as keywords, ``discriminator_loss(D, real, fake,
    real_labels=, fake_labels=)`` and ``generator_loss(D, fake, fake_labels=)``, and
    ``D.judge(x) -> (score, class_logits)`` reads the discriminator's classifier head.
    """

    name: str
    build: Callable[[dict[str, Value]], Any]
    hyperparameters: tuple[Hyperparameter, ...] = ()
    score: Literal["probability", "critic"] = "probability"
    description: str = ""
    needs_labels: bool = False


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
                f"plugin {owner!r} registered {with_article(type(spec).__name__)} as {with_article(kind)}; "
                f"expected gbench.plugins.registry.{expected.__name__}"
            )
        name = getattr(spec, "name", None)
        if not isinstance(name, str) or not name or name != name.strip() or " " in name:
            raise GbenchError(
                f"plugin {owner!r} registered {with_article(kind)} with an invalid name {name!r}; "
                "use a non-empty name without spaces"
            )
        if name in self.tables[kind]:
            raise GbenchError(
                f"{kind} name {name!r} is registered twice: by plugin {self.owners[(kind, name)]!r} "
                f"and by plugin {owner!r}; rename one of them"
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
                owner = self.owners[("metric", other.name)]
                return (
                    f"{what} has the name of column {name!r} of metric {other.name!r} (plugin {owner!r}); rename {fix}"
                )
        for kind in ("architecture", "loss", "schedule") if metric else ():
            for spec in self.tables[kind].values():
                if name in (hp.name for hp in spec.hyperparameters):
                    owner = self.owners[(kind, spec.name)]
                    where = f"{kind} {spec.name!r} (plugin {owner!r})"
                    return f"{what} has the name of a hyperparameter of {where}; rename {fix}"
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
    "to use your own images give --dataset folder:PATH (class subfolders become labels) "
    "or --dataset npz:PATH (uint8 x, optional y), or register one in a plugin's gbench_register_datasets hook "
    "and load it with --plugin FILE.py (docs/plugins.md)"
)
