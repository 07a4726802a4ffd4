"""Stacked MNIST's modes covered, KL(p_gen || uniform) and
per-channel FID, against independent computations and real digits."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import scipy.linalg
import torch
from conftest import run_cli

from gbench.data import load_split
from gbench.evaluation import extractors
from gbench.evaluation.stacked_modes import (
    STACKED_SAMPLES,
    channel_digits,
    channel_features,
    mode_statistics,
    stacked_fid,
    stacked_fid_label,
    stacked_mnist_modes,
)
from gbench.stacked_mnist import stack_digits, stacked_indices


@pytest.fixture(scope="module")
def mnist_test(registry):
    return load_split(registry.dataset("mnist"), "test")


@pytest.fixture(scope="module")
def lenet():
    return extractors.load_lenet("lenet-mnist")


def test_mode_statistics_match_numpy():
    rng = np.random.default_rng(3)
    modes = rng.integers(0, 600, 5000) * rng.integers(1, 2, 5000)  # modes 600..999 never drawn
    counts = np.bincount(modes, minlength=1000)
    p = counts[counts > 0] / counts.sum()
    stats = mode_statistics(torch.from_numpy(modes))
    assert stats["stacked_modes_covered"] == np.count_nonzero(counts) <= 600
    assert stats["stacked_mode_kl"] == pytest.approx(float(np.sum(p * np.log(p * 1000))), rel=1e-12)


def test_channel_digits_classify_each_channel_on_its_own(mnist_test, lenet):
    images, _ = mnist_test
    samples, _ = stack_digits(images, mnist_test[1], stacked_indices(len(images), 200, seed=5))
    digits = channel_digits(samples, lenet)
    for channel in range(3):
        with torch.inference_mode():
            alone = lenet(samples[:, channel : channel + 1].contiguous())[1].argmax(1)
        assert torch.equal(digits[:, channel], alone)


def test_real_stacked_digits_cover_all_modes_with_kl_near_zero(mnist_test, lenet):
    """26,000 stacked MNIST test digits: 1,000 modes covered and KL 0.0219 nats
    (0.0220 from the true labels; about (K-1)/2N = 0.019 is the sampling floor)."""
    images, labels = mnist_test
    samples, true_modes = stack_digits(images, labels, stacked_indices(len(images), STACKED_SAMPLES, seed=2))
    stats = stacked_mnist_modes(samples, lenet)
    assert stats["stacked_modes_covered"] == 1000
    assert 0.0 < stats["stacked_mode_kl"] < 0.05
    truth = mode_statistics(true_modes)  # the modes the digits' own labels give
    assert abs(stats["stacked_mode_kl"] - truth["stacked_mode_kl"]) < 0.02


def test_one_repeated_image_covers_one_mode(mnist_test, lenet):
    images, labels = mnist_test
    samples, _ = stack_digits(images, labels, torch.tensor([[0, 1, 2]]).expand(500, 3))
    stats = stacked_mnist_modes(samples, lenet)
    assert stats["stacked_modes_covered"] == 1
    assert stats["stacked_mode_kl"] == pytest.approx(math.log(1000))


def test_per_channel_fid_matches_numpy_and_is_labelled(mnist_test, lenet):
    images, labels = mnist_test
    real, _ = stack_digits(images, labels, stacked_indices(len(images), 1500, seed=7))
    # only the first half of the digits
    fake, _ = stack_digits(images, labels, stacked_indices(len(images) // 2, 1500, seed=8))
    features = [channel_features(x, lenet).double().numpy() for x in (fake, real)]
    assert features[0].shape == (1500, 384)
    with torch.inference_mode():
        # the G channel's own features
        assert np.allclose(features[0][:, 128:256], lenet(fake[:, 1:2].contiguous())[0].numpy(), atol=1e-6)
    mu = [f.mean(0) for f in features]
    sigma = [np.cov(f, rowvar=False) for f in features]
    root = scipy.linalg.sqrtm(sigma[0] @ sigma[1]).real
    expected = float(np.sum((mu[0] - mu[1]) ** 2) + np.trace(sigma[0] + sigma[1] - 2 * root))
    assert stacked_fid(fake, real, lenet) == pytest.approx(expected, rel=1e-3)
    assert stacked_fid_label() == "lenet-mnist-per-channel@" + extractors.EXTRACTOR_SHA256["lenet-mnist"][:8]


def test_gbench_fid_on_stacked_mnist_uses_the_per_channel_lenet_and_prints_the_modes(registry, lenet):
    """The default extractor of stacked-mnist is the per-channel LeNet
    (no Inception, offline); the printed numbers match the library's."""
    result = run_cli(
        "fid", "stacked-mnist:test", "stacked-mnist:train", "-n", "1500", "--no-kid", "--no-precision-recall"
    )
    assert result.returncode == 0, result.stderr
    fid_line = dict(part.split("=", 1) for part in re.search(r"^fid=.*$", result.stdout, re.M).group(0).split())
    modes_line = dict(
        part.split("=", 1) for part in re.search(r"^stacked_modes_covered=.*$", result.stdout, re.M).group(0).split()
    )
    fake = load_split(registry.dataset("stacked-mnist"), "test", limit=1500)[0]
    real = load_split(registry.dataset("stacked-mnist"), "train", limit=1500)[0]
    assert fid_line["extractor"] == stacked_fid_label()
    assert float(fid_line["fid"]) == pytest.approx(stacked_fid(fake, real, lenet), rel=1e-3)
    expected = stacked_mnist_modes(fake, lenet)
    assert (
        float(modes_line["stacked_modes_covered"]) == expected["stacked_modes_covered"]
        and int(modes_line["stacked_samples"]) == 1500
    )
    assert float(modes_line["stacked_mode_kl"]) == pytest.approx(expected["stacked_mode_kl"], rel=1e-9)
