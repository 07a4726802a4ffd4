"""Evaluate a generator: FID, KID, precision/recall, mode coverage, classifier IS.

FID, KID and precision/recall come from torch-fidelity's ``calculate_metrics``
arguments and steps, with the generator as ``input1`` (a
``GenerativeModelBase`` wrapper) and the dataset's test split as ``input2``:
its feature extractor, its feature cache and its FID. By default KID and
precision/recall are then computed by ``gbench.featuremetrics`` (the same
subsets and k-NN rule, in batched torch: ~1.5 s instead of ~9 s at 10,000
samples); ``kid_pr_impl="torch-fidelity"`` makes the one ``calculate_metrics``
call do everything. gbench handles torch-fidelity's pitfalls:

- it has no device option, only ``cuda``: gbench passes ``cuda=False`` on CPU
  and runs it inside ``torch.cuda.device(device)`` on a GPU;
- its cache key is an input name plus the extractor name, blind to the data
  and the weights: gbench names the real split's cache entry by
  ``content_hash`` of the images plus the extractor and its weights' SHA-256,
  and writes the entry itself (temp file, then ``os.replace``) under
  ``cache_dir()/"fid-stats"``, in the layout torch-fidelity reads back;
- KID's subset size must not exceed the sample counts: it is capped;
- unknown keyword arguments are silently ignored: every name gbench passes is
  checked against a list (and against torch-fidelity's own defaults).

Mode coverage and the classifier-based Inception Score always come from the
dataset's shipped LeNet classifier, whatever extractor the FID uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch_fidelity
from torch_fidelity.defaults import DEFAULTS as FIDELITY_DEFAULTS
from torch_fidelity.generative_model_base import GenerativeModelBase
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_featuresdict_to_statistics_cached, fid_statistics_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
from torch_fidelity.utils import create_feature_extractor, extract_featuresdict_from_input_id_cached, get_cacheable_input_name

from gbench import extractors, featuremetrics
from gbench.data import cache_dir, content_hash, to_uint8
from gbench.errors import GbenchError
from gbench.registry import Dataset

NAN = float("nan")
PRC_NEIGHBORHOOD = 3  # torch-fidelity's default k for precision/recall
KID_PR_IMPLS = ("gbench", "torch-fidelity")
_CACHE_VERSION = 1  # bump when the layout or the meaning of cached entries changes


@dataclass
class EvalSettings:
    num_samples: int = 10_000
    extractor: str | None = None  # None -> f"lenet-{dataset}" when shipped, "inception" for inception-v3-compat
    inception_weights: str | None = None
    kid_subset_size: int = 1000
    batch_size: int = 500
    kid_subsets: int = 100  # torch-fidelity's default; 0 skips KID (NaN)
    precision_recall: bool = True  # False skips precision/recall (NaN): they cost most of a cached evaluation
    feature_layer: str | None = None  # None -> the extractor's default ("128" LeNet, "2048" Inception)
    cache: bool = True  # cache the real split's features and statistics
    # "gbench": KID and precision/recall from gbench.featuremetrics (same subsets and
    # k-NN rule as torch-fidelity, ~8 s faster at 10,000 samples); "torch-fidelity":
    # the whole calculate_metrics call, its own KID and precision/recall included.
    kid_pr_impl: str = "gbench"


@dataclass
class EvalResult:
    fid: float
    kid_mean: float
    kid_std: float
    precision: float
    recall: float
    inception_score: float  # classifier-based, from the domain classifier
    class_counts: list[int]
    classes_covered: int  # NaN (a float) when the dataset has no domain classifier
    class_kl: float
    fid_extractor: str  # e.g. "lenet-mnist@1a2b3c4d"
    seconds: float
    num_samples: int = 0

    def as_row(self) -> dict:
        """Flat columns for results.csv."""
        return {
            "fid": self.fid,
            "kid_mean": self.kid_mean,
            "kid_std": self.kid_std,
            "precision": self.precision,
            "recall": self.recall,
            "inception_score": self.inception_score,
            "classes_covered": self.classes_covered,
            "class_kl": self.class_kl,
            "class_counts": " ".join(str(count) for count in self.class_counts),
            "fid_extractor": self.fid_extractor,
            "eval_seconds": round(self.seconds, 3),
        }


# ---------------------------------------------------------------------------
# Class-based metrics (pure functions, tested against hand computations)
# ---------------------------------------------------------------------------


def classifier_inception_score(logits: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))), p(y) the mean prediction, in float64, one split."""
    if len(logits) == 0:
        return NAN
    log_p = logits.double().log_softmax(dim=1)
    log_marginal = torch.logsumexp(log_p, dim=0) - math.log(len(log_p))
    kl = (log_p.exp() * (log_p - log_marginal)).sum(dim=1).mean()
    return float(kl.exp())


