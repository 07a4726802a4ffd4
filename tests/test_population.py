"""Populations: N seeds of one configuration trained as one batched computation.

Member i must be the solo run with seed i up to floating-point reassociation.
The tolerance on weights after S steps is S * lr: one Adam step moves a
weight by lr * m / (sqrt(v) + eps), at most about lr, so where a gradient is
near zero a reassociated sum can flip its sign and move the weight by up to
lr per step in the other direction; everywhere else the difference stays
far below that bound (the median difference is checked at 1/100 of it).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import signal
import textwrap

import pytest
import torch
from conftest import run_cli
from torch.overrides import TorchFunctionMode

from gbench.config import RunConfig, resolve_params
from gbench.training.population.batchable import unbatchable_reason
from gbench.training.population.loop import Member, train_population
from gbench.training.population.stack import Stack, batched
from gbench.training.runner import DataCache, build
from gbench.training.state import TrainState
from gbench.training.trainer import Callbacks, RunRandom, TrainSettings, train

CPU = torch.device(os.environ.get("GBENCH_TEST_DEVICE", "cpu"))  # benchmarks/gpu_check.sh runs these on cuda
STEPS = 20


@pytest.fixture(scope="module")
def data(registry):
    return DataCache().training_tensor(registry, RunConfig(architecture="mlp", train_limit=600), CPU)


def _config(registry, seed, architecture="mlp", loss="non-saturating", schedule="k-steps", **overrides):
    config = RunConfig(architecture=architecture, loss=loss, schedule=schedule, seed=seed)
    config = dataclasses.replace(
        config, params=resolve_params(registry, config, {"hidden_dim": 16, "batch_size": 50, **overrides})
    )
    return config


def _settings(config, steps=STEPS, **extra):
    params = config.params
    return TrainSettings(
        steps=steps,
        batch_size=int(params["batch_size"]),
        lr=float(params["lr"]),
        log_every=10,
        seed=config.seed,
        **extra,
    )


def _solo_and_population(registry, data, seeds=(0, 1, 2), steps=STEPS, prepare=None, **kwargs):
    """Train each seed alone, then all seeds as one population, from the same builds."""
    solo, members = [], []
    for seed in seeds:
        config = _config(registry, seed, **kwargs)
        nets, loss, schedule = build(registry, config, CPU)
        if prepare:
            prepare(seed, nets)
        solo.append((nets, train(nets, loss, schedule, data, _settings(config, steps))))
        nets, loss, schedule = build(registry, config, CPU)
        if prepare:
            prepare(seed, nets)
        members.append(Member(nets, schedule, seed))
    results = train_population(members, loss, data, _settings(config, steps))
    return solo, members, results


def _assert_close_to_solo(solo, members, results, lr=2e-4, steps=STEPS):
    for (solo_nets, solo_result), member, result in zip(solo, members, results):
        assert (
            result.images == solo_result.images
            and result.steps == solo_result.steps
            and result.status == solo_result.status
        )
        for module in ("generator", "discriminator"):
            a, b = getattr(solo_nets, module), getattr(member.nets, module)
            if a is None:
                continue
            differences = []
            for name, param in a.named_parameters():
                difference = (param - dict(b.named_parameters())[name]).abs().detach()
                assert difference.max() <= steps * lr, (module, name, difference.max())
                differences.append(difference.flatten())
            # over all weights: a bias right before a BatchNorm has a gradient of pure rounding noise,
            # all of it at the bound
            assert torch.cat(differences).median() <= steps * lr / 100, module
            for name, buffer in a.named_buffers():
                other = dict(b.named_buffers())[name]
                # running means carry the biases before them, which may drift by up to the weights' bound
                assert torch.allclose(buffer.float(), other.float(), rtol=1e-3, atol=steps * lr), (module, name)


def test_members_start_from_the_solo_runs_weights_noise_and_batches(registry, data):
    configs = [_config(registry, seed, architecture="mlp-batchnorm") for seed in (0, 1, 2)]
    builds = [build(registry, config, CPU)[0] for config in configs]
    stack = Stack([nets.generator for nets in builds])
    for index, config in enumerate(configs):
        solo = build(registry, config, CPU)[0].generator.state_dict()
        assert all(torch.equal(solo[name], tensor) for name, tensor in stack.member_state(index).items())
        # the run's own generators: the same seed draws the same noise and order whatever else the process does
        a, b = RunRandom(config.seed, CPU), RunRandom(config.seed, CPU)
        torch.rand(100)
        assert torch.equal(torch.randn(4, generator=a.noise), torch.randn(4, generator=b.noise))
        assert torch.equal(torch.randperm(50, generator=a.order), torch.randperm(50, generator=b.order))
    assert not torch.equal(stack.params["0.weight"][0], stack.params["0.weight"][1])


def test_stacked_weights_are_laid_out_as_their_gradients_arrive():
    """A batched Linear's weight gradient arrives as a transposed matrix: the stack stores the weight so,
    and autograd then takes each gradient as it comes (no copy). Values, buffers and the random state stay."""
    modules = [
        torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(), torch.nn.Linear(16, 16))
        for _ in range(3)
    ]
    stack = Stack(modules)
    values = {name: tensor.clone() for name, tensor in stack.params.items()}
    buffers = {name: tensor.clone() for name, tensor in stack.buffers.items()}
    inputs, rng = torch.randn(3, 5, 8), torch.get_rng_state()
    stack.lay_out_for_gradients(inputs)
    assert set(stack.orders) == {
        "0.weight",
        "3.weight",
    }  # the two Linear weights moved; biases and BatchNorm did not need to
    assert torch.equal(torch.get_rng_state(), rng) and all(leaf.grad is None for leaf in stack.leaves.values())
    assert all(
        torch.equal(stack.buffers[name], tensor) for name, tensor in buffers.items()
    )  # BatchNorm's statistics untouched
    for name, tensor in values.items():  # the same values, shaped as the module's parameters
        assert torch.equal(stack.params[name], tensor) and stack.leaves[name].is_contiguous()
    for index, module in enumerate(modules):
        assert all(
            torch.equal(module.state_dict()[name], t) and t.is_contiguous()
            for name, t in stack.member_state(index).items()
        )

    arrived = {}
    for name, leaf in stack.leaves.items():
        leaf.register_hook(lambda grad, name=name: arrived.__setitem__(name, grad.stride()))
    batched(lambda p, b, x: stack.module(p, b)(x))(stack.params, stack.buffers, inputs).square().sum().backward()
    for (
        name,
        leaf,
    ) in stack.leaves.items():  # what autograd's AccumulateGrad needs to keep the gradient instead of copying it
        assert all(a == b for size, a, b in zip(leaf.shape, arrived[name], leaf.stride()) if size > 1), name


@pytest.mark.parametrize(
    "kwargs",
    [
        {"architecture": "mlp"},
        {"architecture": "mlp-batchnorm"},  # per-member running statistics
        {"architecture": "deep-leakyrelu", "loss": "hinge", "schedule": "ttur"},
        {"architecture": "mlp", "loss": "lsgan", "k": 2},
        {"architecture": "mlp", "loss": "minimax"},
    ],
    ids=lambda kwargs: "-".join(map(str, kwargs.values())),
)
def test_population_matches_solo_runs(registry, data, kwargs):
    _assert_close_to_solo(
        *_solo_and_population(registry, data, **kwargs), lr=max(2e-4, 4e-4 if kwargs.get("schedule") == "ttur" else 0)
    )


@pytest.mark.parametrize("batchnorm,spectral_norm", [(True, False), (False, True)])
def test_dcgan_population_matches_solo_runs(registry, data, batchnorm, spectral_norm):
    kwargs = {
        "architecture": "dcgan",
        "latent_dim": 8,
        "hidden_dim": 4,
        "batch_size": 16,
        "batchnorm": batchnorm,
        "spectral_norm": spectral_norm,
    }
    _assert_close_to_solo(*_solo_and_population(registry, data, seeds=(0, 1), steps=10, **kwargs), steps=10)


def test_adaptive_members_take_exactly_their_own_d_steps(registry, data):
    # threshold between typical early D losses: some steps get 3 D steps, some 1, differently per seed
    solo, members, results = _solo_and_population(registry, data, schedule="adaptive", threshold=1.36, max_d_steps=3)
    counts = [result.images for _, result in solo]
    assert [result.images for result in results] == counts
    assert len(set(counts)) > 1 or counts[0] not in (STEPS * 50, 3 * STEPS * 50), counts  # the schedule really varied
    _assert_close_to_solo(solo, members, results)


def test_wgan_gp_penalty_is_per_member(registry, data):
    from gbench.training.population.stack import batched
    from plugins.losses import WassersteinGPLoss

    nets = [build(registry, _config(registry, seed), CPU)[0] for seed in (0, 1)]
    stack = Stack([n.discriminator for n in nets])
    images = torch.rand(2, 8, 1, 28, 28) * 2 - 1
    loss = WassersteinGPLoss(10.0)
    # real == fake: every interpolate is the image itself, whatever the random mix, so batched equals solo exactly
    got = batched(lambda p, b, x: loss.gradient_penalty(stack.module(p, b), x, x))(stack.params, stack.buffers, images)
    want = torch.stack([loss.gradient_penalty(n.discriminator, x, x) for n, x in zip(nets, images)])
    assert torch.allclose(got, want, rtol=1e-5) and not torch.allclose(want[0], want[1])
    _, _, results = _solo_and_population(registry, data, seeds=(0, 1), steps=10, loss="wgan-gp")
    assert all(result.status == "ok" and result.images == 10 * 50 for result in results)


def test_vae_population(registry, data):
    solo, members, results = _solo_and_population(registry, data, seeds=(0, 1), architecture="vae")
    for (_, solo_result), result in zip(solo, results):
        # the reparameterisation noise is drawn per member inside vmap (not the solo stream): close, not equal
        assert result.images == solo_result.images
        assert abs(result.history[-1]["g_loss"] - solo_result.history[-1]["g_loss"]) < 0.01 * abs(
            solo_result.history[-1]["g_loss"]
        )
        for key in ("reconstruction", "kl"):  # the objective's own metrics, per member, as in its solo run
            assert (
                abs(result.history[-1][key] - solo_result.history[-1][key])
                < 0.05 * abs(solo_result.history[-1][key]) + 0.5
            )


def test_a_diverging_member_stops_at_its_own_step_and_the_others_go_on(registry, data):
    def break_seed_1(seed, nets):
        if seed == 1:
            with torch.no_grad():
                nets.generator[0].weight.fill_(float("nan"))

    solo, members, results = _solo_and_population(registry, data, prepare=break_seed_1)
    assert [result.status for result in results] == ["ok", "diverged", "ok"]
    # NaN weights: the first step's losses are NaN, so it is step 1
    # (it was the log row's, 10, before the flag on the device)
    assert results[1].diverged_step == 1 and results[1].steps == 1 and len(results[1].history) == 1
    assert solo[1][1].status == "diverged" and solo[1][1].diverged_step == 1
    _assert_close_to_solo([solo[0], solo[2]], [members[0], members[2]], [results[0], results[2]])
    frozen, solo_frozen = members[1].nets.discriminator[1].weight, solo[1][0].discriminator[1].weight
    assert torch.allclose(frozen, solo_frozen, atol=10 * 2e-4, equal_nan=True)


def test_a_member_checkpoint_resumes_as_a_solo_run(registry, data):
    saved = {}

    def keep(seed):
        def on_checkpoint(state):
            buffer = io.BytesIO()
            torch.save(state.to_dict(), buffer)  # the checkpoint file's form
            saved[(seed, state.step)] = buffer.getvalue()

        return on_checkpoint

    members = []
    for seed in (0, 1):
        config = _config(registry, seed)
        nets, loss, schedule = build(registry, config, CPU)
        members.append(Member(nets, schedule, seed, Callbacks(on_checkpoint=keep(seed))))
    train_population(members, loss, data, _settings(config, checkpoint_every=10))
    state = TrainState.from_dict(torch.load(io.BytesIO(saved[(1, 10)]), weights_only=True))
    nets, loss, schedule = build(registry, _config(registry, 1), CPU)
    resumed = train(nets, loss, schedule, data, _settings(_config(registry, 1)), resume=state)
    assert resumed.steps == STEPS and len(resumed.history) == 2
    for name, param in nets.generator.named_parameters():
        assert (param - dict(members[1].nets.generator.named_parameters())[name]).abs().max() <= STEPS * 2e-4

    # The member's Adam moments, in the solo optimizer's own layout: a solo run's at the same step differ
    # by reassociation only. (A weight update stays within lr whatever the moments, so the check above
    # would not see a transposed moment of the square hidden-to-hidden weight; this one does.)
    nets, loss, schedule = build(registry, _config(registry, 1), CPU)
    train(
        nets,
        loss,
        schedule,
        data,
        _settings(_config(registry, 1), checkpoint_every=10),
        Callbacks(on_checkpoint=keep("solo")),
    )
    solo = torch.load(io.BytesIO(saved[("solo", 10)]), weights_only=False)
    member = torch.load(
        io.BytesIO(saved[(1, 10)]), weights_only=False
    )  # afresh: the resumed run above moved its tensors on
    for which in ("g_opt", "d_opt"):
        for position, moments in solo[which]["state"].items():
            for key in ("exp_avg", "exp_avg_sq"):
                got, expected = member[which]["state"][position][key], moments[key]
                assert got.shape == expected.shape and got.is_contiguous(), (which, position, key)
                assert (got - expected).norm() <= 1e-3 * expected.norm(), (which, position, key)  # seen: 1e-7


def test_sigterm_saves_every_member_and_the_population_resumes_bit_exactly(registry, data):
    """A real SIGTERM in the middle of a log window (step 7, rows every 10): each member saves its
    own checkpoint at that step boundary, then Terminated is raised; the members resumed from those
    checkpoints end where an uninterrupted population does, weights and metrics rows alike."""
    from gbench.training import signals

    def population(callbacks=None, resumes=None):
        members = []
        for index, seed in enumerate((0, 1, 2)):
            nets, loss, schedule = build(registry, _config(registry, seed), CPU)
            members.append(
                Member(
                    nets,
                    schedule,
                    seed,
                    callbacks[index] if callbacks else Callbacks(),
                    resumes[index] if resumes else None,
                )
            )
        return members, loss

    members, loss = population()
    expected = train_population(members, loss, data, _settings(_config(registry, 0)))

    saved = {}

    def keep(seed):
        def on_checkpoint(state):
            buffer = io.BytesIO()
            torch.save(state.to_dict(), buffer)
            saved[seed] = buffer.getvalue()

        return on_checkpoint

    class SignalAt7:  # member 0's schedule, asked once per step: sends a real SIGTERM during step 7
        def __init__(self, schedule):
            self.schedule = schedule

        def __getattr__(self, name):
            return getattr(self.schedule, name)

        def discriminator_steps(self, step, last):
            if step == 6:
                os.kill(os.getpid(), signal.SIGTERM)
            return self.schedule.discriminator_steps(step, last)

    stopped, loss = population([Callbacks(on_checkpoint=keep(seed)) for seed in (0, 1, 2)])
    stopped[0].schedule = SignalAt7(stopped[0].schedule)
    previous = signal.getsignal(signal.SIGTERM)
    signals.install()
    try:
        with pytest.raises(signals.Terminated), signals.deferring():
            train_population(stopped, loss, data, _settings(_config(registry, 0)))
    finally:
        signals.reset()
        signal.signal(signal.SIGTERM, previous)
    states = [TrainState.from_dict(torch.load(io.BytesIO(saved[seed]), weights_only=True)) for seed in (0, 1, 2)]
    assert [state.step for state in states] == [7, 7, 7] and all(state.window.steps == 7 for state in states)
    resumed, loss = population(resumes=states)
    results = train_population(resumed, loss, data, _settings(_config(registry, 0)))
    for member, result, reference, want in zip(resumed, results, members, expected):
        assert [row["g_loss"] for row in result.history] == [row["g_loss"] for row in want.history]
        assert result.images == want.images and result.steps == STEPS
        for name, param in member.nets.generator.named_parameters():
            assert torch.equal(param, dict(reference.nets.generator.named_parameters())[name]), name


class _Counting(torch.nn.Module):
    """Keeps Python-side state: each forward pass increments a plain int."""

    def __init__(self):
        super().__init__()
        self.layer, self.calls = torch.nn.Linear(4, 4), 0

    def forward(self, x):
        self.calls += 1
        return self.layer(x)


def test_probe_names_what_cannot_be_batched():
    from torch.nn.utils.parametrizations import spectral_norm

    inputs = torch.randn(2, 3, 4)
    assert unbatchable_reason([torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)], inputs, "generator") is None
    assert "Python attribute 'calls'" in unbatchable_reason([_Counting(), _Counting()], inputs, "generator")
    # torch's own spectral norm updates its buffers with out=, which vmap cannot batch
    reason = unbatchable_reason(
        [torch.nn.Sequential(spectral_norm(torch.nn.Linear(4, 2))) for _ in range(2)], inputs, "discriminator"
    )
    assert "cannot run under torch.func.vmap" in reason


COUNTING_PLUGIN = """
    from torch import nn
    from gbench import hookimpl
    from gbench.plugins.registry import Architecture, Nets

    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.calls = nn.Sequential(nn.Linear(8, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28))), 0

        def forward(self, z):
            self.calls += 1
            return self.net(z)

    def build(params, image_shape):
        return Nets(Counting(), nn.Sequential(nn.Flatten(), nn.Linear(784, 1)), latent_dim=8)

    @hookimpl
    def gbench_register_architectures(register):
        register(Architecture("counting", build))
