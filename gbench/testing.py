"""Contract checks for plugin authors: one call per kind of plugin.

Each runs the checks ``gbench run`` runs before training (:mod:`gbench.training.validate`)
and then, for architectures, losses and schedules, a short smoke training with
:func:`gbench.training.trainer.train` on a tiny synthetic batch (random images in
[-1, 1] of the dataset's shape: no data files, CPU, a second or two)::

    from gbench.testing import check_architecture

    def test_sn_mlp():
        check_architecture("sn-mlp")

A name is looked up among the installed plugins, plus ``plugin`` (a ``.py``
file or a module path, for a plugin that is not installed yet)::

    check_architecture("res-mlp", plugin="res_mlp.py")

``registry`` replaces that lookup with a registry you built yourself
(``load_plugins(extra=[...]).registry``, or a :class:`Registry` you filled by
hand), e.g. to load the plugins once for many checks. A spec
(``Architecture(...)``, ``Loss(...)``, ...) is checked without installing it.
A failure raises :class:`gbench.errors.GbenchError` naming the plugin, its
hook and the problem; gbench's own plugins are tested with these same calls.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from gbench.config import RunConfig, resolve_params
from gbench.data import load_split
from gbench.errors import GbenchError
from gbench.names import with_article
from gbench.options import default
from gbench.plugins.registry import Architecture, Dataset, Loss, Registry, Schedule
from gbench.torchtools import eval_mode
from gbench.training.conditioning import Conditioning
from gbench.training.nets import build, check_image_range
from gbench.training.trainer import TrainResult, TrainSettings, train
from gbench.training.validate import validate, who

__all__ = ["check_architecture", "check_dataset", "check_loss", "check_schedule"]

_TYPES = {"architecture": Architecture, "loss": Loss, "schedule": Schedule, "dataset": Dataset}


def check_architecture(
    architecture: str | Architecture,
    *,
    dataset: str = default("dataset"),
    loss: str = default("loss"),
    schedule: str = default("schedule"),
    params: dict[str, Any] | None = None,
    steps: int = 3,
    batch_size: int = 8,
    registry: Registry | None = None,
    plugin: str | None = None,
) -> TrainResult:
    """Validate an architecture and train it ``steps`` steps on random images of ``dataset``'s shape.

    Checks: it builds with its defaults (and ``params``); the generator maps
    ``(B, latent_dim)`` noise to ``(B, *image_shape)`` images in [-1, 1]; the
    discriminator gives one logit per image (a model with ``discriminator=None``
    gives a scalar ``objective``); training stays finite and moves the
    generator's weights. Returns the :class:`gbench.training.trainer.TrainResult`.
    """
    registry, name = _registry_with("architecture", architecture, registry, plugin)
    return _smoke(registry, name, loss, schedule, dataset, params, steps, batch_size, subject=("architecture", name))


def check_loss(
    loss: str | Loss,
    *,
    architecture: str | None = None,
    schedule: str = default("schedule"),
    dataset: str = default("dataset"),
    params: dict[str, Any] | None = None,
    steps: int = 3,
    batch_size: int = 8,
    registry: Registry | None = None,
    plugin: str | None = None,
) -> TrainResult:
    """Validate a loss (both sides give :class:`LossTerms` with a finite scalar loss that
    reaches the nets' weights) and train ``architecture`` with it for ``steps`` steps.

    ``architecture`` defaults to ``mlp``; for a loss that reads class labels (``needs_labels``, as ACGAN's) to the
    built-in conditional MLP with a projection discriminator, whose class logits such a loss reads."""
    registry, name = _registry_with("loss", loss, registry, plugin)
    if architecture is None:
        architecture = "mlp"
        if registry.loss(name).needs_labels:
            architecture, params = "cmlp", {"discriminator": "projection", **(params or {})}
    return _smoke(registry, architecture, name, schedule, dataset, params, steps, batch_size, subject=("loss", name))


def check_schedule(
    schedule: str | Schedule,
    *,
    architecture: str = "mlp",
    loss: str = default("loss"),
    dataset: str = default("dataset"),
    params: dict[str, Any] | None = None,
    steps: int = 3,
    batch_size: int = 8,
    registry: Registry | None = None,
    plugin: str | None = None,
) -> TrainResult:
    """Validate a schedule (two positive learning rates, an int of D steps) and train
    ``architecture`` under it for ``steps`` steps."""
    registry, name = _registry_with("schedule", schedule, registry, plugin)
    return _smoke(registry, architecture, loss, name, dataset, params, steps, batch_size, subject=("schedule", name))


def check_dataset(
    dataset: str | Dataset,
    *,
    split: str = "test",
    data_root: str | None = None,
    limit: int | None = 100,
    registry: Registry | None = None,
    plugin: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load ``limit`` images of a split (from ``data_root``, else ``$GBENCH_DATA`` and the cache)
    and check them: uint8 ``(N, *image_shape)`` images, as many int64 labels in
    ``0..num_classes-1``. Returns ``(images, labels)``."""
    registry, name = _registry_with("dataset", dataset, registry, plugin)
    validate(registry, [("dataset", name)], name)
    prefix, spec = who(registry, "dataset", name), registry.dataset(name)
    try:
        images, labels = load_split(spec, split, data_root, limit)
    except GbenchError as error:
        raise GbenchError(f"{prefix}: {error}") from None
    except Exception as error:
        raise GbenchError(f"{prefix}: load({split!r}, roots) failed: {type(error).__name__}: {error}") from None
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.shape != (len(images),):
        raise GbenchError(
            f"{prefix}: labels must be an int64 tensor of shape ({len(images)},), one per image; got {_shape(labels)}"
        )
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= spec.num_classes):
        raise GbenchError(
            f"{prefix}: labels span {int(labels.min())}..{int(labels.max())}, outside "
            f"0..{spec.num_classes - 1} (num_classes={spec.num_classes})"
        )
    return images, labels


# ---------------------------------------------------------------------------


def _registry_with(kind: str, thing: Any, registry: Registry | None, plugin: str | None) -> tuple[Registry, str]:
    """The registry to check in, and the name to check: a spec replaces any same-named entry in a copy."""
    if registry is not None and plugin is not None:
        raise GbenchError(
            f"check_{kind}: give registry= or plugin=, not both (plugin= loads the installed plugins plus that one)"
        )
    if registry is None:
        from gbench.plugins.loading import load_plugins

        registry = load_plugins(extra=[plugin] if plugin else []).registry
    if isinstance(thing, str):
        try:
            registry.get(kind, thing)
        except GbenchError as error:
            if plugin:
                raise GbenchError(f"{error}; plugin {plugin!r} registers no {kind} {thing!r}") from None
            raise GbenchError(
                f"{error}; to test a plugin that is not installed, pass its file or module: "
                f'check_{kind}({thing!r}, plugin="path/to/file.py")'
            ) from None
        return registry, thing
    if not isinstance(thing, _TYPES[kind]):
        raise GbenchError(
            f"check_{kind} takes {with_article(kind)} name or a "
            f"gbench.plugins.registry.{_TYPES[kind].__name__}, not {type(thing).__name__}"
        )
    spec: Any = thing  # one of the four spec types, each with a name
    copy = Registry(tables={k: dict(table) for k, table in registry.tables.items()}, owners=dict(registry.owners))
    copy.tables[kind].pop(spec.name, None)
    copy.owners.pop((kind, spec.name), None)
    function = getattr(spec, "load" if kind == "dataset" else "build", None)
    copy.register(kind, spec, owner=getattr(function, "__module__", None) or "<spec>")
    return copy, spec.name


def _smoke(registry, architecture, loss, schedule, dataset, params, steps, batch_size, subject) -> TrainResult:
    names = [("architecture", architecture), ("loss", loss), ("schedule", schedule)]
    overrides = {"batch_size": batch_size, **(params or {})}
    validate(registry, names, dataset, overrides)
    prefix = who(registry, *subject)
    config = RunConfig(
        architecture=architecture, loss=loss, schedule=schedule, dataset=dataset, steps=steps, device="cpu"
    )
    config = dataclasses.replace(config, params=resolve_params(registry, config, overrides))
    image_shape = tuple(registry.dataset(dataset).image_shape)
    batch_size = int(config.params["batch_size"])
    data = torch.rand(4 * batch_size, *image_shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    nets, loss_object, schedule_object = build(registry, config, torch.device("cpu"))
    before = [p.detach().clone() for p in nets.generator.parameters()]
    settings = TrainSettings.from_params(config.params, steps, log_every=1)
    # a conditional architecture trains on labels too: every class in turn, as many of each
    labels = torch.arange(len(data)) % max(nets.num_classes, 1)
    needs_labels = registry.loss(loss).needs_labels
    conditioning = Conditioning(labels, nets.num_classes, needs_labels) if nets.num_classes else None
    try:
        result = train(nets, loss_object, schedule_object, data, settings, conditioning=conditioning)
    except GbenchError:
        raise
    except Exception as error:
        raise GbenchError(
            f"{prefix}: training {architecture}/{loss}/{schedule} on random "
            f"images failed: {type(error).__name__}: {error}"
        ) from None
    if result.status != "ok":
        row = result.history[-1] if result.history else {}
        raise GbenchError(
            f"{prefix}: training diverged at step {result.diverged_step} "
            f"(d_loss={row.get('d_loss')}, g_loss={row.get('g_loss')}); losses must stay finite"
        )
    if result.steps != steps:
        raise GbenchError(f"{prefix}: training stopped after {result.steps} of {steps} steps")
    if not any(not torch.equal(old, new.detach()) for old, new in zip(before, nets.generator.parameters())):
        raise GbenchError(
            f"{prefix}: {steps} training steps left the generator's weights unchanged; its loss does not reach them"
        )
    with torch.no_grad(), eval_mode(nets.generator):
        images = nets.generator(torch.randn(4, nets.latent_dim), *((labels[:4],) if conditioning else ()))
        check_image_range(images, prefix, f"after {steps} training steps")
    return result


def _shape(value: Any) -> str:
    return (
        f"{value.dtype} tensor of shape {tuple(value.shape)}"
        if isinstance(value, torch.Tensor)
        else type(value).__name__
    )