def mode_coverage(predicted: torch.Tensor, reference_counts: Sequence[int]) -> tuple[list[int], int, float]:
    """Per-class counts of the predicted labels, classes covered, KL(generated || reference).

    A class is covered when it gets at least half the samples it would get
    under the reference distribution. The KL divergence is in nats and runs
    from the generated class distribution to the reference one, so it stays
    finite when the generator drops classes (a full collapse onto class c
    gives -log q_c).
    """
    reference = torch.as_tensor(list(reference_counts), dtype=torch.float64)
    counts = torch.bincount(predicted.flatten().long().cpu(), minlength=len(reference))[: len(reference)]
    n = int(counts.sum())
    q = reference / reference.sum()
    p = counts.double() / max(n, 1)
    covered = int(((counts.double() >= 0.5 * q * n) & (q > 0)).sum())
    support = p > 0
    kl = float((p[support] * (p[support] / q[support]).log()).sum()) if n else NAN
    return [int(c) for c in counts], covered, kl


# ---------------------------------------------------------------------------
# Extractor choice
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Extractor:
    """A resolved extractor: torch-fidelity name, weights file, label, layer, input channels."""

    name: str
    weights: Path
    label: str
    layer: str
    channels: int
    pass_weights: bool  # hand ``weights`` to torch-fidelity (LeNet finds its shipped file by name)


def known_extractors() -> list[str]:
    return sorted(["inception", extractors.INCEPTION, "lenet", *extractors.LENET_DATASETS])


def resolve_extractor(settings: EvalSettings, dataset: Dataset) -> Extractor:
    """Turn ``settings.extractor`` into an :class:`Extractor`; GbenchError names the bad value."""
    extractors.register_extractors()
    shipped = f"lenet-{dataset.name}" if f"lenet-{dataset.name}" in extractors.LENET_DATASETS else None
    wanted = settings.extractor
    if wanted is None:
        wanted = shipped or "inception"
    elif wanted == "lenet":
        if shipped is None:
            raise GbenchError(
                f"extractor 'lenet' has no shipped weights for dataset {dataset.name!r}; use one of {', '.join(extractors.LENET_DATASETS)} or 'inception'"
            )
        wanted = shipped
    if wanted in ("inception", extractors.INCEPTION):
        if dataset.image_shape[0] not in (1, 3):
            raise GbenchError(f"extractor 'inception' takes 1- or 3-channel images; dataset {dataset.name!r} has {dataset.image_shape[0]} channels")
        weights = extractors.resolve_inception_weights(settings.inception_weights)
        name, channels, pass_weights = extractors.INCEPTION, 3, True
    elif wanted in extractors.LENET_DATASETS:
        if tuple(dataset.image_shape) != (1, 28, 28):
            raise GbenchError(
                f"extractor {wanted!r} takes 1x28x28 images; dataset {dataset.name!r} has {'x'.join(map(str, dataset.image_shape))}; use extractor 'inception'"
            )
        weights = extractors.lenet_weights_path(wanted)
        extractors.load_lenet(wanted)  # fails early, with a fix, when the shipped file is missing or altered
        name, channels, pass_weights = wanted, 1, False
    else:
        raise GbenchError(f"unknown extractor {settings.extractor!r}; known: {', '.join(known_extractors())}")
    provided = FEATURE_EXTRACTORS_REGISTRY[name].get_provided_features_list()
    layer = settings.feature_layer or FEATURE_EXTRACTORS_REGISTRY[name].get_default_feature_layer_for_metric("fid")
    if layer not in provided:
        raise GbenchError(f"feature_layer {layer!r} is not a layer of {name}; choose one of {', '.join(provided)}")
    return Extractor(name, weights, extractors.extractor_label(name, weights), layer, channels, pass_weights)


