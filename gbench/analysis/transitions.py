"""How smoothly a generator moves along a line in latent space, and whether foreign digits appear on the way (S4).

A run's generator walks the straight line from z0 to z1 (alpha 0 to 1) and its
extension (alpha -1 to 2), :func:`gbench.report.interpolation.interpolation_images`;
the data set's shipped classifier labels each frame and gives its features (the
LeNet whose features FID uses and whose head the ``classes`` metric uses). Per
endpoint pair, from the frames' labels and features alone:

- **foreign share**: the share of frames whose label is neither endpoint's
  (the labels of the frames at alpha 0 and 1), counted separately over the
  interpolation's inner frames (0 < alpha < 1) and over the extrapolation's
  frames outside the segment (alpha < 0 or > 1). A path from a 3 to a 5 that
  passes through a 7 has foreign frames; one that morphs 3 into 5 has none.
- **path ratio**: the length of the interpolation's path in feature space (the
  sum of the distances between neighbouring frames) over the straight
  distance between its two ends. 1 when the frames lie on a straight line in
  feature space, in order; larger when the path detours.
- **jump ratio**: the largest single step over the mean step along the same
  path. 1 when every step is the same length; large when the image changes
  all at once somewhere.

A run's value of each is the mean over its endpoint pairs; the report compares
settings over seeds like any per-run number (:mod:`gbench.analysis.claims`).
Lower is smoother for all four.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gbench.plugins.columns import METRIC, Column

#: The per-run measures, as results columns of the report (never of results.csv: the report measures them).
MEASURES: dict[str, Column] = {
    column.name: column
    for column in (
        Column(
            "foreign_interpolation",
            METRIC,
            "foreign interp.",
            ".3f",
            direction="lower",
            description="share of the inner interpolation frames (0 < alpha < 1) the classifier labels "
            "neither endpoint's class",
        ),
        Column(
            "foreign_extrapolation",
            METRIC,
            "foreign extrap.",
            ".3f",
            direction="lower",
            description="share of the extrapolation frames (alpha < 0 or > 1) the classifier labels neither "
            "endpoint's class",
        ),
        Column(
            "path_ratio",
            METRIC,
            "path ratio",
            ".3f",
            direction="lower",
            description="length of the interpolation's path in the classifier's feature space over the straight "
            "distance between its ends (1: a straight path)",
        ),
        Column(
            "jump_ratio",
            METRIC,
            "jump ratio",
            ".3f",
            direction="lower",
            description="largest step between neighbouring interpolation frames in feature space over the mean "
            "step (1: even steps)",
        ),
    )
}


@dataclass(frozen=True)
class Walk:
    """One endpoint pair's frames: their alphas, the classifier's labels and feature vectors, in frame order."""

    alphas: Sequence[float]
    labels: Sequence[int]
    features: np.ndarray  # (frames, feature dimensions)


def endpoint_labels(walk: Walk) -> tuple[int, int]:
    """The labels of the frames at alpha 0 and alpha 1 (the generated images of z0 and z1)."""
    alphas = list(walk.alphas)
    return int(walk.labels[alphas.index(0.0)]), int(walk.labels[alphas.index(1.0)])


def foreign_share(labels: Sequence[int], ends: tuple[int, int]) -> float:
    """The share of ``labels`` that are neither of ``ends``; NaN without labels."""
    if not len(labels):
        return float("nan")
    return sum(int(label) not in ends for label in labels) / len(labels)


def path_ratio(features: np.ndarray) -> float:
    """Path length through ``features`` (rows in order) over the straight distance between the first and last row;
    NaN when the ends coincide (no direction to be straight in)."""
    steps = np.linalg.norm(np.diff(features, axis=0), axis=1)
    straight = float(np.linalg.norm(features[-1] - features[0]))
    return float(steps.sum()) / straight if straight > 0 else float("nan")


def jump_ratio(features: np.ndarray) -> float:
    """The largest step between neighbouring rows of ``features`` over the mean step; NaN when nothing moves."""
    steps = np.linalg.norm(np.diff(features, axis=0), axis=1)
    mean = float(steps.mean()) if len(steps) else 0.0
    return float(steps.max()) / mean if mean > 0 else float("nan")


def walk_measures(walk: Walk) -> dict[str, float]:
    """The four measures of one endpoint pair's walk."""
    # one frame per alpha, in alpha order: the extension's row repeats the frames at alpha 0, 1/3, 2/3 and 1
    # (to rounding: -1 + 3 * 4/9 is 1/3 less one unit in the last place)
    alphas, first = np.unique(np.round(np.asarray(walk.alphas, dtype=float), 9), return_index=True)
    labels = np.asarray(walk.labels)[first]
    features = np.asarray(walk.features, dtype=float)[first]
    ends = endpoint_labels(walk)
    inner = (alphas > 0) & (alphas < 1)
    path = features[(alphas >= 0) & (alphas <= 1)]  # the interpolation, its ends included: the path whose shape counts
    return {
        "foreign_interpolation": foreign_share(labels[inner].tolist(), ends),
        "foreign_extrapolation": foreign_share(labels[(alphas < 0) | (alphas > 1)].tolist(), ends),
        "path_ratio": path_ratio(path),
        "jump_ratio": jump_ratio(path),
    }


def run_measures(walks: Sequence[Walk]) -> dict[str, float]:
    """A run's value of each measure: the mean over its endpoint pairs that have one (NaN when none has)."""
    per_walk = [walk_measures(walk) for walk in walks]
    means = {}
    for name in MEASURES:
        values = [m[name] for m in per_walk if np.isfinite(m[name])]
        means[name] = float(np.mean(values)) if values else float("nan")
    return means
