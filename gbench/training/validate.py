"""Check what plugins registered before anything trains.

Loading a plugin already checks names, hooks and hyperparameter declarations
(:mod:`gbench.plugins.loading`, :mod:`gbench.plugins.registry`). What only shows when a thing
is built is checked here, on the CPU with a batch of two: an architecture's
generator gives images of the dataset's shape and its discriminator one logit
per image; a loss gives :class:`LossTerms` whose losses reach the nets'
weights; a schedule gives two learning rates and a step count; a dataset
declares a ``(C, H, W)`` shape. Each failure is one :class:`GbenchError`
naming the plugin, the hook that registered the thing, and the problem.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, cast

import torch
from torch import nn

from gbench.config import TRAINING_HYPERPARAMETERS
from gbench.errors import GbenchError
from gbench.plugins.loading import HOOKS
from gbench.plugins.registry import KINDS, Hyperparameter, LossTerms, Nets, Registry, Value
from gbench.training.conditioning import discriminator_terms, generator_terms
from gbench.training.nets import check_nets
from gbench.training.trainer import LastLosses

#: kind -> the hook that registers it ("architecture" -> "gbench_register_architectures").
HOOK_OF = {kind: hook for hook, kind in HOOKS.items()}


def who(registry: Registry, kind: str, name: str) -> str:
    """``plugin 'x', hook gbench_register_..., kind 'name'``: the prefix of every message."""
    owner = registry.owners.get((kind, name), "?")
    return f"plugin {owner!r}, hook {HOOK_OF[kind]}, {kind} {name!r}"


def default_params(
    registry: Registry, names: Iterable[tuple[str, str]], overrides: dict[str, Any] | None = None
) -> dict[str, Value]:
    """Training knobs and each named thing's hyperparameters at their defaults, then ``overrides``
    (strings parsed as ``--set`` does where a name is declared; other keys passed on unchecked,
    since :func:`gbench.config.resolve_params` is what rejects unknown keys)."""
    declared = {hp.name: hp for hp in TRAINING_HYPERPARAMETERS}
    for kind, name in names:
        if kind != "dataset":
            declared.update({hp.name: hp for hp in registry.get(kind, name).hyperparameters})
    params: dict[str, Value] = {name: hp.default for name, hp in declared.items()}
    for key, value in (overrides or {}).items():
        if key in declared:
            hp = declared[key]
            params[key] = hp.coerce(value)
        else:  # another part's knob (a run's loss, say): passed on as given, as the run passes it
            params[key] = value
    return params


def validate(
    registry: Registry,
    names: str | Iterable[tuple[str, str]],
    dataset: str = "mnist",
    params: dict[str, Any] | None = None,
) -> None:
    """Build and check everything a plugin provides, or the given ``(kind, name)`` pairs.

    :param names: a plugin name (everything it registered) or ``(kind, name)`` pairs.
    :param dataset: whose image shape the architectures must produce.
    :param params: overrides of the defaults (``--set`` values); see :func:`default_params`.
    """
    if isinstance(names, str):
        # a metric builds nothing: registration checked its columns, evaluation checks what compute returns
        names = [(kind, name) for kind in KINDS if kind != "metric" for name in registry.owned_by(kind, names)]
    names = list(names)
    image_shape = check_dataset_spec(registry, dataset)
    with torch.random.fork_rng(devices=[]):  # checking must not move the caller's random stream
        torch.manual_seed(0)
        for kind, name in names:
            registry.get(kind, name)  # an unknown name: the registry's message, with suggestions
            resolved = default_params(registry, [(kind, name)], params)
            if kind == "architecture":
                check_architecture_spec(registry, name, image_shape, resolved, registry.dataset(dataset).num_classes)
            elif kind == "loss":
                check_loss_spec(registry, name, image_shape, resolved)
            elif kind == "schedule":
                check_schedule_spec(registry, name, resolved)
            else:
                check_dataset_spec(registry, name)


def validate_configs(registry: Registry, configs: Iterable[Any]) -> None:
    """Validate each distinct combination of a list of :class:`gbench.config.RunConfig` with its params."""
    seen = set()
    for config in configs:
        key = (config.architecture, config.loss, config.schedule, config.dataset, repr(sorted(config.params.items())))
        if key not in seen:
            seen.add(key)
            names = [("architecture", config.architecture), ("loss", config.loss), ("schedule", config.schedule)]
            validate(registry, names, config.dataset, config.params)


# ---------------------------------------------------------------------------
# One check per kind
# ---------------------------------------------------------------------------


def check_dataset_spec(registry: Registry, name: str) -> tuple[int, int, int]:
    """The dataset's declared ``(C, H, W)``, checked (its files are not read)."""
    spec = registry.dataset(name)
    shape = tuple(spec.image_shape) if isinstance(spec.image_shape, (tuple, list)) else spec.image_shape
    if not (isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(n, int) and n > 0 for n in shape)):
        raise GbenchError(
            f"{who(registry, 'dataset', name)}: image_shape {shape!r} is not (channels, height, "
            "width) of positive ints; declare e.g. image_shape=(1, 28, 28)"
        )
    if not isinstance(spec.num_classes, int) or spec.num_classes < 1:
        raise GbenchError(f"{who(registry, 'dataset', name)}: num_classes {spec.num_classes!r} must be a positive int")
    if spec.class_names and len(spec.class_names) != spec.num_classes:
        raise GbenchError(
            f"{who(registry, 'dataset', name)}: {len(spec.class_names)} class_names for "
            f"num_classes={spec.num_classes}; give one name per class"
        )
    return shape


