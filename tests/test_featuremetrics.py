"""gbench.evaluation.featuremetrics against torch-fidelity's own KID and precision/recall, and its use in evaluation."""

from __future__ import annotations

import pytest
import torch
import torch_fidelity
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

import gbench.evaluation.evaluate as ev
from gbench.data import load_split
from gbench.errors import GbenchError
from gbench.evaluation import extractors, featuremetrics
from gbench.evaluation.evaluate import EvalSettings, evaluate_generator, evaluate_images
from gbench.evaluation.fidelity import ImageSet

KID_DEFAULTS = dict(
    verbose=False, kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1.0
)


#: each test computes the real split's features in a cache of its own (conftest.private_cache)
pytestmark = pytest.mark.usefixtures("private_cache")


def features(n: int, shift: float, seed: int, width: int = 32) -> torch.Tensor:
    # A mixture of blobs: k-NN balls of different sizes, so precision and recall lie strictly between 0 and 1.
    centres = torch.randn(6, width, generator=torch.Generator().manual_seed(0)) * 4  # one distribution for every seed
    generator = torch.Generator().manual_seed(seed)
    points = centres[torch.randint(0, 6, (n,), generator=generator)] + torch.randn(
        n, width, generator=generator
    ) * torch.rand(n, 1, generator=generator)
    return points + shift


@pytest.mark.parametrize(
    "n_fake, n_real, subsets, size, seed", [(600, 900, 7, 300, 0), (500, 500, 3, 500, 123), (2000, 1500, 12, 1000, 7)]
)
def test_kid_equals_torch_fidelity_on_the_same_subsets(n_fake, n_real, subsets, size, seed):
    fake, real = features(n_fake, 0.3, seed), features(n_real, 0.0, seed + 1)
    reference = kid_features_to_metric(
        fake, real, kid_subsets=subsets, kid_subset_size=size, rng_seed=seed, **KID_DEFAULTS
    )
    mean, std = featuremetrics.kid(fake, real, subsets, size, seed)
    assert mean == pytest.approx(reference[torch_fidelity.KEY_METRIC_KID_MEAN], rel=1e-4)
    # When a subset is the whole set (500 of 500) every subset gives the same MMD and the
    # standard deviation is float rounding only: compare it on the scale of the mean.
    assert std == pytest.approx(reference[torch_fidelity.KEY_METRIC_KID_STD], rel=1e-3, abs=1e-3 * abs(mean))
    other_seed, _ = featuremetrics.kid(fake, real, subsets, size, seed + 1)
    assert other_seed != mean  # the seed picks the subsets


def test_kid_of_identical_distributions_is_near_zero_and_grows_with_the_shift():
    real = features(1500, 0.0, 1)
    values = [featuremetrics.kid(features(1500, shift, 2), real, 10, 500)[0] for shift in (0.0, 0.5, 2.0)]
    assert abs(values[0]) < 0.05 * values[1] < values[1] < values[2]


@pytest.mark.parametrize("n_fake, n_real, k", [(700, 1000, 3), (1200, 800, 5), (10, 12, 1)])
def test_precision_recall_equal_torch_fidelity(n_fake, n_real, k, monkeypatch):
    monkeypatch.setattr(featuremetrics, "ROWS_PER_BLOCK", 256)  # several blocks, as at 10,000 samples
    fake, real = features(n_fake, 0.7, 3), features(n_real, 0.0, 4)
    reference = prc_features_to_metric(
        fake, real, prc_neighborhood=k, prc_batch_size=10000, save_cpu_ram=False, verbose=False
    )
    precision, recall = featuremetrics.precision_recall(fake, real, k)
    assert (precision, recall) == (reference["precision"], reference["recall"])
    assert 0 < precision < 1 and 0 < recall < 1
    assert featuremetrics.precision_recall(fake, real, k, featuremetrics.knn_radii(real, k)) == (precision, recall)


