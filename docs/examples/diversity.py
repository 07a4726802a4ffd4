"""A gbench metric plugin: how far apart the generated samples lie in the extractor's feature space."""

import torch

from gbench import hookimpl
from gbench.plugins.registry import Metric, MetricColumn


def mean_pairwise_distance(inputs):
    features = inputs.fake_features.double()
    n = len(features)
    # blocks of rows keep memory at 1,000 x N distances; the zero diagonal adds nothing to the sum
    total = sum(float(torch.cdist(block, features).sum()) for block in features.split(1000))
    return {"diversity": total / (n * (n - 1))}


@hookimpl
def gbench_register_metrics(register):
    register(
        Metric(
            "diversity",
            columns=(MetricColumn("diversity", "higher", "diversity", ".2f", "mean pairwise distance of the generated samples' features"),),
            compute=mean_pairwise_distance,
            needs=("features",),
            description="a diversity score: a collapsed generator's samples sit close together",
        )
    )