def check_architecture_spec(
    registry: Registry, name: str, image_shape: tuple[int, ...], params: dict[str, Value], num_classes: int = 10
) -> None:
    """Build on the CPU; the generator maps noise to images, the discriminator gives one logit each
    (a conditional architecture's, built for ``num_classes``, with labels)."""
    prefix = who(registry, "architecture", name)
    spec = registry.architecture(name)
    classes = {"num_classes": max(num_classes, 2)} if spec.conditional else {}  # preflight refuses unlabelled data
    try:
        nets = spec.build(dict(params), cast(tuple[int, int, int], tuple(image_shape)), **classes)
    except Exception as error:
        hint = float_default_hint(error, spec.hyperparameters)
        raise GbenchError(f"{prefix}: build failed: {type(error).__name__}: {error}{hint}") from None
    if isinstance(nets, Nets):
        nets.num_classes = classes.get("num_classes", 0)
    check_nets(nets, tuple(image_shape), prefix)
    # not a GAN (check_nets saw an objective): the trainer minimises it
    if nets.discriminator is None and nets.objective is not None:
        try:
            result = nets.objective(torch.rand(2, *image_shape) * 2 - 1)
        except Exception as error:
            raise GbenchError(f"{prefix}: objective failed on 2 images: {type(error).__name__}: {error}") from None
        if not (
            isinstance(result, tuple) and len(result) == 2 and _is_scalar(result[0]) and isinstance(result[1], dict)
        ):
            raise GbenchError(
                f"{prefix}: objective(real) returned {_describe(result)}; "
                "expected (scalar loss tensor, dict of metrics)"
            )
        if not result[0].requires_grad:
            raise GbenchError(
                f"{prefix}: objective's loss has no gradient; compute it from the generator "
                "module's parameters without torch.no_grad or .detach()"
            )


def float_default_hint(error: Exception, hyperparameters: Iterable[Hyperparameter]) -> str:
    """For "'float' object cannot be interpreted as an integer": the float knobs whose default
    looks like an int, since a default written ``2.0`` makes the knob a float."""
    if not (isinstance(error, TypeError) and "'float' object cannot be interpreted as an integer" in str(error)):
        return ""
    suspects = [hp for hp in hyperparameters if isinstance(hp.default, float) and hp.default.is_integer()]
    if not suspects:
        return ""
    hp = suspects[0]
    return (
        f"; hyperparameter {hp.name!r} is a float because its default is written "
        f"{hp.default!r}: write {int(hp.default)} to make it an int"
    )


