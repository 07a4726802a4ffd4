"""The conditional metrics (issue #36 point 3), each against an independent computation.

Real MNIST digits stand in for a conditional generator's samples: test images with their true labels as the
classes they were "generated for", against training images with theirs as the real side. The LeNet features
and the domain classifier's logits are computed here, apart from the evaluation; label accuracy is checked
against a numpy count, intra-class FID against scipy's sqrtm and the trace formula in float64, class coverage
against scipy's cdist. Through evaluate_generator, a "conditional generator" that returns a real test image of
the class asked scores the classifier's accuracy and a small intra-class FID; one ignoring the class does not.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import torch
from conftest import run_cli
from scipy.spatial.distance import cdist
from torch_fidelity.utils import create_feature_extractor

import gbench.evaluation.evaluate as ev
import plugins.metrics as builtin
from gbench.data import load_split
from gbench.errors import GbenchError
from gbench.evaluation import extractors
from gbench.evaluation.classmetrics import classify
from gbench.evaluation.conditional import balanced_labels
from gbench.evaluation.evaluate import EvalSettings, evaluate_generator, evaluate_images
from gbench.evaluation.extractor_choice import domain_classifier, resolve_extractor
from gbench.evaluation.fidelity import PRC_NEIGHBORHOOD
from gbench.evaluation.imagesets import generate
from gbench.plugins.columns import MetricInputs
from gbench.plugins.loading import load_plugins
from gbench.plugins.registry import Nets
from gbench.results import store

CLASSES = 10
FAKE, REAL = 2000, 6000  # "generated": MNIST test images; real: MNIST training images
CONDITIONAL_COLUMNS = ("label_accuracy", "intra_fid", "intra_fid_samples", "class_coverage", "class_coverage_min")
SMALL = ["--steps", "4", "--train-limit", "400", "--eval-samples", "60", "--log-every", "2", "--device", "cpu"]


@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GBENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def registry():
    return load_plugins().registry


@pytest.fixture(scope="module")
def mnist(registry):
    return registry.dataset("mnist")


@pytest.fixture(scope="module")
def sides(mnist):
    """(fake images, fake labels, real images, real labels, fake features, real features, fake logits)."""
    fake, fake_labels = (part[:FAKE] for part in load_split(mnist, "test"))
    real, real_labels = load_split(mnist, "train", limit=REAL)
    extractor = resolve_extractor(None, mnist)
    model = create_feature_extractor(
        extractor.name, [extractor.layer], cuda=False, verbose=False, **extractors.weights_argument(extractor)
    )
    with torch.no_grad():
        fake_features, real_features = model(fake)[0], model(real)[0]
    logits = classify(domain_classifier(mnist, torch.device("cpu")), fake, 500, torch.device("cpu"))
    return fake, fake_labels, real, real_labels, fake_features, real_features, logits


def inputs_of(sides, sample_labels, **changes) -> MetricInputs:
    _, _, _, real_labels, fake_features, real_features, logits = sides
    fields = dict(
        fake_features=fake_features,
        real_features=real_features,
        real_statistics={},
        real_radii=lambda k: None,
        fake_logits=logits,
        real_class_counts=None,
        samples=None,
        settings=EvalSettings(),
        seed=0,
        dataset="mnist",
        sample_labels=sample_labels,
        real_labels=real_labels,
        num_classes=CLASSES if sample_labels is not None else 0,
    )
    return MetricInputs(**{**fields, **changes})


def listed(text_values) -> np.ndarray:
    return np.array([float(value) for value in text_values])


def test_label_accuracy_is_the_numpy_count_of_the_classifiers_hits(sides):
    labels, logits = sides[1], sides[6]
    values = builtin.label_accuracy(inputs_of(sides, labels))
    predicted, truth = logits.numpy().argmax(axis=1), labels.numpy()
    assert values["label_accuracy"] == (predicted == truth).mean()  # the classifier's accuracy on these digits
    assert values["label_accuracy"] > 0.97
    per_class = [(predicted[truth == y] == y).mean() for y in range(CLASSES)]
    assert listed(values["label_accuracy_per_class"]) == pytest.approx(per_class, rel=1e-5)

    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    chance = builtin.label_accuracy(inputs_of(sides, shuffled))["label_accuracy"]
    assert 0.07 < chance < 0.13 and chance == (predicted == shuffled.numpy()).mean()


def frechet_distance_float64(fake: np.ndarray, real: np.ndarray) -> float:
    """FID by the textbook formula: |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrtm(S1 S2)), float64, scipy's sqrtm."""
    fake, real = fake.astype(np.float64), real.astype(np.float64)
    sigma_fake, sigma_real = np.cov(fake, rowvar=False), np.cov(real, rowvar=False)
    root = scipy.linalg.sqrtm(sigma_fake @ sigma_real).real
    mean_gap = fake.mean(axis=0) - real.mean(axis=0)
    return float(mean_gap @ mean_gap + np.trace(sigma_fake) + np.trace(sigma_real) - 2 * np.trace(root))


