"""Training the LeNet extractors: reproduces the shipped weights from a fixed seed.

``gbench extractor train DATASET`` (gbench/commands/extractor.py) is the one
way in: it loads the plugins, trains, compares the SHA-256 with the shipped
file and writes or installs the weights. This module only trains.
"""

from __future__ import annotations

import math
import sys
import time

import torch
import torch.nn.functional as F

from gbench.data import load_split
from gbench.errors import GbenchError
from gbench.evaluation.extractors import LeNet
from gbench.plugins.registry import Dataset

# Per dataset: epochs, learning rate. Chosen to clear the accuracy floors
# (99.0% MNIST, 90% Fashion-MNIST) in one to three minutes on 2 CPU cores.
RECIPES = {"mnist": (6, 3e-3), "fashion-mnist": (8, 3e-3)}
#: Any other labelled dataset (a domain LeNet): epochs unless given, and the learning rate.
DOMAIN_RECIPE = (10, 3e-3)
_BATCH = 128
_THREADS = 2  # fixed, so that the bits do not depend on how many cores the machine has


def accuracy(net: LeNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``images`` the classifier labels as ``labels`` (eval mode)."""
    net.eval()
    with torch.inference_mode():
        predictions = torch.cat([net(batch)[1].argmax(1) for batch in images.split(1000)])
    return float((predictions == labels).float().mean())


def _normalise_features(net: LeNet, images: torch.Tensor) -> None:
    """Rescale the 128-d features to unit RMS on ``images`` without changing the logits.

    KID's polynomial kernel (x.y / d + 1)^3 assumes features of order 1 (as
    Inception's are); raw LeNet features have an RMS near 5, which makes KID
    explode in size and variance. Dividing fc1 by s and multiplying fc2 by s
    leaves the classifier's logits as they were, since relu(f / s) * s = relu(f).
    """
    net.eval()
    with torch.inference_mode():
        total = sum(float(net(batch)[0].double().square().sum()) for batch in images.split(1000))
    rms = math.sqrt(total / (len(images) * net.fc1.out_features))
    with torch.no_grad():
        net.fc1.weight.div_(rms)
        net.fc1.bias.div_(rms)
        net.fc2.weight.mul_(rms)


def train_extractor(
    dataset: Dataset,
    seed: int = 0,
    data_root: str | None = None,
    verbose: bool = True,
    epochs: int | None = None,
    splits: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[dict, float]:
    """Train the LeNet for ``dataset`` (its C x H x W and classes) from ``seed``; return (state_dict, test accuracy).

    The shipped datasets follow :data:`RECIPES`; any other labelled dataset
    :data:`DOMAIN_RECIPE`, with ``epochs`` when given. ``splits``, when the
    caller has loaded them already: (train images, train labels, test images, test labels).

    Deterministic on CPU: a private seeded generator drives init and shuffling,
    deterministic algorithms are on, and the thread count is fixed. A
    different CPU family or torch version can still change the last bits (and
    so the SHA-256) while giving the same accuracy to about 0.1%.
    """
    recipe_epochs, lr = RECIPES.get(dataset.name, DOMAIN_RECIPE)
    epochs = epochs or recipe_epochs
    train_x, train_y, test_x, test_y = splits or (
        *load_split(dataset, "train", data_root),
        *load_split(dataset, "test", data_root),
    )
    if len(train_x) == 0 or len(test_x) == 0:
        raise GbenchError(
            f"dataset {dataset.name!r} has an empty train or test split; a "
            "LeNet extractor needs labelled images in both"
        )
    classes = dataset.num_classes
    if int(train_y.max()) >= classes or int(train_y.min()) < 0:
        raise GbenchError(
            f"dataset {dataset.name!r} has labels outside 0..{classes - 1}; a LeNet extractor needs class labels"
        )

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(_THREADS)
    torch.use_deterministic_algorithms(True)
    # Subnormal floats take a slow path on x86; flushing them to zero guards
    # against it (the shipped weights were trained, and reproduced, this way).
    flush = torch.set_flush_denormal(True)
    started = time.time()
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            net = LeNet(classes, dataset.image_shape)
            generator = torch.Generator().manual_seed(seed)
            optimizer = torch.optim.Adam(net.parameters(), lr=lr)
            steps = epochs * ((len(train_x) + _BATCH - 1) // _BATCH)
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
            for epoch in range(epochs):
                net.train()
                order = torch.randperm(len(train_x), generator=generator)
                for start in range(0, len(train_x), _BATCH):
                    index = order[start : start + _BATCH]
                    loss = F.cross_entropy(net(train_x[index])[1], train_y[index])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                if verbose:
                    print(
                        f"epoch {epoch + 1}/{epochs}: test accuracy "
                        f"{accuracy(net, test_x, test_y):.4f} ({time.time() - started:.0f} s)",
                        file=sys.stderr,
                    )
            _normalise_features(net, train_x)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        if flush:
            torch.set_flush_denormal(False)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return state, accuracy(net, test_x, test_y)
