"""What the conditional metrics cost within one evaluation, and that an unconditional one pays nothing for them.

    GBENCH_DATA=/work/shared/data python benchmarks/conditional_metrics_cost.py [--samples 10000] [--repeats 2]

The "generator" hands out MNIST test images (the class asked for, cycling through that class's images, when
called as generator(z, y); the images in order when called as generator(z)), so generating costs next to
nothing and the evaluation's own work is what is timed: LeNet features, a warm real-split cache, every
built-in metric at its defaults (KID's 100 subsets, precision/recall). Three evaluations of this one run:
unconditional with the conditional metrics registered, unconditional without them, conditional
(num_classes=10); each conditional metric's compute is timed inside the last. Timings are the best of
``--repeats`` (the machine may be shared). The last line is machine-readable. On a loaded machine the
threads of torch and of numpy's OpenBLAS contend: compare a run with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model, timed_metric  # noqa: E402

CLASSES = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2, help="runs per figure; the best is reported")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}", flush=True)

    import torch

    import plugins.metrics as builtin
    from gbench.data import load_split
    from gbench.evaluation.evaluate import EvalSettings, evaluate_generator
    from gbench.plugins.loading import load_plugins

    registry = load_plugins().registry
    dataset = registry.dataset("mnist")
    real, labels = load_split(dataset, "test")

    class RealDigits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.by_class = [real[labels == y] for y in range(CLASSES)]
            self.served = [0] * CLASSES
            self.position = 0

        def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
            if y is None:
                rows = torch.arange(self.position, self.position + len(z)) % len(real)
                self.position += len(z)
                return real[rows].float() / 127.5 - 1
            images = torch.empty(len(y), *real.shape[1:], dtype=real.dtype)
            for wanted in y.unique().tolist():  # per class, not per image: as cheap as the unconditional path
                rows = torch.nonzero(y == wanted).flatten()
                pool = self.by_class[wanted]
                images[rows] = pool[(self.served[wanted] + torch.arange(len(rows))) % len(pool)]
                self.served[wanted] += len(rows)
            return images.float() / 127.5 - 1

    seconds: dict[str, float] = {}

    every = [
        timed_metric(metric, seconds) if metric in builtin.CONDITIONAL else metric for metric in registry.metrics()
    ]
    without = [metric for metric in registry.metrics() if metric not in builtin.CONDITIONAL]
    settings = EvalSettings(num_samples=args.samples)
    runs = {
        "unconditional, all metrics": (every, 0),
        "unconditional, no conditional metrics": (without, 0),
        "conditional (num_classes=10), all metrics": (every, CLASSES),
    }
    best = dict.fromkeys(runs, float("inf"))
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["GBENCH_CACHE"] = scratch
        evaluate_generator(RealDigits(), 8, dataset, real, settings, real_labels=labels, metrics=without)  # warm-up
        for _ in range(args.repeats):  # alternating, so that all see the same load on a shared machine
            for name, (metrics, classes) in runs.items():
                result = evaluate_generator(
                    RealDigits(), 8, dataset, real, settings, real_labels=labels, metrics=metrics, num_classes=classes
                )
                best[name] = min(best[name], result.seconds)
    print(f"samples: {args.samples}, real: {len(real)}, torch threads: {torch.get_num_threads()}")
    for name, value in best.items():
        print(f"  evaluation, {name:42s} {value:6.2f} s")
    for name, value in seconds.items():
        print(f"  compute of {name:43s} {value:6.2f} s")
    skipped = best["unconditional, all metrics"] / best["unconditional, no conditional metrics"]
    added = best["conditional (num_classes=10), all metrics"] / best["unconditional, all metrics"]
    print(f"registered but unconditional: {skipped:.2f}x; a conditional evaluation: {added:.2f}x an unconditional one")
    print(
        f"CONDITIONAL_COST samples={args.samples} unconditional_s={best['unconditional, all metrics']:.3f} "
        f"skipped_ratio={skipped:.3f} conditional_ratio={added:.3f} "
        + " ".join(f"{name}_s={value:.3f}" for name, value in seconds.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