def test_intra_class_fid_equals_scipy_per_class_and_names_its_counts(sides):
    fake_labels, real_labels, fake_features, real_features = sides[1], sides[3], sides[4], sides[5]
    values = builtin.intra_fid(inputs_of(sides, fake_labels))
    fake, real, y_fake, y_real = fake_features.numpy(), real_features.numpy(), fake_labels.numpy(), real_labels.numpy()
    expected = [frechet_distance_float64(fake[y_fake == y], real[y_real == y]) for y in range(CLASSES)]
    assert listed(values["intra_fid_per_class"]) == pytest.approx(expected, rel=1e-4)
    assert values["intra_fid"] == pytest.approx(np.mean(expected), rel=1e-4)
    counts = [(int((y_fake == y).sum()), int((y_real == y).sum())) for y in range(CLASSES)]
    assert values["class_sample_counts"] == [f"{g}/{r}" for g, r in counts]
    assert values["intra_fid_samples"] == min(g for g, _ in counts)
    # digits of their own class are close; another class's digits are far (the real 1s for the generated 0s)
    other = frechet_distance_float64(fake[y_fake == 0], real[y_real == 1])
    assert max(expected) < 0.2 * other


def coverage_scipy(fake: np.ndarray, real: np.ndarray, k: int) -> float:
    """Naeem et al.'s coverage: real points whose distance to some fake point is below their k-th neighbour's."""
    radii = np.sort(cdist(real, real), axis=1)[:, k]  # column 0 is the point itself
    return float((cdist(fake, real) < radii[None, :]).any(axis=0).mean())


def unit(features: torch.Tensor) -> np.ndarray:
    array = features.numpy().astype(np.float64)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def test_class_coverage_equals_scipy_within_each_class(sides):
    fake_labels, real_labels, fake_features, real_features = sides[1], sides[3], sides[4], sides[5]
    values = builtin.class_coverage(inputs_of(sides, fake_labels))
    fake, real, y_fake, y_real = unit(fake_features), unit(real_features), fake_labels.numpy(), real_labels.numpy()
    expected = [coverage_scipy(fake[y_fake == y], real[y_real == y], PRC_NEIGHBORHOOD) for y in range(CLASSES)]
    # float32 cdist against float64: a point within rounding of a ball's edge may count differently (1 in 500)
    assert listed(values["class_coverage_per_class"]) == pytest.approx(expected, abs=2e-3)
    assert values["class_coverage"] == pytest.approx(np.mean(expected), abs=2e-3)
    assert values["class_coverage_min"] == pytest.approx(min(expected), abs=2e-3)
    assert 0.3 < min(expected) and max(expected) < 0.9
    # a class collapsed onto one image covers almost nothing of its real class, the others are untouched
    collapsed = fake_features.clone()
    collapsed[fake_labels == 3] = fake_features[fake_labels == 3][0]
    after = listed(
        builtin.class_coverage(inputs_of(sides, fake_labels, fake_features=collapsed))["class_coverage_per_class"]
    )
    assert after[3] < 0.01 and np.delete(after, 3) == pytest.approx(
        np.delete(listed(values["class_coverage_per_class"]), 3)
    )


def test_unconditional_inputs_give_nan_and_no_list(sides):
    for metric in builtin.CONDITIONAL:
        values = metric.compute(inputs_of(sides, None))
        assert sorted(values) == sorted(column.name for column in metric.columns)
        for column in metric.columns:
            assert values[column.name] == [] if column.text else math.isnan(values[column.name])


