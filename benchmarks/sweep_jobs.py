"""Does `gbench sweep --jobs 2` pay off? The same sweep with --jobs 1 and --jobs 2.

The sweep: S1's baseline (MLP, latent 64, hidden 256, batch 100, Adam 2e-4,
MNIST), one run per seed, RUNS runs of STEPS generator steps each. Each
sweep is a real ``gbench sweep`` process into its own fresh folder; the
time is its whole wall clock (start-up, data loading, workers, every run).
The goal: jobs2_s <= 0.8 * jobs1_s.

With --jobs 1 the runs train one after the other in one process with torch's
default thread count (all cores, unless --jobs1-threads says otherwise);
with --jobs 2 two worker processes train two runs at once with cores/2
threads each. Evaluation is off by default (--eval-samples 0): this measures
the execution engine, not the evaluator.

    GBENCH_DATA=../shared/data python benchmarks/sweep_jobs.py                 # 8 runs x 2,000 steps
    GBENCH_DATA=../shared/data python benchmarks/sweep_jobs.py --runs 4 --steps 200   # a quick check

Last line: jobs1_s=... jobs2_s=... ratio=...
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = """
[suite]
name = "sweep-jobs"
title = "S1 baseline, one run per seed (sweep --jobs benchmark)"
target = "plugins.mlp"
seeds = [0]

[base]
architecture = "mlp"
dataset = "mnist"
steps = {steps}
batch_size = 100
eval_samples = {eval_samples}
log_every = 100
checkpoint_every = 1000000

[base.params]
latent_dim = 64
hidden_dim = 256
lr = 0.0002

[[variants]]
name = "baseline"
"""


def sweep(suite: Path, out: Path, runs: int, jobs: int, threads: int | None) -> float:
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    else:
        env.pop("OMP_NUM_THREADS", None)
    command = [
        sys.executable,
        "-m",
        "gbench",
        "sweep",
        str(suite),
        "--out",
        str(out),
        "--seeds",
        f"0-{runs - 1}",
        "--jobs",
        str(jobs),
        "--no-report",
    ]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"gbench sweep --jobs {jobs} failed:\n{result.stderr[-2000:]}")
    rows = list(csv.DictReader(open(out / "results.csv")))
    if len(rows) != runs:
        sys.exit(f"gbench sweep --jobs {jobs} finished {len(rows)} runs, expected {runs}")
    train = sum(float(r["train_seconds"]) for r in rows)
    print(
        f"jobs={jobs}: {seconds:.1f} s wall for {runs} runs ({train:.1f} s of "
        f"training in total, {train / runs:.1f} s per run)",
        flush=True,
    )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="runs in the sweep (seeds 0..RUNS-1; default 8)")
    parser.add_argument("--steps", type=int, default=2000, help="generator steps per run (default 2000)")
    parser.add_argument("--eval-samples", type=int, default=0, help="samples per final evaluation (default 0: off)")
    parser.add_argument(
        "--jobs1-threads", type=int, help="torch threads of the --jobs 1 sweep (default: torch's, all cores)"
    )
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="gbench-sweep-jobs-"))
    try:
        suite = root / "suite.toml"
        suite.write_text(SUITE.format(steps=args.steps, eval_samples=args.eval_samples))
        print(f"cpus={os.cpu_count()} runs={args.runs} steps={args.steps} eval_samples={args.eval_samples}", flush=True)
        jobs1 = sweep(suite, root / "jobs1", args.runs, 1, args.jobs1_threads)
        jobs2 = sweep(suite, root / "jobs2", args.runs, 2, None)
        print(f"jobs1_s={jobs1:.1f} jobs2_s={jobs2:.1f} ratio={jobs2 / jobs1:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
