"""The training loop: generic over architecture, loss and schedule.

Read it top to bottom: optimizers, the batch stream, then one loop of
discriminator steps and a generator step. It knows nothing of files, plugins
or metrics; callers pass callbacks for logging, evaluation and checkpoints.

Speed notes (why it looks the way it does):
- the whole training set is one float tensor on the device; a batch is one
  index_select of a per-epoch permutation: no DataLoader, no per-image work;
- Adam is fused where torch supports it (one kernel for all parameters);
- the generator step reuses the last discriminator step's fake batch (G is
  unchanged since it was drawn) and freezes D's weights, so no weight
  gradients are computed for D during the generator's backward pass;
- losses are summed on the device every step and read back only every
  ``log_every`` steps: one host sync per log row, not per step;
- a non-finite loss is caught on the device at its step (gbench.training.divergence):
  from it on the optimizer steps are skipped, and the log row reads when;
- ``--ema``: after each generator step one fused lerp updates the weights' average
  (gbench.training.ema), which evaluation, samples and generator.pt then use;
- a conditional run (gbench.training.conditioning) takes each real batch's labels with the
  same index_select, and draws each fake batch's labels in one multinomial on the device.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from gbench.plugins.registry import LossTerms, Nets
from gbench.training import signals
from gbench.training.conditioning import Conditioning, discriminator_terms, generate, generator_terms
from gbench.training.divergence import DivergenceWatch, halting_step
from gbench.training.draws import BatchStream, RunRandom
from gbench.training.ema import GeneratorEMA
from gbench.training.state import LastLosses, LogWindow, TrainState

#: Columns of the per-step history the trainer records (mean over the log window).
HISTORY_COLUMNS = ("step", "epoch", "images", "seconds", "d_loss", "g_loss", "d_real", "d_fake")


@dataclass
class TrainSettings:
    steps: int
    batch_size: int
    lr: float
    beta1: float = 0.5
    beta2: float = 0.999
    log_every: int = 50
    eval_every: int | None = None
    checkpoint_every: int | None = None
    seed: int = 0  # seeds the run's own noise and batch-order generators
    precision: str = "fp32"  # "fp32" or "bf16" (autocast; weights and Adam state stay float32)
    # --ema: the decay of the generator weights' moving average (gbench.training.ema); None: off
    ema: float | None = None

    @classmethod
    def from_params(cls, params: dict[str, Any], steps: int, **rest: Any) -> TrainSettings:
        """A run's resolved batch size, lr and betas as the loop's settings; the rest as given."""
        lr, beta1, beta2 = (float(params[name]) for name in ("lr", "beta1", "beta2"))
        return cls(steps=steps, batch_size=int(params["batch_size"]), lr=lr, beta1=beta1, beta2=beta2, **rest)


@dataclass
class TrainResult:
    history: list[dict[str, Any]]
    steps: int  # generator steps completed
    seconds: float  # training time, evaluation during training excluded
    images: int  # real images the model consumed
    status: str = "ok"  # "ok" or "diverged"
    diverged_step: int | None = None  # the step whose loss was first non-finite; the weights are from the step before


@dataclass
class Callbacks:
    """Hooks into the loop. ``on_eval(step)`` returns columns for that step's history row."""

    on_log: Callable[[dict[str, Any]], None] | None = None
    on_eval: Callable[[int], dict[str, Any]] | None = None
    on_checkpoint: Callable[[TrainState], None] | None = None


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bf16 autocast for the forward passes and losses (backward runs outside it)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def make_adam(parameters: Any, lr: float, betas: tuple[float, float]) -> torch.optim.Optimizer:
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError):  # a device or dtype the fused kernel lacks
        return torch.optim.Adam(parameters, lr=lr, betas=betas)


