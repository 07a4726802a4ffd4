"""What an evaluation computes and how: :class:`EvalSettings`,
read by the evaluator and torch-fidelity's wrapper alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gbench.errors import GbenchError

KID_PR_IMPLS = ("gbench", "torch-fidelity")
#: The fewest images either side may hold: FID needs 2 for a
#: covariance (precision/recall need more, see minimum_images).
MIN_IMAGES = 2


@dataclass
class EvalSettings:
    num_samples: int = 10_000
    extractor: str | None = (
        None  # None -> the dataset's shipped LeNet when it has one, "inception" (inception-v3-compat) otherwise
    )
    inception_weights: str | None = None
    kid_subset_size: int = 1000
    batch_size: int = 500
    kid_subsets: int = 100  # torch-fidelity's default; 0 skips KID (NaN)
    precision_recall: bool = True  # False skips precision/recall (NaN): they cost most of a cached evaluation
    feature_layer: str | None = None  # None -> the extractor's default ("128" LeNet, "2048" Inception)
    cache: bool = True  # cache the real split's features and statistics
    # "gbench": KID and precision/recall from gbench.evaluation.featuremetrics (same subsets and
    # k-NN rule as torch-fidelity, ~8 s faster at 10,000 samples); "torch-fidelity":
    # torch-fidelity's own kid_features_to_metric and prc_features_to_metric, on the same features.
    kid_pr_impl: str = "gbench"
    # Also report FID-infinity (Chong & Forsyth 2020): FID on 15 subset sizes from a tenth of
    # num_samples to all of it, fitted to a + b/N; the intercept a. Needs kid_pr_impl="gbench".
    fid_infinity: bool = False


def check_inception_weights_option(
    weights: str | None, extractor: str | None, option: str = "--inception-weights"
) -> None:
    """``--inception-weights`` named for Inception FIDs: a file, holding
    only tensors (a file with code is refused), before anything trains.

    The one check ``run``, ``tune`` and a suite's variants share (``option``: the name the user wrote, for the
    one-line error); torch-fidelity is imported only when weights are named.
    """
    if not weights or extractor not in ("inception", "inception-v3-compat"):
        return
    if not Path(weights).expanduser().is_file():  # ~ as torch-fidelity's own path resolution takes it
        raise GbenchError(
            f"{option} {weights!r} is not a file; give the path of torch-fidelity's Inception weights, or leave it out"
        )
    from gbench.evaluation.inception_weights import check_inception_weights

    check_inception_weights(str(weights))
