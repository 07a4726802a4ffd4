"""Class-based metrics from a domain classifier: mode coverage, class KL, classifier IS.

Pure functions of logits and labels (tests check them against hand
computations); the classifier is the dataset's shipped LeNet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from gbench.results.flags import COVERED_SHARE

NAN = float("nan")


def classify(classifier: torch.nn.Module, images: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """The classifier's float32 CPU logits for uint8 ``images``, in batches."""
    with torch.no_grad():
        return torch.cat([classifier(batch.to(device))[1].float().cpu() for batch in images.split(batch_size)])


def classifier_inception_score(logits: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))), p(y) the mean prediction, in float64, one split."""
    if len(logits) == 0:
        return NAN
    log_p = logits.double().log_softmax(dim=1)
    log_marginal = torch.logsumexp(log_p, dim=0) - math.log(len(log_p))
    kl = (log_p.exp() * (log_p - log_marginal)).sum(dim=1).mean()
    return float(kl.exp())


def mode_coverage(predicted: torch.Tensor, reference_counts: Sequence[int]) -> tuple[list[int], int, float]:
    """Per-class counts of the predicted labels, classes covered, KL(generated || reference).

    A class is covered when it gets at least half (:data:`COVERED_SHARE`) the
    samples it would get under the reference distribution. The KL divergence is in nats and runs
    from the generated class distribution to the reference one, so it stays
    finite when the generator drops classes (a full collapse onto class c
    gives -log q_c).
    """
    reference = torch.as_tensor(list(reference_counts), dtype=torch.float64)
    counts = torch.bincount(predicted.flatten().long().cpu(), minlength=len(reference))[: len(reference)]
    n = int(counts.sum())
    q = reference / reference.sum()
    p = counts.double() / max(n, 1)
    covered = int(((counts.double() >= COVERED_SHARE * q * n) & (q > 0)).sum())
    support = p > 0
    kl = float((p[support] * (p[support] / q[support]).log()).sum()) if n else NAN
    return [int(c) for c in counts], covered, kl
