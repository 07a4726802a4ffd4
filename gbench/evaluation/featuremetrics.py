"""KID, precision/recall and density/coverage from feature tensors, batched in torch.

torch-fidelity's own versions are the reference: ``kid_features_to_metric``
(numpy, one 1000 x 1000 subset at a time; the elementwise cube alone takes
about 2 s of its 4 s for 100 subsets on two cores) and
``prc_features_to_metric`` (``kthvalue`` over full N x N distance matrices,
about 1.5 s each at N = 10,000). These compute the same quantities:

- KID draws its subsets with torch-fidelity's generator
  (``np.random.RandomState(seed).choice``, fake then real per subset), so the
  subsets are the very same; each kernel is one float32 matrix product,
  as in torch-fidelity, with the power taken in place.
- precision/recall use ``torch.cdist`` and the (k+1)-th smallest distance
  (the point itself is the first) exactly as torch-fidelity does, with
  ``topk`` instead of ``kthvalue`` and one fake x real distance block serving
  both precision and recall. The real set's radii do not depend on the
  generator, so callers may cache them.
- density and coverage (Naeem et al. 2020) come from the same block and the
  same real radii, with the authors' ``prdc`` package as the reference.

tests/test_featuremetrics.py checks both against torch-fidelity's functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

ROWS_PER_BLOCK = 2500  # distance rows per block: 2,500 x 10,000 floats = 100 MB


def kid_subset_indices(
    n_fake: int, n_real: int, subsets: int, subset_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """torch-fidelity's KID subsets: for each subset one draw from fake, then one from real."""
    rng = np.random.RandomState(seed)
    fake, real = [], []
    for _ in range(subsets):
        fake.append(rng.choice(n_fake, subset_size, replace=False))
        real.append(rng.choice(n_real, subset_size, replace=False))
    return np.stack(fake), np.stack(real)


def _poly_kernel_sums(x: torch.Tensor, y: torch.Tensor, gamma: float, coef0: float, degree: int) -> tuple[float, float]:
    """The sum of all entries and of the diagonal of (x y^T gamma + coef0)^degree."""
    # One 2-D product per subset runs about twice as fast as a batched bmm on CPU;
    # the scale and offset ride along in addmm, the power is in place.
    kernel = torch.addmm(torch.tensor(coef0, dtype=x.dtype, device=x.device), x, y.T, alpha=gamma).pow_(degree)
    return float(kernel.sum()), float(kernel.diagonal().sum())


