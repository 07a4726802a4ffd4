import dataclasses
import math

import pytest
import torch

from gbench.config import RunConfig, resolve_params
from gbench.training.runner import DataCache, build
from gbench.training.trainer import TrainSettings, train

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(registry):
    config = RunConfig(architecture="mlp", train_limit=2000)
    return DataCache().training_tensor(registry, config, CPU)


def _train(
    registry,
    data,
    architecture="mlp",
    steps=30,
    seed=0,
    loss="non-saturating",
    schedule="k-steps",
    resume=None,
    callbacks=None,
    **overrides,
):
    config = RunConfig(architecture=architecture, loss=loss, schedule=schedule, seed=seed)
    config = dataclasses.replace(config, params=resolve_params(registry, config, overrides))
    nets, loss_fn, schedule_fn = build(registry, config, CPU)
    settings = TrainSettings(
        steps=steps,
        batch_size=int(config.params["batch_size"]),
        lr=float(config.params["lr"]),
        log_every=10,
        checkpoint_every=10,
        seed=seed,
    )
    return nets, train(nets, loss_fn, schedule_fn, data, settings, callbacks, resume=resume)


@pytest.mark.parametrize("architecture", ["mlp", "mlp-batchnorm", "deep-leakyrelu"])
@pytest.mark.parametrize("loss", ["non-saturating", "minimax"])
def test_each_builtin_trains(registry, data, architecture, loss):
    nets, result = _train(registry, data, architecture, loss=loss, steps=20, hidden_dim=32)
    assert result.status == "ok" and result.steps == 20
    assert result.images == 20 * 100
    assert [row["step"] for row in result.history] == [10, 20]
    last = result.history[-1]
    assert all(math.isfinite(last[k]) for k in ("d_loss", "g_loss", "d_real", "d_fake"))
    assert 0 < last["d_real"] < 1 and 0 < last["d_fake"] < 1  # probabilities for BCE losses


def test_k_steps_consumes_k_batches_per_generator_step(registry, data):
    _, result = _train(registry, data, steps=10, k=3, hidden_dim=32)
    assert result.images == 10 * 3 * 100


def test_same_seed_same_numbers(registry, data):
    nets_a, a = _train(registry, data, seed=7, steps=30)
    nets_b, b = _train(registry, data, seed=7, steps=30)
    _, c = _train(registry, data, seed=8, steps=30)
    strip = lambda history: [{k: v for k, v in row.items() if k != "seconds"} for row in history]
    assert strip(a.history) == strip(b.history)
    assert strip(a.history) != strip(c.history)
    for pa, pb in zip(nets_a.generator.parameters(), nets_b.generator.parameters()):
        assert torch.equal(pa, pb)


def test_resume_from_checkpoint_matches_uninterrupted(registry, data):
    import io

    from gbench.training.state import TrainState
    from gbench.training.trainer import Callbacks

    saved = {}

    def on_checkpoint(state):  # serialise at once, as the store does: the state holds live tensors
        buffer = io.BytesIO()
        torch.save(state.to_dict(), buffer)  # the checkpoint file's form
        saved[state.step] = buffer.getvalue()

    nets_full, full = _train(registry, data, seed=3, steps=30, callbacks=Callbacks(on_checkpoint=on_checkpoint))
    state = TrainState.from_dict(torch.load(io.BytesIO(saved[20]), weights_only=True))
    nets_resumed, resumed = _train(registry, data, seed=99, steps=30, resume=state)
    strip = lambda history: [{k: v for k, v in row.items() if k != "seconds"} for row in history]
    assert strip(resumed.history) == strip(full.history)
    for pa, pb in zip(nets_full.generator.parameters(), nets_resumed.generator.parameters()):
        assert torch.equal(pa, pb)


def test_divergence_stops_and_is_marked(registry, data):
    config = RunConfig(architecture="mlp")
    config = dataclasses.replace(config, params=resolve_params(registry, config))
    nets, loss_fn, schedule_fn = build(registry, config, CPU)
    settings = TrainSettings(steps=200, batch_size=100, lr=1e30, log_every=10)
    result = train(nets, loss_fn, schedule_fn, data, settings)
    assert result.status == "diverged"
    assert result.diverged_step is not None and result.diverged_step < 200
    assert result.steps == result.diverged_step
