"""Where a population's training step spends its time, by kind of operation.

    GBENCH_DATA=../shared/data python benchmarks/population_profile.py --members 8 --precision bf16

population_speed.py says how fast a population trains; this says why it is no
faster. It trains one population of S1's MLP GAN (or the S2 DCGAN cell) and
times every aten operation it runs on its own: a TorchDispatchMode around each
call, which is nearer the truth than torch.profiler (whose bookkeeping made
the casts look several times slower than they are). The operations are grouped
into matmuls (and convolutions), casts and copies, the optimizer, random
numbers and batch gathering, and everything else (activations, bias adds, the
losses). Python and autograd's own work between operations is what is left of
a plain run's wall time. Matmuls also get their rate in GFLOP/s, set against
the peak of a batched matmul of S1's shapes measured in the same run: a share
that is mostly matmuls running near that peak is a step no population of this
size can make much faster on this machine.

Ends with one line, e.g. ``profile_8_bf16 matmul=0.41 cast=0.18 ...`` (shares
of the plain step's wall time).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import population_speed as speed  # noqa: E402  (the benchmarks are scripts side by side, not a package)

from gbench.config import RunConfig  # noqa: E402
from gbench.errors import GbenchError  # noqa: E402
from gbench.memory import keep_freed_memory  # noqa: E402
from gbench.plugins.loading import load_plugins  # noqa: E402
from gbench.torchtools import resolve_device  # noqa: E402
from gbench.training.population.loop import Member, train_population  # noqa: E402
from gbench.training.runner import DataCache, build  # noqa: E402

GROUPS = ("matmul", "cast", "optimizer", "random", "other")  # "random": noise and batch gathering; "other": the rest
# Names as __torch_dispatch__ sees them: composite ops (linear, matmul) arrive already decomposed into these.
_MATMUL = {
    "mm",
    "bmm",
    "addmm",
    "baddbmm",
    "matmul",
    "convolution",
    "_convolution",
    "convolution_backward",
    "mkldnn_convolution",
}
_CAST = {"_to_copy", "copy_", "clone", "contiguous"}
# stack: members' noise and batches into one
_RANDOM = {"randn", "normal_", "uniform_", "randperm", "index_select", "stack"}


def group_of(op_name: str) -> str:
    """The group of an aten operation named as in ``torch.ops.aten.bmm.default`` -> ``bmm``."""
    if op_name in _MATMUL:
        return "matmul"
    if op_name in _CAST:
        return "cast"
    if "adam" in op_name or op_name.startswith("_foreach_"):
        return "optimizer"
    if op_name in _RANDOM:
        return "random"
    return "other"


class OpTimer(TorchDispatchMode):
    """Seconds and calls of every aten operation run inside it (CPU: each call's own duration), per operation
    and, summed through ``group_of``, per group."""

    def __init__(self) -> None:
        super().__init__()
        self.op_seconds: dict[str, float] = defaultdict(float)
        self.op_calls: dict[str, int] = defaultdict(int)

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        started = time.perf_counter()
        result = func(*args, **(kwargs or {}))
        name = func._overloadpacket.__name__
        self.op_seconds[name] += time.perf_counter() - started
        self.op_calls[name] += 1
        return result

    @property
    def seconds(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for name, seconds in self.op_seconds.items():
            totals[group_of(name)] += seconds
        return totals

    @property
    def calls(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for name, calls in self.op_calls.items():
            totals[group_of(name)] += calls
        return totals


def profile_population(registry: Any, data: torch.Tensor, cell: str, size: int, steps: int, precision: str) -> OpTimer:
    """Every operation of one population of ``size`` members training ``steps`` steps, timed by group."""
    members, loss = [], None
    for config in speed.configs(registry, cell, range(size)):
        nets, loss, schedule = build(registry, config, data.device)
        members.append(Member(nets, schedule, config.seed))
    timer = OpTimer()
    with timer:  # training only, as population_speed times it: building the members is not part of a step
        train_population(members, loss, data, speed.settings(config, steps, precision))
    return timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8, help="population size")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--cell", choices=sorted(speed.CELLS), default="mlp")
    parser.add_argument("--steps", type=int, default=40, help="generator steps per timed run (after a warm-up)")
    parser.add_argument("--ops", type=int, default=0, metavar="N", help="also list the N operations that took longest")
    parser.add_argument(
        "--device",
        default="cpu",
        help="cpu only: CUDA operations run asynchronously, so their own times are not measurable this way",
    )
    args = parser.parse_args()
    if args.members < 1 or args.steps < 1 or args.ops < 0:
        parser.error(
            f"--members {args.members}, --steps {args.steps} and --ops {args.ops}: give "
            "--members and --steps at least 1, --ops 0 or more"
        )
    try:
        device = resolve_device(args.device)
    except GbenchError as error:
        parser.error(str(error))
    if device.type != "cpu":
        parser.error(
            f"--device {args.device}: this profile times each CPU operation; on CUDA use torch.profiler or nsys"
        )
    try:
        keep_freed_memory()  # as the gbench command does
    except GbenchError as error:
        parser.error(str(error))
    registry = load_plugins().registry
    data = DataCache().training_tensor(registry, RunConfig(architecture="mlp", train_limit=10_000), device)
    print(
        f"machine: {speed.machine(device)}; torch {torch.__version__}; {args.cell}, "
        f"{args.members} members, {args.precision}, {args.steps} steps",
        flush=True,
    )

    speed.time_population(registry, data, args.cell, args.members, 3, args.precision)  # warm-up
    plain_rate = max(
        speed.time_population(registry, data, args.cell, args.members, args.steps, args.precision) for _ in range(3)
    )
    images = args.members * args.steps * int(speed.configs(registry, args.cell, range(1))[0].params["batch_size"])
    wall = images / plain_rate  # seconds of one plain run, the best of 3
    timer = profile_population(registry, data, args.cell, args.members, args.steps, args.precision)
    flops = speed.flops_per_image(registry, data, args.cell) * images
    peak = speed.bmm_rate(args.members, torch.bfloat16 if args.precision == "bf16" else torch.float32, device)

    seconds, calls = timer.seconds, timer.calls
    shares = {group: seconds[group] / wall for group in GROUPS}
    outside = max(0.0, 1 - sum(shares.values()))
    print(f"plain run: {plain_rate:,.0f} images/s, {wall / args.steps * 1e3:.1f} ms per step")
    print(f"{'group':16} {'ms/step':>8} {'share':>6} {'calls/step':>10}")
    for group in GROUPS:
        print(
            f"{group:16} {seconds[group] / args.steps * 1e3:8.2f} "
            f"{shares[group]:6.2f} {calls[group] / args.steps:10.1f}"
        )
    print(f"{'python+autograd':16} {outside * wall / args.steps * 1e3:8.2f} {outside:6.2f} {'':>10}")
    for name in sorted(timer.op_seconds, key=lambda name: -timer.op_seconds[name])[: args.ops]:
        print(
            f"  {name:24} {group_of(name):16} {timer.op_seconds[name] / args.steps * 1e3:8.2f} "
            f"ms/step {timer.op_calls[name] / args.steps:6.1f} calls/step"
        )
    print(
        f"matmuls: {flops / seconds['matmul'] / 1e9:.0f} GFLOP/s against a "
        f"{args.precision} batched-matmul peak of {peak / 1e9:.0f} "
        f"(S1's shapes, {args.members} members); the counted FLOPs at that peak "
        f"would take {flops / peak / wall:.2f} of the step"
    )
    print(
        f"profile_{args.members}_{args.precision} "
        + " ".join(f"{group}={shares[group]:.2f}" for group in GROUPS)
        + f" python={outside:.2f}"
    )


if __name__ == "__main__":
    main()