def train(
    nets: Nets,
    loss: Any,
    schedule: Any,
    data: torch.Tensor,
    settings: TrainSettings,
    callbacks: Callbacks | None = None,
    resume: TrainState | None = None,
    conditioning: Conditioning | None = None,
) -> TrainResult:
    """Train ``nets`` on ``data`` (float images in [-1, 1] on the training device);
    with ``conditioning``, class-conditional nets on the data's labels (gbench.training.conditioning)."""
    callbacks = callbacks or Callbacks()
    device = data.device
    G, D = nets.generator, nets.discriminator
    batch_size, latent_dim = settings.batch_size, nets.latent_dim
    betas = (settings.beta1, settings.beta2)

    # --- optimizers: the schedule may give D and G different learning rates (TTUR)
    d_lr, g_lr = schedule.learning_rates(settings.lr)
    g_opt = make_adam(G.parameters(), g_lr, betas)
    d_opt = make_adam(D.parameters(), d_lr, betas) if D is not None else None
    random = RunRandom(settings.seed, device)
    batches = BatchStream(data, batch_size, random.order, conditioning.labels if conditioning else None)
    watch = DivergenceWatch(device)
    g_step = halting_step(g_opt, watch.halted)
    d_step = halting_step(d_opt, watch.halted) if d_opt is not None else None

    def noise() -> torch.Tensor:
        return torch.randn(batch_size, latent_dim, device=device, generator=random.noise)

    weights = conditioning.frequencies if conditioning else None
    takes_labels = bool(conditioning and conditioning.loss_takes_labels)

    def fake_labels() -> tuple[torch.Tensor, ...]:  # drawn after the batch's noise, from the same stream
        return (conditioning.draw(batch_size, random.noise, weights),) if conditioning and weights is not None else ()

    # --- state that a checkpoint restores (gbench.training.state: a population member's is the same)
    step, seconds_before, images = 0, 0.0, 0
    history: list[dict[str, Any]] = []
    window = LogWindow(torch.zeros(4, device=device))  # the log row being summed
    if resume is not None:
        G.load_state_dict(resume.generator)
        g_opt.load_state_dict(resume.g_opt)
        if D is not None and d_opt is not None:
            # the config's hash matched: the same nets
            assert resume.discriminator is not None and resume.d_opt is not None
            D.load_state_dict(resume.discriminator)
            d_opt.load_state_dict(resume.d_opt)
        batches.load_state(resume.batches)
        random.load_state(resume)
        step, history, seconds_before, images = resume.step, resume.history, resume.seconds, resume.images
        restore_global_rng(resume, device)
        window = on_device(resume.window, device)
    ema = (
        GeneratorEMA(G, settings.ema, (resume.generator_ema or {}) if resume is not None else None)
        if settings.ema is not None
        else None
    )

    G.train()
    if D is not None:
        D.train()
    nan = torch.tensor(float("nan"), device=device)
    eval_seconds = 0.0
    started = time.perf_counter()

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - started - eval_seconds

    def snapshot() -> TrainState:
        return TrainState(
            generator=G.state_dict(),
            g_opt=g_opt.state_dict(),
            discriminator=D.state_dict() if D is not None else None,
            d_opt=d_opt.state_dict() if d_opt is not None else None,
            batches=batches.state(),
            rng_noise=random.noise.get_state(),
            rng_order=random.order.get_state(),
            rng_cpu=torch.get_rng_state(),
            rng_cuda=cuda_rng(device),
            step=step,
            history=list(history),
            seconds=elapsed(),
            images=images,
            window=copy_window(window),
            generator_ema=ema.state() if ema is not None else None,
        )

    def finished(result: TrainResult) -> TrainResult:
        """The result, with the EMA weights in the generator when --ema is on
        (what evaluation, samples and generator.pt use)."""
        if ema is not None:
            ema.put_in()
        return result

    # per step of the log window: images and epoch after it (a diverged row ends there)
    marks: list[tuple[int, float]] = []
    while step < settings.steps:
        alive = watch.alive()  # before this step's losses: this step's values count in the row, later ones not
        if D is not None and d_opt is not None and d_step is not None:
            # --- discriminator: as many steps as the schedule asks, each on fresh batches
            d_terms = LossTerms(nan, nan, nan)
            fake: torch.Tensor | None = None
            labels: tuple[torch.Tensor, ...] = ()  # the fake batch's, when conditional
            for _ in range(schedule.discriminator_steps(step, window.last)):
                real, real_labels = batches.next_labelled()
                z, labels = noise(), fake_labels()
                with autocast(device, settings.precision):
                    fake = generate(G, z, labels)
                    d_terms = discriminator_terms(loss, D, real, fake.detach(), real_labels + labels, takes_labels)
                d_opt.zero_grad(set_to_none=True)
                d_terms.loss.backward()
                watch.check(d_terms.loss, step + 1)
                d_step()
                images += batch_size
            if fake is None:  # a schedule may skip D this step
                z, labels = noise(), fake_labels()
                with autocast(device, settings.precision):
                    fake = generate(G, z, labels)

            # --- generator: one step against the updated D, D's weights frozen
            D.requires_grad_(False)
            with autocast(device, settings.precision):
                g_terms = generator_terms(loss, D, fake, labels, takes_labels)
            g_opt.zero_grad(set_to_none=True)
            g_terms.loss.backward()
            watch.check(g_terms.loss, step + 1)
            g_step()
            D.requires_grad_(True)
            d_loss, g_loss = d_terms.loss.detach().float(), g_terms.loss.detach().float()
            window.last = LastLosses(d_loss, g_loss)
            values = torch.stack(
                [d_loss, g_loss, scalar_or(d_terms.real_score, nan), scalar_or(d_terms.fake_score, nan)]
            )
            window.totals += torch.where(alive, values, 0.0)
        else:
            # --- not a GAN (a VAE): the model minimises its own objective on real batches
            assert nets.objective is not None  # check_nets makes sure
            with autocast(device, settings.precision):
                objective, metrics = nets.objective(batches.next())
            g_opt.zero_grad(set_to_none=True)
            objective.backward()
            watch.check(objective, step + 1)
            g_step()
            images += batch_size
            g_loss = objective.detach().float()
            window.last = LastLosses(None, g_loss)
            window.totals += torch.where(alive, torch.stack([nan, g_loss, nan, nan]), 0.0)
            for name, value in (metrics or {}).items():  # on the device: read back with the log row
                metric = torch.as_tensor(value, device=device).detach().float().reshape(())
                window.metrics[name] = window.metrics.get(name, 0) + torch.where(alive, metric, 0.0)
        if ema is not None:  # after the generator's step: a halted run's weights stay, as its member's kept ones do
            ema.update(step)
        step += 1
        window.steps += 1
        marks.append((images, batches.epoch))

        # --- a loss went non-finite? Read where the loop syncs anyway (a log row, a checkpoint, a signal): the run
        # stops with a last row up to that step; its optimizer steps were skipped from that step on, on the device.
        is_eval = bool(settings.eval_every) and step % (settings.eval_every or 1) == 0 and step < settings.steps
        is_log = step % settings.log_every == 0 or step == settings.steps or is_eval
        is_checkpoint = bool(settings.checkpoint_every) and step % (settings.checkpoint_every or 1) == 0
        is_checkpoint = is_checkpoint and step < settings.steps
        stopping = signals.stop_requested()
        if is_log or (is_checkpoint and callbacks.on_checkpoint) or stopping:
            first_bad = watch.first_steps()[0]
            if first_bad:
                counted = first_bad - (step - window.steps)  # the window's steps up to and with the first bad one
                images, epoch = marks[first_bad - step - 1]  # as they were after that step
                row = log_row((window.totals / counted).tolist(), first_bad, epoch, images, elapsed())
                row.update({name: float(total) / counted for name, total in window.metrics.items()})
                history.append(row)
                if callbacks.on_log:
                    callbacks.on_log(row)
                return finished(
                    TrainResult(history, first_bad, elapsed(), images, status="diverged", diverged_step=first_bad)
                )

        # --- log: the one host sync every log_every steps
        if is_log:
            row = log_row((window.totals / window.steps).tolist(), step, batches.epoch, images, elapsed())
            metrics_seen = window.metrics
            row.update(
                zip(
                    metrics_seen,
                    (torch.stack(list(metrics_seen.values())) / window.steps).tolist() if metrics_seen else [],
                )
            )
            window = LogWindow(window.totals.zero_(), last=window.last)
            marks = []
            # every loss was finite (read above); a non-finite row still stops the run, at this row (a plugin
            # schedule that skips every D step of a row leaves its d_loss NaN, as it always did)
            diverged = is_diverged(row, adversarial=D is not None)
            if is_eval and not diverged and callbacks.on_eval:
                eval_started = time.perf_counter()
                with ema.in_use() if ema is not None else contextlib.nullcontext():
                    row.update(callbacks.on_eval(step))
                eval_seconds += time.perf_counter() - eval_started
            history.append(row)
            if callbacks.on_log:
                callbacks.on_log(row)
            if diverged:
                return finished(TrainResult(history, step, elapsed(), images, status="diverged", diverged_step=step))

        if is_checkpoint and callbacks.on_checkpoint:
            callbacks.on_checkpoint(snapshot())

        # --- SIGTERM/SIGINT (gbench/training/signals.py): the handler only flags it while we train; here, at a step
        # boundary, the state is whole, so save it (resume is bit-exact from it) and raise the signal's error.
        if signals.stop_requested():
            healthy = stopping or not watch.first_steps()[0]  # a signal that came after the read above: read it now
            if callbacks.on_checkpoint and healthy:  # a diverged state is not saved: a resume starts from a healthy one
                callbacks.on_checkpoint(snapshot())
            signals.raise_if_stopping()

    return finished(TrainResult(history, step, elapsed(), images))


