"""The torch-fidelity side of an evaluation: its inputs, its checked arguments, the features.

The features every metric reads come from torch-fidelity's ``calculate_metrics``
arguments and steps: the fake side is ``input1`` (a ``GenerativeModelBase``
wrapper of the generator, or an :class:`ImageSet`), the real split is
``input2``, with its feature extractor and its feature cache. The metrics
themselves are plugins (gbench's built-in ones in ``plugins/metrics.py``): by
default KID and precision/recall there come from ``gbench.evaluation.featuremetrics``
(the same subsets and k-NN rule, in batched torch: ~1.5 s instead of ~9 s at
10,000 samples); ``kid_pr_impl="torch-fidelity"`` makes torch-fidelity's own
functions compute them from the same features. torch-fidelity's pitfalls handled here:

- it has no device option, only ``cuda``: gbench passes ``cuda=False`` on CPU
  and runs it inside ``torch.cuda.device(device)`` on a GPU;
- KID's subset size must not exceed the sample counts: it is capped;
- unknown keyword arguments are silently ignored: every name gbench passes is
  checked against a list (and against torch-fidelity's own defaults);
- it loads its feature cache and its Inception weights with
  ``torch.load(weights_only=False)``, which runs a pickle's code: its cache
  stays off (the real split's cache is gbench's, :mod:`gbench.evaluation.realcache`)
  and the weights come as bytes from :func:`gbench.evaluation.extractors.weights_argument`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch_fidelity
from torch_fidelity.defaults import DEFAULTS as FIDELITY_DEFAULTS
from torch_fidelity.generative_model_base import GenerativeModelBase
from torch_fidelity.metric_fid import fid_features_to_statistics
from torch_fidelity.utils import create_feature_extractor, extract_featuresdict_from_input_id_cached

from gbench.data import to_uint8
from gbench.errors import GbenchError
from gbench.evaluation import extractors, featuremetrics, realcache
from gbench.evaluation.extractor_choice import Extractor
from gbench.evaluation.settings import EvalSettings

#: torch-fidelity's default k for precision/recall. Density and coverage use the same k and the
#: same cached real radii (prdc's own default is 5; one k keeps one cache entry and one meaning of "ball").
PRC_NEIGHBORHOOD = 3


def with_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
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
    Each batch is also labelled by the domain classifier (for coverage and IS) and kept, when metrics need them.

    ``labels`` (int64, one per sample, in sample order) makes it a conditional generator's input: each batch
    calls ``generator(z, y)`` with the next ``len(z)`` labels. torch-fidelity is told ``num_classes = 0`` all the
    same: its own conditional path draws random labels from the noise's generator, which would change the noise
    (and the labels would not be balanced); here the noise is drawn exactly as for an unconditional generator.
    """

    def __init__(
        self,
        generator: torch.nn.Module,
        latent_dim: int,
        device: torch.device,
        image_shape: tuple,
        channels: int,
        classifier: torch.nn.Module | None,
        keep_images: bool = False,
        labels: torch.Tensor | None = None,
    ):
        super().__init__()
        object.__setattr__(self, "_generator", generator)
        object.__setattr__(self, "_classifier", classifier)
        self._latent_dim, self._device, self._shape, self._channels = latent_dim, device, tuple(image_shape), channels
        self._keep_images = keep_images
        self._labels, self.generated = labels, 0  # generated: samples so far, the offset of the next batch's labels
        self.logits: list[torch.Tensor] = []
        self.images: list[torch.Tensor] = []  # the generated uint8 images, on the CPU, when a metric needs "samples"

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
        fake = self._generate(z.to(self._device))
        self.generated += len(z)
        if not torch.is_tensor(fake) or tuple(fake.shape[1:]) != self._shape or len(fake) != len(z):
            got = tuple(fake.shape) if torch.is_tensor(fake) else type(fake).__name__
            raise GbenchError(
                f"the generator returned {got} for {len(z)} noise vectors; "
                f"it must return ({len(z)}, {', '.join(map(str, self._shape))}) images in [-1, 1]"
            )
        images = to_uint8(fake)
        if self._classifier is not None:
            self.logits.append(self._classifier(images)[1].float().cpu())
        if self._keep_images:
            self.images.append(images.cpu())
        return with_channels(images, self._channels)

    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        if self._labels is None:
            return self._generator(z)
        y = self._labels[self.generated : self.generated + len(z)]
        if len(y) != len(z):  # torch-fidelity asked for more samples than there are labels
            raise GbenchError(f"the evaluation asked for sample {self.generated + len(z)} of {len(self._labels)}")
        try:
            return self._generator(z, y.to(self._device))
        except TypeError as error:
            raise GbenchError(
                f"the generator cannot be called as generator(z, y) ({error}); "
                "evaluate an unconditional generator with num_classes=0"
            ) from None


