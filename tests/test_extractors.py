"""The shipped LeNet extractors and the Inception weights handling (CPU, offline)."""

from __future__ import annotations

import hashlib
import os
import re

import pytest
import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from gbench.data import load_split
from gbench.errors import GbenchError
from gbench.evaluation import extractor_training, extractors, inception_weights, weights_files
from gbench.plugins.loading import load_plugins

FLOORS = {"lenet-mnist": ("mnist", 0.990), "lenet-fashion-mnist": ("fashion-mnist", 0.90)}


@pytest.fixture(scope="module")
def reg():
    return load_plugins().registry


@pytest.mark.parametrize("name", sorted(extractors.LENET_DATASETS))
def test_shipped_weights_match_the_hash_in_the_code(name):
    path = extractors.lenet_weights_path(name)
    expected = extractors.EXTRACTOR_SHA256[name]
    assert re.fullmatch(r"[0-9a-f]{64}", expected)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected
    assert path.stat().st_size < 1_000_000
    assert extractors.extractor_label(name) == f"{name}@{expected[:8]}"


@pytest.mark.parametrize("name", sorted(extractors.LENET_DATASETS))
def test_shipped_weights_reach_their_test_accuracy(name, reg):
    dataset_name, floor = FLOORS[name]
    try:
        images, labels = load_split(reg.dataset(dataset_name), "test")
    except GbenchError as missing:  # Fashion-MNIST is optional (Debian's dataset-fashion-mnist)
        pytest.skip(str(missing))
    net = extractors.load_lenet(name)
    assert extractor_training.accuracy(net, images, labels) >= floor


def test_altered_weights_are_refused(monkeypatch):
    monkeypatch.setitem(extractors.EXTRACTOR_SHA256, "lenet-mnist", "0" * 64)
    with pytest.raises(GbenchError, match="SHA-256"):
        extractors.load_lenet("lenet-mnist")


def test_registration_is_idempotent_and_refuses_a_foreign_owner(monkeypatch):
    extractors.register_extractors()
    extractors.register_extractors()
    for name in extractors.LENET_DATASETS:
        assert FEATURE_EXTRACTORS_REGISTRY[name] is extractors.LeNetFeatureExtractor
    monkeypatch.setitem(FEATURE_EXTRACTORS_REGISTRY, "lenet-mnist", FeatureExtractorInceptionV3)
    with pytest.raises(GbenchError, match="lenet-mnist"):
        extractors.register_extractors()


def test_extractor_takes_uint8_28x28_as_is_and_gives_penultimate_features(reg):
    extractors.register_extractors()
    images, _ = load_split(reg.dataset("mnist"), "test", limit=64)
    model = extractors.LeNetFeatureExtractor("lenet-mnist", ["128", "logits"])
    features, logits = model(images)
    assert features.shape == (64, 128) and logits.shape == (64, 10)
    net = extractors.load_lenet("lenet-mnist")
    # The logits are the last layer applied to the (post-ReLU) features: features are the penultimate layer.
    assert torch.allclose(net.fc2(torch.relu(features)), logits, atol=1e-5)
    # Features are scaled to about unit RMS, the scale KID's polynomial kernel expects.
    assert 0.3 < features.square().mean().sqrt() < 3
    with pytest.raises(ValueError, match="uint8"):
        model(images.float())
    with pytest.raises(ValueError, match="28x28"):
        model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_unknown_extractor_lists_the_known_ones():
    with pytest.raises(GbenchError, match="lenet-fashion-mnist"):
        extractors.extractor_label("lenet-cifar")


def test_missing_inception_weights_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(GbenchError, match="nope.pth"):
        inception_weights.resolve_inception_weights(str(missing))


def test_offline_without_inception_weights_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("GBENCH_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(GbenchError, match="give --inception-weights PATH"):
        inception_weights.resolve_inception_weights(None)


def test_random_inception_weights_have_the_right_shapes(tmp_path):
    path = inception_weights.write_random_inception_weights(tmp_path / "inception.pt")
    # torch-fidelity's own class loads them strictly (every key, every shape).
    model = FeatureExtractorInceptionV3("inception-v3-compat", ["64"], feature_extractor_weights_path=str(path))
    (features,) = model(torch.randint(0, 256, (2, 3, 28, 28), dtype=torch.uint8))
    assert features.shape == (2, 64) and torch.isfinite(features).all()
    assert (
        extractors.extractor_label("inception-v3-compat", path)
        == f"inception-v3-compat@{weights_files.file_sha256(path)[:8]}"
    )


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("GBENCH_SLOW_TESTS"), reason="retrains the MNIST extractor (minutes); set GBENCH_SLOW_TESTS=1"
)
def test_training_reproduces_the_shipped_mnist_weights():
    state, accuracy = extractor_training.train_extractor(
        load_plugins().registry.dataset("mnist"), seed=0, verbose=False
    )
    assert accuracy >= 0.99
    assert (
        hashlib.sha256(weights_files.state_dict_bytes(state)).hexdigest() == extractors.EXTRACTOR_SHA256["lenet-mnist"]
    )


def test_grey_images_stored_as_rgb_give_the_grey_features_and_real_colour_is_refused(reg):
    # torch-fidelity reads a PNG folder as RGB: a grey image arrives with three equal channels.
    extractors.register_extractors()
    model = extractors.LeNetFeatureExtractor("lenet-mnist", ["128"])
    grey = load_split(reg.dataset("mnist"), "test", limit=64)[0]
    (from_grey,) = model(grey)
    (from_rgb,) = model(grey.expand(-1, 3, -1, -1).contiguous())
    assert torch.equal(from_grey, from_rgb)
    coloured = grey.repeat(1, 3, 1, 1)
    coloured[0, 2, 14, 14] ^= 1
    with pytest.raises(Exception, match="channels that differ"):
        model(coloured)