@pytest.mark.parametrize("n_fake, n_real, k", [(700, 1000, 3), (1200, 800, 5), (10, 12, 1)])
def test_density_and_coverage_equal_the_prdc_package(n_fake, n_real, k, monkeypatch, capsys):
    import prdc  # the reference package, in the test extra: a missing one fails rather than skips

    monkeypatch.setattr(featuremetrics, "ROWS_PER_BLOCK", 256)
    fake, real = features(n_fake, 0.7, 3), features(n_real, 0.0, 4)
    reference = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=k)  # float32 in, as gbench's features
    ours = featuremetrics.neighbourhood_metrics(fake, real, k)
    # prdc computes distances with sklearn (float64 accumulation), gbench with torch.cdist in float32:
    # a point within rounding of a ball's edge may count differently, so allow one such point per 1,000.
    assert ours.density == pytest.approx(reference["density"], abs=1e-3 * max(1.0, reference["density"]))
    assert ours.coverage == pytest.approx(reference["coverage"], abs=1e-3)
    assert 0 < ours.coverage < 1 and ours.density > 0
    shifted = featuremetrics.neighbourhood_metrics(features(n_fake, 3.0, 3), real, k)
    assert shifted.density < ours.density and shifted.coverage < ours.coverage  # further away: fewer balls entered


def test_density_and_coverage_equal_prdc_on_real_lenet_features(mnist, capsys):
    import prdc  # the reference package, in the test extra: a missing one fails rather than skips

    from gbench.evaluation.extractors import load_lenet

    net = load_lenet("lenet-mnist")
    with torch.no_grad():
        real = net(load_split(mnist, "test")[0][:2000])[0]
        fake = net(load_split(mnist, "train", limit=1500)[0])[0]
    ours = featuremetrics.neighbourhood_metrics(fake, real, ev.PRC_NEIGHBORHOOD)
    reference = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=ev.PRC_NEIGHBORHOOD)
    assert ours.density == pytest.approx(reference["density"], abs=1e-3)
    assert ours.coverage == pytest.approx(reference["coverage"], abs=1e-3)
    # Train against test, one distribution: density near 1; coverage about 0.67 with 1,500 fakes for 2,000 real balls.
    assert 0.7 < ours.density < 1.3 and 0.5 < ours.coverage < 0.9


def test_one_digit_class_has_high_precision_and_low_recall(mnist, private_cache):
    """The meaning, not just the numbers: 2,000 training images of digit 1 against the whole test split.

    Every fake lies on the real manifold (precision near 1) but covers one class
    in ten (recall and coverage low); torch-fidelity once had the two swapped.
    """
    real = load_split(mnist, "test")[0]
    train, labels = load_split(mnist, "train")
    ones = train[labels == 1][:2000]  # the test split has only 1,135
    result = evaluate_images(ones, mnist, real, EvalSettings(kid_subsets=0))
    # Precision about 0.89 (real training digits of every class score about 0.87), recall and coverage about 0.11
    # (one class in ten): swapped, the two would read 0.11 and 0.89.
    assert result.precision > 0.8 and result.recall < 0.2, (result.precision, result.recall)
    assert result.coverage < 0.2 and result.density > 0.5
    assert result.classes_covered == 1


