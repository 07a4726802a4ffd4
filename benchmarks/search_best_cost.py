"""What each candidate's best setting of a `[search]` sweep costs per generator step, as ratios to its data
set's reference, measured back to back in one process (not a timed test).

    GBENCH_DATA=../shared/data python benchmarks/search_best_cost.py RUNS [--steps 40] [--rounds 5]

RUNS: the sweep's results folder (e.g. runs/s9-created-equal-fifth). A candidate's best is the trial
with the lowest FID among its trials that were not pruned (Optuna's best trial, the one the sweep
retrains); its config.json is built again and trained for ``--steps`` generator steps on the first
10,000 training images. The wall seconds a sweep records depend on what else ran on the machine at
the time; here every round times all candidates in turn, in a rotating order, so a load swing hits
them alike, and the figure is the median over rounds of each candidate's seconds per step over the
reference's (the candidate whose name starts with ``--reference``, on the same data set).
A best's cost is its loss's and its tuned setting's together (k discriminator steps, widths).

Last line: one name=ratio per candidate (above 1: slower than the reference).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

from gbench.config import RunConfig
from gbench.plugins.loading import load_plugins
from gbench.torchtools import resolve_device
from gbench.training import runner
from gbench.training.nets import build
from gbench.training.trainer import TrainSettings, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402  (the benchmarks are scripts side by side, not a package)


def bests(runs: Path) -> dict[str, RunConfig]:
    """Each search study's best trial's configuration, by candidate (the study name after ``-search-``)."""
    best: dict[str, tuple[float, str]] = {}
    with open(runs / "results.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            study, fid = row.get("study") or "", float(row.get("fid") or "nan")
            if "-search-" not in study or row["status"] == "pruned" or not math.isfinite(fid):
                continue
            candidate = study.split("-search-", 1)[1]
            if candidate not in best or fid < best[candidate][0]:
                best[candidate] = (fid, row["run_id"])
    if not best:
        raise SystemExit(f"{runs / 'results.csv'}: no finished search trials")
    return {
        name: RunConfig.from_dict(json.loads((runs / run_id / "config.json").read_text()))
        for name, (_, run_id) in sorted(best.items())
    }


def seconds_per_step(registry, cache, config: RunConfig, steps: int, device) -> float:
    config = dataclasses.replace(config, train_limit=10_000, device=str(device))
    data = cache.training_tensor(registry, config, device)
    nets, loss, schedule = build(registry, config, device)
    settings = TrainSettings.from_params(config.params, steps, log_every=steps)
    start = time.perf_counter()
    result = train(nets, loss, schedule, data, settings)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / max(result.steps, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reference", default="non-saturating")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    configs = bests(args.runs)
    print(f"{machine(device)}; torch {torch.__version__}; {args.steps} steps, {args.rounds} rounds; {args.runs}")
    registry = load_plugins().registry
    cache = runner.DataCache()
    for config in configs.values():  # warm-up, untimed: data loaded, kernels chosen
        seconds_per_step(registry, cache, config, 2, device)
    names = list(configs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        shift = round_number % len(names)  # nobody always goes first
        for name in names[shift:] + names[:shift]:
            times[name].append(seconds_per_step(registry, cache, configs[name], args.steps, device))
    ratios = {}
    for name in names:
        dataset = configs[name].dataset
        reference = next((n for n in names if n.startswith(args.reference) and configs[n].dataset == dataset), None)
        per_round = [a / b for a, b in zip(times[name], times[reference])] if reference else []
        ratios[name] = statistics.median(per_round) if per_round else math.nan
        params = configs[name].params
        print(
            f"{name}: k {params.get('k')}, hidden {params.get('hidden_dim')}, latent {params.get('latent_dim')}: "
            f"median {statistics.median(times[name]) * 1000:.1f} ms a step, {ratios[name]:.2f}x {reference}",
            flush=True,
        )
    print(" ".join(f"{name}={ratio:.2f}" for name, ratio in ratios.items()))


if __name__ == "__main__":
    main()