"""


def _rows(out):
    with open(out / "results.csv") as file:
        return list(csv.DictReader(file))


def test_cli_trains_seeds_as_one_population(tmp_path):
    config = tmp_path / "mlp.toml"
    config.write_text('architecture = "mlp"\n')
    out = tmp_path / "runs"
    args = (
        "--seeds",
        "0-2",
        "--steps",
        "30",
        "--train-limit",
        "600",
        "--eval-samples",
        "0",
        "--set",
        "hidden_dim=32",
        "--out",
        str(out),
    )
    result = run_cli("run", "plugins.mlp", "--config", str(config), *args, "--population", "on")
    assert result.returncode == 0, result.stderr
    folders = sorted(path for path in out.iterdir() if path.is_dir())
    assert len(folders) == 3
    for folder in folders:
        assert all(
            (folder / name).is_file()
            for name in ("metrics.csv", "samples.png", "generator.pt", "summary.json", "config.json")
        )
        state = torch.load(folder / "generator.pt", weights_only=True)
        assert all(tensor.dim() <= 2 for tensor in state.values())  # a plain solo state_dict, no member dimension
    rows = _rows(out)
    assert sorted(row["seed"] for row in rows) == ["0", "1", "2"] and {row["population"] for row in rows} == {"3"}
    assert {row["status"] for row in rows} == {"ok"}


def test_cli_falls_back_to_one_by_one_with_a_reason(tmp_path):
    plugin = tmp_path / "counting.py"
    plugin.write_text(textwrap.dedent(COUNTING_PLUGIN))
    out = tmp_path / "runs"
    result = run_cli(
        "run",
        str(plugin),
        "--seeds",
        "0,1",
        "--steps",
        "5",
        "--train-limit",
        "300",
        "--eval-samples",
        "0",
        "--out",
        str(out),
        "--population",
        "on",
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "not as a population" in line]
    assert len(lines) == 1 and "'calls'" in lines[0], result.stdout
    rows = _rows(out)
    assert [row["population"] for row in rows] == ["1", "1"] and {row["status"] for row in rows} == {"ok"}


def test_spectral_norm_with_wgan_gp_trains_as_a_population(tmp_path):
    """Spectral norm updates its buffers in every forward, the penalty's included: under the penalty's
    per-member torch.func.grad the built-in one updates them one transform out, so the seeds train together."""
    out = tmp_path / "runs"
    result = run_cli(
        "run",
        "plugins.dcgan",
        "--seeds",
        "0,1",
        "--steps",
        "3",
        "--loss",
        "wgan-gp",
        "--set",
        "spectral_norm=true",
        "--set",
        "batchnorm=false",
        "--set",
        "hidden_dim=4",
        "--set",
        "latent_dim=8",
        "--batch-size",
        "16",
        "--train-limit",
        "300",
        "--eval-samples",
        "0",
        "--out",
        str(out),
        "--population",
        "on",
    )
    assert result.returncode == 0, result.stderr
    assert (
        "Traceback" not in result.stdout + result.stderr and "not as a population" not in result.stdout + result.stderr
    )
    rows = _rows(out)
    assert [row["population"] for row in rows] == ["2", "2"] and {row["status"] for row in rows} == {"ok"}


def test_a_spectral_norm_members_penalty_iterates_as_its_solo_run_does(registry):
    """The penalty's forward runs spectral norm's power iteration per member, as autograd's does in a solo
    run: the same penalty and the same power-iteration vectors afterwards (real == fake: no random mix)."""
    from gbench.training.population.stack import batched
    from plugins.losses import WassersteinGPLoss

    sizes = {"latent_dim": 8, "hidden_dim": 4, "spectral_norm": True, "batchnorm": False}
    nets = [build(registry, _config(registry, seed, architecture="dcgan", **sizes), CPU)[0] for seed in (0, 1)]
    stack = Stack([n.discriminator for n in nets])
    images = torch.rand(2, 8, 1, 28, 28) * 2 - 1
    loss = WassersteinGPLoss(10.0)
    got = batched(lambda p, b, x: loss.gradient_penalty(stack.module(p, b), x, x))(stack.params, stack.buffers, images)
    before = [n.discriminator.state_dict()["net.0.parametrizations.weight.0._u"].clone() for n in nets]
    want = torch.stack([loss.gradient_penalty(n.discriminator, x, x) for n, x in zip(nets, images)])
    assert torch.allclose(got, want, rtol=1e-5)
    for index, n in enumerate(nets):
        for name, solo in n.discriminator.state_dict().items():
            if name.endswith(("._u", "._v")):
                assert torch.allclose(stack.buffers[name][index], solo, atol=1e-6), name
        assert not torch.equal(
            n.discriminator.state_dict()["net.0.parametrizations.weight.0._u"], before[index]
        )  # it iterated


class _ItemLoss:
    """A loss that reads a value on the host (``.item()``): fine in a solo run, an error under vmap."""

    def __init__(self, inner):
        self.inner = inner

    def discriminator_loss(self, D, real, fake):
        terms = self.inner.discriminator_loss(D, real, fake)
        terms.loss.item()
        return terms

    def generator_loss(self, D, fake):
        return self.inner.generator_loss(D, fake)


def test_a_batched_step_that_fails_is_reported_not_raised(registry, data):
    from gbench.training.population.batchable import trial_step_failure

    members = []
    for seed in (0, 1):
        config = _config(registry, seed, architecture="dcgan", latent_dim=8, hidden_dim=4, batch_size=16)
        nets, loss, schedule = build(registry, config, CPU)
        members.append(Member(nets, schedule, seed))
    before = members[0].nets.generator.state_dict()["net.0.weight"].clone()
    reason = trial_step_failure(members, _ItemLoss(loss), data, _settings(config))
    assert reason is not None and reason.startswith("one batched training step failed") and "\n" not in reason
    assert reason.endswith(" ...)") and len(reason) < 240  # torch's long message, cut at a word
    assert torch.equal(members[0].nets.generator.state_dict()["net.0.weight"], before)  # the trial trained copies
    assert trial_step_failure(members, loss, data, _settings(config)) is None
    assert (
        trial_step_failure(members, loss, data, _settings(config, precision="bf16")) is None
    )  # BatchNorm2d in bf16 too


@pytest.mark.parametrize("architecture", ["mlp", "mlp-batchnorm", "dcgan"])
def test_a_bf16_population_computes_in_bf16_as_its_solo_runs_do(registry, architecture):
    """torch.autocast does not reach convolutions under vmap (they would silently run in float32);
    gbench.training.population.stack.autocast applies its casts itself. Tolerance: each side rounds every layer's
    output to bf16 (relative 2**-8) in its own order; a few layers, both sides: 2**-5 of the output's scale."""
    from gbench.training import trainer
    from gbench.training.population import stack as population
    from gbench.training.population.stack import batched

    small = {"latent_dim": 8, "hidden_dim": 8} if architecture == "dcgan" else {}
    nets = [build(registry, _config(registry, seed, architecture=architecture, **small), CPU)[0] for seed in (0, 1)]
    G, D = Stack([n.generator for n in nets]), Stack([n.discriminator for n in nets])
    dtypes = []
    for module in (*G.skeleton.modules(), *D.skeleton.modules()):
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            module.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    z = torch.randn(2, 32, nets[0].latent_dim, generator=torch.Generator().manual_seed(0))
    both = batched(lambda gp, gb, dp, db, z: D.module(dp, db)(G.module(gp, gb)(z)))
    with torch.no_grad(), population.autocast(CPU, "bf16"):
        got = both(G.params, G.buffers, D.params, D.buffers, z)
    with torch.no_grad(), trainer.autocast(CPU, "bf16"):
        expected = torch.stack([n.discriminator(n.generator(x)) for n, x in zip(nets, z)])
    assert got.dtype == expected.dtype == torch.bfloat16
    assert dtypes and set(dtypes) == {torch.bfloat16}  # every matmul and convolution of the population ran in bf16
    scale = float(expected.float().abs().max())
    assert torch.allclose(got.float(), expected.float(), rtol=0, atol=2**-5 * scale)
    with torch.no_grad(), population.autocast(CPU, "fp32"):
        fp32 = both(G.params, G.buffers, D.params, D.buffers, z)
    assert fp32.dtype == torch.float32 and not torch.equal(fp32, got.float())


