"""Evaluate a generator or an image set with every registered metric (FID, KID, precision/recall, mode coverage, ...).

One core, :func:`evaluate_source`, runs the steps every evaluation shares
(check, choose the extractor, hash the real split, extract the features once,
label the samples when a metric needs it, run each registered metric, the
result); :func:`evaluate_generator` and :func:`evaluate_images` only build its
fake side. The metrics are plugins (``gbench_register_metrics``; gbench's own in
``plugins/metrics.py``). The parts live by responsibility:

- :mod:`gbench.evaluation.extractor_choice`: which extractor (``EvalSettings.extractor``);
- :mod:`gbench.evaluation.fidelity`: torch-fidelity's inputs, checked arguments and the features;
- :mod:`gbench.evaluation.realcache`: the real split's features, statistics, radii, class counts;
- :mod:`gbench.evaluation.featuremetrics`: KID and precision/recall in batched torch;
- :mod:`gbench.evaluation.classmetrics`: coverage, class KL and the classifier-based IS.

Mode coverage and the classifier-based Inception Score always come from the
dataset's shipped LeNet classifier, whatever extractor the FID uses.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gbench.data import content_hash
from gbench.errors import GbenchError
from gbench.evaluation import classmetrics, realcache
from gbench.evaluation.extractor_choice import Extractor, domain_classifier, resolve_extractor
from gbench.evaluation.fidelity import PRC_NEIGHBORHOOD, GeneratorInput, ImageSet, extract_features, with_channels
from gbench.evaluation.settings import KID_PR_IMPLS, MIN_IMAGES, EvalSettings
from gbench.owndata import fid_label
from gbench.plugins.labels import BalancedLabels
from gbench.plugins.registry import Dataset, Metric, MetricInputs
from gbench.torchtools import eval_mode, resolve_device

__all__ = [
    "EvalResult",
    "EvalSettings",
    "evaluate_generator",
    "evaluate_images",
    "evaluate_source",
    "minimum_images",
]  # the public API (docs/api.md)


@dataclass
class EvalResult:
    """One evaluation: every registered metric's columns in ``values`` (``result.fid`` reads ``values["fid"]``)."""

    values: dict[str, Any]  # column -> value, in the metrics' registration order; NaN where a metric did not apply
    fid_extractor: str  # e.g. "lenet-mnist@1a2b3c4d": the extractor of every feature metric
    seconds: float
    num_samples: int = 0  # generated (fake-side) images the metrics saw: FID depends on it (biased upwards at small N)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or metric column {name!r}")

    def as_row(self) -> dict:
        """Flat columns for results.csv: the metrics' columns (a list as space-separated text), then the evaluation's own."""
        row = {
            name: " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
            for name, value in self.values.items()
        }
        return {
            **row,
            "fid_extractor": self.fid_extractor,
            "fid_samples": self.num_samples,
            "eval_seconds": round(self.seconds, 3),
        }


def minimum_images(settings: EvalSettings) -> int:
    """The fewest images each side needs: 2 for FID's covariance, k + 1 for precision/recall's k-NN radii."""
    return PRC_NEIGHBORHOOD + 1 if settings.precision_recall else MIN_IMAGES


