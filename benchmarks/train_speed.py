"""Training speed of S1's baseline (latent 64, hidden 256, batch 100, MNIST), three ways in one process.

1. gbench's trainer (preloaded tensor, fused Adam, no per-step host sync);
2. the plain course-style loop the studies ran: torchvision MNIST with ToTensor
   and Normalize, a shuffling DataLoader, the same nets and steps;
3. the naive bound: the same steps on a preloaded tensor, nothing else.

It also counts the FLOPs of one training step (torch.utils.flop_counter) and
measures this machine's float32 matrix-multiply rate, to say what fraction of
that limit each loop reaches. The machine is shared and noisy, so the three
are interleaved over several rounds and each takes its best round.

    GBENCH_DATA=../shared/data python benchmarks/train_speed.py [--epochs 1] [--rounds 3] [--device auto]

Last line: speedup_vs_plain=X.XX bound_ratio=Y.YY roofline=Z.ZZ
(bound_ratio = gbench's time over the naive bound's; below 1 is faster than the bound).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from gbench.config import RunConfig, resolve_params
from gbench.data import search_roots
from gbench.plugins.loading import load_plugins
from gbench.torchtools import resolve_device
from gbench.training.runner import DataCache, build
from gbench.training.trainer import TrainSettings, train

BATCH, LATENT, HIDDEN, LR, BETAS = 100, 64, 256, 2e-4, (0.5, 0.999)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def fresh(registry, device, seed=0):
    config = RunConfig(
        architecture="mlp",
        seed=seed,
        params={"latent_dim": LATENT, "hidden_dim": HIDDEN, "batch_size": BATCH, "lr": LR},
    )
    config = dataclasses.replace(config, params=resolve_params(registry, config))
    return build(registry, config, device)


def plain_step(G, D, g_opt, d_opt, real, device):
    """One course-style step: D on real and fake, then G on the same fake."""
    ones = torch.ones(real.shape[0], device=device)
    zeros = torch.zeros(real.shape[0], device=device)
    fake = G(torch.randn(real.shape[0], LATENT, device=device))
    d_loss = F.binary_cross_entropy_with_logits(D(real).reshape(-1), ones) + F.binary_cross_entropy_with_logits(
        D(fake.detach()).reshape(-1), zeros
    )
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    g_loss = F.binary_cross_entropy_with_logits(D(fake).reshape(-1), ones)
    g_opt.zero_grad()
    g_loss.backward()
    g_opt.step()


def time_gbench(registry, data, steps, device):
    nets, loss, schedule = fresh(registry, device)
    settings = TrainSettings(steps=steps, batch_size=BATCH, lr=LR, beta1=BETAS[0], beta2=BETAS[1], log_every=100)
    sync(device)
    start = time.perf_counter()
    train(nets, loss, schedule, data, settings)
    sync(device)
    return time.perf_counter() - start


def time_plain(registry, steps, device):
    import torchvision
    from torchvision import transforms

    root = next((r for r in search_roots() if (r / "MNIST" / "raw").is_dir()), None)
    dataset = torchvision.datasets.MNIST(
        str(root),
        train=True,
        download=False,
        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]),
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True)
    nets, _, _ = fresh(registry, device)
    G, D = nets.generator, nets.discriminator
    g_opt, d_opt = torch.optim.Adam(G.parameters(), LR, betas=BETAS), torch.optim.Adam(D.parameters(), LR, betas=BETAS)
    sync(device)
    start = time.perf_counter()
    done = 0
    while done < steps:
        for real, _ in loader:
            plain_step(G, D, g_opt, d_opt, real.to(device), device)
            done += 1
            if done == steps:
                break
    sync(device)
    return time.perf_counter() - start


def time_bound(registry, data, steps, device):
    nets, _, _ = fresh(registry, device)
    G, D = nets.generator, nets.discriminator
    g_opt, d_opt = torch.optim.Adam(G.parameters(), LR, betas=BETAS), torch.optim.Adam(D.parameters(), LR, betas=BETAS)
    order = torch.randperm(len(data), device=device)
    per_epoch = len(data) // BATCH
    sync(device)
    start = time.perf_counter()
    for step in range(steps):
        index = step % per_epoch
        plain_step(G, D, g_opt, d_opt, data[order[index * BATCH : (index + 1) * BATCH]], device)
    sync(device)
    return time.perf_counter() - start


def step_flops(registry, data, device):
    """FLOPs of one gbench training step (one D step and one G step)."""
    nets, loss, schedule = fresh(registry, device)
    settings = TrainSettings(steps=1, batch_size=BATCH, lr=LR, log_every=1)
    with FlopCounterMode(display=False) as counter:
        train(nets, loss, schedule, data[: BATCH * 2], settings)
    return counter.get_total_flops()


def matmul_rate(device, size=2048, repeats=20):
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    registry = load_plugins().registry
    data = DataCache().training_tensor(registry, RunConfig(architecture="mlp"), device)
    steps = int(args.epochs * (len(data) // BATCH))

    best = {"gbench": float("inf"), "plain": float("inf"), "bound": float("inf")}
    for round_ in range(args.rounds):
        best["gbench"] = min(best["gbench"], time_gbench(registry, data, steps, device))
        best["plain"] = min(best["plain"], time_plain(registry, steps, device))
        best["bound"] = min(best["bound"], time_bound(registry, data, steps, device))
        print(f"round {round_ + 1}: " + "  ".join(f"{k} {v:.2f}s" for k, v in best.items()), flush=True)
    flops = step_flops(registry, data, device)
    rate = matmul_rate(device)

    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads"
    print(f"device: {device} ({hardware})")
    print(
        f"steps per run: {steps} (batch {BATCH}, latent {LATENT}, hidden {HIDDEN}); FLOPs per "
        f"step: {flops / 1e6:.1f} M; matmul rate: {rate / 1e9:.0f} GFLOP/s"
    )
    for name, seconds in best.items():
        print(
            f"{name:>7}: {seconds:6.2f} s  {steps * BATCH / seconds:9,.0f} img/s  "
            f"{flops * steps / seconds / 1e9:6.1f} GFLOP/s  roofline {flops * steps / seconds / rate:.2f}"
        )
    print(
        f"speedup_vs_plain={best['plain'] / best['gbench']:.2f} bound_ratio={best['gbench'] / best['bound']:.2f} "
        f"roofline={flops * steps / best['gbench'] / rate:.2f}"
    )


if __name__ == "__main__":
    main()