def kid(
    fake: torch.Tensor,
    real: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> tuple[float, float]:
    """KID's mean and standard deviation over ``subsets`` random subsets (unbiased MMD^2, polynomial kernel)."""
    if fake.dim() != 2 or real.dim() != 2 or fake.shape[1] != real.shape[1]:
        raise ValueError(
            f"kid needs two (N, D) feature tensors of one width, got {tuple(fake.shape)} and {tuple(real.shape)}"
        )
    if not 2 <= subset_size <= min(len(fake), len(real)):
        raise ValueError(
            f"subset_size={subset_size} must be between 2 and the smaller sample count ({min(len(fake), len(real))})"
        )
    m = subset_size
    gamma = 1.0 / fake.shape[1] if gamma is None else gamma
    fake_index, real_index = kid_subset_indices(len(fake), len(real), subsets, m, seed)
    fake, real = fake.float(), real.float()
    mmd2 = np.zeros(subsets)
    for i in range(subsets):
        x, y = fake[torch.from_numpy(fake_index[i])], real[torch.from_numpy(real_index[i])]
        xx, xx_diag = _poly_kernel_sums(x, x, gamma, coef0, degree)
        yy, yy_diag = _poly_kernel_sums(y, y, gamma, coef0, degree)
        xy, _ = _poly_kernel_sums(x, y, gamma, coef0, degree)
        # Unbiased estimate: the within-set sums leave out the diagonal, k(x, x).
        mmd2[i] = (xx - xx_diag + yy - yy_diag) / (m * (m - 1)) - 2 * xy / (m * m)
    return float(mmd2.mean()), float(mmd2.std())


def unit_length(features: torch.Tensor) -> torch.Tensor:
    """Each feature vector scaled to length 1: the space gbench's k-NN metrics are measured in.

    On raw LeNet features, out-of-distribution images (uniform noise, checkerboards) land near the
    origin (mean norm 2.4 against 11.2 for digits), inside the large balls of the least typical real
    digits, so they scored precision 0.997 and 1.000 against mnist:test. On the unit sphere only the
    direction counts: noise scores 0.031, checkerboards 0.000, and 5,000 training digits keep 0.87
    precision and 0.86 recall at k = 3 (docs/evaluation.md; tests/test_precision_meaning.py).
    """
    return torch.nn.functional.normalize(features.float(), dim=1)


def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Each point's distance to its k-th nearest neighbour in ``features`` (itself not counted)."""
    if not 1 <= k < len(features):
        raise ValueError(f"k={k} needs at least {k + 1} points, got {len(features)}")
    features = features.float()
    radii = [
        torch.cdist(block, features).topk(k + 1, dim=1, largest=False).values.amax(dim=1)
        for block in features.split(ROWS_PER_BLOCK)
    ]
    return torch.cat(radii)


@dataclass(frozen=True)
class Neighbourhoods:
    """Precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020) of one k."""

    precision: float
    recall: float
    density: float
    coverage: float


def neighbourhood_metrics(
    fake: torch.Tensor, real: torch.Tensor, k: int = 3, real_radii: torch.Tensor | None = None
) -> Neighbourhoods:
    """All four k-NN-ball metrics from one pass over the fake x real distances.

    Precision: the share of fake points inside some real point's ball;
    recall: the share of real points inside some fake point's ball (both with
    ``<=``, as torch-fidelity). Density: the mean number of real balls a fake
    point falls in, divided by k (above 1 when fakes crowd the real modes);
    coverage: the share of real points whose ball holds some fake point (both
    with ``<``, as the authors' ``prdc`` package). ``real_radii`` (from
    ``knn_radii(real, k)``) may come from a cache.
    """
    if fake.dim() != 2 or real.dim() != 2 or fake.shape[1] != real.shape[1]:
        raise ValueError(
            "precision_recall needs two (N, D) feature tensors of one width, "
            f"got {tuple(fake.shape)} and {tuple(real.shape)}"
        )
    fake, real = fake.float(), real.float()
    real_radii = knn_radii(real, k) if real_radii is None else real_radii
    if real_radii.shape != (len(real),):
        raise ValueError(f"real_radii has shape {tuple(real_radii.shape)}, expected ({len(real)},)")
    fake_radii = knn_radii(fake, k)
    precise = torch.zeros(len(fake), dtype=torch.bool)
    recalled = torch.zeros(len(real), dtype=torch.bool)
    covered = torch.zeros(len(real), dtype=torch.bool)
    balls_entered = 0
    for start in range(0, len(fake), ROWS_PER_BLOCK):
        distances = torch.cdist(fake[start : start + ROWS_PER_BLOCK], real)  # (fake block, real)
        precise[start : start + ROWS_PER_BLOCK] = (distances <= real_radii).any(dim=1)
        recalled |= (distances <= fake_radii[start : start + ROWS_PER_BLOCK, None]).any(dim=0)
        inside = distances < real_radii
        balls_entered += int(inside.sum())
        covered |= inside.any(dim=0)
    return Neighbourhoods(
        precision=float(precise.float().mean()),
        recall=float(recalled.float().mean()),
        density=balls_entered / (k * len(fake)),
        coverage=float(covered.float().mean()),
    )


def coverage(fake: torch.Tensor, real: torch.Tensor, real_radii: torch.Tensor) -> float:
    """Coverage alone (as in :func:`neighbourhood_metrics`, with ``<``): the share of real points whose ball,
    of radius ``real_radii``, holds some fake point. Needs no fake k-NN radii, so any number of fakes will do
    (none: 0); the class-conditional coverage (gbench.evaluation.conditional) measures small classes with it."""
    if real_radii.shape != (len(real),):
        raise ValueError(f"real_radii has shape {tuple(real_radii.shape)}, expected ({len(real)},)")
    covered = torch.zeros(len(real), dtype=torch.bool)
    for start in range(0, len(fake), ROWS_PER_BLOCK):
        covered |= (torch.cdist(fake[start : start + ROWS_PER_BLOCK].float(), real.float()) < real_radii).any(dim=0)
    return float(covered.float().mean())


def precision_recall(
    fake: torch.Tensor, real: torch.Tensor, k: int = 3, real_radii: torch.Tensor | None = None
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN balls; see :func:`neighbourhood_metrics`."""
    metrics = neighbourhood_metrics(fake, real, k, real_radii)
    return metrics.precision, metrics.recall
