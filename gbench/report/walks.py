"""S4's measures for each run: its generator walked along fixed latent lines, the frames classified.

For each run with a saved generator, :data:`WALK_PAIRS` endpoint pairs (latent
seeds 0, 1, ...: the same pairs for every run of every setting) each give the
:data:`WALK_STEPS` interpolation frames and as many extrapolation frames of
:func:`gbench.report.interpolation.interpolation_images`. The data set's
shipped LeNet (the classifier of the ``classes`` metric, whose 128 features
are FID's) labels every frame and places it in feature space;
:mod:`gbench.analysis.transitions` turns that into the run's four numbers,
which join the run's row so that claims test them over seeds like any column.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gbench.analysis.claimtypes import Claim
from gbench.analysis.transitions import MEASURES, Walk, run_measures
from gbench.errors import GbenchError
from gbench.report.interpolation import interpolation_images

if TYPE_CHECKING:
    from gbench.plugins.registry import Registry

#: Endpoint pairs per run (latent seeds 0 .. WALK_PAIRS - 1), and frames per pair along each of the two lines.
WALK_PAIRS = 5
WALK_STEPS = 10


def wants_walks(claims: Sequence[Claim]) -> bool:
    """Whether any claim tests a walk measure: only then does the report walk the runs' generators."""
    return any(claim.metric in MEASURES for claim in claims)


def run_walks(
    run_dir: str | os.PathLike, registry: Registry, classifier: Any, pairs: int = WALK_PAIRS, steps: int = WALK_STEPS
) -> list[Walk]:
    """One run's walks: its generator's frames along each endpoint pair's line, labelled and placed by ``classifier``
    (a LeNet: uint8 images -> (features, logits))."""
    import torch

    from gbench.data import to_uint8
    from gbench.training.runner import load_run

    _, nets = load_run(run_dir, registry)
    walks = []
    for pair in range(pairs):
        images, alphas = interpolation_images(nets.generator, nets.latent_dim, steps, seed=pair)
        with torch.no_grad():
            features, logits = classifier(to_uint8(images))
        walks.append(Walk(alphas, logits.argmax(dim=1).tolist(), features.double().numpy()))
    return walks


def with_walk_measures(records: Sequence[Any], registry: Registry) -> tuple[list[Any], list[str]]:
    """The records, each run with a generator and a shipped classifier given its measures in a copy of its row;
    and a line for each kind of run that could not be walked (the report says why its claims lack values)."""
    from gbench.evaluation.extractors import load_lenet, shipped_lenet

    classifiers: dict[str, Any] = {}
    measured, skipped = [], []
    for record in records:
        dataset = str(record.row.get("dataset") or "")
        name = shipped_lenet(dataset)
        if record.run_dir is None or name is None:
            skipped.append(
                "runs read from storage have no generator.pt; report from the local results folder"
                if record.run_dir is None
                else f"no shipped classifier for data set {dataset!r} (shipped: mnist, fashion-mnist)"
            )
            measured.append(record)
            continue
        try:
            classifier = classifiers.setdefault(name, load_lenet(name))
            values = run_measures(run_walks(record.run_dir, registry, classifier))
        except GbenchError as error:
            skipped.append(str(error))
            measured.append(record)
            continue
        measured.append(dataclasses.replace(record, row={**record.row, **values}))
    return measured, [f"walk measures not taken: {line}" for line in dict.fromkeys(skipped)]
