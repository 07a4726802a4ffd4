"""Feature extractors for FID/KID/precision-recall, registered with torch-fidelity.

Two families:

- ``lenet-mnist`` / ``lenet-fashion-mnist`` (the default): a small CNN
  classifier per dataset whose trained weights ship in ``gbench/weights/``, so
  every gbench user computes the same FID. Features are the 128-d
  penultimate layer (before its ReLU, so no dead units make the covariance
  singular); the logits serve the class-based metrics (mode coverage, the
  classifier-based Inception Score). It takes uint8 ``(B, 1, 28, 28)`` images
  as they are: no resizing, no colour conversion; ``(B, 3, 28, 28)`` grey
  images stored as RGB (how torch-fidelity reads a PNG folder) are accepted
  when their three channels are equal.
- ``inception-v3-compat``: torch-fidelity's standard Inception, selected with
  extractor ``"inception"``. Its weights come from an explicit file or from
  torch-fidelity's release URL (downloaded once into torch.hub's folder).

Every result names its extractor with the first 8 hex digits of the SHA-256 of
the weights file (``lenet-mnist@1a2b3c4d``), so two FIDs are comparable only
when their labels match.

``gbench.evaluation.extractor_training`` reproduces the shipped LeNet weights from a
fixed seed (``gbench extractor train mnist``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch_fidelity
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.helpers import vassert
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from gbench.errors import GbenchError
from gbench.evaluation.inception_weights import INCEPTION, inception_hub_path

# Reached as extractors.<name> by modules other branches are editing (fidelity.py, realcache.py): kept until they import
# them from inception_weights.
from gbench.evaluation.inception_weights import INCEPTION_CPU_SECONDS_PER_IMAGE as INCEPTION_CPU_SECONDS_PER_IMAGE
from gbench.evaluation.inception_weights import weights_argument as weights_argument
from gbench.evaluation.weights_files import verified_state_dict, weights_sha256

__all__ = ["LeNet", "LeNetFeatureExtractor", "extractor_label", "register_extractors"]  # the public API (docs/api.md)

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"  # gbench/weights/, the package data of pyproject.toml

#: Extractor name -> the gbench dataset whose test split it was trained for.
LENET_DATASETS = {"lenet-mnist": "mnist", "lenet-fashion-mnist": "fashion-mnist"}

#: SHA-256 of the shipped weight files (``sha256sum gbench/weights/*.pt``).
#: ``train_extractor`` on this code, seed 0, CPU, reproduces them.
EXTRACTOR_SHA256 = {
    "lenet-mnist": "712ee8909f6771d04649d6a83af60f0bb7dc9f7a06e20043bb709b23dbe09df2",
    "lenet-fashion-mnist": "9deeb78a109b8c802f5e5aff724105e6486e826199e23bcf671c7f2741ed7148",
}


FEATURES = "128"  # torch-fidelity names feature layers by their width
LOGITS = "logits"


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------


class LeNet(nn.Module):
    """conv5x5(16) -> pool -> conv5x5(32) -> pool -> fc 128 (features) -> fc 10.

    Small on purpose: 10,000 images must go through it in about a second on a
    2-core CPU, and the weights stay near 300 KB.
    """

    def __init__(self, num_classes: int = 10, image_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        channels, height, width = image_shape
        if min(height, width) < 16:
            raise GbenchError(f"a LeNet extractor needs images of at least 16x16, not {height}x{width}")
        self.image_shape = tuple(image_shape)  # the domain LeNet of a colour set takes its C x H x W as they are
        self.channels_last = False  # set by load_lenet: about 1.5x faster convolutions on CPU
        self.conv1 = nn.Conv2d(channels, 16, 5)  # 28 -> 24, pooled to 12
        self.conv2 = nn.Conv2d(16, 32, 5)  # 12 -> 8, pooled to 4
        self.fc1 = nn.Linear(32 * (((height - 4) // 2 - 4) // 2) * (((width - 4) // 2 - 4) // 2), 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, images_u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 ``(B, C, H, W)`` (the shipped ones: ``(B, 1, 28,
        28)``) -> (features ``(B, 128)``, logits ``(B, classes)``)."""
        x = images_u8.to(self.fc1.weight.dtype) * (1.0 / 255.0)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        features = self.fc1(x.flatten(1))
        return features, self.fc2(F.relu(features))


def shipped_lenet(dataset_name: str) -> str | None:
    """The LeNet extractor shipped for a dataset (``lenet-mnist``), or None: the one place that pairs them."""
    name = f"lenet-{dataset_name}"
    return name if name in LENET_DATASETS else None


def lenet_weights_path(name: str) -> Path:
    return WEIGHTS_DIR / f"{name}.pt"


def load_lenet(name: str, device: torch.device | str = "cpu") -> LeNet:
    """The shipped classifier ``name``, checked against :data:`EXTRACTOR_SHA256`, in eval mode."""
    if name not in LENET_DATASETS:
        raise GbenchError(f"unknown LeNet extractor {name!r}; known: {', '.join(sorted(LENET_DATASETS))}")
    path = lenet_weights_path(name)
    if not path.is_file():
        raise GbenchError(
            f"weights of {name} are missing at {path}; reinstall gbench or run "
            f"`gbench extractor train {LENET_DATASETS[name]}`"
        )
    expected = EXTRACTOR_SHA256.get(name)
    if expected and weights_sha256(path) != expected:
        raise GbenchError(
            f"{path} has SHA-256 {weights_sha256(path)[:8]}..., not the shipped {expected[:8]}...; "
            f"reinstall gbench (or update EXTRACTOR_SHA256 after retraining on purpose)"
        )
    return _ready(_from_file(path), device)


