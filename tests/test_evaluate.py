"""gbench.evaluation.evaluate: correctness of FID/KID/PR through torch-fidelity, its pitfalls, class metrics.

Real MNIST (GBENCH_DATA), CPU, offline, small sets (1,000-2,000 images).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
import torch_fidelity
from torch_fidelity.metric_isc import isc_features_to_metric

import gbench.evaluation.evaluate as ev
from gbench.data import load_split
from gbench.errors import GbenchError
from gbench.evaluation import (
    classmetrics,
    extractors,
    fidelity,
    fidinfinity,
    inception_weights,
    realcache,
    weights_files,
)
from gbench.evaluation.evaluate import EvalSettings, evaluate_generator, evaluate_images
from gbench.evaluation.extractor_choice import Extractor, resolve_extractor

# KID and precision/recall cost most of the time; tests that do not look at them skip them.
FAST = dict(kid_subsets=0, precision_recall=False)

#: each test computes the real split's features in a cache of its own (conftest.private_cache)
pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def test_split(mnist):
    return load_split(mnist, "test")


@pytest.fixture(scope="module")
def train_split(mnist):
    return load_split(mnist, "train", limit=2000)


@pytest.fixture(scope="module")
def noise():
    return torch.randint(0, 256, (1000, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


class BankGenerator(torch.nn.Module):
    """A test generator that returns stored images picked by the noise.

    Its dropout would wreck the images in training mode, so results show
    whether evaluation switched it to eval mode.
    """

    def __init__(self, images_u8: torch.Tensor):
        super().__init__()
        self.register_buffer("bank", images_u8.float() / 127.5 - 1)
        self.dropout = torch.nn.Dropout(0.5)
        self.norm = torch.nn.BatchNorm1d(4)  # unused; its training flag must survive evaluation

    def forward(self, z):
        index = (z[:, 0].abs() * 1e6).long() % len(self.bank)
        return self.dropout(self.bank[index])


def lenet_features(images: torch.Tensor) -> np.ndarray:
    net = extractors.load_lenet("lenet-mnist")
    with torch.no_grad():
        return torch.cat([net(batch)[0] for batch in images.split(500)]).double().numpy()


# ---------------------------------------------------------------------------
# Point 7: correctness
# ---------------------------------------------------------------------------


def test_frechet_distance_equals_an_independent_scipy_computation(mnist, test_split, train_split):
    fake, real = train_split[0][:1000], test_split[0][:2000]
    result = evaluate_images(fake, mnist, real, EvalSettings(**FAST, cache=False))
    a, b = lenet_features(fake), lenet_features(real)
    mu_a, mu_b = a.mean(0), b.mean(0)
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(sigma_a @ sigma_b).real
    expected = float(((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2 * np.trace(covmean))
    assert abs(result.fid - expected) / expected < 1e-4


def test_real_images_score_far_better_than_noise(mnist, test_split, train_split, noise):
    settings = EvalSettings(kid_subsets=20, kid_subset_size=500)
    real = test_split[0][:2000]
    good = evaluate_images(train_split[0][:1000], mnist, real, settings)
    bad = evaluate_images(noise, mnist, real, settings)
    assert good.fid * 20 < bad.fid
    assert good.kid_mean * 20 < bad.kid_mean
    assert good.precision > 0.6 and good.recall > 0.6
    assert bad.precision < 0.1 and bad.recall < 0.1


def test_fid_is_symmetric_and_independent_of_sample_order(mnist, test_split, train_split):
    settings = EvalSettings(**FAST, cache=False)
    a, b = train_split[0][:1000], test_split[0][:1000]
    ab = evaluate_images(a, mnist, b, settings).fid
    ba = evaluate_images(b, mnist, a, settings).fid
    shuffled = evaluate_images(
        a[torch.randperm(len(a), generator=torch.Generator().manual_seed(1))], mnist, b, settings
    ).fid
    assert ab == pytest.approx(ba, rel=1e-5)
    assert ab == pytest.approx(shuffled, rel=1e-5)


def test_kid_of_a_set_against_itself_is_about_zero(mnist, test_split, noise):
    settings = EvalSettings(kid_subsets=20, kid_subset_size=500, precision_recall=False)
    real = test_split[0][:2000]
    itself = evaluate_images(real, mnist, real, settings)
    bad = evaluate_images(noise, mnist, real, settings)
    # Subsets of one set overlap, which biases the unbiased estimator slightly below 0.
    assert abs(itself.kid_mean) < 0.01 * bad.kid_mean and abs(itself.kid_mean) < 3 * itself.kid_std
    assert abs(itself.fid) < 1e-6 * bad.fid


# ---------------------------------------------------------------------------
# Point 3: torch-fidelity pitfalls
# ---------------------------------------------------------------------------


def test_cache_is_keyed_by_content_reused_and_equal_to_the_uncached_path(
    mnist, test_split, train_split, private_cache, monkeypatch
):
    generator = BankGenerator(train_split[0])
    real = test_split[0][:1000]
    settings = EvalSettings(num_samples=500, kid_subsets=10, kid_subset_size=500)
    first = evaluate_generator(generator, 8, mnist, real, settings)
    files = sorted(p.name for p in private_cache.iterdir())
    # features, FID stats, k-NN radii, class counts
    assert len(files) == 4 and not [name for name in files if name.endswith(".tmp")]

    # A warm cache must not touch the real images: torch-fidelity would read them through ImageSet.
    def refuse(*args):
        raise AssertionError("real images read although their statistics are cached")

    with monkeypatch.context() as patch:
        patch.setattr(fidelity.ImageSet, "__getitem__", refuse)
        patch.setattr(fidelity.ImageSet, "__getitems__", refuse)
        patch.setattr(realcache, "ensure_real_cache", refuse)
        second = evaluate_generator(generator, 8, mnist, real, settings)
    uncached = evaluate_generator(
        generator, 8, mnist, real, EvalSettings(num_samples=500, kid_subsets=10, kid_subset_size=500, cache=False)
    )
    for field in ("fid", "kid_mean", "precision", "recall"):
        assert getattr(second, field) == getattr(first, field)
        assert getattr(uncached, field) == pytest.approx(getattr(first, field), rel=1e-5)

    # Same name, different content: a new entry, not a stale hit.
    changed = real.clone()
    changed[0, 0, 0, 0] ^= 1
    evaluate_generator(generator, 8, mnist, changed, EvalSettings(num_samples=200, **FAST))
    assert len(list(private_cache.iterdir())) == 7


def test_cache_name_depends_on_the_extractor_weights(mnist, tmp_path):
    extractor = resolve_extractor(None, mnist)
    other_weights = tmp_path / "other.pt"
    other_weights.write_bytes(extractor.weights.read_bytes() + b"\0")
    other = Extractor(extractor.name, other_weights, extractor.label, extractor.layer, extractor.channels, True)
    assert realcache.real_cache_name("abc", extractor) != realcache.real_cache_name("abc", other)
    assert realcache.real_cache_name("abc", extractor) != realcache.real_cache_name("abd", extractor)


def test_cuda_flag_follows_the_device(mnist, test_split):
    extractor = resolve_extractor(None, mnist)
    real = test_split[0][:100]
    for device, expected in (("cpu", False), ("cuda", True), ("cuda:1", True)):
        kwargs = fidelity.fidelity_kwargs(
            fidelity.ImageSet(real), 100, real, "hash", extractor, EvalSettings(), torch.device(device), 0
        )
        assert kwargs["cuda"] is expected


@pytest.mark.parametrize("impl", ev.KID_PR_IMPLS)
def test_kid_subset_size_is_capped_at_the_sample_counts(mnist, test_split, train_split, monkeypatch, impl):
    seen = {}
    real_call = fidelity.extract_featuresdict_from_input_id_cached  # both implementations extract through it

    def spy(input_id, model, **kwargs):
        seen.update(kwargs)
        return real_call(input_id, model, **kwargs)

    monkeypatch.setattr(fidelity, "extract_featuresdict_from_input_id_cached", spy)
    monkeypatch.setattr(torch_fidelity.metrics, "extract_featuresdict_from_input_id_cached", spy)
    # kid_subset_size stays 1000
    settings = EvalSettings(num_samples=300, kid_subsets=5, precision_recall=False, kid_pr_impl=impl)
    result = evaluate_generator(BankGenerator(train_split[0]), 8, mnist, test_split[0][:2000], settings)
    assert seen["kid_subset_size"] == 300 and math.isfinite(result.kid_mean)
    evaluate_images(train_split[0][:500], mnist, test_split[0][:200], settings)
    assert seen["kid_subset_size"] == 200


def test_only_checked_keyword_arguments_reach_torch_fidelity(monkeypatch):
    from torch_fidelity.defaults import DEFAULTS

    assert fidelity.FIDELITY_KWARGS <= set(DEFAULTS)
    with pytest.raises(GbenchError, match="kid_subset'"):
        fidelity.checked_kwargs({"fid": True, "kid_subset": 5})  # a typo torch-fidelity would ignore
    monkeypatch.setattr(fidelity, "FIDELITY_KWARGS", fidelity.FIDELITY_KWARGS | {"fid_dims"})
    with pytest.raises(GbenchError, match="torch-fidelity .* has no argument 'fid_dims'"):
        fidelity.checked_kwargs({"fid_dims": 64})


# ---------------------------------------------------------------------------
# Point 4: mode coverage and the classifier-based Inception Score
# ---------------------------------------------------------------------------


def test_mode_coverage_matches_a_hand_computation():
    reference = [10, 10, 20, 60]  # q = 0.1, 0.1, 0.2, 0.6
    predicted = torch.tensor([1] * 4 + [2] * 10 + [3] * 86)  # n = 100; half shares: 5, 5, 10, 30
    counts, covered, kl = classmetrics.mode_coverage(predicted, reference)
    assert counts == [0, 4, 10, 86]
    assert covered == 2  # class 1 has 4 < 5; class 2 has exactly 10 >= 10; class 3 has 86 >= 30
    assert kl == pytest.approx(
        0.04 * math.log(0.04 / 0.1) + 0.10 * math.log(0.10 / 0.2) + 0.86 * math.log(0.86 / 0.6), rel=1e-12
    )


def test_classifier_inception_score_matches_hand_and_torch_fidelity():
    one_hot = torch.eye(10).repeat(30, 1) * 60.0
    assert classmetrics.classifier_inception_score(one_hot) == pytest.approx(10.0, rel=1e-6)
    # every sample class 0
    assert classmetrics.classifier_inception_score(one_hot[::10]) == pytest.approx(1.0, rel=1e-6)
    logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(0)) * 3
    reference = isc_features_to_metric(logits, splits=1, shuffle=False)["inception_score_mean"]
    assert classmetrics.classifier_inception_score(logits) == pytest.approx(reference, rel=1e-9)


def test_coverage_of_real_digits_and_of_a_collapsed_set(mnist, test_split, train_split):
    real, real_labels = test_split[0][:2000], test_split[1][:2000]
    settings = EvalSettings(**FAST)
    full = evaluate_images(train_split[0][:1000], mnist, real, settings, real_labels=real_labels)
    assert full.classes_covered == 10 and full.class_kl < 0.02 and full.inception_score > 8
    ones = train_split[0][train_split[1] == 1]
    collapsed = evaluate_images(ones, mnist, real, settings, real_labels=real_labels)
    q1 = float((real_labels == 1).float().mean())
    assert collapsed.classes_covered == 1 and collapsed.class_counts[1] >= 0.97 * len(ones)
    assert collapsed.class_kl == pytest.approx(-math.log(q1), abs=0.1)
    assert collapsed.inception_score < 1.2


# ---------------------------------------------------------------------------
# The generator path, errors, the Inception path, the result row
# ---------------------------------------------------------------------------


def test_generator_runs_in_eval_mode_deterministically_and_keeps_its_modes(mnist, test_split, train_split):
    generator = BankGenerator(train_split[0])
    generator.train()
    generator.norm.eval()
    real = test_split[0][:1000]
    settings = EvalSettings(num_samples=500, **FAST)
    a = evaluate_generator(generator, 8, mnist, real, settings, seed=3)
    assert generator.training and generator.dropout.training and not generator.norm.training
    b = evaluate_generator(generator, 8, mnist, real, settings, seed=3)
    c = evaluate_generator(generator, 8, mnist, real, settings, seed=4)
    assert a.fid == b.fid and a.class_counts == b.class_counts
    assert a.fid != c.fid
    assert a.fid < 5 * evaluate_images(train_split[0][:500], mnist, real, settings).fid  # dropout was off


@pytest.mark.parametrize(
    "change, needle",
    [
        (
            dict(extractor="vgg"),
            "unknown extractor 'vgg'; known: inception, inception-v3-compat, lenet, lenet-fashion-mnist, lenet-mnist",
        ),
        (dict(extractor="inception", inception_weights="/no/such/inception.pth"), "/no/such/inception.pth"),
        (dict(num_samples=1), "num_samples=1"),
        (dict(num_samples=3), "precision_recall=False"),
        (dict(batch_size=0), "batch_size=0"),
        (dict(feature_layer="2048"), "feature_layer '2048'"),
    ],
)
def test_bad_settings_raise_one_clear_error(mnist, test_split, train_split, change, needle):
    with pytest.raises(GbenchError) as info:
        evaluate_generator(BankGenerator(train_split[0]), 8, mnist, test_split[0][:100], EvalSettings(**change))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_bad_images_and_generators_raise_clear_errors(mnist, test_split):
    real = test_split[0][:100]
    with pytest.raises(GbenchError, match="uint8"):
        evaluate_images(real.float(), mnist, real, EvalSettings(**FAST))
    with pytest.raises(GbenchError, match=r"\(1, 28, 28\)"):
        evaluate_images(torch.zeros(10, 1, 32, 32, dtype=torch.uint8), mnist, real, EvalSettings(**FAST))
    with pytest.raises(GbenchError, match="seed=-1"):
        evaluate_images(real, mnist, real, EvalSettings(**FAST), seed=-1)
    flat = torch.nn.Linear(8, 784)
    with pytest.raises(GbenchError, match="generator returned"):
        evaluate_generator(flat, 8, mnist, real, EvalSettings(num_samples=10, **FAST))
    assert flat.training
    with pytest.raises(GbenchError, match="CUDA"):
        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
        evaluate_images(real, mnist, real, EvalSettings(**FAST), device="cuda")


def test_inception_offline_with_a_weights_file(mnist, test_split, train_split, noise, tmp_path, capsys):
    weights = inception_weights.write_random_inception_weights(tmp_path / "inception.pt", seed=0)
    # Random weights collapse the 2048-d features; the early "64" layer still separates digits from noise.
    settings = EvalSettings(
        extractor="inception", inception_weights=str(weights), feature_layer="64", batch_size=30, kid_subsets=5
    )
    real = test_split[0][:30]
    good = evaluate_images(train_split[0][:30], mnist, real, settings)
    assert "Inception on CPU: 60 images" in capsys.readouterr().err  # the estimate comes first
    bad = evaluate_images(noise[:30], mnist, real, settings)
    assert "Inception on CPU: 30 images" in capsys.readouterr().err  # real features now cached
    assert good.fid_extractor == bad.fid_extractor == f"inception-v3-compat@{weights_files.file_sha256(weights)[:8]}"
    assert good.fid < bad.fid
    # The class metrics still come from the LeNet classifier.
    assert sum(good.class_counts) == 30 and good.inception_score > 2 * bad.inception_score


def test_result_row_has_the_results_csv_columns(mnist, test_split, train_split):
    result = evaluate_images(train_split[0][:500], mnist, test_split[0][:500], EvalSettings(**FAST))
    row = result.as_row()
    # the registered metrics' columns in registration order (gbench's built-in plugin), then the evaluation's own
    assert list(row) == [
        "fid",
        "fid_infinity",
        "kid_mean",
        "kid_std",
        "precision",
        "recall",
        "density",
        "coverage",
        "inception_score",
        "classes_covered",
        "class_kl",
        "class_counts",
        "stacked_modes_covered",
        "stacked_mode_kl",
        # the conditional metrics' numbers, NaN here (an unconditional evaluation); their per-class lists stay empty
        "label_accuracy",
        "intra_fid",
        "intra_fid_samples",
        "class_coverage",
        "class_coverage_min",
        "fid_extractor",
        "fid_samples",
        "eval_seconds",
    ]
    assert (
        row["fid_samples"] == 500
        and math.isnan(row["fid_infinity"])
        and math.isnan(row["density"])
        and math.isnan(row["coverage"])
    )
    assert [int(c) for c in row["class_counts"].split()] == result.class_counts and sum(result.class_counts) == 500
    assert math.isnan(row["kid_mean"]) and math.isnan(row["precision"])  # skipped metrics are NaN, not 0
    assert row["fid_extractor"].startswith("lenet-mnist@") and row["eval_seconds"] > 0


# ---------------------------------------------------------------------------
# FID-infinity (Chong & Forsyth 2020)
# ---------------------------------------------------------------------------


def test_fid_infinity_fit_equals_numpy_least_squares():
    rng = np.random.default_rng(0)
    sizes = fidinfinity.subset_sizes(10_000)
    assert len(sizes) == fidinfinity.POINTS and sizes[0] == 1000 and sizes[-1] == 10_000
    fids = 2.5 + 900.0 / np.asarray(sizes) + rng.normal(0, 0.01, len(sizes))
    intercept, slope = fidinfinity.fit_intercept(sizes, fids)
    design = np.stack([np.ones(len(sizes)), 1.0 / np.asarray(sizes)], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, fids, rcond=None)
    assert intercept == pytest.approx(a, rel=1e-9) and slope == pytest.approx(b, rel=1e-9)
    assert intercept == pytest.approx(2.5, abs=0.05)  # and it recovers the line it was drawn from
    exact = fidinfinity.fit_intercept([100, 200, 400], [3.0 + 50 / 100, 3.0 + 50 / 200, 3.0 + 50 / 400])
    assert exact == pytest.approx((3.0, 50.0))
    with pytest.raises(GbenchError, match="fid_infinity needs at least 3 different subset sizes"):
        fidinfinity.subset_sizes(3)


def test_fid_infinity_of_train_against_test_is_near_zero(mnist, test_split):
    """10,000 training digits against the 10,000-image test split: the same distribution.

    FID at N = 10,000 is about 0.15 and at N = 1,000 (the fit's smallest subset) about 1;
    the intercept removes the fake side's 1/N bias but not the real side's own
    (the test split is finite too) nor the small train/test difference, which
    leaves about 0.1. Tolerance 0.25: a quarter of the N = 1,000 FID.
    """
    train = load_split(mnist, "train", limit=10_000)[0]
    result = evaluate_images(train, mnist, test_split[0], EvalSettings(fid_infinity=True, **FAST))
    assert result.num_samples == result.as_row()["fid_samples"] == 10_000
    assert abs(result.fid_infinity) < 0.25 and result.fid_infinity < result.fid
    small = evaluate_images(train[:1000], mnist, test_split[0], EvalSettings(**FAST))
    assert small.fid > 4 * abs(result.fid_infinity)  # the bias it removed is real
    with pytest.raises(GbenchError, match="fid_infinity=True needs kid_pr_impl='gbench'"):
        evaluate_images(
            train[:100], mnist, test_split[0], EvalSettings(fid_infinity=True, kid_pr_impl="torch-fidelity", **FAST)
        )
