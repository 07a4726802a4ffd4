"""The hooks a gbench plugin implements. Specs only: no logic lives here.

A plugin is a plain module with ``@gbench.hookimpl`` functions named after
these specs. Each registration hook receives a ``register`` callback and
calls it once per thing it provides (as simonw/llm's ``register_models``
does), so one plugin may provide any number of architectures, losses,
schedules, datasets or metrics, and gbench knows which plugin owns each name. The
lifecycle hooks at the end let a plugin observe every run instead
(:mod:`gbench.plugins.observers` calls them).

The types passed to ``register`` live in :mod:`gbench.plugins.registry`; the guide
``docs/plugins.md`` documents each hook with an example, and a test keeps
the guide's signatures equal to the ones below.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import torch

    from gbench.plugins.registry import Architecture, Dataset, Loss, Metric, Schedule

hookspec = pluggy.HookspecMarker("gbench")

#: Version of the hook API described here. A change that breaks existing
#: plugins bumps the major number; new optional hooks bump the minor one.
HOOK_API_VERSION = "1.3"  # 1.3: conditional architectures, Loss.needs_labels


# ---------------------------------------------------------------------------
# Registration hooks: called once when the plugin manager builds the registry.
# ---------------------------------------------------------------------------


@hookspec
def gbench_register_architectures(register: Callable[[Architecture], None]) -> None:
    """Register model architectures: a generator and a discriminator factory.

    :param register: call ``register(Architecture(...))`` once per
        architecture. ``Architecture.build(params, image_shape)`` returns a
        :class:`gbench.plugins.registry.Nets`; its discriminator returns one logit
        per image (the loss owns the final activation). A model that is not
        a GAN (a VAE) returns ``Nets(discriminator=None, objective=...)``.
    """


@hookspec
def gbench_register_losses(register: Callable[[Loss], None]) -> None:
    """Register adversarial losses.

    :param register: call ``register(Loss(...))`` once per loss.
        ``Loss.build(params)`` returns an object with
        ``discriminator_loss(discriminator, real, fake) -> LossTerms`` and
        ``generator_loss(discriminator, fake) -> LossTerms``; it receives
        the discriminator itself so that it can take gradients through it
        (WGAN-GP's penalty).
    """


@hookspec
def gbench_register_schedules(register: Callable[[Schedule], None]) -> None:
    """Register discriminator step schedules.

    :param register: call ``register(Schedule(...))`` once per schedule.
        ``Schedule.build(params)`` returns an object with
        ``learning_rates(lr) -> (discriminator_lr, generator_lr)`` and
        ``discriminator_steps(step, last) -> int``, where ``last`` holds the
        previous step's losses as tensors (reading them syncs the device, so
        only schedules that react to the losses should).
    """


@hookspec
def gbench_register_datasets(register: Callable[[Dataset], None]) -> None:
    """Register image datasets.

    :param register: call ``register(Dataset(...))`` once per dataset.
        ``Dataset.load(split, roots)`` returns ``(images, labels)``: uint8
        images of shape ``(N, *image_shape)`` and int64 labels, read from the
        first of ``roots`` that holds the files; :func:`gbench.data.idx_dataset`
        builds one for datasets stored as IDX files.
    """


@hookspec
def gbench_register_metrics(register: Callable[[Metric], None]) -> None:
    """Register evaluation metrics: FID, KID and the other built-in ones come through this hook too.

    :param register: call ``register(Metric(...))`` once per metric.
        ``Metric.compute(inputs)`` receives a
        :class:`gbench.plugins.registry.MetricInputs` (the extractor's features of
        the generated and the real images, computed once per evaluation, and
        what ``Metric.needs`` asks for) and returns one value per declared
        ``MetricColumn``. Its columns appear in results.csv, ``gbench show``,
        ``gbench export`` and report tables; a column named like another column
        of the results row is refused here.
    """


# ---------------------------------------------------------------------------
# Lifecycle hooks: called by gbench.training.runner.execute while one run trains, so an
# observer plugin (a tracker, a dashboard) can stream the run anywhere. Every
# gbench run fires them, whether started by `run`, `sweep` or `tune`. They
# observe only: the return value is ignored, and an exception stops the run.
# ---------------------------------------------------------------------------


@hookspec
def gbench_run_start(run_id: str, config: dict[str, Any], run_dir: Path) -> None:
    """A run starts training (a resumed run starts again from its checkpoint).

    :param run_id: the run's id, the name of its folder.
    :param config: the run's configuration as stored in ``config.json``; its
        ``params`` hold every resolved hyperparameter.
    :param run_dir: the run's folder, where gbench writes its files.
    """


@hookspec
def gbench_log_row(run_id: str, row: dict[str, Any]) -> None:
    """A metrics row was recorded (every ``--log-every`` steps).

    :param row: ``step``, ``epoch``, ``images``, ``seconds``, ``d_loss``,
        ``g_loss``, ``d_real`` (D(x)), ``d_fake`` (D(G(z))), plus ``fid``
        and other curve columns on evaluation steps and any metric the
        architecture's objective returns.
    """


@hookspec
def gbench_evaluation(run_id: str, step: int, metrics: dict[str, Any], samples: torch.Tensor) -> None:
    """An evaluation finished, during training or the final one.

    :param step: the generator step it measured.
    :param metrics: the evaluation's row: ``fid`` with its ``fid_extractor``,
        class metrics, and on the final evaluation KID and precision/recall.
    :param samples: 64 images of the sample grid, float in [-1, 1], shape
        ``(64, C, H, W)``, drawn from fixed noise so that grids compare over
        steps; :func:`gbench.plugins.observers.grid_image` turns them into one image.
    """


@hookspec
def gbench_run_end(run_id: str, row: dict[str, Any], run_dir: Path) -> None:
    """A run finished and its results row is stored, or training stopped early.

    :param row: the results row (as in ``results.csv``), with ``status``; when
        an exception stopped training (tune pruned the trial, Ctrl-C, an
        error), only ``{"run_id": ..., "status": "stopped"}``, and the
        exception goes on after this hook.
    :param run_dir: the run's folder, now holding ``samples.png`` and
        ``generator.pt``.
    """