# Every keyword gbench hands to calculate_metrics. torch-fidelity silently
# ignores names it does not know, so a typo or a name a later release renames
# would quietly fall back to a default; checked_kwargs refuses both.
FIDELITY_KWARGS = frozenset(
    (
        "input1 input2 cuda batch_size fid kid prc feature_extractor feature_layer_fid feature_layer_kid "
        "feature_layer_prc feature_extractor_weights_path kid_subsets kid_subset_size prc_neighborhood save_cpu_ram "
        "cache input1_model_num_samples rng_seed verbose"
    ).split()
)


def checked_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    for name in kwargs:
        if name not in FIDELITY_KWARGS:
            raise GbenchError(
                f"calculate_metrics argument {name!r} is not on gbench's checked list; "
                "add it to FIDELITY_KWARGS once its meaning is verified"
            )
        if name not in FIDELITY_DEFAULTS:
            raise GbenchError(
                f"torch-fidelity {torch_fidelity.__version__} has no argument {name!r} (it would be ignored silently); "
                "install the torch-fidelity 0.4 series"
            )
    return kwargs


def fidelity_kwargs(
    input1: Any,
    n1: int,
    real: torch.Tensor,
    real_hash: str,
    extractor: Extractor,
    settings: EvalSettings,
    device: torch.device,
    seed: int,
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
        # torch-fidelity's cache unpickles with weights_only=False: gbench keeps the real split's cache itself
        # (realcache).
        "cache": False,
        **extractors.weights_argument(extractor),
    }
    if isinstance(input1, GenerativeModelBase):
        kwargs["input1_model_num_samples"] = n1
    return checked_kwargs(kwargs)


@dataclass(frozen=True)
class Features:
    """One evaluation's features, computed once for every registered metric (gbench.plugins.registry.MetricInputs)."""

    fake: torch.Tensor  # (N, D) float32, CPU
    real: torch.Tensor
    real_statistics: dict[str, Any]  # torch-fidelity's FID statistics of the real side: {"mu", "sigma"}
    real_radii: Callable[[int], torch.Tensor]  # k -> the real features' k-NN radii, cached next to the features


def extract_features(
    input1: Any,
    n1: int,
    real: torch.Tensor,
    real_hash: str,
    extractor: Extractor,
    settings: EvalSettings,
    device: torch.device,
    seed: int,
) -> Features:
    """The extractor's features of both sides, as inside torch-fidelity's ``calculate_metrics``.

    The features come from torch-fidelity's extractor exactly as inside
    calculate_metrics (``calculate_metrics_one_feature_extractor``), the real
    split's from gbench's cache when ``settings.cache`` (computed and stored
    on the first call), with torch-fidelity's FID statistics of them.
    """
    cuda = device.type == "cuda"
    real = with_channels(real, extractor.channels)
    kwargs = fidelity_kwargs(input1, n1, real, real_hash, extractor, settings, device, seed)
    name, root = realcache.real_cache_name(real_hash, extractor), realcache.fid_cache_root()
    entry = realcache.load_real_cache(name, extractor, root) if settings.cache else None
    if extractor.name == extractors.INCEPTION and not cuda:
        count = n1 + (0 if entry is not None else len(real))
        seconds = count * extractors.INCEPTION_CPU_SECONDS_PER_IMAGE
        print(
            f"gbench: Inception on CPU: {count} images at about {extractors.INCEPTION_CPU_SECONDS_PER_IMAGE} s each, "
            f"about {seconds / 60:.1f} min (the LeNet extractor takes seconds)",
            file=sys.stderr,
            flush=True,
        )
    layer = extractor.layer
    # On a GPU, make `device` the current one: torch-fidelity's .cuda() calls go there.
    with torch.cuda.device(device) if cuda else contextlib.nullcontext():
        if settings.cache and entry is None:
            entry = realcache.ensure_real_cache(real, name, extractor, root, cuda, settings.batch_size)
        model = create_feature_extractor(extractor.name, [layer], **kwargs)
        fake = extract_featuresdict_from_input_id_cached(1, model, **kwargs)[layer].cpu()
        if entry is None:
            real_features = extract_featuresdict_from_input_id_cached(2, model, **kwargs)[layer].cpu()
            real_statistics = fid_features_to_statistics(real_features)
        else:
            real_features, real_statistics = entry

    def real_radii(
        k: int,
    ) -> torch.Tensor:  # of the unit-length features, as the k-NN metrics measure (featuremetrics.unit_length)
        unit = featuremetrics.unit_length(real_features)
        return realcache.real_radii(
            unit, k, realcache.radii_cache_file(root, name, extractor, k) if settings.cache else None
        )

    return Features(fake, real_features, real_statistics, real_radii)