def _tiny_nets(
    image_shape: tuple[int, ...], latent_dim: int = 8, conditional: bool = False
) -> tuple[nn.Module, nn.Module]:
    pixels = math.prod(image_shape)
    generator = nn.Sequential(nn.Linear(latent_dim, pixels), nn.Tanh(), nn.Unflatten(1, tuple(image_shape)))
    discriminator = nn.Sequential(nn.Flatten(), nn.Linear(pixels, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    return generator, _TinyConditional(discriminator, 4) if conditional else discriminator


class _TinyConditional(nn.Module):
    """A discriminator ``(x, y) -> (B, 1 + classes)``: its score, then class logits (what ACGAN's loss reads)."""

    def __init__(self, body: nn.Sequential, classes: int):
        super().__init__()
        self.body, self.classes = body, nn.Linear(16, classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        features = self.body[:-1](x)
        return torch.cat([self.body[-1](features), self.classes(features)], dim=1)


def check_loss_spec(registry: Registry, name: str, image_shape: tuple[int, ...], params: dict[str, Value]) -> None:
    """Both sides give LossTerms with a finite scalar loss that reaches D's and G's weights."""
    prefix = who(registry, "loss", name)
    try:
        loss = registry.loss(name).build(dict(params))
    except Exception as error:
        raise GbenchError(f"{prefix}: build failed: {type(error).__name__}: {error}") from None
    for method in ("discriminator_loss", "generator_loss"):
        if not callable(getattr(loss, method, None)):
            raise GbenchError(
                f"{prefix}: build returned {type(loss).__name__}, which has no {method} method; see docs/plugins.md"
            )
    needs_labels = registry.loss(name).needs_labels  # then on a tiny conditional D, with labels, as trained
    generator, discriminator = _tiny_nets(image_shape, conditional=needs_labels)
    real = torch.rand(4, *image_shape) * 2 - 1
    fake = generator(torch.randn(4, 8))
    labels = (torch.tensor([0, 1, 2, 3]), torch.tensor([3, 2, 1, 0])) if needs_labels else ()
    for side, net, call in (
        (
            "discriminator_loss(D, real, fake)",
            discriminator,
            lambda: discriminator_terms(loss, discriminator, real, fake.detach(), labels, needs_labels),
        ),
        (
            "generator_loss(D, fake)",
            generator,
            lambda: generator_terms(loss, discriminator, fake, labels[1:], needs_labels),
        ),
    ):
        try:
            terms = call()
        except Exception as error:
            raise GbenchError(f"{prefix}: {side} failed on a batch of 4: {type(error).__name__}: {error}") from None
        if not isinstance(terms, LossTerms):
            raise GbenchError(
                f"{prefix}: {side} returned {_describe(terms)}; expected "
                "gbench.plugins.registry.LossTerms(loss, real_score, fake_score)"
            )
        if not _is_scalar(terms.loss) or not torch.isfinite(terms.loss).all():
            raise GbenchError(f"{prefix}: {side} gave loss {_describe(terms.loss)}; expected a finite scalar tensor")
        for field in ("real_score", "fake_score"):
            score = getattr(terms, field)
            if score is not None and not _is_scalar(score):
                raise GbenchError(
                    f"{prefix}: {side} gave {field} {_describe(score)}; expected "
                    "None or a scalar tensor (the mean D output)"
                )
        net.zero_grad(set_to_none=True)
        if terms.loss.requires_grad:
            terms.loss.backward(retain_graph=True)
        if not any(p.grad is not None for p in net.parameters()):
            whose = "D's" if net is discriminator else "G's"
            raise GbenchError(
                f"{prefix}: {side}'s loss has no gradient for {whose} weights; compute it "
                "from D's outputs without .detach() or torch.no_grad"
            )


def check_schedule_spec(registry: Registry, name: str, params: dict[str, Value]) -> None:
    """``learning_rates(lr)`` gives two positive rates; ``discriminator_steps`` a non-negative int."""
    prefix = who(registry, "schedule", name)
    try:
        schedule = registry.schedule(name).build(dict(params))
        rates = schedule.learning_rates(float(params.get("lr", 2e-4)))
    except Exception as error:
        raise GbenchError(f"{prefix}: build or learning_rates(lr) failed: {type(error).__name__}: {error}") from None
    if not (
        isinstance(rates, (tuple, list)) and len(rates) == 2 and all(_is_number(r) and 0 < r < math.inf for r in rates)
    ):
        raise GbenchError(
            f"{prefix}: learning_rates(lr) returned {rates!r}; expected "
            "(discriminator_lr, generator_lr), two positive numbers"
        )
    for step, last in ((0, LastLosses()), (1, LastLosses(torch.tensor(1.3), torch.tensor(0.7)))):
        try:
            count = schedule.discriminator_steps(step, last)
        except Exception as error:
            raise GbenchError(
                f"{prefix}: discriminator_steps({step}, last) failed: {type(error).__name__}: {error}"
            ) from None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise GbenchError(f"{prefix}: discriminator_steps({step}, last) returned {count!r}; expected an int >= 0")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {value!r}"[:120]