def test_an_unconditional_evaluation_computes_nothing_for_them(mnist, registry, sides, monkeypatch):
    """No classifier, no compute: the conditional metrics are skipped, their columns NaN, the rest unchanged."""
    fake, real = sides[0][:300], sides[2][:600]
    settings = EvalSettings(kid_subsets=0, precision_recall=False)

    def never(inputs):
        raise AssertionError("a conditional metric was computed for an unconditional evaluation")

    conditional = [dataclasses.replace(metric, compute=never) for metric in builtin.CONDITIONAL]
    monkeypatch.setattr(ev, "domain_classifier", lambda *args: pytest.fail("the classifier was loaded"))
    metrics = [registry.get("metric", "fid"), *conditional]
    result = evaluate_images(fake, mnist, real, settings, real_labels=sides[3][:600], metrics=metrics)
    row = result.as_row()
    assert all(math.isnan(row[name]) for name in CONDITIONAL_COLUMNS) and np.isfinite(row["fid"])
    assert "label_accuracy_per_class" not in row  # a text column of a skipped metric is left empty


class RealDigits(torch.nn.Module):
    """A "conditional generator": for class y, the next MNIST test image of class y (cycling), in [-1, 1].

    With ``ignore_class`` it returns the test images in their order whatever the class asked for.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, ignore_class: bool = False):
        super().__init__()
        self.by_class = [images[labels == y] for y in range(CLASSES)]
        self.images, self.ignore_class = images, ignore_class
        self.asked: list[torch.Tensor] = []
        self.served = [0] * CLASSES  # per class: images handed out so far
        self.position = 0  # ignoring the class: images handed out so far

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.asked.append(y.clone())
        picked = []
        for wanted in y.tolist():
            if self.ignore_class:
                picked.append(self.images[self.position % len(self.images)])
                self.position += 1
            else:
                pool = self.by_class[wanted]
                picked.append(pool[self.served[wanted] % len(pool)])
                self.served[wanted] += 1
        return torch.stack(picked).float() / 127.5 - 1


def test_a_generator_of_real_digits_of_the_asked_class_scores_like_the_classifier(mnist):
    images, labels = load_split(mnist, "test")
    settings = EvalSettings(num_samples=1000, kid_subsets=0, batch_size=300)  # batches that do not divide 1000
    honest = RealDigits(images, labels)
    faithful = evaluate_generator(honest, 8, mnist, images, settings, real_labels=labels, num_classes=CLASSES)
    assert torch.equal(torch.cat(honest.asked), balanced_labels(1000, CLASSES))  # balanced, in sample order
    ignoring = RealDigits(images, labels, ignore_class=True)
    careless = evaluate_generator(ignoring, 8, mnist, images, settings, real_labels=labels, num_classes=CLASSES)
    # the classifier's accuracy on those 1,000 digits, counted apart from the evaluation
    served = torch.cat([honest.by_class[y][:100] for y in range(CLASSES)])
    truth = torch.arange(CLASSES).repeat_interleave(100)
    logits = classify(domain_classifier(mnist, torch.device("cpu")), served, 500, torch.device("cpu"))
    assert faithful.label_accuracy == pytest.approx(float((logits.argmax(1) == truth).double().mean()), abs=1e-12)
    assert faithful.label_accuracy > 0.97 and 0.05 < careless.label_accuracy < 0.15
    assert faithful.intra_fid < 5 and careless.intra_fid > 10 * faithful.intra_fid
    assert faithful.class_coverage > 2 * careless.class_coverage
    assert abs(faithful.fid - careless.fid) < 0.5  # the unconditional FID cannot tell them apart
    row = faithful.as_row()
    assert row["class_sample_counts"].split()[1] == f"100/{int((labels == 1).sum())}"
    assert len(row["intra_fid_per_class"].split()) == CLASSES and row["intra_fid_samples"] == 100


class NoiseOnly(torch.nn.Module):
    """Images from z alone (it accepts and records a class); conditioning must not change the noise."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 784), torch.nn.Tanh(), torch.nn.Unflatten(1, (1, 28, 28)))
        self.asked: list[torch.Tensor] = []

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is not None:
            self.asked.append(y)
        return self.net(z)