#: The key of a domain LeNet's weights file that holds its input ``(C, H, W)``; the shipped files lack it (1x28x28).
IMAGE_SHAPE_KEY = "gbench_image_shape"


def _from_file(path: str | os.PathLike) -> LeNet:
    fix = "give LeNet weights written by `gbench extractor train`"
    state = dict(verified_state_dict(path, fix))
    shape = state.pop(IMAGE_SHAPE_KEY, torch.tensor([1, 28, 28]))
    classes = state.get("fc2.bias", torch.zeros(10)).shape[0]
    try:
        net = LeNet(classes, tuple(int(v) for v in shape.flatten()[:3]))  # type: ignore[arg-type]
        net.load_state_dict(state)
    except (RuntimeError, ValueError) as error:  # other keys or shapes: torch's message is many lines
        raise GbenchError(
            f"{str(path)!r} does not fit the LeNet extractor ({str(error).splitlines()[0][:120]}); {fix}"
        ) from None
    return net


def _ready(net: LeNet, device: torch.device | str = "cpu") -> LeNet:
    """Inference form: eval mode, no grads, channels-last convolutions."""
    net.channels_last = True
    # Two calls: torch's typing has no overload of Module.to taking both a device and a memory format.
    return net.to(device).to(memory_format=torch.channels_last).eval().requires_grad_(False)


def extractor_label(name: str, weights_path: str | os.PathLike | None = None) -> str:
    """``"lenet-mnist@1a2b3c4d"``: the extractor and the first 8 hex digits of its weights' SHA-256."""
    if name in LENET_DATASETS:
        path = weights_path or lenet_weights_path(name)
    elif name == INCEPTION:
        path = weights_path or inception_hub_path()
    elif name.startswith("lenet-") and weights_path is not None:  # a domain LeNet trained by `gbench extractor train`
        path = weights_path
    else:
        raise GbenchError(f"unknown extractor {name!r}; known: {', '.join(sorted(LENET_DATASETS) + [INCEPTION])}")
    if not Path(path).is_file():
        raise GbenchError(f"weights of extractor {name} not found at {path}; give an existing file")
    return f"{name}@{weights_sha256(path)[:8]}"


# ---------------------------------------------------------------------------
# torch-fidelity integration
# ---------------------------------------------------------------------------


class LeNetFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity's view of a shipped LeNet: features ``"128"`` and ``"logits"``.

    torch-fidelity builds it as ``cls(name, features_list, **calculate_metrics_kwargs)``;
    the name picks the shipped weights, and ``feature_extractor_weights_path``
    (when given) replaces them.
    """

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            self.net = load_lenet(name)
        else:
            self.net = _ready(_from_file(feature_extractor_weights_path))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x):
        vassert(torch.is_tensor(x) and x.dtype == torch.uint8, "Expecting image as torch.Tensor with dtype=torch.uint8")
        channels, height, width = self.net.image_shape
        vassert(
            x.dim() == 4 and tuple(x.shape[2:]) == (height, width) and x.shape[1] in (channels, 3),
            f"this LeNet extractor takes Bx{channels}x{height}x{width} images, got {tuple(x.shape)}",
        )
        if x.shape[1] != channels:
            # torch-fidelity reads a folder of PNGs as RGB (PIL's convert("RGB") repeats a grey
            # image's one channel), so `gbench sample -o DIR` output reaches us with 3 equal channels.
            vassert(
                bool((x[:, 1:] == x[:, :1]).all()),
                "LeNet extractors take grey images; these RGB images have channels that differ",
            )
            x = x[:, :1]
        features, logits = self.net(x.to(self.net.fc1.weight.device))
        out = {FEATURES: features, LOGITS: logits}
        return tuple(out[name] for name in self.features_list)

    @staticmethod
    def get_provided_features_list():
        return FEATURES, LOGITS

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": LOGITS, "fid": FEATURES, "kid": FEATURES, "prc": FEATURES}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 1, 28, 28, dtype=torch.uint8)


def register_extractors() -> None:
    """Register the LeNet extractors with torch-fidelity; safe to call any number of times."""
    for name in LENET_DATASETS:
        existing = FEATURE_EXTRACTORS_REGISTRY.get(name)
        if existing is LeNetFeatureExtractor:
            continue
        if existing is not None:
            raise GbenchError(
                f"torch-fidelity already has a feature extractor named {name!r} "
                f"({existing.__module__}.{existing.__name__}); "
                f"remove that registration, gbench needs the name"
            )
        torch_fidelity.register_feature_extractor(name, LeNetFeatureExtractor)


def register_domain_lenet(name: str) -> None:
    """Register a trained domain LeNet's name with torch-fidelity (it gets its weights path at each use)."""
    existing = FEATURE_EXTRACTORS_REGISTRY.get(name)
    if existing is None:
        torch_fidelity.register_feature_extractor(name, LeNetFeatureExtractor)
    elif existing is not LeNetFeatureExtractor:
        raise GbenchError(
            f"torch-fidelity already has a feature extractor named {name!r} "
            f"({existing.__module__}.{existing.__name__}); retrain under another dataset name"
        )
