"""Evaluation while a run trains and after: the evaluator the runner calls, and the collapse watch over its results."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

from gbench.config import RunConfig
from gbench.plugins.registry import Nets, Registry

#: A run whose evaluations cover this many classes or fewer, to the end, is flagged collapsed.
COLLAPSE_CLASSES = 2
#: Evaluation metrics that also go into metrics.csv, as curves over training.
CURVE_COLUMNS = ("fid", "classes_covered")


@dataclass
class CollapseWatch:
    """Mode collapse: classes covered at or below COLLAPSE_CLASSES from some
    evaluation to the end of the run. Early in training every sample is the
    same blob and one class gets them all, so low coverage counts only when
    it lasts to the final evaluation; ``low_since`` is where that stretch began."""

    low_since: int | None = None

    def see(self, step: int, metrics: dict[str, Any]) -> bool:
        collapsed = metrics.get("classes_covered", math.inf) <= COLLAPSE_CLASSES  # NaN (no classifier) never is
        if not collapsed:
            self.low_since = None
        elif self.low_since is None:
            self.low_since = step
        return collapsed


class Evaluator:
    """Evaluate the run's generator with gbench.evaluation.evaluate (imported only when used).

    Evaluations during training compute FID and the class metrics only: KID
    and precision/recall cost ~10 s per call on a 2-core CPU (torch-fidelity's
    numpy KID kernel, a 10k x 10k nearest-neighbour search), against under one
    second without them. The final evaluation computes everything.
    """

    def __init__(self, config: RunConfig, registry: Registry, cache: Any, device: torch.device, nets: Nets):
        from gbench.evaluation.evaluate import EvalSettings

        # cache: the runner's DataCache (the runner imports this module)
        self.config, self.registry, self.cache, self.device, self.nets = config, registry, cache, device, nets
        self.final = EvalSettings(
            num_samples=config.eval.samples,
            extractor=config.eval.extractor,
            inception_weights=config.eval.inception_weights,
        )
        self.during = dataclasses.replace(self.final, kid_subsets=0, precision_recall=False)

    def __call__(self, seed: int, final: bool) -> dict[str, Any]:
        from gbench.evaluation.evaluate import evaluate_generator

        real, labels = self.cache.split(self.registry, self.config.dataset, "test", self.config.data_root, None)
        dataset = self.registry.dataset(self.config.dataset)
        settings = self.final if final else self.during
        result = evaluate_generator(
            self.nets.generator,
            self.nets.latent_dim,
            dataset,
            real,
            settings,
            self.device,
            seed,
            labels,
            self.registry.metrics(),
            num_classes=self.nets.num_classes,  # conditional: balanced labels, y = i % num_classes for sample i
        )
        return result.as_row()