def log_row(means: list[float], step: int, epoch: float, images: int, seconds: float) -> dict[str, Any]:
    """One history row from the window's means of d_loss, g_loss, d_real, d_fake."""
    d_loss, g_loss, d_real, d_fake = means
    timing = {"step": step, "epoch": round(epoch, 4), "images": images, "seconds": round(seconds, 4)}
    return {**timing, "d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}


def is_diverged(row: dict[str, Any], adversarial: bool) -> bool:
    return not math.isfinite(row["g_loss"]) or (adversarial and not math.isfinite(row["d_loss"]))


def scalar_or(value: torch.Tensor | None, default: torch.Tensor) -> torch.Tensor:
    """A loss term's score as a detached float scalar, or ``default`` when the loss gives none."""
    return default if value is None else value.detach().float().reshape(())


def cuda_rng(device: torch.device) -> torch.Tensor | None:
    """torch's global CUDA generator (a loss may draw from it itself), when training on CUDA."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def restore_global_rng(state: TrainState, device: torch.device) -> None:
    torch.set_rng_state(state.rng_cpu.cpu())
    if device.type == "cuda" and state.rng_cuda is not None:
        torch.cuda.set_rng_state(state.rng_cuda.cpu(), device)


def on_device(window: LogWindow, device: torch.device) -> LogWindow:
    """A saved log window's tensors on the training device."""
    last = LastLosses(*(None if t is None else t.to(device) for t in (window.last.d_loss, window.last.g_loss)))
    return LogWindow(
        window.totals.to(device), window.steps, {name: total.to(device) for name, total in window.metrics.items()}, last
    )


def copy_window(window: LogWindow) -> LogWindow:
    """The window as it is now (the loop goes on adding to its tensors)."""
    return LogWindow(
        window.totals.clone(),
        window.steps,
        {name: total.clone() for name, total in window.metrics.items()},
        window.last,
    )
