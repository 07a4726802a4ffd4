"""The training loop for a population: members of one configuration that differ
only in seed, trained as one batched computation.

It follows :func:`gbench.training.trainer.train` step for step, so read that first.
What changes: every tensor has a leading member dimension; each member draws
its noise and batches from its own generators (member i draws what the solo
run with seed i draws); and a mask says which members take part in each
update. A member whose adaptive schedule gives it fewer D steps sits out the
extra ones, and one whose loss goes non-finite stops changing at that very
step (a flag on the device, gbench.training.divergence) and stops at the next
log row, while the others go on. Nothing here syncs the device per step except what a
schedule reads itself (adaptive reads the last D loss, as in a solo run).

A conditional member draws and takes its labels as its solo run does (gbench.training.conditioning).

Each member keeps its own Callbacks and gets its own TrainResult; its
checkpoint (:func:`member_checkpoint` inside) is the dict a solo run's
checkpoint holds, so a member resumes alone or in a population alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from gbench.plugins.registry import LossTerms, Nets
from gbench.training import signals
from gbench.training.conditioning import Conditioning, discriminator_terms, generate, generator_terms
from gbench.training.divergence import DivergenceWatch, KeptWeights
from gbench.training.draws import BatchStream, RunRandom
from gbench.training.ema import StackedEMA
from gbench.training.population.adam import StackedAdam
from gbench.training.population.stack import Masks, Stack, autocast, batched, per_member
from gbench.training.state import LastLosses, LogWindow, TrainState
from gbench.training.trainer import (
    Callbacks,
    TrainResult,
    TrainSettings,
    cuda_rng,
    is_diverged,
    log_row,
    make_adam,
    on_device,
    restore_global_rng,
    scalar_or,
)


@dataclass
class Member:
    """One run of the population: its own nets (built from its seed), schedule, callbacks and checkpoint."""

    nets: Nets
    schedule: Any
    seed: int
    callbacks: Callbacks = field(default_factory=Callbacks)
    resume: TrainState | None = None


def train_population(
    members: list[Member],
    loss: Any,
    data: torch.Tensor,
    settings: TrainSettings,
    conditioning: Conditioning | None = None,
) -> list[TrainResult]:
    """Train every member's nets on ``data``; ``settings.seed`` is ignored (each member has its own).
    ``conditioning``: class-conditional nets, on the data's labels, as the solo loop trains them."""
    device, count = data.device, len(members)
    adversarial = members[0].nets.discriminator is not None
    batch_size, latent_dim = settings.batch_size, members[0].nets.latent_dim
    betas = (settings.beta1, settings.beta2)
    G = Stack([member.nets.generator for member in members])
    discriminators = [member.nets.discriminator for member in members if member.nets.discriminator is not None]
    D = Stack(discriminators) if adversarial else None
    labels = conditioning.labels if conditioning else None
    weights = conditioning.frequencies if conditioning else None
    takes_labels = bool(conditioning and conditioning.loss_takes_labels)
    no_labels = () if labels is None else (torch.zeros(count, batch_size, dtype=torch.int64, device=device),)

    # --- optimizers over the stacked weights; each member its own noise and batch order
    d_lr, g_lr = members[0].schedule.learning_rates(settings.lr)
    G.lay_out_for_gradients((torch.zeros(count, batch_size, latent_dim, device=device), *no_labels))
    if D is not None:
        first = data[:batch_size]
        D.lay_out_for_gradients((first.expand(count, *first.shape), *no_labels))
    g_opt = StackedAdam(G, g_lr, betas)
    # after the layout: the EMA takes it
    ema = StackedEMA(G.leaves, G.shaped, settings.ema) if settings.ema is not None else None
    d_opt = StackedAdam(D, d_lr, betas) if D is not None else None
    randoms = [RunRandom(member.seed, device) for member in members]
    streams = [BatchStream(data, batch_size, random.order, labels) for random in randoms]
    masks = Masks(device)

    def noise(active: list[bool]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Each member's noise, then its fake labels (conditional), from its noise stream, as its solo run
        draws them; members sitting out draw nothing, as their solo run draws nothing."""
        idle = torch.zeros(batch_size, latent_dim, device=device)
        z = torch.stack(
            [
                torch.randn(batch_size, latent_dim, device=device, generator=r.noise) if a else idle
                for r, a in zip(randoms, active)
            ]
        )
        if conditioning is None or weights is None:
            return z, ()
        idle_y = torch.zeros(batch_size, dtype=torch.int64, device=device)
        draws = [conditioning.draw(batch_size, r.noise, weights) if a else idle_y for r, a in zip(randoms, active)]
        return z, (torch.stack(draws),)

    def real_batches(active: list[bool]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        idle = (data[:batch_size], () if labels is None else (labels[:batch_size],))
        taken = [stream.next_labelled() if a else idle for stream, a in zip(streams, active)]
        return torch.stack([x for x, _ in taken]), tuple(torch.stack(ys) for ys in zip(*(y for _, y in taken)))

    # --- the per-member functions, batched over members
    def d_terms_of(terms: LossTerms) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        nan = torch.full((), float("nan"), device=device)
        return terms.loss, scalar_or(terms.real_score, nan), scalar_or(terms.fake_score, nan)

    generated = batched(lambda p, b, z, y: generate(G.module(p, b), z, y))
    if D is not None:

        def judged(p: Any, b: Any, real: Any, fake: Any, y: Any) -> tuple[torch.Tensor, ...]:
            return d_terms_of(discriminator_terms(loss, D.module(p, b), real, fake, y, takes_labels))

        d_loss = batched(judged)
        g_loss = batched(lambda p, b, fake, y: d_terms_of(generator_terms(loss, D.module(p, b), fake, y, takes_labels)))
    else:
        objective_name = _objective_method(members[0].nets)
        objective = batched(lambda p, b, real: _loss_and_metrics(G.method(objective_name, p, b)(real)))

    # --- state that a checkpoint restores, per member
    step, seconds_before = 0, 0.0
    histories: list[list[dict[str, Any]]] = [[] for _ in members]
    images = [0] * count
    for index, member in enumerate(members):
        if member.resume is not None:
            state = member.resume
            G.load_member(index, state.generator)
            g_opt.load_member(index, state.g_opt)
            if ema is not None:
                ema.load_member(index, state.generator_ema or {})
            if D is not None and d_opt is not None:
                # the config's hash matched: the same nets
                assert state.discriminator is not None and state.d_opt is not None
                D.load_member(index, state.discriminator)
                d_opt.load_member(index, state.d_opt)
            streams[index].load_state(state.batches)
            randoms[index].load_state(state)
            step, histories[index], images[index] = state.step, state.history, state.images
            seconds_before = max(seconds_before, state.seconds)
            restore_global_rng(state, device)  # the members saved one process's global generator: any of theirs is it
    if any(member.resume is not None for member in members):
        g_opt.settle()
        if d_opt is not None:
            d_opt.settle()

    def member_checkpoint(index: int) -> TrainState:
        """Member ``index``'s state as a solo run saves it (loadable by either loop)."""
        nets = members[index].nets
        d_state = None
        if d_opt is not None and nets.discriminator is not None:
            d_state = d_opt.member_state(index, make_adam(nets.discriminator.parameters(), d_lr, betas))
        metrics = {name: total[index].clone() for name, total in metric_window.items()}
        return TrainState(
            generator=G.member_state(index),
            g_opt=g_opt.member_state(index, make_adam(nets.generator.parameters(), g_lr, betas)),
            discriminator=D.member_state(index) if D is not None else None,
            d_opt=d_state,
            batches=streams[index].state(),
            rng_noise=randoms[index].noise.get_state(),
            rng_order=randoms[index].order.get_state(),
            rng_cpu=torch.get_rng_state(),
            rng_cuda=cuda_rng(device),
            step=step,
            history=list(histories[index]),
            seconds=elapsed(),
            images=images[index],
            window=LogWindow(window[index].clone(), window_steps, metrics, last[index]),
            generator_ema=ema.member(index) if ema is not None else None,
        )

    def write_back(index: int) -> None:
        """Member ``index``'s weights into its own solo modules (for evaluation, samples, generator.pt):
        its EMA with --ema."""
        nets = members[index].nets
        nets.generator.load_state_dict({**G.member_state(index), **(ema.member(index) if ema is not None else {})})
        if D is not None and nets.discriminator is not None:
            nets.discriminator.load_state_dict(D.member_state(index))

    running = [True] * count  # False once diverged
    results: list[TrainResult | None] = [None] * count
    # per member: summed d_loss, g_loss, d_real, d_fake since the last log row
    window = torch.zeros(count, 4, device=device)
    window_steps = 0
    last = [LastLosses() for _ in members]
    # per member: the objective's own metrics (a VAE's kl), summed since the last log row
    metric_window: dict[str, torch.Tensor] = {}
    for index, member in enumerate(members):  # saved mid log window (at a signal): the next row's means stay exact
        if member.resume is not None:
            saved = on_device(member.resume.window, device)
            window[index], window_steps, last[index] = saved.totals, saved.steps, saved.last
            for name, total in saved.metrics.items():
                metric_window.setdefault(name, torch.zeros(count, device=device))[index] = total
    watch = DivergenceWatch(device, count)
    g_kept = KeptWeights(g_opt.params)  # after the resumes: the weights to put back start as loaded
    d_kept = KeptWeights(d_opt.params) if d_opt is not None else None
    marks: list[tuple[list[int], list[float]]] = []  # per step of the log window: images and epochs after it
    eval_seconds = 0.0
    started = time.perf_counter()

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - started - eval_seconds

    while step < settings.steps and any(running):
        alive = watch.alive()  # before this step's losses: this step's values count in a member's row, later ones not
        if D is not None and d_opt is not None and d_kept is not None:
            # --- discriminator: each member as many steps as its schedule asks; members past their count sit out
            d_counts = [
                member.schedule.discriminator_steps(step, last[i]) if running[i] else 0
                for i, member in enumerate(members)
            ]
            # per member: its last D step's loss, D(x), D(G(z))
            d_last = torch.full((count, 3), float("nan"), device=device)
            fake: torch.Tensor | None = None
            fake_labels: tuple[torch.Tensor, ...] = ()  # the fake batch's, when conditional
            for substep in range(max(d_counts)):
                active = [steps > substep for steps in d_counts]
                mask = masks.of(active)
                real, real_labels = real_batches(active)
                z, new_labels = noise(active)
                with autocast(device, settings.precision), G.buffers_kept_unless(mask, all(active)):
                    new_fake = generated(G.params, G.buffers, z, new_labels)
                fake, fake_labels = _newer(mask, (new_fake, new_labels), (fake, fake_labels))
                with autocast(device, settings.precision), D.buffers_kept_unless(mask, all(active)):
                    terms = d_loss(D.params, D.buffers, real, fake.detach(), real_labels + fake_labels)
                D.zero_grad()
                # members' weights are separate slices: the sum's gradient is each member's own
                terms[0].sum().backward()
                watch.check(terms[0], step + 1, mask)
                d_opt.step(mask, all(active), watch.halted)
                d_kept.after_step(watch.halted)
                d_last = torch.where(mask[:, None], torch.stack(terms, dim=1).detach().float(), d_last)
                images = [done + batch_size * a for done, a in zip(images, active)]
            fresh = [running[i] and d_counts[i] == 0 for i in range(count)]  # a schedule may skip D this step
            if any(fresh) or fake is None:
                z, new_labels = noise(fresh)
                with autocast(device, settings.precision), G.buffers_kept_unless(masks.of(fresh), all(fresh)):
                    new_fake = generated(G.params, G.buffers, z, new_labels)
                fake, fake_labels = _newer(masks.of(fresh), (new_fake, new_labels), (fake, fake_labels))

            # --- generator: one step against the updated D, D's weights frozen
            with (
                D.frozen() as frozen_d,
                autocast(device, settings.precision),
                D.buffers_kept_unless(masks.of(running), all(running)),
            ):
                g_terms = g_loss(frozen_d, D.buffers, fake, fake_labels)
            G.zero_grad()
            g_terms[0].sum().backward()
            watch.check(g_terms[0], step + 1, masks.of(running))
            g_opt.step(masks.of(running), all(running), watch.halted)
            g_kept.after_step(watch.halted)
            g_losses = g_terms[0].detach().float()
            last = [LastLosses(d_last[i, 0], g_losses[i]) for i in range(count)]
            scores = torch.stack([d_last[:, 0], g_losses, d_last[:, 1], d_last[:, 2]], dim=1)
            window += torch.where(alive[:, None], scores, 0.0)
        else:
            # --- not a GAN (a VAE): each member minimises its own objective on its own batches
            real, _ = real_batches(running)
            with autocast(device, settings.precision), G.buffers_kept_unless(masks.of(running), all(running)):
                objectives, metrics = objective(G.params, G.buffers, real)
            G.zero_grad()
            objectives.sum().backward()
            watch.check(objectives, step + 1, masks.of(running))
            g_opt.step(masks.of(running), all(running), watch.halted)
            g_kept.after_step(watch.halted)
            images = [done + batch_size * r for done, r in zip(images, running)]
            g_losses = objectives.detach().float()
            last = [LastLosses(None, g_losses[i]) for i in range(count)]
            nan = torch.full_like(g_losses, float("nan"))
            window += torch.where(alive[:, None], torch.stack([nan, g_losses, nan, nan], dim=1), 0.0)
            for name, value in metrics.items():  # members sitting out add nothing, as their solo run adds nothing
                metric_window[name] = metric_window.get(name, 0) + torch.where(
                    masks.of(running) & alive, value.detach().float(), 0.0
                )
        if ema is not None:  # towards the kept weights: a halted member's stay as before its bad step, as solo
            ema.update(g_kept.kept, step, None if all(running) else masks.of(running))
        step += 1
        window_steps += 1
        marks.append((list(images), [stream.epoch for stream in streams]))

        # --- a member's loss went non-finite? Read where the loop syncs anyway (a log row, a checkpoint, a signal), as
        # the solo loop does: the member's weights go back to before that step, and it stops with a last row up to it.
        is_eval = bool(settings.eval_every) and step % (settings.eval_every or 1) == 0 and step < settings.steps
        is_log = step % settings.log_every == 0 or step == settings.steps or is_eval
        is_checkpoint = bool(settings.checkpoint_every) and step % (settings.checkpoint_every or 1) == 0
        is_checkpoint = is_checkpoint and step < settings.steps
        stopping = signals.stop_requested()
        if is_log or (is_checkpoint and any(m.callbacks.on_checkpoint for m in members)) or stopping:
            first_bad = watch.first_steps()
            if any(first_bad[i] and running[i] for i in range(count)):
                g_kept.put_back(watch.halted)
                if d_kept is not None:
                    d_kept.put_back(watch.halted)
            for i in (i for i in range(count) if first_bad[i] and running[i]):
                counted = first_bad[i] - (step - window_steps)  # the window's steps up to and with the first bad one
                images_then, epochs_then = marks[first_bad[i] - step - 1]
                row = log_row((window[i] / counted).tolist(), first_bad[i], epochs_then[i], images_then[i], elapsed())
                row.update({name: float(total[i]) / counted for name, total in metric_window.items()})
                histories[i].append(row)
                on_log = members[i].callbacks.on_log
                if on_log:
                    on_log(row)
                running[i] = False
                results[i] = TrainResult(
                    histories[i], first_bad[i], elapsed(), images_then[i], status="diverged", diverged_step=first_bad[i]
                )
            if not any(running):
                break

        # --- log: one host sync for all members every log_every steps
        if is_log:
            means = (window / window_steps).tolist()
            metric_means = {name: (total / window_steps).tolist() for name, total in metric_window.items()}
            metric_window = {}
            window.zero_()
            window_steps = 0
            marks = []
            for i, callbacks in enumerate(member.callbacks for member in members):
                if not running[i]:
                    continue
                row = log_row(means[i], step, streams[i].epoch, images[i], elapsed())
                row.update({name: values[i] for name, values in metric_means.items()})
                diverged = is_diverged(row, adversarial)
                if is_eval and not diverged and callbacks.on_eval:
                    eval_started = time.perf_counter()
                    write_back(i)
                    row.update(callbacks.on_eval(step))
                    eval_seconds += time.perf_counter() - eval_started
                histories[i].append(row)
                if callbacks.on_log:
                    callbacks.on_log(row)
                # every loss finite, yet the row is not (a plugin schedule skipped D all row): stops here, as ever
                if diverged:
                    running[i] = False
                    results[i] = TrainResult(
                        histories[i], step, elapsed(), images[i], status="diverged", diverged_step=step
                    )

        if is_checkpoint:
            for i, member in enumerate(members):
                if running[i] and member.callbacks.on_checkpoint:
                    member.callbacks.on_checkpoint(member_checkpoint(i))

        # --- SIGTERM/SIGINT (gbench/training/signals.py), as in the solo loop: at this step boundary every member's
        # state is whole, so each still-running member saves its own checkpoint, then the signal's error is raised.
        if signals.stop_requested():
            late = [0] * count if stopping else watch.first_steps()  # a signal that came after the read above
            for i, member in enumerate(members):
                if running[i] and not late[i] and member.callbacks.on_checkpoint:  # a diverged member saves nothing
                    member.callbacks.on_checkpoint(member_checkpoint(i))
            signals.raise_if_stopping()

    for i in range(count):
        write_back(i)
        results[i] = results[i] or TrainResult(histories[i], step, elapsed(), images[i])
    return [result for result in results if result is not None]


def _loss_and_metrics(result: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``Nets.objective``'s (loss, metrics) with the metrics as 0-d tensors (vmap stacks them per member)."""
    loss, metrics = result
    return loss, {name: torch.as_tensor(value).float().reshape(()) for name, value in (metrics or {}).items()}


def _objective_method(nets: Nets) -> str:
    """The name of the generator's method that ``nets.objective`` is (a VAE's negative_elbo)."""
    objective = nets.objective
    if getattr(objective, "__self__", None) is not nets.generator:
        raise ValueError("its objective is not a method of its generator module, so it cannot be called per member")
    return objective.__name__  # type: ignore[union-attr]


Batch = tuple[torch.Tensor | None, tuple[torch.Tensor, ...]]  # a fake batch and (its labels,) when conditional


def _newer(mask: torch.Tensor, new: Batch, old: Batch) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Per member: the new fake batch and labels where ``mask`` is set, the old ones elsewhere (members sitting out)."""
    (new_fake, new_labels), (old_fake, old_labels) = new, old
    assert new_fake is not None
    if old_fake is None:
        return new_fake, new_labels
    fake = torch.where(per_member(mask, new_fake), new_fake, old_fake)
    return fake, tuple(torch.where(per_member(mask, n), n, o) for n, o in zip(new_labels, old_labels))