def domain_classifier(dataset: Dataset, device: torch.device) -> extractors.LeNet | None:
    """The dataset's shipped LeNet (for coverage and IS), or None when it has none."""
    name = f"lenet-{dataset.name}"
    return extractors.load_lenet(name, device) if name in extractors.LENET_DATASETS else None


# ---------------------------------------------------------------------------
# torch-fidelity inputs
# ---------------------------------------------------------------------------


def _with_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey images repeated to RGB for Inception (a view: no copy until a batch is taken)."""
    return images.expand(-1, channels, -1, -1) if images.shape[1] != channels else images


class ImageSet(torch.utils.data.Dataset):
    """A uint8 image tensor as a torch Dataset, handing out whole batches at once.

    ``__getitems__`` lets the DataLoader take a batch with one indexing
    operation instead of one Python call per image.
    """

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        return list(self.images[torch.as_tensor(indices)].unbind(0))


class GeneratorInput(GenerativeModelBase):
    """The generator as torch-fidelity's input1: noise -> uint8 images.

    The generator and the classifier are kept out of the module tree:
    torch-fidelity calls ``.cuda()`` on its input, which would move the
    caller's generator to the default GPU. Noise moves to ``device`` here.
    Each batch is also labelled by the domain classifier, for coverage and IS.
    """

    def __init__(
        self, generator: torch.nn.Module, latent_dim: int, device: torch.device, image_shape: tuple, channels: int, classifier: torch.nn.Module | None
    ):
        super().__init__()
        object.__setattr__(self, "_generator", generator)
        object.__setattr__(self, "_classifier", classifier)
        self._latent_dim, self._device, self._shape, self._channels = latent_dim, device, tuple(image_shape), channels
        self.logits: list[torch.Tensor] = []

    @property
    def z_size(self):
        return self._latent_dim

    @property
    def z_type(self):
        return "normal"

    @property
    def num_classes(self):
        return 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        fake = self._generator(z.to(self._device))
        if not torch.is_tensor(fake) or tuple(fake.shape[1:]) != self._shape or len(fake) != len(z):
            got = tuple(fake.shape) if torch.is_tensor(fake) else type(fake).__name__
            raise GbenchError(
                f"the generator returned {got} for {len(z)} noise vectors; it must return ({len(z)}, {', '.join(map(str, self._shape))}) images in [-1, 1]"
            )
        images = to_uint8(fake)
        if self._classifier is not None:
            self.logits.append(self._classifier(images)[1].float().cpu())
        return _with_channels(images, self._channels)


# Every keyword gbench hands to calculate_metrics. torch-fidelity silently
# ignores names it does not know, so a typo or a name a later release renames
# would quietly fall back to a default; _checked refuses both.
FIDELITY_KWARGS = frozenset(
    {
        "input1", "input2", "cuda", "batch_size", "fid", "kid", "prc", "feature_extractor",
        "feature_layer_fid", "feature_layer_kid", "feature_layer_prc", "feature_extractor_weights_path",
        "kid_subsets", "kid_subset_size", "prc_neighborhood", "save_cpu_ram", "cache", "cache_root",
        "input2_cache_name", "input1_model_num_samples", "rng_seed", "verbose",
    }
)  # fmt: skip


def checked_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    for name in kwargs:
        if name not in FIDELITY_KWARGS:
            raise GbenchError(f"calculate_metrics argument {name!r} is not on gbench's checked list; add it to FIDELITY_KWARGS once its meaning is verified")
        if name not in FIDELITY_DEFAULTS:
            raise GbenchError(
                f"torch-fidelity {torch_fidelity.__version__} has no argument {name!r} (it would be ignored silently); install the torch-fidelity 0.4 series"
            )
    return kwargs


# ---------------------------------------------------------------------------
# The real split's cache
# ---------------------------------------------------------------------------


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temp file in the same folder, then os.replace: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        torch.save(obj, temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def fid_cache_root() -> Path:
    return cache_dir() / "fid-stats"


def real_cache_name(real_hash: str, extractor: Extractor) -> str:
    """torch-fidelity's ``input2_cache_name``: the split's content, the extractor, its weights."""
    key = f"v{_CACHE_VERSION}|{real_hash}|{extractor.name}|{extractors.weights_sha256(extractor.weights)}|{extractor.channels}"
    return "gbench-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def real_cache_files(name: str, extractor: Extractor, root: Path) -> tuple[Path, Path]:
    """The two files torch-fidelity looks for: the features and the FID statistics of one layer."""
    return (
        root / f"{name}-{extractor.name}-features-{extractor.layer}.pt",
        root / f"{name}-{extractor.name}-stat-fid-{extractor.layer}.pt",
    )


def ensure_real_cache(real: torch.Tensor, name: str, extractor: Extractor, root: Path, cuda: bool, batch_size: int) -> bool:
    """Fill the cache entry for the real split unless present; True when it was already there.

    The features come from the same extractor class torch-fidelity builds, in
    the same batches, so the entry equals what torch-fidelity would have cached.
    """
    features_path, stats_path = real_cache_files(name, extractor, root)
    if features_path.is_file() and stats_path.is_file():
        return True
    kwargs = {"verbose": False, "feature_extractor_weights_path": str(extractor.weights) if extractor.pass_weights else None}
    model = create_feature_extractor(extractor.name, [extractor.layer], cuda=cuda, **kwargs)
    with torch.no_grad():
        parts = [model(batch.cuda() if cuda else batch)[0].cpu() for batch in real.split(batch_size)]
    features = torch.cat(parts)
    atomic_save(features, features_path)
    atomic_save(fid_features_to_statistics(features), stats_path)
    return False


def _classify(classifier: torch.nn.Module, images: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([classifier(batch.to(device))[1].float().cpu() for batch in images.split(batch_size)])


def reference_counts(
    real: torch.Tensor, real_hash: str, labels: torch.Tensor | None, classifier: torch.nn.Module, dataset: Dataset, settings: EvalSettings, device: torch.device
) -> list[int]:
    """The test split's class counts: from its labels when given, else as the classifier labels it (cached)."""
    if labels is not None:
        if len(labels) != len(real):
            raise GbenchError(f"real_labels has {len(labels)} entries for {len(real)} real images; pass the labels of the same split")
        return torch.bincount(labels.long().cpu(), minlength=dataset.num_classes).tolist()
    sha = extractors.weights_sha256(extractors.lenet_weights_path(f"lenet-{dataset.name}"))
    path = fid_cache_root() / f"gbench-classes-{hashlib.sha256(f'v{_CACHE_VERSION}|{real_hash}|{sha}'.encode()).hexdigest()[:32]}.pt"
    if settings.cache and path.is_file():
        return torch.load(path, weights_only=True).tolist()
    counts = torch.bincount(_classify(classifier, real, settings.batch_size, device).argmax(1), minlength=dataset.num_classes)
    if settings.cache:
        atomic_save(counts, path)
    return counts.tolist()


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------


