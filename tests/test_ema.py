"""--ema DECAY: the generator weights' moving average (gbench.training.ema), in both loops.

The reference EMA here is computed by hand, in float64, from the generator's
weights recorded after every step of a real run (a log row every step), with
the documented formula: decay_t = min(decay, (1 + t) / (10 + t)) after step t.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import signal

import pytest
import torch
from conftest import assert_one_line_error, run_cli
from test_population import STEPS, _config, _settings

from gbench.config import EvalOptions, RunConfig, resolve_params
from gbench.errors import GbenchError
from gbench.evaluation.evaluate import EvalSettings, evaluate_generator
from gbench.training import signals
from gbench.training.population.loop import Member, train_population
from gbench.training.runner import DataCache, build, execute
from gbench.training.state import TrainState
from gbench.training.trainer import Callbacks, train

CPU = torch.device("cpu")
DECAY = 0.5  # reached at step 8 of the warm-up: a 20-step run covers both the ramp and the cap


@pytest.fixture(scope="module")
def data(registry):
    return DataCache().training_tensor(registry, RunConfig(architecture="mlp", train_limit=600), CPU)


def hand_ema(
    start: dict[str, torch.Tensor], after_each_step: list[dict[str, torch.Tensor]], decay: float
) -> dict[str, torch.Tensor]:
    """The documented formula, step by step, in float64."""
    ema = {name: tensor.double() for name, tensor in start.items()}
    for t, weights in enumerate(after_each_step):
        d = min(decay, (1 + t) / (10 + t))
        ema = {name: d * ema[name] + (1 - d) * weights[name].double() for name in ema}
    return ema


def recording_run(registry, data, seed=0, architecture="mlp-batchnorm", precision="fp32"):
    """A solo run with --ema, its generator's parameters and buffers recorded after every step."""
    config = _config(registry, seed, architecture=architecture)
    nets, loss, schedule = build(registry, config, CPU)
    start = {name: p.detach().clone() for name, p in nets.generator.named_parameters()}
    params, buffers = [], []

    def on_log(row):  # log_every=1: after every step, before any EMA is put in
        params.append({name: p.detach().clone() for name, p in nets.generator.named_parameters()})
        buffers.append({name: b.clone() for name, b in nets.generator.named_buffers()})

    settings = _settings(config, ema=DECAY, precision=precision)
    settings.log_every = 1
    result = train(nets, loss, schedule, data, settings, Callbacks(on_log=on_log))
    return nets, result, start, params, buffers


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_solo_runs_ema_is_the_formula_applied_to_its_weights_after_each_step(registry, data, precision):
    nets, result, start, params, buffers = recording_run(registry, data, precision=precision)
    assert result.steps == STEPS == len(params)
    expected = hand_ema(start, params, DECAY)
    # the generator now holds the EMA: what evaluation and generator.pt use
    for name, param in nets.generator.named_parameters():
        assert param.dtype == torch.float32
        assert torch.allclose(param.double(), expected[name], rtol=0, atol=1e-6), name
        assert not torch.allclose(param, params[-1][name], rtol=0, atol=1e-6), name  # and not the last weights
    for name, buffer in nets.generator.named_buffers():  # BatchNorm's statistics are the generator's own, as they were
        assert torch.equal(buffer, buffers[-1][name]), name


def test_a_population_members_ema_equals_its_solo_runs(registry, data):
    """Member i's EMA is seed i's solo EMA, within tests/test_population.py's bound (S * lr: an EMA is a convex
    combination of weights each within it); the stacked EMA is one lerp per tensor, no host sync."""
    seeds, lr = (0, 1, 2), 2e-4
    solo, members = [], []
    for seed in seeds:
        config = _config(registry, seed, architecture="mlp-batchnorm")
        nets, loss, schedule = build(registry, config, CPU)
        train(nets, loss, schedule, data, _settings(config, ema=DECAY))
        solo.append(nets)
        nets, loss, schedule = build(registry, config, CPU)
        members.append(Member(nets, schedule, seed))
    train_population(members, loss, data, _settings(config, ema=DECAY))
    for solo_nets, member in zip(solo, members):
        mine, differences = dict(member.nets.generator.named_parameters()), []
        for name, param in solo_nets.generator.named_parameters():
            difference = (param - mine[name]).abs().detach()
            assert difference.max() <= STEPS * lr, name
            differences.append(difference.flatten())
        # reassociation only (the last weights are ~lr from the EMA)
        assert torch.cat(differences).median() <= STEPS * lr / 100
    # and the members differ from one another: each has its own EMA
    assert not torch.equal(
        members[0].nets.generator.state_dict()["0.weight"], members[1].nets.generator.state_dict()["0.weight"]
    )


