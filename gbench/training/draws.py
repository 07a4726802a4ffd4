"""What a run draws: its own random streams and its endless stream of training batches.

Both loops draw through these, so that member i of a population draws exactly what
the solo run with seed i draws, and a checkpoint (their states) resumes the draws bit for bit.
"""

from __future__ import annotations

from typing import Any

import torch

from gbench.training.state import TrainState


class RunRandom:
    """A run's own random streams: latent noise and batch order, seeded from the run's seed.

    Own generators (not torch's global one) make a run's draws independent of
    anything else in the process, so member i of a population draws exactly
    what the solo run with seed i draws. Two streams, so that a schedule
    taking more D steps shifts the noise but never the batch order's draws.
    """

    def __init__(self, seed: int, device: torch.device):
        streams = torch.randint(2**62, (2,), generator=torch.Generator().manual_seed(seed)).tolist()
        self.noise = torch.Generator(device=device).manual_seed(streams[0])
        self.order = torch.Generator(device=device).manual_seed(streams[1])

    def load_state(self, state: TrainState) -> None:
        self.noise.set_state(state.rng_noise.cpu())
        self.order.set_state(state.rng_order.cpu())


class BatchStream:
    """Endless batches from one tensor: reshuffled each epoch, last partial batch dropped.

    With ``labels`` (a conditional run) :meth:`next_labelled` gives each batch's labels too,
    indexed by the same permutation: the images' order, and its random draws, do not change.
    """

    def __init__(
        self, data: torch.Tensor, batch_size: int, generator: torch.Generator, labels: torch.Tensor | None = None
    ):
        if len(data) < batch_size:
            raise ValueError(f"batch_size {batch_size} is larger than the {len(data)} training images")
        self.data, self.batch_size, self.generator, self.labels = data, batch_size, generator, labels
        self.per_epoch = len(data) // batch_size
        self.order = self.shuffled()
        self.position = 0  # batches taken in this epoch
        self.epochs_done = 0

    def next(self) -> torch.Tensor:
        return self.data.index_select(0, self.next_indices())

    def next_labelled(self) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The next batch and ``(its labels,)``, or ``()`` without labels (the form the loops pass on)."""
        indices = self.next_indices()
        labels = () if self.labels is None else (self.labels.index_select(0, indices),)
        return self.data.index_select(0, indices), labels

    def next_indices(self) -> torch.Tensor:
        if self.position == self.per_epoch:
            self.order = self.shuffled()
            self.position, self.epochs_done = 0, self.epochs_done + 1
        start = self.position * self.batch_size
        self.position += 1
        return self.order[start : start + self.batch_size]

    def shuffled(self) -> torch.Tensor:
        return torch.randperm(len(self.data), device=self.data.device, generator=self.generator)

    @property
    def epoch(self) -> float:
        return self.epochs_done + self.position / self.per_epoch

    def state(self) -> dict[str, Any]:
        return {"order": self.order, "position": self.position, "epochs_done": self.epochs_done}

    def load_state(self, state: dict[str, Any]) -> None:
        self.order = state["order"].to(self.data.device)
        self.position, self.epochs_done = state["position"], state["epochs_done"]
