"""Stacked MNIST's mode metrics (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018) and its per-channel FID.

Each generated 3x28x28 sample is split into its three channels, each channel
is classified as a digit by the shipped MNIST LeNet (``lenet-mnist``), and the
sample's mode is ``100 * d0 + 10 * d1 + d2``, one of 1,000. From 26,000 samples
(the papers' count):

- ``stacked_modes_covered``: modes with at least one sample, out of 1,000
  (both papers count a mode as covered when any sample lands in it);
- ``stacked_mode_kl``: KL(p_gen || uniform) = sum_m p(m) log(1000 p(m)), in
  nats, p the generated mode distribution. This is the direction of both
  papers' tables (PacGAN's code calls scipy's ``entropy(p_gen, uniform)``):
  finite when modes are dropped, log(1000) = 6.908 for a total collapse, and
  sometimes called the reverse KL because the model's distribution comes first.

The FID reported beside them is computed on the concatenated 128-d LeNet
features of the three channels (384-d), labelled ``lenet-mnist-per-channel@``
with the LeNet weights' SHA-256 prefix: comparable only with FIDs of that label.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch_fidelity
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.helpers import vassert
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from gbench.errors import GbenchError
from gbench.evaluation import extractors

__all__ = [
    "PER_CHANNEL",
    "STACKED_MODES",
    "STACKED_SAMPLES",
    "PerChannelLeNet",
    "channel_digits",
    "channel_features",
    "mode_statistics",
    "stacked_fid",
    "stacked_fid_label",
    "stacked_mnist_modes",
]

STACKED_MODES = 1000
#: Generated samples per evaluation in VEEGAN's and PacGAN's tables.
STACKED_SAMPLES = 26_000
_CLASSIFIER = "lenet-mnist"
#: The torch-fidelity extractor of the per-channel features: the default FID extractor of dataset ``stacked-mnist``.
PER_CHANNEL = "lenet-mnist-per-channel"
STACKED_DATASET = "stacked-mnist"


def _channels_as_digits(samples: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 3, 28, 28)`` -> ``(3N, 1, 28, 28)``, sample-major (sample 0's R, G, B first)."""
    if samples.dtype != torch.uint8 or samples.dim() != 4 or tuple(samples.shape[1:]) != (3, 28, 28):
        raise GbenchError(
            "Stacked MNIST metrics take uint8 samples of shape (N, 3, 28, 28), got "
            f"{samples.dtype} {tuple(samples.shape)}; convert with gbench.data.to_uint8"
        )
    return samples.reshape(-1, 1, 28, 28)


def _lenet(classifier: extractors.LeNet | None) -> extractors.LeNet:
    return classifier if classifier is not None else extractors.load_lenet(_CLASSIFIER)


def channel_digits(
    samples: torch.Tensor, classifier: extractors.LeNet | None = None, batch_size: int = 3000
) -> torch.Tensor:
    """``(N, 3)`` int64: the digit the MNIST LeNet reads in each channel of each sample."""
    net, digits = _lenet(classifier), _channels_as_digits(samples)
    device = net.fc1.weight.device
    with torch.inference_mode():
        labels = torch.cat([net(batch.to(device))[1].argmax(1).cpu() for batch in digits.split(batch_size)])
    return labels.reshape(-1, 3)


def mode_statistics(modes: torch.Tensor) -> dict[str, float]:
    """Modes covered (at least one sample) and KL(p_gen || uniform over 1,000) in nats, from mode indices 0..999."""
    if modes.numel() == 0:
        raise GbenchError("Stacked MNIST metrics need at least one sample")
    counts = torch.bincount(modes.flatten().long(), minlength=STACKED_MODES).double()
    p = counts / counts.sum()
    present = p > 0
    kl = float((p[present] * (p[present] * STACKED_MODES).log()).sum())
    return {"stacked_modes_covered": float(int(present.sum())), "stacked_mode_kl": kl}


def stacked_mnist_modes(
    samples: torch.Tensor, classifier: extractors.LeNet | None = None, batch_size: int = 3000
) -> dict[str, float]:
    """uint8 ``(N, 3, 28, 28)`` samples -> ``{"stacked_modes_covered":
    ..., "stacked_mode_kl": ...}`` (see the module docstring)."""
    digits = channel_digits(samples, classifier, batch_size)
    return mode_statistics(digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2])


def channel_features(
    samples: torch.Tensor, net: extractors.LeNet | None = None, batch_size: int = 3000
) -> torch.Tensor:
    """``(N, 384)`` float32: the LeNet's 128-d features of the R, G and B channels, side by side."""
    lenet, digits = _lenet(net), _channels_as_digits(samples)
    device = lenet.fc1.weight.device
    with torch.inference_mode():
        features = torch.cat([lenet(batch.to(device))[0].float().cpu() for batch in digits.split(batch_size)])
    return features.reshape(len(samples), 3 * features.shape[1])


def stacked_fid(fake: torch.Tensor, real: torch.Tensor, net: extractors.LeNet | None = None) -> float:
    """FID between two uint8 Stacked MNIST sets on
    :func:`channel_features` (torch-fidelity's statistics and formula)."""
    lenet = _lenet(net)
    if min(len(fake), len(real)) < 2:
        raise GbenchError(f"a FID needs at least 2 images on each side, got {len(fake)} generated and {len(real)} real")
    stats = [fid_features_to_statistics(channel_features(images, lenet)) for images in (fake, real)]
    fid = float(fid_statistics_to_metric(stats[0], stats[1], verbose=False)["frechet_inception_distance"])
    return fid if math.isfinite(fid) else float(np.nan)


def stacked_fid_label() -> str:
    """``"lenet-mnist-per-channel@1a2b3c4d"``: the per-channel features and the LeNet weights they come from."""
    return extractors.extractor_label(_CLASSIFIER).replace(_CLASSIFIER, PER_CHANNEL, 1)


class PerChannelLeNet(FeatureExtractorBase):
    """torch-fidelity's view of :func:`channel_features`: layer ``"384"``, so ``gbench fid`` and evaluations of
    ``stacked-mnist`` get the per-channel FID (and KID, precision/recall on the same features) without Inception."""

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)
        self.net = extractors.load_lenet(_CLASSIFIER)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x):
        vassert(
            torch.is_tensor(x) and x.dtype == torch.uint8 and tuple(x.shape[1:]) == (3, 28, 28),
            "expecting uint8 Bx3x28x28 Stacked MNIST images",
        )
        return (channel_features(x, self.net).to(x.device),)

    @staticmethod
    def get_provided_features_list():
        return ("384",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "384"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 28, 28, dtype=torch.uint8)


def register_per_channel() -> None:
    """Register :class:`PerChannelLeNet` with torch-fidelity; safe to call any number of times."""
    if FEATURE_EXTRACTORS_REGISTRY.get(PER_CHANNEL) is not PerChannelLeNet:
        FEATURE_EXTRACTORS_REGISTRY.pop(PER_CHANNEL, None)
        torch_fidelity.register_feature_extractor(PER_CHANNEL, PerChannelLeNet)