def test_conditioning_draws_the_same_noise_as_an_unconditional_evaluation(mnist):
    torch.manual_seed(0)
    generator = NoiseOnly()
    real, labels = load_split(mnist, "test")
    real, labels = real[:500], labels[:500]
    settings = EvalSettings(num_samples=250, kid_subsets=0, batch_size=64)
    plain = evaluate_generator(generator, 8, mnist, real, settings, seed=3, real_labels=labels)
    assert generator.asked == []  # num_classes=0: called as generator(z)
    conditioned = evaluate_generator(generator, 8, mnist, real, settings, seed=3, real_labels=labels, num_classes=10)
    assert torch.equal(torch.cat(generator.asked).cpu(), balanced_labels(250, 10))
    shared = [name for name, value in plain.values.items() if name not in CONDITIONAL_COLUMNS]
    for name in shared:  # every value exactly the same; NaN as NaN (pytest.approx takes no lists in a dict)
        ours, theirs = plain.values[name], conditioned.values[name]
        assert ours == theirs or (isinstance(ours, float) and math.isnan(ours) and math.isnan(theirs)), name
    assert all(math.isnan(plain.values[name]) for name in CONDITIONAL_COLUMNS)
    assert np.isfinite(conditioned.intra_fid) and conditioned.intra_fid_samples == 25

    nets = Nets(generator=generator, discriminator=None, latent_dim=8)
    generator.asked.clear()
    unconditional = generate(nets, 130, seed=5, batch=50)
    assert torch.equal(generate(nets, 130, seed=5, batch=50, num_classes=10), unconditional)
    assert torch.equal(torch.cat(generator.asked), balanced_labels(130, 10))


def test_cached_real_features_keep_the_labels_rows(mnist, sides, tmp_path):
    """The real split's features come from gbench's cache on the second call; its rows stay those of the labels."""
    fake, fake_labels, real, real_labels = sides[0][:500], sides[1][:500], sides[2][:1500], sides[3][:1500]
    settings = EvalSettings(kid_subsets=0)
    metrics = [load_plugins().registry.get("metric", name) for name in ("fid", "intra_fid", "class_coverage")]

    def evaluate(images, labels):
        result = evaluate_images(
            fake, mnist, images, settings, real_labels=labels, metrics=metrics, sample_labels=fake_labels
        )
        return result.values

    cold = evaluate(real, real_labels)
    assert list((tmp_path / "cache" / "fid-stats").glob("*features*"))  # the entry the next call reads
    assert evaluate(real, real_labels) == cold
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(1))
    shuffled = evaluate(real[order], real_labels[order])  # another entry, another row order: the same classes
    assert shuffled["intra_fid"] == pytest.approx(cold["intra_fid"], rel=1e-5)
    assert shuffled["class_coverage"] == pytest.approx(cold["class_coverage"], abs=1e-3)
    wrong = evaluate(real, real_labels.roll(1))  # labels off by one row: no longer the digits' classes
    assert wrong["intra_fid"] > 5 * cold["intra_fid"]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (dict(real_labels=torch.zeros(7, dtype=torch.int64)), "real_labels has 7 entries for 300 images"),
        (dict(real_labels=torch.zeros(300)), "real_labels must be a 1-D integer tensor"),
        (
            dict(sample_labels=torch.full((300,), 10)),
            "sample_labels holds classes 10..10; the data set has classes 0..9",
        ),
    ],
)
def test_bad_labels_are_one_line_naming_them(mnist, sides, change, needle):
    images = sides[0][:300]
    with pytest.raises(GbenchError, match=needle):
        evaluate_images(images, mnist, images, EvalSettings(kid_subsets=0), **change)


