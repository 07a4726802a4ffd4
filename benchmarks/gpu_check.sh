#!/usr/bin/env bash
# GPU check for populations (issue #12, point 7): under 8 minutes on one GPU.
#
# Prints, for S1's baseline MLP GAN (latent 64, hidden 256, batch 100): one solo
# run's images/s; populations of 32 and 256 members (fp32 and bf16), combined
# images/s and the ratio to solo runs; Inception-v3 seconds per image (random
# weights of the right shapes: timing only); then the population tests on CUDA.
# CUDA graphs / torch.compile are not measured yet (not implemented in the loop).
#
#     GBENCH_DATA=../shared/data bash benchmarks/gpu_check.sh
#
# Without a GPU it says so and exits 0: nothing here is faked on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
export GBENCH_DATA=${GBENCH_DATA:-../shared/data}

timeout 360 "$PYTHON" - <<'PY'
import dataclasses, os, sys, tempfile, time
import torch

# GPU_CHECK_SMOKE=1 runs the same code on the CPU at toy sizes, so that tests/test_benchmarks_run.py
# keeps this script in step with the code it drives (it is otherwise only ever run on a lent GPU).
SMOKE = os.environ.get("GPU_CHECK_SMOKE") == "1"
if not torch.cuda.is_available() and not SMOKE:
    print("gpu_check: no CUDA device; nothing to measure here")
    sys.exit(0)
from gbench.config import RunConfig, resolve_params
from gbench.plugins.loading import load_plugins
from gbench.training.population.loop import Member, train_population
from gbench.training.runner import DataCache, build
from gbench.training.trainer import TrainSettings, train

device = torch.device("cpu" if SMOKE else "cuda")
synchronize = (lambda: None) if SMOKE else torch.cuda.synchronize
name = "cpu (smoke)" if SMOKE else torch.cuda.get_device_name(device)
bf16 = "smoke" if SMOKE else ("yes" if torch.cuda.is_bf16_supported() else "no")
print(f"gpu: {name}; torch {torch.__version__}; bf16 {bf16}", flush=True)
registry = load_plugins().registry
data = DataCache().training_tensor(registry, RunConfig(architecture="mlp", train_limit=1_000 if SMOKE else 60_000), device)
STEPS, SIZES = (3, (2,)) if SMOKE else (300, (32, 256))

def config(seed):
    c = RunConfig(architecture="mlp", seed=seed)
    return dataclasses.replace(c, params=resolve_params(registry, c, {"latent_dim": 64, "hidden_dim": 256, "batch_size": 100}))

def settings(c, precision, steps=STEPS):
    return TrainSettings(steps=steps, batch_size=100, lr=float(c.params["lr"]), log_every=steps, seed=c.seed, precision=precision)

def solo(precision, steps=STEPS):
    c = config(0)
    nets, loss, schedule = build(registry, c, device)
    synchronize(); started = time.perf_counter()
    result = train(nets, loss, schedule, data, settings(c, precision, steps))
    synchronize()
    return result.images / (time.perf_counter() - started)

def population(size, precision, steps=STEPS):
    members, loss = [], None
    for seed in range(size):
        c = config(seed)
        nets, loss, schedule = build(registry, c, device)
        members.append(Member(nets, schedule, seed))
    synchronize(); started = time.perf_counter()
    results = train_population(members, loss, data, settings(c, precision, steps))
    synchronize()
    return sum(r.images for r in results) / (time.perf_counter() - started)

if not SMOKE:
    solo("fp32", 20); population(4, "fp32", 20); population(4, "bf16", 20)  # warm-up
for precision in ("fp32", "bf16"):
    alone = solo(precision)
    print(f"solo {precision}: {alone:,.0f} images/s", flush=True)
    for size in SIZES:
        rate = population(size, precision, STEPS if size <= 32 else 100)
        print(f"population {size} {precision}: {rate:,.0f} images/s combined, {rate / alone:.1f}x {size} solo runs", flush=True)

try:
    from gbench.evaluation.inception_weights import write_random_inception_weights
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    path = write_random_inception_weights(os.path.join(tempfile.mkdtemp(), "inception.pth"))
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)).to(device).eval()
    images = torch.randint(0, 255, (2 if SMOKE else 500, 3, 299, 299), dtype=torch.uint8, device=device)
    with torch.no_grad():
        net(images[:1]); synchronize(); started = time.perf_counter()
        for start in range(0, len(images), 100):
            net(images[start:start + 100])
        synchronize()
    print(f"inception-v3: {(time.perf_counter() - started) / len(images) * 1e3:.3f} ms per image", flush=True)
except Exception as error:
    print(f"inception-v3: skipped ({type(error).__name__}: {error})")
PY

if "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    GBENCH_TEST_DEVICE=cuda timeout 100 "$PYTHON" -m pytest -q -x tests/test_population.py -k "matches_solo or adaptive or diverging or checkpoint or host_sync" && echo "cuda tests: passed" || echo "cuda tests: FAILED"
fi
