"""FID-infinity (Chong & Forsyth 2020, "Effectively Unbiased FID and Inception Score and where to find them").

FID is biased upwards, and the bias shrinks like 1/N in the number N of
generated samples, so two FIDs are comparable only at equal N. Chong and
Forsyth compute FID on subsets of several sizes N, fit the line
FID = a + b / N by least squares and report the intercept a, the FID of
infinitely many samples. Their code draws 15 sizes from 5,000 to 50,000,
one tenth of the largest to the largest; gbench does the same on the
evaluation's own samples (``num_samples / 10`` to ``num_samples``). The
real side keeps its full statistics, as theirs does; its own finite-sample
bias (the test split's size) is not extrapolated away.
"""

from __future__ import annotations

import numpy as np
import torch
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

from gbench.errors import GbenchError

POINTS = 15  # sizes on the fit, as in Chong & Forsyth's code
SMALLEST_SHARE = 0.1  # the smallest size, as a share of the largest (their 5,000 of 50,000)
MIN_SIZES = 3  # distinct sizes needed for a line that is more than two points


def subset_sizes(n: int, points: int = POINTS, smallest_share: float = SMALLEST_SHARE) -> list[int]:
    """``points`` evenly spaced subset sizes from ``smallest_share * n`` (at least 2) to ``n``, without repeats."""
    low = max(2, int(round(n * smallest_share)))
    sizes = sorted({int(round(size)) for size in np.linspace(low, n, points)})
    if len(sizes) < MIN_SIZES:
        raise GbenchError(
            f"fid_infinity needs at least {MIN_SIZES} different subset sizes; {n} "
            f"samples give {len(sizes)}: evaluate 30 or more samples"
        )
    return sizes


def fit_intercept(sizes: list[int] | np.ndarray, fids: list[float] | np.ndarray) -> tuple[float, float]:
    """Least-squares line FID = a + b / N through the points; returns (a, b).

    The closed form of simple linear regression in x = 1 / N (the slope is
    cov(x, y) / var(x), the intercept mean(y) - slope * mean(x)), in float64.
    """
    x = 1.0 / np.asarray(sizes, dtype=np.float64)
    y = np.asarray(fids, dtype=np.float64)
    if x.shape != y.shape or len(x) < 2 or np.ptp(x) == 0:
        raise ValueError(
            "fit_intercept needs at least two different sizes with one FID "
            f"each, got sizes {list(sizes)} and {len(y)} FIDs"
        )
    dx = x - x.mean()
    slope = float((dx * (y - y.mean())).sum() / (dx * dx).sum())
    return float(y.mean() - slope * x.mean()), slope


def fid_curve(fake: torch.Tensor, real_statistics: dict, sizes: list[int], seed: int = 0) -> list[float]:
    """FID of a random subset of ``fake`` features (one draw per size, seeded) against the real statistics."""
    rng = np.random.RandomState(seed)
    fids = []
    for size in sizes:
        index = torch.from_numpy(rng.choice(len(fake), size, replace=False))
        statistics = fid_features_to_statistics(fake[index])
        fids.append(float(fid_statistics_to_metric(statistics, real_statistics, False)[KEY_METRIC_FID]))
    return fids


def fid_infinity(fake: torch.Tensor, real_statistics: dict, seed: int = 0) -> float:
    """The extrapolated FID at N -> infinity from ``fake`` features and the real side's ``{"mu", "sigma"}``."""
    sizes = subset_sizes(len(fake))
    return fit_intercept(sizes, fid_curve(fake, real_statistics, sizes, seed))[0]
