"""What loading every file safely costs, as ratios measured in one run (not a timed test).

    python benchmarks/safeload_cost.py [--features 10000] [--repeats 3]

Two figures, each the safe path's time over the unsafe one it replaced
(docs/failures.md, "No file gbench reads runs code"):

- building torch-fidelity's Inception extractor: from the weights path, as
  torch-fidelity loads it (``weights_only=False``), against gbench's
  :func:`gbench.evaluation.extractors.weights_argument` (a ``weights_only=True`` load,
  re-saved to memory, handed over as bytes);
- reading the real split's cache entry at Inception's width (``--features``
  x 2048 float32 features and the FID statistics): torch-fidelity's pickle
  of numpy statistics loaded with ``weights_only=False``, against
  :func:`gbench.evaluation.realcache.load_real_cache` (tensors, ``weights_only=True``,
  checked).

Random Inception weights of the right shapes (no download). Timings are the
best of ``--repeats`` (the machine may be shared).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import best_seconds, cpu_model  # noqa: E402  (the benchmarks are scripts side by side, not a package)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=10_000, help="rows of the cached real features")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the best is reported")
    args = parser.parse_args()

    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.metric_fid import fid_features_to_statistics

    from gbench.evaluation import inception_weights, realcache
    from gbench.evaluation.extractor_choice import Extractor
    from gbench.results import store

    print(f"CPU: {cpu_model()}")
    with tempfile.TemporaryDirectory() as scratch:
        weights = inception_weights.write_random_inception_weights(Path(scratch) / "inception.pt")
        extractor = Extractor(inception_weights.INCEPTION, weights, "x", "2048", 3, True)

        def unsafe_build() -> object:
            return FeatureExtractorInceptionV3(
                inception_weights.INCEPTION, ["2048"], feature_extractor_weights_path=str(weights)
            )

        def safe_build() -> object:
            return FeatureExtractorInceptionV3(
                inception_weights.INCEPTION, ["2048"], **inception_weights.weights_argument(extractor)
            )

        unsafe, safe = best_seconds(unsafe_build, args.repeats), best_seconds(safe_build, args.repeats)
        print(
            f"Inception extractor ({weights.stat().st_size / 1e6:.0f} MB of weights): path "
            f"{unsafe:.3f} s, verified bytes {safe:.3f} s, ratio {safe / unsafe:.2f}"
        )

        features = torch.randn(args.features, 2048, generator=torch.Generator().manual_seed(0))
        statistics = fid_features_to_statistics(features)
        root = Path(scratch) / "fid-stats"
        features_path, stats_path = realcache.real_cache_files("gbench-bench", extractor, root)
        store.save_tensor_file(features_path, features)
        store.save_tensor_file(stats_path, {key: torch.from_numpy(value) for key, value in statistics.items()})
        numpy_stats = root / "numpy-stat-fid.pt"  # what torch-fidelity caches: a pickle of numpy arrays
        store.save_tensor_file(numpy_stats, statistics)

        def unsafe_read() -> object:
            return torch.load(features_path, map_location="cpu", weights_only=False), torch.load(
                numpy_stats, map_location="cpu", weights_only=False
            )

        def safe_read() -> object:
            return realcache.load_real_cache("gbench-bench", extractor, root)

        unsafe, safe = best_seconds(unsafe_read, args.repeats), best_seconds(safe_read, args.repeats)
        size = (features_path.stat().st_size + stats_path.stat().st_size) / 1e6
        print(
            f"real-split cache entry ({args.features} x 2048, {size:.0f} MB): torch-fidelity's load "
            f"{unsafe:.3f} s, gbench's {safe:.3f} s, ratio {safe / unsafe:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