def _casts_in_graph(output: torch.Tensor) -> int:
    """How many dtype casts with a gradient (``ToCopyBackward0`` nodes) the backward pass of ``output`` goes through."""
    seen, todo, casts = set(), [output.grad_fn], 0
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        casts += type(node).__name__ == "ToCopyBackward0"
        todo.extend(next_node for next_node, _ in node.next_functions)
    return casts


@pytest.mark.parametrize(
    "architecture, extra",
    [
        ("mlp", {}),
        ("dcgan", {"latent_dim": 8, "hidden_dim": 8}),
        ("dcgan", {"latent_dim": 8, "hidden_dim": 8, "spectral_norm": True}),
    ],
)
def test_a_bf16_population_casts_each_weight_once_per_region_as_autocast_does_solo(registry, data, architecture, extra):
    """torch's autocast casts a solo module's weights once per autocast region (D(real) and D(fake) share
    the cast; their two gradients are summed in bf16, then cast back once); a population does the same, not
    one cast per call. Spectral norm's weight, computed afresh in each call, is cast in each call on both sides."""
    from gbench.training import trainer
    from gbench.training.population import stack as population

    members = [build(registry, _config(registry, seed, architecture=architecture, **extra), CPU)[0] for seed in (0, 1)]
    D = Stack([nets.discriminator for nets in members])
    real = data[:8].expand(2, *data[:8].shape)
    fake = torch.rand_like(real) * 2 - 1

    def both(params, buffers, real, fake):
        module = D.module(params, buffers)
        return module(real).float().mean() + module(fake).float().mean()

    with population.autocast(CPU, "bf16"):
        stacked = batched(both)(D.params, D.buffers, real, fake).sum()
    solo = members[0].discriminator
    with trainer.autocast(CPU, "bf16"):
        alone = solo(real[0]).float().mean() + solo(fake[0]).float().mean()
    assert _casts_in_graph(stacked) == _casts_in_graph(alone) > 0
    stacked.backward()
    assert all(leaf.grad is not None and leaf.grad.dtype == torch.float32 for leaf in D.leaves.values())