def _device(device: torch.device | str) -> torch.device:
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise GbenchError(f"device {device!r} is not a torch device; use 'cpu' or 'cuda'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GbenchError(f"device {str(device)!r} asked for, but CUDA is not available here; use device 'cpu'")
    if device.type not in ("cpu", "cuda"):
        raise GbenchError(f"device {str(device)!r} is not supported by torch-fidelity; use 'cpu' or 'cuda'")
    return device


def _check_settings(settings: EvalSettings) -> None:
    def integer(name: str, low: int) -> None:
        value = getattr(settings, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise GbenchError(f"{name}={value!r} is invalid; give an integer >= {low}")

    integer("num_samples", 2)
    integer("batch_size", 1)
    integer("kid_subset_size", 2)
    integer("kid_subsets", 0)
    if settings.kid_pr_impl not in KID_PR_IMPLS:
        raise GbenchError(f"kid_pr_impl={settings.kid_pr_impl!r} is unknown; give one of {', '.join(KID_PR_IMPLS)}")


def _check_seed(seed: Any) -> None:
    # torch-fidelity seeds numpy's RandomState with it (noise, KID subsets).
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise GbenchError(f"seed={seed!r} is invalid; give an integer in 0..{2**32 - 1}")


def _check_images(what: str, images: Any, dataset: Dataset, minimum: int) -> None:
    if not torch.is_tensor(images) or images.dtype != torch.uint8 or images.dim() != 4:
        got = f"{images.dtype} tensor of shape {tuple(images.shape)}" if torch.is_tensor(images) else type(images).__name__
        raise GbenchError(f"{what} must be a uint8 (N, C, H, W) tensor, got {got}; convert with gbench.data.to_uint8")
    if tuple(images.shape[1:]) != tuple(dataset.image_shape):
        raise GbenchError(
            f"{what} have shape {tuple(images.shape[1:])} but dataset {dataset.name!r} has {tuple(dataset.image_shape)}; compare images of the same shape"
        )
    if len(images) < minimum:
        raise GbenchError(f"{what} hold {len(images)} images; the metrics need at least {minimum}")


def _minimum(settings: EvalSettings) -> int:
    # FID needs 2 samples for a covariance; precision/recall needs k + 1 for k-NN radii.
    return PRC_NEIGHBORHOOD + 1 if settings.precision_recall else 2


def fidelity_kwargs(
    input1: Any, n1: int, real: torch.Tensor, real_hash: str, extractor: Extractor, settings: EvalSettings, device: torch.device, seed: int
) -> dict[str, Any]:
    """The checked keyword arguments of the calculate_metrics call (``real`` already has the extractor's channels)."""
    kwargs: dict[str, Any] = {
        "input1": input1,
        "input2": ImageSet(real),
        # torch-fidelity has no device option: cuda=True means the current CUDA device.
        "cuda": device.type == "cuda",
        "batch_size": settings.batch_size,
        "fid": True,
        "kid": settings.kid_subsets > 0,
        "prc": settings.precision_recall,
        "feature_extractor": extractor.name,
        "feature_layer_fid": extractor.layer,
        "feature_layer_kid": extractor.layer,
        "feature_layer_prc": extractor.layer,
        "kid_subsets": max(settings.kid_subsets, 1),
        # torch-fidelity raises when the subset is larger than either set.
        "kid_subset_size": min(settings.kid_subset_size, n1, len(real)),
        "prc_neighborhood": PRC_NEIGHBORHOOD,
        # No DataLoader worker processes (4 of them on a 2-core machine) and no
        # three N x N distance matrices held at once; the numbers are the same.
        "save_cpu_ram": True,
        "rng_seed": seed,
        "verbose": False,
        "cache": settings.cache,
    }
    if extractor.pass_weights:
        kwargs["feature_extractor_weights_path"] = str(extractor.weights)
    if isinstance(input1, GenerativeModelBase):
        kwargs["input1_model_num_samples"] = n1
    if settings.cache:
        kwargs["cache_root"] = str(fid_cache_root())
        kwargs["input2_cache_name"] = real_cache_name(real_hash, extractor)
    return checked_kwargs(kwargs)


def _fidelity(input1: Any, n1: int, real: torch.Tensor, real_hash: str, extractor: Extractor, settings: EvalSettings, device: torch.device, seed: int) -> dict:
    """FID, KID (unless kid_subsets=0), precision/recall (unless off) from one set of features."""
    cuda = device.type == "cuda"
    real = _with_channels(real, extractor.channels)
    kwargs = fidelity_kwargs(input1, n1, real, real_hash, extractor, settings, device, seed)
    cached = False
    if settings.cache:
        files = real_cache_files(kwargs["input2_cache_name"], extractor, Path(kwargs["cache_root"]))
        cached = all(path.is_file() for path in files)
    if extractor.name == extractors.INCEPTION and not cuda:
        count = n1 + (0 if cached else len(real))
        seconds = count * extractors.INCEPTION_CPU_SECONDS_PER_IMAGE
        print(
            f"gbench: Inception on CPU: {count} images at about {extractors.INCEPTION_CPU_SECONDS_PER_IMAGE} s each, "
            f"about {seconds / 60:.1f} min (the LeNet extractor takes seconds)",
            file=sys.stderr,
            flush=True,
        )
    # On a GPU, make `device` the current one: torch-fidelity's .cuda() calls go there.
    with torch.cuda.device(device) if cuda else contextlib.nullcontext():
        if settings.cache and not cached:
            ensure_real_cache(real, kwargs["input2_cache_name"], extractor, Path(kwargs["cache_root"]), cuda, settings.batch_size)
        if settings.kid_pr_impl == "torch-fidelity":
            return torch_fidelity.calculate_metrics(**kwargs)
        return _metrics_with_gbench_kid_pr(kwargs, extractor)


def _metrics_with_gbench_kid_pr(kwargs: dict[str, Any], extractor: Extractor) -> dict[str, float]:
    """calculate_metrics' own steps for FID, then KID and precision/recall from gbench.featuremetrics.

    The features come from torch-fidelity's extractor and feature cache exactly
    as inside calculate_metrics (``calculate_metrics_one_feature_extractor``),
    and the FID from its statistics functions; only KID and precision/recall,
    which cost ~9 s of a 10,000-sample evaluation there, run in torch instead.
    The real split's k-NN radii are cached next to its features.
    """
    layer = extractor.layer
    model = create_feature_extractor(extractor.name, [layer], **kwargs)
    fake = extract_featuresdict_from_input_id_cached(1, model, **kwargs)
    real = extract_featuresdict_from_input_id_cached(2, model, **kwargs)
    statistics = [
        fid_featuresdict_to_statistics_cached(features, get_cacheable_input_name(input_id, **kwargs), model, layer, **kwargs)
        for input_id, features in ((1, fake), (2, real))
    ]
    metrics: dict[str, float] = dict(fid_statistics_to_metric(*statistics, False))
    fake, real = fake[layer].cpu(), real[layer].cpu()
    if kwargs["kid"]:
        mean, std = featuremetrics.kid(fake, real, kwargs["kid_subsets"], kwargs["kid_subset_size"], seed=kwargs["rng_seed"])
        metrics[torch_fidelity.KEY_METRIC_KID_MEAN], metrics[torch_fidelity.KEY_METRIC_KID_STD] = mean, std
    if kwargs["prc"]:
        precision, recall = featuremetrics.precision_recall(fake, real, PRC_NEIGHBORHOOD, _real_radii(kwargs, extractor, real))
        metrics[torch_fidelity.KEY_METRIC_PRECISION], metrics[torch_fidelity.KEY_METRIC_RECALL] = precision, recall
    return metrics


def _real_radii(kwargs: dict[str, Any], extractor: Extractor, real_features: torch.Tensor) -> torch.Tensor:
    """The real split's k-NN radii for precision/recall: from the cache entry when caching, else computed."""
    if not kwargs["cache"]:
        return featuremetrics.knn_radii(real_features, PRC_NEIGHBORHOOD)
    path = Path(kwargs["cache_root"]) / f"{kwargs['input2_cache_name']}-{extractor.name}-knn-radii-k{PRC_NEIGHBORHOOD}-{extractor.layer}.pt"
    if path.is_file():
        radii = torch.load(path, weights_only=True)
        if radii.shape == (len(real_features),):
            return radii
    radii = featuremetrics.knn_radii(real_features, PRC_NEIGHBORHOOD)
    atomic_save(radii, path)
    return radii


def _result(
    metrics: dict, settings: EvalSettings, extractor: Extractor, fake_logits: torch.Tensor | None, ref_counts: list[int] | None, n: int, started: float
) -> EvalResult:
    if fake_logits is not None and ref_counts is not None:
        counts, covered, kl = mode_coverage(fake_logits.argmax(dim=1), ref_counts)
        score: float = classifier_inception_score(fake_logits)
    else:
        counts, covered, kl, score = [], NAN, NAN, NAN
    has_kid = settings.kid_subsets > 0
    return EvalResult(
        fid=float(metrics[torch_fidelity.KEY_METRIC_FID]),
        kid_mean=float(metrics[torch_fidelity.KEY_METRIC_KID_MEAN]) if has_kid else NAN,
        kid_std=float(metrics[torch_fidelity.KEY_METRIC_KID_STD]) if has_kid else NAN,
        precision=float(metrics.get(torch_fidelity.KEY_METRIC_PRECISION, NAN)),
        recall=float(metrics.get(torch_fidelity.KEY_METRIC_RECALL, NAN)),
        inception_score=score,
        class_counts=counts,
        classes_covered=covered,
        class_kl=kl,
        fid_extractor=extractor.label,
        seconds=time.perf_counter() - started,
        num_samples=n,
    )


def evaluate_generator(
    generator: torch.nn.Module,
    latent_dim: int,
    dataset: Dataset,
    real_images: torch.Tensor,
    settings: EvalSettings | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    real_labels: torch.Tensor | None = None,
) -> EvalResult:
    """Sample ``settings.num_samples`` images from ``generator`` and compare them with ``real_images``.

    ``generator(z)``, z ~ N(0, 1) of shape (B, latent_dim), returns float
    images in [-1, 1] of the dataset's shape. It runs in eval mode during
    sampling; every submodule's training flag is restored afterwards. The
    noise comes from torch-fidelity's seeded generator, so a seed gives the
    same samples and the same numbers.

    Coverage, class KL and the Inception Score use the dataset's LeNet
    classifier even when the FID uses Inception; they are NaN for datasets
    without a shipped LeNet. The reference class distribution is that of
    ``real_labels`` when given, else the classifier's labelling of
    ``real_images``.
    """
    started = time.perf_counter()
    settings = settings or EvalSettings()
    _check_settings(settings)
    device = _device(device)
    if not isinstance(generator, torch.nn.Module):
        raise GbenchError(f"generator must be a torch.nn.Module, got {type(generator).__name__}")
    _check_seed(seed)
    if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
        raise GbenchError(f"latent_dim={latent_dim!r} is invalid; give the generator's noise size, an integer >= 1")
    if settings.num_samples < _minimum(settings):
        raise GbenchError(
            f"num_samples={settings.num_samples} is too few for precision/recall; give at least {_minimum(settings)} or set precision_recall=False"
        )
    _check_images("real_images", real_images, dataset, _minimum(settings))
    extractor = resolve_extractor(settings, dataset)
    classifier = domain_classifier(dataset, device)
    real = real_images.cpu()
    real_hash = content_hash(real)
    source = GeneratorInput(generator, latent_dim, device, dataset.image_shape, extractor.channels, classifier)
    modes = [(module, module.training) for module in generator.modules()]
    generator.eval()
    try:
        metrics = _fidelity(source, settings.num_samples, real, real_hash, extractor, settings, device, seed)
    finally:
        for module, mode in modes:
            module.train(mode)
    fake_logits = torch.cat(source.logits) if classifier is not None else None
    ref = reference_counts(real, real_hash, real_labels, classifier, dataset, settings, device) if classifier is not None else None
    return _result(metrics, settings, extractor, fake_logits, ref, settings.num_samples, started)


def evaluate_images(
    fake_images: torch.Tensor,
    dataset: Dataset,
    real_images: torch.Tensor,
    settings: EvalSettings | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    real_labels: torch.Tensor | None = None,
) -> EvalResult:
    """Compare two uint8 image sets (all of ``fake_images``; ``settings.num_samples`` is not used).

    For ``gbench fid A B``. The real side is cached like the generator case;
    the class metrics label ``fake_images`` with the dataset's classifier.
    """
    started = time.perf_counter()
    settings = settings or EvalSettings()
    _check_settings(settings)
    _check_seed(seed)
    device = _device(device)
    _check_images("fake_images", fake_images, dataset, _minimum(settings))
    _check_images("real_images", real_images, dataset, _minimum(settings))
    extractor = resolve_extractor(settings, dataset)
    classifier = domain_classifier(dataset, device)
    fake, real = fake_images.cpu(), real_images.cpu()
    real_hash = content_hash(real)
    metrics = _fidelity(ImageSet(_with_channels(fake, extractor.channels)), len(fake), real, real_hash, extractor, settings, device, seed)
    fake_logits = _classify(classifier, fake, settings.batch_size, device) if classifier is not None else None
    ref = reference_counts(real, real_hash, real_labels, classifier, dataset, settings, device) if classifier is not None else None
    return _result(metrics, settings, extractor, fake_logits, ref, len(fake), started)