def test_a_wrong_class_count_or_an_unconditional_generator_is_refused(mnist, sides):
    images = sides[0][:300]
    settings = EvalSettings(num_samples=100, kid_subsets=0)
    with pytest.raises(GbenchError, match="num_classes=7 is invalid for dataset 'mnist'; give 10"):
        evaluate_generator(NoiseOnly(), 8, mnist, images, settings, num_classes=7)
    unconditional = torch.nn.Sequential(torch.nn.Linear(8, 784), torch.nn.Unflatten(1, (1, 28, 28)))
    with pytest.raises(GbenchError, match=r"cannot be called as generator\(z, y\).*num_classes=0"):
        evaluate_generator(unconditional, 8, mnist, images, settings, num_classes=10)


def test_an_unconditional_runs_folder_still_shows_and_exports(mnist, sides, tmp_path):
    """And once its row holds a conditional evaluation's values (until a conditional architecture can train here,
    those of MNIST digits with their labels), `show` and `export` give them."""
    out = tmp_path / "runs"
    trained = run_cli("run", "plugins.mlp", "--architecture", "mlp", *SMALL, "--out", str(out))
    assert trained.returncode == 0, trained.stderr
    header = store.read_csv(out / "results.csv")[0]
    assert {"label_accuracy", "intra_fid", "class_coverage"} <= set(header)
    shown = run_cli("show", str(out), env={"COLUMNS": "400"})
    assert shown.returncode == 0, shown.stderr
    table_header = next(line for line in shown.stdout.splitlines() if "FID" in line and "status" in line)
    assert "label acc" not in table_header and "intra-FID" not in table_header  # empty columns stay out
    exported = tmp_path / "all.csv"
    result = run_cli("export", str(out), "--format", "csv", "-o", str(exported))
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(exported)
    assert len(table) == 1 and table[["label_accuracy", "intra_fid", "class_coverage"]].isna().all().all()
    assert np.isfinite(table["fid"]).all()

    fake, sample_labels, real, real_labels = sides[0][:300], sides[1][:300], sides[2][:1000], sides[3][:1000]
    settings = EvalSettings(kid_subsets=0)
    result = evaluate_images(fake, mnist, real, settings, real_labels=real_labels, sample_labels=sample_labels)
    store.upsert_result(out, {**store.read_results(out)[0], **result.as_row()})
    shown = run_cli("show", str(out), env={"COLUMNS": "400"})
    assert shown.returncode == 0, shown.stderr
    table_header = next(line for line in shown.stdout.splitlines() if "FID" in line and "status" in line)
    assert "label acc" in table_header and "intra-FID" in table_header and "cls cover" in table_header
    assert f"{result.label_accuracy:.3f}" in shown.stdout and f"{result.intra_fid:.2f}" in shown.stdout
    result_export = run_cli("export", str(out), "--format", "csv", "-o", str(exported))
    assert result_export.returncode == 0, result_export.stderr
    row = pd.read_csv(exported).iloc[0]
    assert row["label_accuracy"] == pytest.approx(result.label_accuracy, rel=1e-12)
    assert listed(row["intra_fid_per_class"].split()) == pytest.approx(listed(result.intra_fid_per_class))


def test_a_class_too_small_to_measure_is_nan_and_so_is_the_mean():
    """Class 2 has one generated sample (no covariance) and no real image beyond k; class 1 has no sample at all."""
    from gbench.evaluation import conditional

    features = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
    sample_labels = torch.tensor([0] * 10 + [2] + [0] * 9)
    real_labels = torch.tensor([0] * 10 + [1] * 7 + [2] * 3)
    fids, counts = conditional.intra_class_fid(features[:20], sample_labels, features[20:], real_labels, 3)
    assert counts == [(19, 10), (0, 7), (1, 3)] and np.isfinite(fids[0]) and np.isnan(fids[1]) and np.isnan(fids[2])
    assert math.isnan(conditional.mean_over_classes(fids)) and math.isnan(conditional.min_over_classes(fids))
    covered = conditional.class_coverage(features[:20], sample_labels, features[20:], real_labels, 3, k=3)
    assert covered[1] == 0.0 and math.isnan(covered[2]) and 0 < covered[0] <= 1  # no sample covers nothing
    overall, per_class = conditional.label_accuracy(sample_labels, sample_labels, 3)
    assert overall == 1.0 and per_class[0] == per_class[2] == 1.0 and math.isnan(per_class[1])
    assert conditional.per_class_list([1 / 3, 123.456789]) == [0.333333, 123.457]