class _HostReads(TorchFunctionMode):
    """Counts what reads a tensor's value on the host (on a GPU, each waits for the device)."""

    READS = {
        torch.Tensor.item,
        torch.Tensor.tolist,
        torch.Tensor.__bool__,
        torch.Tensor.__float__,
        torch.Tensor.__int__,
        torch.Tensor.cpu,
        torch.Tensor.numpy,
    }

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.count += func in self.READS
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"architecture": "mlp-batchnorm"},
        {"loss": "wgan-gp"},
        {"schedule": "ttur"},
        {"architecture": "vae"},
        {"architecture": "dcgan", "latent_dim": 8, "hidden_dim": 4},
    ],
)
def test_no_host_sync_per_step(registry, data, kwargs):
    """Between log rows neither loop reads a value back from the device, solo or population (adaptive alone
    reads its last D loss, by design): twice the steps with one log row each read exactly as often."""
    reads = {}
    for steps in (4, 8):
        for kind in ("solo", "population"):
            members = []
            for seed in (0, 1) if kind == "population" else (0,):
                config = _config(registry, seed, **kwargs)
                nets, loss, schedule = build(registry, config, CPU)
                members.append(Member(nets, schedule, seed))
            settings = TrainSettings(steps=steps, batch_size=50, lr=float(config.params["lr"]), log_every=steps, seed=0)
            with _HostReads() as counter:
                if kind == "solo":
                    train(members[0].nets, loss, members[0].schedule, data, settings)
                else:
                    train_population(members, loss, data, settings)
            reads[kind, steps] = counter.count
    assert reads["solo", 8] == reads["solo", 4] and reads["population", 8] == reads["population", 4], reads
    assert reads["population", 4] > 0  # the log row is read: the counter sees reads