class SignalAt7:
    """A schedule that sends a real SIGTERM during step 7 (asked once per step, before it)."""

    def __init__(self, schedule):
        self.schedule = schedule

    def __getattr__(self, name):
        return getattr(self.schedule, name)

    def discriminator_steps(self, step, last):
        if step == 6:
            os.kill(os.getpid(), signal.SIGTERM)
        return self.schedule.discriminator_steps(step, last)


def terminated(run):
    """Run ``run()`` under gbench's signal handling; it must stop with Terminated."""
    previous = signal.getsignal(signal.SIGTERM)
    signals.install()
    try:
        with pytest.raises(signals.Terminated), signals.deferring():
            run()
    finally:
        signals.reset()
        signal.signal(signal.SIGTERM, previous)


def saving(saved, key):
    def on_checkpoint(state):
        buffer = io.BytesIO()
        torch.save(state.to_dict(), buffer)
        saved[key] = TrainState.from_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))

    return Callbacks(on_checkpoint=on_checkpoint)


def test_sigterm_then_resume_gives_the_uninterrupted_ema_solo_and_population(registry, data):
    """A real SIGTERM at step 7; resumed from the checkpoints, the solo run and the population end with the
    uninterrupted runs' EMA bit for bit, and a population member's checkpoint resumes as a solo run within the bound."""
    config = _config(registry, 1)
    settings = _settings(config, ema=DECAY)
    nets, loss, schedule = build(registry, config, CPU)
    train(nets, loss, schedule, data, settings)
    uninterrupted = nets.generator.state_dict()

    saved = {}
    nets, loss, schedule = build(registry, config, CPU)
    terminated(lambda: train(nets, loss, SignalAt7(schedule), data, settings, saving(saved, "solo")))
    state = saved["solo"]
    assert (
        state.step == 7
        and state.generator_ema is not None
        and state.generator_ema.keys() == dict(nets.generator.named_parameters()).keys()
    )
    assert not torch.equal(state.generator_ema["0.weight"], state.generator["0.weight"])  # the checkpoint holds both
    nets, loss, schedule = build(registry, config, CPU)
    train(nets, loss, schedule, data, settings, resume=state)
    assert all(torch.equal(tensor, uninterrupted[name]) for name, tensor in nets.generator.state_dict().items())

    def population(callbacks=None, resumes=None):
        members = []
        for index, seed in enumerate((0, 1)):
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

    reference, loss = population()
    train_population(reference, loss, data, settings)
    stopped, loss = population([saving(saved, 0), saving(saved, 1)])
    stopped[0].schedule = SignalAt7(stopped[0].schedule)
    terminated(lambda: train_population(stopped, loss, data, settings))
    resumed, loss = population(resumes=[saved[0], saved[1]])
    train_population(resumed, loss, data, settings)
    for member, want in zip(resumed, reference):
        expected = want.nets.generator.state_dict()
        assert all(torch.equal(tensor, expected[name]) for name, tensor in member.nets.generator.state_dict().items())

    # member 1's checkpoint (seed 1) resumed by the solo loop: the solo run's EMA, within the population bound
    nets, loss, schedule = build(registry, config, CPU)
    train(nets, loss, schedule, data, settings, resume=saved[1])
    for name, tensor in nets.generator.state_dict().items():
        assert (tensor - uninterrupted[name]).abs().max() <= STEPS * 2e-4, name


