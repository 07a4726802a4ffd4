"""Class-conditional metrics: does a sample generated for class y look like, and cover, the real class y?

Pure functions of features, logits and labels (tests/test_conditional_metrics.py checks each against an
independent numpy/scipy computation); gbench's built-in plugin ``plugins/metrics.py`` turns them into result
columns. Every one is computed class by class, class 0 first, with NaN for a class that cannot be measured
(too few samples of it on either side), so that a mean or minimum over classes is NaN rather than silently
leaving a class out:

- label accuracy: the share of the samples generated for class y that the domain classifier labels y;
- intra-class FID: FID between the samples generated for class y and the real images of class y, in the
  extractor's feature space (the run's FID's), with torch-fidelity's statistics and Fréchet distance;
- class coverage: Naeem et al.'s coverage within class y: the share of the real class-y images whose k-NN
  ball (radius: distance to the k-th nearest other real class-y image, on unit-length features as gbench's
  coverage) holds at least one sample generated for class y.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from gbench.evaluation import featuremetrics
from gbench.evaluation.settings import MIN_IMAGES

NAN = math.nan
#: Significant digits of a per-class value in results.csv's space-separated lists (the means keep every digit).
PER_CLASS_DIGITS = 6


def balanced_labels(count: int, num_classes: int) -> torch.Tensor:
    """``arange(count) % num_classes``: the classes an evaluation asks a conditional generator for, in sample order.

    Every class gets ``count // num_classes`` samples or one more, whatever the batch size.
    """
    return torch.arange(count, dtype=torch.int64) % num_classes


def rows_of_classes(labels: torch.Tensor, num_classes: int) -> list[torch.Tensor]:
    """For each class, the indices of the rows labelled with it (in order)."""
    labels = labels.long().cpu()
    return [torch.nonzero(labels == y).flatten() for y in range(num_classes)]


def mean_over_classes(values: Sequence[float]) -> float:
    """The plain mean; NaN when any class is NaN (a class that could not be measured is not left out silently)."""
    return float(sum(values) / len(values)) if values else NAN


def min_over_classes(values: Sequence[float]) -> float:
    return NAN if not values or any(math.isnan(v) for v in values) else float(min(values))


def per_class_list(values: Sequence[float]) -> list[float]:
    """Rounded to :data:`PER_CLASS_DIGITS` significant digits, for a text column (written space-separated)."""
    return [float(format(value, f".{PER_CLASS_DIGITS}g")) for value in values]


def label_accuracy(predicted: torch.Tensor, sample_labels: torch.Tensor, num_classes: int) -> tuple[float, list[float]]:
    """Overall and per requested class: the share of samples predicted as the class they were generated for."""
    hit = predicted.long().cpu() == sample_labels.long().cpu()
    per_class = [
        float(hit[rows].double().mean()) if len(rows) else NAN for rows in rows_of_classes(sample_labels, num_classes)
    ]
    return (float(hit.double().mean()) if len(hit) else NAN), per_class


def frechet_distance(fake: torch.Tensor, real: torch.Tensor) -> float:
    """FID between two feature sets, as the run's FID computes it (torch-fidelity's statistics and distance)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    fake_statistics, real_statistics = fid_features_to_statistics(fake), fid_features_to_statistics(real)
    return float(fid_statistics_to_metric(fake_statistics, real_statistics, False)[KEY_METRIC_FID])


def intra_class_fid(
    fake_features: torch.Tensor,
    sample_labels: torch.Tensor,
    real_features: torch.Tensor,
    real_labels: torch.Tensor,
    num_classes: int,
) -> tuple[list[float], list[tuple[int, int]]]:
    """Per class: FID between its generated and its real features (NaN with fewer than 2 on a side: no covariance),
    and the (generated, real) sample counts it was measured on."""
    values, counts = [], []
    for fake_rows, real_rows in zip(
        rows_of_classes(sample_labels, num_classes), rows_of_classes(real_labels, num_classes)
    ):
        counts.append((len(fake_rows), len(real_rows)))
        measurable = min(len(fake_rows), len(real_rows)) >= MIN_IMAGES
        values.append(frechet_distance(fake_features[fake_rows], real_features[real_rows]) if measurable else NAN)
    return values, counts


def class_coverage(
    fake_features: torch.Tensor,
    sample_labels: torch.Tensor,
    real_features: torch.Tensor,
    real_labels: torch.Tensor,
    num_classes: int,
    k: int,
) -> list[float]:
    """Per class y: coverage (Naeem et al. 2020) of the real class-y features by the samples generated for y.

    Measured on unit-length features (:func:`featuremetrics.unit_length`, as gbench's coverage); the balls are
    the real class-y points' k-NN balls among the real class-y points. NaN for a class with k or fewer real
    images (no k-th neighbour); 0 for a class with no generated sample.
    """
    fake, real = featuremetrics.unit_length(fake_features), featuremetrics.unit_length(real_features)
    values = []
    for fake_rows, real_rows in zip(
        rows_of_classes(sample_labels, num_classes), rows_of_classes(real_labels, num_classes)
    ):
        if len(real_rows) <= k:
            values.append(NAN)
            continue
        real_class = real[real_rows]
        radii = featuremetrics.knn_radii(real_class, k)
        values.append(featuremetrics.coverage(fake[fake_rows], real_class, radii))
    return values
