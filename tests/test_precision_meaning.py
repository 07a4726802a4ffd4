"""Precision and recall mean what they say on LeNet features (issue #34 point 6).

On raw LeNet features uniform noise scored precision 0.997 and noisy checkerboards 1.000 against
mnist:test: images unlike any digit land near the origin, inside the large k-NN balls of the least
typical real digits. gbench measures the k-NN metrics on unit-length features
(gbench.evaluation.featuremetrics.unit_length): there noise and checkerboards score precision near 0,
and real training digits keep precision and recall near 0.87 (k = 3; the expected value for two
samples of one distribution is below 1 at any finite k).
"""

from __future__ import annotations

import pytest
import torch

from gbench.data import load_split
from gbench.evaluation.evaluate import evaluate_images
from gbench.evaluation.settings import EvalSettings

N = 2000  # generated images per set: the real side is the whole test split (10,000), as `gbench fid X mnist:test`

#: each test computes the real split's features in a cache of its own (conftest.private_cache)
pytestmark = pytest.mark.usefixtures("private_cache")


def checkerboards(generator: torch.Generator) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(28), torch.arange(28), indexing="ij")
    board = ((rows // 4 + cols // 4) % 2 * 255).int()
    noise = torch.randint(-40, 40, (N, 1, 28, 28), generator=generator)
    return (board + noise).clamp(0, 255).to(torch.uint8)


def test_noise_and_checkerboards_are_not_precise_and_real_digits_are(mnist):
    generator = torch.Generator().manual_seed(0)
    real = load_split(mnist, "test")[0]
    settings = EvalSettings(kid_subsets=0)
    noise = evaluate_images(
        torch.randint(0, 256, (N, 1, 28, 28), dtype=torch.uint8, generator=generator), mnist, real, settings
    )
    boards = evaluate_images(checkerboards(generator), mnist, real, settings)
    digits = evaluate_images(load_split(mnist, "train", limit=N)[0], mnist, real, settings)
    assert noise.precision < 0.1 and noise.recall < 0.05, (noise.precision, noise.recall)
    assert boards.precision < 0.05 and boards.recall < 0.05, (boards.precision, boards.recall)
    assert digits.precision > 0.8 and digits.recall > 0.8, (digits.precision, digits.recall)
    assert digits.density > 0.8 and noise.coverage < 0.05 and boards.coverage < 0.05