def test_evaluations_samples_and_generator_pt_use_the_ema(registry, data, tmp_path):
    """A whole run through the runner, evaluated at step 10 and at the end: generator.pt is the EMA (not the last
    weights), both FIDs are the EMA generator's (evaluated here independently), and the row says so: ema = the decay."""
    config = RunConfig(
        "mlp",
        steps=STEPS,
        train_limit=600,
        log_every=10,
        device="cpu",
        eval=EvalOptions(samples=200, every=10),
        ema=DECAY,
    )
    config = dataclasses.replace(config, params=resolve_params(registry, config, {"hidden_dim": 16, "batch_size": 50}))
    row = execute(config, registry, tmp_path)
    assert row["ema"] == DECAY and row["status"] in ("ok", "collapsed")  # 20 steps: one blob, one class
    assert json.loads((tmp_path / row["run_id"] / "summary.json").read_text())["ema"] == DECAY
    metrics = list(csv.DictReader(open(tmp_path / row["run_id"] / "metrics.csv")))

    nets, result, start, params, _ = recording_run(registry, data, seed=config.seed, architecture="mlp")
    saved = torch.load(tmp_path / row["run_id"] / "generator.pt", weights_only=True)
    expected = hand_ema(start, params, DECAY)
    for name, tensor in saved.items():
        assert torch.allclose(tensor.double(), expected[name], rtol=0, atol=1e-6), name
        assert not torch.allclose(tensor, params[-1][name], rtol=0, atol=1e-6), name

    real, labels = DataCache().split(registry, "mnist", "test", None, None)
    dataset = registry.dataset("mnist")

    def fid(weights, seed, final):
        nets.generator.load_state_dict(weights)
        settings = (
            EvalSettings(num_samples=200)
            if final
            else EvalSettings(num_samples=200, kid_subsets=0, precision_recall=False)
        )
        return evaluate_generator(
            nets.generator, nets.latent_dim, dataset, real, settings, CPU, seed=seed, real_labels=labels
        ).fid

    # same seed, same device: the same FID
    assert row["fid"] == pytest.approx(fid(saved, config.seed, final=True), rel=1e-9)
    last_weights = fid({**saved, **params[-1]}, config.seed, final=True)
    # the last weights score otherwise (seen: 115.258 against 115.268)
    assert abs(row["fid"] - last_weights) > 1e-6 * last_weights

    # at step 10, mid-run: the EMA as the run's checkpoint holds it,
    # then the weights go on training unchanged (generator.pt above)
    checkpoint = {}
    again, loss, schedule = build(registry, _config(registry, config.seed, architecture="mlp"), CPU)
    train(again, loss, schedule, data, _settings(config, ema=DECAY, checkpoint_every=10), saving(checkpoint, 10))
    during = float(metrics[0]["fid"])
    assert metrics[0]["step"] == "10" and during == pytest.approx(
        fid(checkpoint[10].generator_ema, 10, final=False), rel=1e-9
    )
    assert abs(during - fid(checkpoint[10].generator, 10, final=False)) > 1e-6 * during


def test_without_ema_the_checkpoint_holds_none(registry, data):
    config = _config(registry, 0)
    nets, loss, schedule = build(registry, config, CPU)
    saved = {}
    terminated(lambda: train(nets, loss, SignalAt7(schedule), data, _settings(config), saving(saved, "solo")))
    assert saved["solo"].generator_ema is None
    # such a checkpoint never meets --ema (the run's config hash
    # differs); given one anyway, either loop says so in one line
    for resume in (
        lambda nets, loss, schedule: train(
            nets, loss, schedule, data, _settings(config, ema=DECAY), resume=saved["solo"]
        ),
        lambda nets, loss, schedule: train_population(
            [
                Member(nets, schedule, 0, resume=saved["solo"]),
                Member(*build(registry, _config(registry, 1), CPU)[::2], 1),
            ],
            loss,
            data,
            _settings(config, ema=DECAY),
        ),
    ):
        with pytest.raises(
            GbenchError,
            match="the checkpoint holds no EMA for generator weights 0.bias, 0.weight, 2.bias; delete checkpoint.pt",
        ):
            resume(*build(registry, config, CPU))


@pytest.mark.parametrize("decay", ["1.5", "0", "-1"])
def test_a_decay_outside_0_to_1_is_one_line_before_training(tmp_path, decay):
    result = run_cli(
        "run",
        "plugins.mlp",
        "--architecture",
        "mlp",
        "--ema",
        decay,
        "--steps",
        "1",
        "--eval-samples",
        "0",
        "--out",
        str(tmp_path),
    )
    assert_one_line_error(result, f"--ema {decay!r} must be at", "1e-06" if float(decay) < 1 else "0.999999")
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