def test_knn_radii_are_the_kth_neighbour_distances():
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert featuremetrics.knn_radii(points, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert featuremetrics.knn_radii(points, 2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError, match="k=4 needs at least 5 points"):
        featuremetrics.knn_radii(points, 4)


def test_bad_shapes_fail_clearly():
    with pytest.raises(ValueError, match="one width"):
        featuremetrics.kid(torch.zeros(10, 3), torch.zeros(10, 4), 1, 5)
    with pytest.raises(ValueError, match="subset_size=20"):
        featuremetrics.kid(torch.zeros(10, 3), torch.zeros(30, 3), 1, 20)
    with pytest.raises(ValueError, match="real_radii has shape"):
        featuremetrics.precision_recall(torch.zeros(10, 3), torch.zeros(10, 3), 3, torch.zeros(9))


# ---------------------------------------------------------------------------
# In evaluation: the default path equals torch-fidelity's own functions and its calculate_metrics
# ---------------------------------------------------------------------------


class Bank(torch.nn.Module):
    def __init__(self, images_u8: torch.Tensor):
        super().__init__()
        self.register_buffer("bank", images_u8.float() / 127.5 - 1)

    def forward(self, z):
        return self.bank[(z[:, 0].abs() * 1e6).long() % len(self.bank)]


def test_default_evaluation_equals_one_calculate_metrics_call(mnist, private_cache):
    real = load_split(mnist, "test")[0][:1500]
    bank = Bank(load_split(mnist, "train", limit=3000)[0])
    settings = EvalSettings(num_samples=1200, kid_subsets=15, kid_subset_size=600)
    ours = evaluate_generator(bank, 8, mnist, real, settings, seed=3)
    reference = evaluate_generator(
        bank,
        8,
        mnist,
        real,
        EvalSettings(num_samples=1200, kid_subsets=15, kid_subset_size=600, kid_pr_impl="torch-fidelity"),
        seed=3,
    )
    assert ours.fid == pytest.approx(reference.fid, rel=1e-6)
    assert ours.kid_mean == pytest.approx(reference.kid_mean, rel=1e-4)
    assert ours.kid_std == pytest.approx(reference.kid_std, rel=1e-3)
    assert (ours.precision, ours.recall) == (reference.precision, reference.recall)
    assert 0 < ours.precision < 1 and 0 < ours.recall < 1
    assert ours.class_counts == reference.class_counts
    # The same for two image sets (gbench fid A B).
    fake = load_split(mnist, "train", limit=1000)[0]
    ours = evaluate_images(fake, mnist, real, EvalSettings(kid_subsets=5, kid_subset_size=400))
    reference = evaluate_images(
        fake, mnist, real, EvalSettings(kid_subsets=5, kid_subset_size=400, kid_pr_impl="torch-fidelity")
    )
    assert ours.kid_mean == pytest.approx(reference.kid_mean, rel=1e-4) and (ours.precision, ours.recall) == (
        reference.precision,
        reference.recall,
    )
    # and against one calculate_metrics call of torch-fidelity's own on the same images (the reference mode above
    # shares gbench's feature extraction; this does not)
    extractors.register_extractors()
    theirs = torch_fidelity.calculate_metrics(
        input1=ImageSet(fake),
        input2=ImageSet(real),
        fid=True,
        kid=True,
        prc=True,
        kid_subsets=5,
        kid_subset_size=400,
        feature_extractor="lenet-mnist",
        cuda=False,
        cache=False,
        verbose=False,
        save_cpu_ram=True,
        batch_size=500,
        rng_seed=0,
    )
    assert ours.fid == pytest.approx(theirs[torch_fidelity.KEY_METRIC_FID], rel=1e-6)
    assert ours.kid_mean == pytest.approx(theirs[torch_fidelity.KEY_METRIC_KID_MEAN], rel=1e-4)
    # precision/recall are measured on unit-length features (featuremetrics.unit_length), which calculate_metrics
    # does not do: torch-fidelity's own function on the LeNet's features, normalised here by hand, is the reference.
    net = extractors.load_lenet("lenet-mnist")
    with torch.no_grad():
        fake_features, real_features = net(fake)[0], net(real)[0]
    unit = lambda x: x / x.norm(dim=1, keepdim=True)  # noqa: E731
    by_hand = prc_features_to_metric(
        unit(fake_features), unit(real_features), prc_neighborhood=3, save_cpu_ram=False, verbose=False
    )
    assert ours.precision == pytest.approx(by_hand["precision"], abs=1e-3) and ours.recall == pytest.approx(
        by_hand["recall"], abs=1e-3
    )


def test_real_radii_are_cached_by_content_and_rebuilt_when_unreadable(mnist, private_cache, monkeypatch):
    real = load_split(mnist, "test")[0][:800]
    fake = load_split(mnist, "train", limit=600)[0]
    settings = EvalSettings(kid_subsets=0)
    calls = []
    knn_radii = featuremetrics.knn_radii
    monkeypatch.setattr(
        featuremetrics, "knn_radii", lambda features, k: calls.append(len(features)) or knn_radii(features, k)
    )
    first = evaluate_images(fake, mnist, real, settings)
    assert calls == [800, 600]  # real, then fake
    (radii_file,) = private_cache.glob("*-knn-radii-k3-*.pt")
    second = evaluate_images(fake, mnist, real, settings)
    assert calls == [800, 600, 600] and (second.precision, second.recall) == (first.precision, first.recall)
    torch.save(torch.zeros(5), radii_file)  # a stale entry of the wrong shape is rebuilt, not trusted
    third = evaluate_images(fake, mnist, real, settings)
    assert calls[3:] == [800, 600] and (third.precision, third.recall) == (first.precision, first.recall)
    assert not [p for p in private_cache.iterdir() if p.name.endswith(".tmp")]


def test_unknown_kid_pr_impl_is_one_clear_error(mnist):
    real = load_split(mnist, "test")[0][:100]
    with pytest.raises(GbenchError, match="kid_pr_impl='numpy' is unknown; give one of gbench, torch-fidelity"):
        evaluate_images(real, mnist, real, EvalSettings(kid_pr_impl="numpy"))
    assert ev.KID_PR_IMPLS == ("gbench", "torch-fidelity")
