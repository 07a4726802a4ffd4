"""The hooks a gbench plugin implements. Specs only: no logic lives here.

A plugin is a plain module with ``@gbench.hookimpl`` functions named after
these specs. Every hook receives a ``register`` callback and calls it once
per thing it provides (as simonw/llm's ``register_models`` does), so one
plugin may provide any number of architectures, losses, schedules or
datasets, and gbench knows which plugin owns each name.

The types passed to ``register`` live in :mod:`gbench.registry`; the guide
``docs/plugins.md`` documents each hook with an example, and a test keeps
the guide's signatures equal to the ones below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from gbench.registry import Architecture, Dataset, Loss, Schedule

hookspec = pluggy.HookspecMarker("gbench")

#: Version of the hook API described here. A change that breaks existing
#: plugins bumps the major number; new optional hooks bump the minor one.
HOOK_API_VERSION = "1.0"


# ---------------------------------------------------------------------------
# Registration hooks: called once when the plugin manager builds the registry.
# ---------------------------------------------------------------------------


@hookspec
def gbench_register_architectures(register: Callable[[Architecture], None]) -> None:
    """Register model architectures: a generator and a discriminator factory.

    :param register: call ``register(Architecture(...))`` once per
        architecture. ``Architecture.build(params, image_shape)`` returns a
        :class:`gbench.registry.Nets`; its discriminator returns one logit
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