def test_a_config_files_ema_is_checked_the_same_way(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('architecture = "mlp"\nema = 1.5\n')
    result = run_cli(
        "run",
        "plugins.mlp",
        "--config",
        str(config),
        "--steps",
        "1",
        "--eval-samples",
        "0",
        "--out",
        str(tmp_path / "out"),
    )
    assert_one_line_error(result, str(config), "ema=1.5", "outside its range")


def test_a_diverged_runs_ema_averages_the_weights_from_before_its_bad_step_solo_and_in_a_population(registry, data):
    """Loss NaN from step 11, read at the log row of step 20: steps 11..20 leave the weights as after step 10, and the
    EMA goes on averaging those (the formula over w1..w10 then w10 ten times); member 1 of a population diverging alike
    has that EMA too (within the bound), and stops updating it when it stops, while the others train on."""
    from test_divergence import NEVER, _build
    from test_divergence import _settings as divergence_settings

    nets, loss, schedule, lr = _build(registry, 1, nan_from=11)
    start = {name: p.detach().clone() for name, p in nets.generator.named_parameters()}
    result = train(nets, loss, schedule, data, divergence_settings(30, lr, seed=1, ema=DECAY))
    assert result.status == "diverged" and result.diverged_step == 11

    healthy, loss, schedule, _ = _build(registry, 1)
    weights = []
    settings = divergence_settings(10, lr, seed=1)
    settings.log_every = 1

    def record(row):
        weights.append({name: p.detach().clone() for name, p in healthy.generator.named_parameters()})

    train(healthy, loss, schedule, data, settings, Callbacks(on_log=record))
    expected = hand_ema(start, weights + [weights[-1]] * 10, DECAY)
    solo = dict(nets.generator.named_parameters())
    for name, param in solo.items():
        assert torch.isfinite(param).all() and torch.allclose(param.double(), expected[name], rtol=0, atol=1e-6), name

    def population(steps):
        members = []
        for seed in (0, 1, 2):
            member_nets, loss, schedule, lr = _build(registry, seed, nan_from=11 if seed == 1 else NEVER)
            members.append(Member(member_nets, schedule, seed))
        return members, train_population(members, loss, data, divergence_settings(steps, lr, ema=DECAY))

    members, results = population(30)
    assert [r.status for r in results] == ["ok", "diverged", "ok"] and [r.steps for r in results] == [30, 11, 30]
    # member 1 stops at step 20's row either way: steps 21..30 of the others leave its EMA alone
    twenty, _ = population(20)
    assert all(
        torch.equal(tensor, twenty[1].nets.generator.state_dict()[name])
        for name, tensor in members[1].nets.generator.state_dict().items()
    )
    differences = []
    for name, param in members[1].nets.generator.named_parameters():
        difference = (param - solo[name]).abs().detach()
        assert difference.max() <= 20 * lr, name
        differences.append(difference.flatten())
    # as tests/test_population.py: reassociation is far below the bound
    assert torch.cat(differences).median() <= 20 * lr / 100


def test_gbench_run_ema_reaches_config_json_and_results_csv(tmp_path):
    """The option end to end: --ema into config.json (part of the
    run's hash) and the results.csv column; without it, empty."""
    common = (
        "run",
        "plugins.mlp",
        "--architecture",
        "mlp",
        "--steps",
        "2",
        "--train-limit",
        "200",
        "--batch-size",
        "50",
        "--eval-samples",
        "0",
    )
    for out, extra in (("with", ("--ema", "0.9")), ("without", ())):
        result = run_cli(*common, *extra, "--out", str(tmp_path / out))
        assert result.returncode == 0, result.stderr
    with_ema, without = (list(csv.DictReader(open(tmp_path / out / "results.csv"))) for out in ("with", "without"))
    assert [row["ema"] for row in with_ema] == ["0.9"] and [row["ema"] for row in without] == [""]
    [run_dir] = [path for path in (tmp_path / "with").iterdir() if (path / "config.json").exists()]
    assert json.loads((run_dir / "config.json").read_text())["ema"] == 0.9