_ARCHITECTURES = [
    ("mlp", {}),
    ("mlp-batchnorm", {}),
    ("deep-leakyrelu", {}),
    ("dcgan", {"latent_dim": 8, "hidden_dim": 4}),
    ("dcgan", {"latent_dim": 8, "hidden_dim": 4, "batchnorm": False, "spectral_norm": True}),
    ("dcgan", {"latent_dim": 8, "hidden_dim": 4, "spectral_norm": True}),
]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("loss_name", ["non-saturating", "minimax", "lsgan", "wgan-gp", "hinge"])
@pytest.mark.parametrize("architecture, extra", _ARCHITECTURES)
def test_every_builtin_combination_trains_solo_and_as_a_population(
    registry, data, architecture, extra, loss_name, precision
):
    """Every built-in architecture (dcgan with and without BatchNorm and spectral norm) with every loss, in both
    precisions: a solo step runs, and the population's trial step finds nothing to fall back for (spectral norm
    with WGAN-GP once raised in both)."""
    from gbench.training.population.batchable import trial_step_failure

    members = []
    for seed in (0, 1):
        config = _config(registry, seed, architecture=architecture, loss=loss_name, batch_size=16, **extra)
        nets, loss, schedule = build(registry, config, CPU)
        members.append(Member(nets, schedule, seed))
    solo = build(registry, config, CPU)
    result = train(*solo, data, _settings(config, steps=2, precision=precision))
    assert result.status == "ok" and result.steps == 2
    assert trial_step_failure(members, loss, data, _settings(config, steps=1, precision=precision)) is None
