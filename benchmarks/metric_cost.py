"""What each registered metric costs within one evaluation, and what a plugin metric adds (not a timed test).

    GBENCH_DATA=/work/shared/data python benchmarks/metric_cost.py [--samples 10000] [--repeats 2]

Evaluates the `mlp` architecture's (untrained) generator on MNIST with the
LeNet extractor and a warm real-split cache, with gbench's built-in metrics
and with docs/examples/diversity.py registered beside them. The features are
extracted once per evaluation whatever the metrics, so a metric costs only its
own ``compute``: each is timed inside the evaluation. Timings are the best of
``--repeats`` (the machine may be shared); the ratio compares two evaluations
of this one run. The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model, timed_metric  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "diversity.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2, help="runs per figure; the best is reported")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}", flush=True)

    import torch

    from gbench.data import load_split
    from gbench.evaluation.evaluate import EvalSettings, evaluate_generator
    from gbench.plugins.loading import load_plugins

    registry = load_plugins(extra=[str(EXAMPLE)]).registry
    dataset = registry.dataset("mnist")
    real, _ = load_split(dataset, "test")
    arch = registry.architecture("mlp")
    torch.manual_seed(0)
    nets = arch.build({hp.name: hp.default for hp in arch.hyperparameters}, dataset.image_shape)
    seconds: dict[str, float] = {}

    builtin = [timed_metric(metric, seconds) for metric in registry.metrics() if metric.name != "diversity"]
    with_plugin = [*builtin, timed_metric(registry.get("metric", "diversity"), seconds)]
    settings = EvalSettings(num_samples=args.samples)
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["GBENCH_CACHE"] = scratch
        # warm-up: fills the real cache
        evaluate_generator(nets.generator, nets.latent_dim, dataset, real, settings, metrics=builtin)
        best = {"built-in": float("inf"), "built-in + diversity": float("inf")}
        for _ in range(args.repeats):  # alternating, so that both see the same load on a shared machine
            for name, metrics in (("built-in", builtin), ("built-in + diversity", with_plugin)):
                seconds_taken = evaluate_generator(
                    nets.generator, nets.latent_dim, dataset, real, settings, metrics=metrics
                ).seconds
                best[name] = min(best[name], seconds_taken)
    print(f"samples: {args.samples}, real: {len(real)}, torch threads: {torch.get_num_threads()}")
    for name, value in best.items():
        print(f"  evaluation, {name:22s} {value:6.2f} s")
    for name, value in seconds.items():
        print(f"  compute of {name:25s} {value:6.2f} s")
    ratio = best["built-in + diversity"] / best["built-in"]
    print(f"diversity adds {ratio:.2f}x to an evaluation")
    print(
        f"METRIC_COST samples={args.samples} builtin_s={best['built-in']:.3f} "
        f"with_diversity_s={best['built-in + diversity']:.3f} ratio={ratio:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
