"""How long one evaluation takes on this machine (not a timed test).

    GBENCH_DATA=/work/shared/data python benchmarks/eval_speed.py [--samples 10000] [--repeats 2]

Evaluates the `mlp` architecture's (untrained) generator on MNIST with the
LeNet extractor: first with an empty cache (the real test split's features are
computed), then with the cached real statistics, then the cached evaluation
without KID and/or precision/recall, to show where the time goes, and the
cached evaluation with torch-fidelity's own KID and precision/recall
(``kid_pr_impl="torch-fidelity"``) against gbench's. Also times
Inception (inception-v3-compat, random weights of the right shapes) per image
on CPU. Library imports and a warm-up run are excluded. Timings are the best of
``--repeats`` (the machine may be shared). The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch


def _generator(registry, image_shape):
    arch = registry.architecture("mlp")
    params = {hp.name: hp.default for hp in arch.hyperparameters}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        nets = arch.build(params, image_shape)
    return nets.generator, nets.latent_dim


def _inception_seconds_per_image(images: int, weights_dir: Path) -> float:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from gbench.evaluation.inception_weights import write_random_inception_weights

    weights = write_random_inception_weights(weights_dir / "inception-random.pt")
    model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))
    batch = torch.randint(0, 256, (images, 3, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        model(batch[:1])  # warm-up
        started = time.perf_counter()
        model(batch)
    return (time.perf_counter() - started) / images


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2, help="runs per figure; the best is reported")
    parser.add_argument("--inception-images", type=int, default=8)
    args = parser.parse_args()

    from gbench.data import load_split
    from gbench.evaluation.evaluate import EvalSettings, evaluate_generator
    from gbench.plugins.loading import load_plugins

    registry = load_plugins().registry
    dataset = registry.dataset("mnist")
    real, _ = load_split(dataset, "test")
    generator, latent_dim = _generator(registry, dataset.image_shape)
    print(
        f"torch threads: {torch.get_num_threads()}, CPUs: {os.cpu_count()}, samples: {args.samples}, real: {len(real)}",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as scratch:
        os.environ["GBENCH_CACHE"] = scratch  # an empty cache: the first run computes the real statistics
        # Warm-up on other real images (a different cache entry): loads libraries and weights.
        evaluate_generator(generator, latent_dim, dataset, real[:500], EvalSettings(num_samples=500, kid_subsets=2))

        full = EvalSettings(num_samples=args.samples)
        quick = EvalSettings(num_samples=args.samples, kid_subsets=0, precision_recall=False)

        def first_run(settings):
            for path in (Path(scratch) / "fid-stats").glob("gbench-*"):
                path.unlink()  # forget the real statistics
            return evaluate_generator(generator, latent_dim, dataset, real, settings)

        first = [first_run(full) for _ in range(args.repeats)]
        figures = {
            "first": min(r.seconds for r in first),
            "first, FID + class metrics only": min(first_run(quick).seconds for _ in range(args.repeats)),
        }
        variants = {
            "cached": full,
            "cached, no precision/recall": EvalSettings(num_samples=args.samples, precision_recall=False),
            "cached, no KID": EvalSettings(num_samples=args.samples, kid_subsets=0),
            "cached, FID + class metrics only": quick,
            "cached, KID + PR by torch-fidelity": EvalSettings(num_samples=args.samples, kid_pr_impl="torch-fidelity"),
        }
        for name, settings in variants.items():
            figures[name] = min(
                evaluate_generator(generator, latent_dim, dataset, real, settings).seconds for _ in range(args.repeats)
            )
        print(
            f"result: fid={first[0].fid:.3f} kid={first[0].kid_mean:.4f} precision={first[0].precision:.3f} "
            f"recall={first[0].recall:.3f} extractor={first[0].fid_extractor}"
        )
        for name, seconds in figures.items():
            print(f"  {name:34s} {seconds:6.2f} s")
        inception = _inception_seconds_per_image(args.inception_images, Path(scratch))
        print(f"  inception-v3-compat (2048-d), CPU  {inception:6.2f} s per image")
    reference = figures["cached, KID + PR by torch-fidelity"]
    print(
        f"eval_first_s={figures['first']:.2f} eval_cached_s={figures['cached']:.2f} "
        f"cached_torch_fidelity_kid_pr_s={reference:.2f} speedup={reference / figures['cached']:.2f} "
        f"inception_s_per_image={inception:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
