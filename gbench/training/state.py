"""One run's training state: what a checkpoint holds, for the solo loop and a population member alike.

Both loops save a :class:`TrainState` and resume from one, so a solo run's
checkpoint.pt and a population member's are the same file: either resumes as
the other. The file is a dict of tensors and plain types (:meth:`TrainState.to_dict`),
which ``torch.load(weights_only=True)`` reads without running any code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gbench.errors import GbenchError
from gbench.results import store


@dataclass
class LastLosses:
    """The previous step's losses, as device tensors (reading them syncs); an adaptive schedule reads them."""

    d_loss: torch.Tensor | None = None
    g_loss: torch.Tensor | None = None


@dataclass
class LogWindow:
    """What the log row being built has summed so far: saved
    mid-window (at a signal), the next row's means stay exact."""

    totals: torch.Tensor  # summed d_loss, g_loss, d_real, d_fake since the last log row
    steps: int = 0
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # the objective's own metrics (a VAE's kl), summed
    last: LastLosses = field(default_factory=LastLosses)


@dataclass
class TrainState:
    """Everything a resume needs: weights, optimizer state, batch
    order and noise streams, progress and the log window."""

    generator: dict[str, torch.Tensor]
    g_opt: dict[str, Any]
    discriminator: dict[str, torch.Tensor] | None
    d_opt: dict[str, Any] | None
    batches: dict[str, Any]  # BatchStream.state(): this epoch's order and the position in it
    rng_noise: torch.Tensor  # the run's own latent-noise generator
    rng_order: torch.Tensor  # the run's own batch-order generator
    rng_cpu: torch.Tensor  # torch's global generator: what a loss draws itself (WGAN-GP's mix, a VAE's sample)
    rng_cuda: torch.Tensor | None
    step: int
    history: list[dict[str, Any]]
    seconds: float
    images: int
    window: LogWindow
    generator_ema: dict[str, torch.Tensor] | None = (
        None  # --ema: the averaged generator parameters (gbench.training.ema)
    )
    extra: dict[str, Any] = field(default_factory=dict)  # the caller's own (the runner's collapse watch)

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint file's form: tensors and plain types only."""
        plain = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("window", "extra")}
        window = self.window
        return {
            **plain,
            "window": window.totals,
            "window_steps": window.steps,
            "metric_window": dict(window.metrics),
            "last_d": window.last.d_loss,
            "last_g": window.last.g_loss,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, state: Any, where: str = "checkpoint") -> TrainState:
        """A state from its file form; ``where`` names the file in the one-line error a foreign dict gets."""
        names = [f.name for f in dataclasses.fields(cls) if f.name not in ("window", "extra")]
        # a run without --ema saves no EMA
        required = [f.name for f in dataclasses.fields(cls) if f.name in names and f.default is dataclasses.MISSING]
        window_keys = ("window", "window_steps", "metric_window", "last_d", "last_g")
        if not isinstance(state, dict) or any(name not in state for name in required):
            missing = [name for name in required if not isinstance(state, dict) or name not in state]
            raise GbenchError(f"{where} is not a gbench training checkpoint (it lacks {', '.join(missing[:4])})")
        window = LogWindow(
            totals=state.get("window", torch.zeros(4)),
            steps=int(state.get("window_steps", 0)),
            metrics=dict(state.get("metric_window") or {}),
            last=LastLosses(state.get("last_d"), state.get("last_g")),
        )
        extra = {key: value for key, value in state.items() if key not in names and key not in window_keys}
        return cls(**{name: state[name] for name in names if name in state}, window=window, extra=extra)

    def save(self, path: Path) -> None:
        store.save_tensor_file(path, self.to_dict())

    @classmethod
    def load(cls, path: Path, device: torch.device | str = "cpu", fix: str = "") -> TrainState:
        """checkpoint.pt, loaded with weights_only=True; damage or a foreign file is one GbenchError line naming it."""
        state = store.load_tensor_file(path, device, fix=fix)
        try:
            return cls.from_dict(state, where=repr(str(path)))
        except GbenchError as error:
            raise GbenchError(f"{error}; {fix}" if fix else str(error)) from None
