"""Divergence caught at the step it happens (gbench.training.divergence).

A generator that turns NaN at step 11, logged every 10 steps, is recorded
with ``diverged_step`` 11, and its weights are those after step 10, equal to
a run of 10 steps, solo and as one member of a population whose other members
go on bit for bit as in a population where none diverges. The flag lives on
the device: a diverging run reads the host no more often than a healthy one.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from test_population import _HostReads

from gbench.config import RunConfig, resolve_params
from gbench.training.population.loop import Member, train_population
from gbench.training.runner import DataCache, build
from gbench.training.trainer import TrainSettings, train

CPU = torch.device("cpu")
NEVER = math.inf


@pytest.fixture(scope="module")
def data(registry):
    return DataCache().training_tensor(registry, RunConfig(architecture="mlp", train_limit=600), CPU)


class NanFrom(torch.nn.Module):
    """A generator whose output is NaN from its ``nan_from``-th call on.

    The count is a buffer, so in a population each member counts its own calls
    (buffers are stacked and updated per member, as BatchNorm's are).
    """

    def __init__(self, generator: torch.nn.Module, nan_from: float):
        super().__init__()
        self.inner = generator
        self.register_buffer("calls", torch.zeros(()))
        self.register_buffer("nan_from", torch.tensor(float(nan_from)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.calls.add_(1)  # k-steps with k=1 calls the generator once per step: the count is the step
        return self.inner(z) * torch.where(self.calls >= self.nan_from, float("nan"), 1.0)


def _build(registry, seed, nan_from=NEVER, architecture="mlp"):
    config = RunConfig(architecture=architecture, seed=seed)
    config = dataclasses.replace(config, params=resolve_params(registry, config, {"hidden_dim": 16, "batch_size": 50}))
    nets, loss, schedule = build(registry, config, CPU)
    if architecture != "vae":
        nets.generator = NanFrom(nets.generator, nan_from)
    return nets, loss, schedule, float(config.params["lr"])


def _settings(steps, lr, seed=0, **extra):
    return TrainSettings(steps=steps, batch_size=50, lr=lr, log_every=10, seed=seed, **extra)


def _parameters(nets):
    modules = [nets.generator] + ([nets.discriminator] if nets.discriminator is not None else [])
    return [param.detach().clone() for module in modules for param in module.parameters()]


def _equal(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def test_a_solo_run_stops_at_the_step_its_loss_turns_nan_with_the_weights_from_before_it(registry, data):
    nets, loss, schedule, lr = _build(registry, 0, nan_from=11)
    result = train(nets, loss, schedule, data, _settings(30, lr))
    assert result.status == "diverged" and result.diverged_step == 11 and result.steps == 11
    assert result.images == 11 * 50
    # the last row is step 11's alone, not the log row's window
    assert [row["step"] for row in result.history] == [10, 11]
    assert math.isnan(result.history[-1]["g_loss"]) and result.history[-1]["images"] == 11 * 50

    ten, loss, schedule, _ = _build(registry, 0)
    healthy = train(ten, loss, schedule, data, _settings(10, lr))
    assert _equal(_parameters(nets), _parameters(ten))  # bit for bit: step 11's update (and 12-20's) never happened
    strip = lambda row: {k: v for k, v in row.items() if k != "seconds"}
    assert strip(result.history[0]) == strip(healthy.history[0])


def test_a_vae_whose_objective_goes_non_finite_keeps_the_weights_from_before_that_step(registry, data):
    """A VAE at an absurd learning rate: its objective overflows
    at some step; a run of one step fewer is its weights."""
    nets, loss, schedule, _ = _build(registry, 0, architecture="vae")
    result = train(nets, loss, schedule, data, _settings(40, 1e30))
    assert result.status == "diverged" and result.steps == result.diverged_step
    step = result.diverged_step
    assert step is not None and 1 < step < 40 and step % 10 != 0  # caught between log rows, so the step is its own
    before, loss, schedule, _ = _build(registry, 0, architecture="vae")
    shorter = train(before, loss, schedule, data, _settings(step - 1, 1e30))
    assert shorter.status == "ok" and _equal(_parameters(nets), _parameters(before))
    assert result.history[-1]["step"] == step and not math.isfinite(result.history[-1]["g_loss"])


def test_in_a_population_only_the_diverging_member_stops_and_the_others_go_on_bit_for_bit(registry, data):
    def population(steps, nan_from):
        members = []
        for seed in (0, 1, 2):
            nets, loss, schedule, lr = _build(registry, seed, nan_from=nan_from[seed])
            members.append(Member(nets, schedule, seed))
        return members, train_population(members, loss, data, _settings(steps, lr))

    members, results = population(20, (NEVER, 11, NEVER))
    assert [r.status for r in results] == ["ok", "diverged", "ok"]
    assert results[1].diverged_step == 11 and results[1].steps == 11 and results[1].images == 11 * 50
    assert [row["step"] for row in results[1].history] == [10, 11]
    assert [r.steps for r in results] == [20, 11, 20]

    ten, _ = population(10, (NEVER, NEVER, NEVER))
    assert _equal(_parameters(members[1].nets), _parameters(ten[1].nets))  # as after step 10, bit for bit
    healthy, healthy_results = population(20, (NEVER, NEVER, NEVER))
    for i in (0, 2):  # the others never noticed
        assert _equal(_parameters(members[i].nets), _parameters(healthy[i].nets))
        assert [row["g_loss"] for row in results[i].history] == [row["g_loss"] for row in healthy_results[i].history]


def test_a_diverging_run_reads_the_host_no_more_often_than_a_healthy_one(registry, data):
    """The flag is read with the log row: a run that turns NaN at
    step 2 of a 4- or 8-step row reads as often either way."""
    reads = {}
    for steps in (4, 8):
        for kind in ("solo", "population"):
            members = []
            for seed in (0, 1) if kind == "population" else (0,):
                nets, loss, schedule, lr = _build(registry, seed, nan_from=2 if seed == 0 else NEVER)
                members.append(Member(nets, schedule, seed))
            settings = TrainSettings(steps=2 * steps, batch_size=50, lr=lr, log_every=steps, seed=0)
            with _HostReads() as counter:
                if kind == "solo":
                    result = train(members[0].nets, loss, members[0].schedule, data, settings)
                else:
                    result = train_population(members, loss, data, settings)[0]
            assert result.diverged_step == 2
            reads[kind, steps] = counter.count
    assert reads["solo", 8] == reads["solo", 4] and reads["population", 8] == reads["population", 4], reads
    assert reads["solo", 4] > 0


def test_a_checkpoint_step_reads_the_flag_and_saves_nothing_diverged(registry, data):
    """Checkpoints every 5 steps, rows every 10, NaN at step 3: the run stops at step 5's checkpoint unsaved."""
    from gbench.training.trainer import Callbacks

    saved = []
    nets, loss, schedule, lr = _build(registry, 0, nan_from=3)
    result = train(
        nets,
        loss,
        schedule,
        data,
        _settings(30, lr, checkpoint_every=5),
        Callbacks(on_checkpoint=lambda state: saved.append(state.step)),
    )
    assert result.diverged_step == 3 and [row["step"] for row in result.history] == [3] and saved == []


@pytest.mark.parametrize("halted", [0.0, 1.0])
def test_an_adam_without_the_fused_kernel_is_halted_by_putting_its_values_back(halted):
    from gbench.training.divergence import halting_step

    def stepped(halting):
        torch.manual_seed(0)
        module = torch.nn.Linear(4, 3)
        optimizer = torch.optim.Adam(module.parameters(), lr=0.1, foreach=False)
        step = halting_step(optimizer, torch.tensor(halted)) if halting else optimizer.step
        for turn in range(2):
            optimizer.zero_grad()
            module(torch.ones(2, 4)).square().sum().backward()
            if turn == 0 or not halting:  # the first step as usual, the second halted or not
                optimizer.step()
            else:
                step()
        return [p.detach().clone() for p in module.parameters()], optimizer.state_dict()["state"]

    plain, plain_state = stepped(False)
    got, state = stepped(True)
    if halted:
        torch.manual_seed(0)
        once = torch.nn.Linear(4, 3)
        optimizer = torch.optim.Adam(once.parameters(), lr=0.1, foreach=False)
        optimizer.zero_grad()
        once(torch.ones(2, 4)).square().sum().backward()
        optimizer.step()
        assert _equal(got, [p.detach() for p in once.parameters()]) and float(state[0]["step"]) == 1
    else:
        assert _equal(got, plain) and float(state[0]["step"]) == float(plain_state[0]["step"]) == 2