def _check_settings(settings: EvalSettings) -> None:
    def integer(name: str, low: int) -> None:
        value = getattr(settings, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise GbenchError(f"{name}={value!r} is invalid; give an integer >= {low}")

    integer("num_samples", MIN_IMAGES)
    integer("batch_size", 1)
    integer("kid_subset_size", 2)
    integer("kid_subsets", 0)
    if settings.kid_pr_impl not in KID_PR_IMPLS:
        raise GbenchError(f"kid_pr_impl={settings.kid_pr_impl!r} is unknown; give one of {', '.join(KID_PR_IMPLS)}")
    if settings.fid_infinity and settings.kid_pr_impl != "gbench":
        raise GbenchError(
            "fid_infinity=True needs kid_pr_impl='gbench' (it refits FID on gbench's copy of the features); drop one of the two"
        )


def _check_seed(seed: Any) -> None:
    # torch-fidelity seeds numpy's RandomState with it (noise, KID subsets).
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise GbenchError(f"seed={seed!r} is invalid; give an integer in 0..{2**32 - 1}")


def _check_images(what: str, images: Any, dataset: Dataset, minimum: int) -> None:
    if not torch.is_tensor(images) or images.dtype != torch.uint8 or images.dim() != 4:
        got = (
            f"{images.dtype} tensor of shape {tuple(images.shape)}"
            if torch.is_tensor(images)
            else type(images).__name__
        )
        raise GbenchError(f"{what} must be a uint8 (N, C, H, W) tensor, got {got}; convert with gbench.data.to_uint8")
    if tuple(images.shape[1:]) != tuple(dataset.image_shape):
        raise GbenchError(
            f"{what} have shape {tuple(images.shape[1:])} but dataset {dataset.name!r} has {tuple(dataset.image_shape)}; compare images of the same shape"
        )
    if len(images) < minimum:
        raise GbenchError(f"{what} hold {len(images)} images; the metrics need at least {minimum}")


def _torch_fidelity_device(device: torch.device | str) -> torch.device:
    resolved = resolve_device(device)
    if resolved.type not in ("cpu", "cuda"):
        raise GbenchError(f"device {str(resolved)!r} is not supported by torch-fidelity; use 'cpu' or 'cuda'")
    return resolved


#: Builds the fake side for the chosen extractor, classifier and whether the generated images are kept: (torch-fidelity
#: input1, a function giving the fake logits afterwards, one giving the generated uint8 images or None).
FakeParts = tuple[Any, Callable[[], "torch.Tensor | None"], Callable[[], "torch.Tensor | None"]]
FakeSide = Callable[[Extractor, "torch.nn.Module | None", bool], FakeParts]


def registered_metrics(metrics: Sequence[Metric] | None) -> list[Metric]:
    """``metrics``, or those of the installed plugins (gbench's built-in ones among them) when None."""
    if metrics is None:
        from gbench.plugins.loading import load_plugins

        metrics = load_plugins().registry.metrics()
    if not metrics:
        raise GbenchError(
            "no metrics are registered: gbench's built-in plugin 'metrics' did not load; reinstall gbench (pip install -e .) so its entry points are current"
        )
    return list(metrics)


def _metric_values(metric: Metric, inputs: MetricInputs) -> dict[str, Any]:
    try:
        values = metric.compute(inputs)
    except GbenchError:
        raise
    except Exception as error:  # a plugin's own bug: one line naming the metric, not a traceback
        raise GbenchError(
            f"metric {metric.name!r} failed: {type(error).__name__}: {error}; fix its compute, or uninstall its plugin"
        ) from None
    declared = [column.name for column in metric.columns]
    if not isinstance(values, dict) or sorted(values) != sorted(declared):
        got = sorted(values) if isinstance(values, dict) else type(values).__name__
        raise GbenchError(
            f"metric {metric.name!r} returned {got} but declares the columns {declared}; return one value per declared column"
        )
    return {name: values[name] for name in declared}


def evaluate_source(
    fake_side: FakeSide,
    num_fake: int,
    dataset: Dataset,
    real_images: torch.Tensor,
    settings: EvalSettings,
    device: torch.device,
    seed: int,
    real_labels: torch.Tensor | None,
    started: float,
    metrics: Sequence[Metric],
) -> EvalResult:
    """The steps every evaluation shares; the caller has checked its own inputs and ``settings``.

    The features are extracted once; every metric in ``metrics`` reads them (and the classifier's
    labels, the generated images, when it ``needs`` them).
    """
    _check_images("real_images", real_images, dataset, minimum_images(settings))
    extractor = resolve_extractor(settings.extractor, dataset, settings.inception_weights, settings.feature_layer)
    measured = [
        metric for metric in metrics if metric.applies_to(dataset.name)
    ]  # a metric of other data sets keeps no samples here
    needs = {need for metric in measured for need in metric.needs}
    classifier = domain_classifier(dataset, device) if "labels" in needs else None
    real = real_images.cpu()
    real_hash = content_hash(real)
    input1, fake_logits, fake_images = fake_side(extractor, classifier, "samples" in needs)
    features = extract_features(input1, num_fake, real, real_hash, extractor, settings, device, seed)
    logits = fake_logits()
    reference = None
    if logits is not None and classifier is not None:
        reference = realcache.reference_counts(
            real, real_hash, real_labels, classifier, dataset, settings.cache, settings.batch_size, device
        )
    inputs = MetricInputs(
        fake_features=features.fake,
        real_features=features.real,
        real_statistics=features.real_statistics,
        real_radii=features.real_radii,
        fake_logits=logits if reference is not None else None,
        real_class_counts=reference,
        samples=fake_images(),
        settings=settings,
        seed=seed,
        dataset=dataset.name,
    )
    values: dict[str, Any] = {}
    for metric in metrics:  # in registration order, the order of results.csv's metric columns
        values |= (
            _metric_values(metric, inputs)
            if metric in measured
            else {c.name: math.nan for c in metric.columns if not c.text}
        )
    label = fid_label(extractor.label, dataset)  # own data: "... on cats@1a2b3c4d"
    return EvalResult(values=values, fid_extractor=label, seconds=time.perf_counter() - started, num_samples=num_fake)


def evaluate_generator(
    generator: torch.nn.Module,
    latent_dim: int,
    dataset: Dataset,
    real_images: torch.Tensor,
    settings: EvalSettings | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    real_labels: torch.Tensor | None = None,
    metrics: Sequence[Metric] | None = None,
    num_classes: int = 0,
) -> EvalResult:
    """Sample ``settings.num_samples`` images from ``generator`` and compare them with ``real_images``.

    ``num_classes > 0``: a conditional generator, called as ``generator(z, y)`` with y = i % num_classes
    for sample i.

    ``generator(z)``, z ~ N(0, 1) of shape (B, latent_dim), returns float
    images in [-1, 1] of the dataset's shape. It runs in eval mode during
    sampling; every submodule's training flag is restored afterwards. The
    noise comes from torch-fidelity's seeded generator, so a seed gives the
    same samples and the same numbers.

    Coverage, class KL and the Inception Score use the dataset's LeNet
    classifier even when the FID uses Inception; they are NaN for datasets
    without a shipped LeNet. The reference class distribution is that of
    ``real_labels`` when given, else the classifier's labelling of
    ``real_images``. ``metrics``: what to compute (default: every metric the installed plugins register).
    """
    started = time.perf_counter()
    settings = settings or EvalSettings()
    _check_settings(settings)
    resolved = _torch_fidelity_device(device)
    if not isinstance(generator, torch.nn.Module):
        raise GbenchError(f"generator must be a torch.nn.Module, got {type(generator).__name__}")
    _check_seed(seed)
    if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
        raise GbenchError(f"latent_dim={latent_dim!r} is invalid; give the generator's noise size, an integer >= 1")
    if settings.num_samples < minimum_images(settings):
        raise GbenchError(
            f"num_samples={settings.num_samples} is too few for precision/recall; give at least {minimum_images(settings)} or set precision_recall=False"
        )

    def fake_side(extractor: Extractor, classifier: torch.nn.Module | None, keep: bool) -> FakeParts:
        conditioned = BalancedLabels(generator, num_classes) if num_classes else generator  # a fresh count each time
        source = GeneratorInput(
            conditioned, latent_dim, resolved, dataset.image_shape, extractor.channels, classifier, keep
        )
        return (
            source,
            lambda: torch.cat(source.logits) if classifier is not None else None,
            lambda: torch.cat(source.images) if keep else None,
        )

    with eval_mode(generator):
        return evaluate_source(
            fake_side,
            settings.num_samples,
            dataset,
            real_images,
            settings,
            resolved,
            seed,
            real_labels,
            started,
            registered_metrics(metrics),
        )


def evaluate_images(
    fake_images: torch.Tensor,
    dataset: Dataset,
    real_images: torch.Tensor,
    settings: EvalSettings | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    real_labels: torch.Tensor | None = None,
    metrics: Sequence[Metric] | None = None,
) -> EvalResult:
    """Compare two uint8 image sets (all of ``fake_images``; ``settings.num_samples`` is not used).

    For ``gbench fid A B``. The real side is cached like the generator case;
    the class metrics label ``fake_images`` with the dataset's classifier.
    """
    started = time.perf_counter()
    settings = settings or EvalSettings()
    _check_settings(settings)
    _check_seed(seed)
    resolved = _torch_fidelity_device(device)
    _check_images("fake_images", fake_images, dataset, minimum_images(settings))
    fake = fake_images.cpu()

    def fake_side(extractor: Extractor, classifier: torch.nn.Module | None, keep: bool) -> FakeParts:
        logits = (
            (lambda: classmetrics.classify(classifier, fake, settings.batch_size, resolved))
            if classifier is not None
            else (lambda: None)
        )
        return ImageSet(with_channels(fake, extractor.channels)), logits, lambda: fake if keep else None

    return evaluate_source(
        fake_side,
        len(fake),
        dataset,
        real_images,
        settings,
        resolved,
        seed,
        real_labels,
        started,
        registered_metrics(metrics),
    )
