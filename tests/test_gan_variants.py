"""The GAN variants studies compare (issue #7): DCGAN, LSGAN / WGAN-GP / hinge
losses, TTUR and adaptive schedules, a VAE baseline, and runs that diverge or
collapse. Real parts and real MNIST throughout; every net is kept small."""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap

import pytest
import torch
from conftest import assert_one_line_error, run_cli
from torch import nn
from torch.nn.utils import parametrize

from gbench.config import RunConfig, resolve_params
from gbench.errors import GbenchError
from gbench.results import store
from gbench.training.runner import DataCache, build, execute
from gbench.training.trainer import Callbacks, LastLosses, TrainSettings, train

CPU = torch.device("cpu")
BUILTINS_ONLY = {"GBENCH_DISABLE_PLUGIN_AUTOLOAD": "1"}  # no third-party plugin installed beside gbench can add lines
SMALL_DCGAN = {"latent_dim": 16, "hidden_dim": 16}


@pytest.fixture(scope="module")
def data(registry):
    config = RunConfig(architecture="mlp", train_limit=2000)
    return DataCache().training_tensor(registry, config, CPU)


def _train(
    registry,
    data,
    architecture="mlp",
    loss="non-saturating",
    schedule="k-steps",
    steps=10,
    seed=0,
    log_every=5,
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
        log_every=log_every,
        checkpoint_every=1 if callbacks and callbacks.on_checkpoint else None,
    )
    return nets, train(nets, loss_fn, schedule_fn, data, settings, callbacks)


# ---------------------------------------------------------------------------
# Registration through the entry points
# ---------------------------------------------------------------------------


def test_new_parts_load_through_the_entry_points(registry):
    expected = {
        ("architecture", "dcgan"): "dcgan",
        ("architecture", "vae"): "vae",
        ("loss", "lsgan"): "losses",
        ("loss", "wgan-gp"): "losses",
        ("loss", "hinge"): "losses",
        ("loss", "non-saturating"): "losses",
        ("loss", "minimax"): "losses",
        ("schedule", "ttur"): "schedules",
        ("schedule", "adaptive"): "schedules",
        ("schedule", "k-steps"): "schedules",
    }
    for (kind, name), owner in expected.items():
        assert registry.owners[(kind, name)] == owner, (kind, name)
    scores = {name: registry.loss(name).score for name in ("non-saturating", "minimax", "lsgan", "wgan-gp", "hinge")}
    assert scores == {
        "non-saturating": "probability",
        "minimax": "probability",
        "lsgan": "critic",
        "wgan-gp": "critic",
        "hinge": "critic",
    }


def test_builtins_doc_lists_every_builtin_and_its_hyperparameters(registry):
    from conftest import REPO

    text = (REPO / "docs" / "builtins.md").read_text()
    builtin_owners = {"mlp", "dcgan", "vae", "losses", "schedules", "datasets", "conditional"}
    for (kind, name), owner in registry.owners.items():
        if owner not in builtin_owners:
            continue
        rows = [line for line in text.splitlines() if line.startswith(f"| `{name}`")]
        assert len(rows) == 1, (kind, name)
        for hp in getattr(registry.get(kind, name), "hyperparameters", ()):
            assert f"`{hp.name}`" in rows[0], (name, hp.name)


def test_declared_hyperparameters(registry):
    dcgan = {hp.name: hp for hp in registry.architecture("dcgan").hyperparameters}
    assert {name: hp.default for name, hp in dcgan.items()} == {
        "latent_dim": 100,
        "hidden_dim": 64,
        "batchnorm": True,
        "spectral_norm": False,
    }
    for name in ("latent_dim", "hidden_dim"):  # S2's grid, 9..144, is valid and searched by default
        assert dcgan[name].log and dcgan[name].check(9) == 9 and dcgan[name].check(144) == 144
        low, high = dcgan[name].search_range()
        assert low <= 9 and high >= 144
    assert (
        registry.loss("wgan-gp").hyperparameters[0].name == "gp_weight"
        and registry.loss("wgan-gp").hyperparameters[0].default == 10.0
    )
    ttur = {hp.name: hp.default for hp in registry.schedule("ttur").hyperparameters}
    assert ttur == {"d_lr": 4e-4, "g_lr": 1e-4}
    adaptive = {hp.name: hp.default for hp in registry.schedule("adaptive").hyperparameters}
    assert set(adaptive) == {"threshold", "max_d_steps"}
    assert adaptive["threshold"] == pytest.approx(2 * math.log(2), abs=1e-3)  # BCE's d_loss at chance


def test_bad_values_fail_in_one_line(registry, tmp_path):
    config = RunConfig(architecture="dcgan", loss="wgan-gp", schedule="ttur")
    with pytest.raises(GbenchError, match="gp_weight=-1.0 is outside its range"):
        resolve_params(registry, config, {"gp_weight": "-1"})
    with pytest.raises(GbenchError, match="d_lr=0.0 is outside its range"):
        resolve_params(registry, config, {"d_lr": "0"})
    result = run_cli(
        "run",
        "plugins.dcgan",
        "--set",
        "spectral_norm=maybe",
        "--steps",
        "1",
        "--eval-samples",
        "0",
        "--out",
        str(tmp_path),
        env=BUILTINS_ONLY,
    )
    assert_one_line_error(result, "spectral_norm='maybe'", "bool")


# ---------------------------------------------------------------------------
# DCGAN
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("latent_dim, hidden_dim", [(9, 9), (144, 144), (100, 64)])
def test_dcgan_shapes_over_s2_grid(registry, latent_dim, hidden_dim):
    params = {"latent_dim": latent_dim, "hidden_dim": hidden_dim, "batchnorm": True, "spectral_norm": False}
    nets = registry.architecture("dcgan").build(params, (1, 28, 28))
    images = nets.generator(torch.randn(3, latent_dim))
    assert images.shape == (3, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    assert nets.discriminator(images).shape == (3, 1)
    assert nets.latent_dim == latent_dim
    widths = [m.out_channels for m in nets.discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [hidden_dim, 2 * hidden_dim]


def test_dcgan_batchnorm_and_spectral_norm_options(registry):
    build_dcgan = registry.architecture("dcgan").build
    plain = build_dcgan({**SMALL_DCGAN, "batchnorm": False, "spectral_norm": False}, (1, 28, 28))
    fancy = build_dcgan({**SMALL_DCGAN, "batchnorm": True, "spectral_norm": True}, (1, 28, 28))

    def batchnorms(module):
        return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())

    def spectral(module):
        return [
            parametrize.is_parametrized(m, "weight") for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
        ]

    assert batchnorms(plain.generator) == 0 and batchnorms(fancy.generator) == 2
    assert batchnorms(fancy.discriminator) == 0  # a WGAN-GP critic must not mix images through batch statistics
    assert spectral(plain.discriminator) == [False, False, False]
    assert spectral(fancy.discriminator) == [True, True, True]
    # spectral norm keeps the largest singular value of the last layer's weight at 1
    fancy.discriminator.train()
    x = torch.randn(4, 1, 28, 28)
    for _ in range(20):  # power iteration converges as the net is used
        fancy.discriminator(x)
    last = [m for m in fancy.discriminator.modules() if isinstance(m, nn.Linear)][-1]
    assert torch.linalg.matrix_norm(last.weight, ord=2).item() == pytest.approx(1.0, abs=1e-3)


def test_dcgan_serves_28_32_and_64_pixels_and_names_them_for_any_other_size(registry):
    params = {"latent_dim": 8, "hidden_dim": 4, "batchnorm": True, "spectral_norm": False}
    for shape in [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32), (1, 64, 64), (3, 64, 64)]:
        nets = registry.architecture("dcgan").build(params, shape)
        images = nets.generator(torch.randn(2, 8))
        assert tuple(images.shape) == (2, *shape) and nets.discriminator(images).shape == (2, 1)
    for shape in [(3, 48, 48), (3, 32, 28), (2, 32, 32)]:
        with pytest.raises(
            ValueError,
            match="dcgan serves 28, 32 and 64 pixel square images with 1 or 3 channels, "
            f"not {'x'.join(map(str, shape))}",
        ):
            registry.architecture("dcgan").build(params, shape)


@pytest.mark.parametrize("loss", ["non-saturating", "lsgan", "wgan-gp", "hinge"])
def test_dcgan_trains_with_each_loss(registry, data, loss):
    nets, result = _train(registry, data, "dcgan", loss=loss, steps=10, batch_size=64, **SMALL_DCGAN)
    assert result.status == "ok" and result.steps == 10 and result.images == 10 * 64
    last = result.history[-1]
    assert all(math.isfinite(last[k]) for k in ("d_loss", "g_loss", "d_real", "d_fake"))
    assert last["d_real"] > last["d_fake"]  # after a few steps D tells MNIST from a young G's noise
    if registry.loss(loss).score == "probability":
        assert 0 < last["d_fake"] < last["d_real"] < 1


def test_dcgan_spectral_norm_trains_with_hinge(registry, data):
    _, result = _train(
        registry,
        data,
        "dcgan",
        loss="hinge",
        steps=6,
        batch_size=64,
        spectral_norm=True,
        batchnorm=False,
        **SMALL_DCGAN,
    )
    assert result.status == "ok" and all(math.isfinite(result.history[-1][k]) for k in ("d_loss", "g_loss"))


def test_dcgan_spectral_norm_trains_with_wgan_gp(registry, data):
    """Spectral norm updates its power-iteration vectors in every forward, the penalty's included: a solo
    run takes the penalty's gradient with autograd, under which that runs (torch.func.grad refused it)."""
    sizes = {**SMALL_DCGAN, "spectral_norm": True, "batchnorm": False}
    nets, result = _train(registry, data, "dcgan", loss="wgan-gp", steps=3, batch_size=64, **sizes)
    assert (
        result.status == "ok"
        and result.steps == 3
        and all(math.isfinite(result.history[-1][k]) for k in ("d_loss", "g_loss"))
    )
    config = RunConfig(architecture="dcgan", loss="wgan-gp")
    config = dataclasses.replace(config, params=resolve_params(registry, config, sizes))
    untrained, loss, _ = build(registry, config, torch.device("cpu"))
    u = untrained.discriminator.net[0].parametrizations.weight[0]._u
    before = u.clone()
    images = data[:8]
    penalty = loss.gradient_penalty(untrained.discriminator, images, images)  # one forward: the penalty's own
    assert not torch.equal(u, before)  # its power iteration ran
    penalty.backward()  # differentiable (create_graph): the critic's step descends the penalty too
    assert untrained.discriminator.net[0].parametrizations.weight.original.grad is not None


# ---------------------------------------------------------------------------
# Losses on hand-checked cases. nn.Identity as D: the "images" are the logits.
# ---------------------------------------------------------------------------

REAL = torch.tensor([[2.0], [0.5]])
FAKE = torch.tensor([[-1.0], [0.5]])


def test_lsgan_values_by_hand(registry):
    loss = registry.loss("lsgan").build({})
    d = loss.discriminator_loss(nn.Identity(), REAL, FAKE)
    # 1/2 mean((2-1)^2, (0.5-1)^2) + 1/2 mean((-1)^2, 0.5^2) = 0.3125 + 0.3125
    assert d.loss.item() == pytest.approx(0.625)
    assert d.real_score.item() == pytest.approx(1.25) and d.fake_score.item() == pytest.approx(-0.25)  # raw outputs
    g = loss.generator_loss(nn.Identity(), FAKE)
    assert g.loss.item() == pytest.approx(0.5 * (4 + 0.25) / 2)  # 1/2 mean((-1-1)^2, (0.5-1)^2)
    # a perfect D (real at 1, fake at 0) has zero loss; G then pays 1/2
    assert loss.discriminator_loss(nn.Identity(), torch.ones(3, 1), torch.zeros(3, 1)).loss.item() == 0
    assert loss.generator_loss(nn.Identity(), torch.zeros(3, 1)).loss.item() == pytest.approx(0.5)


def test_hinge_values_by_hand(registry):
    loss = registry.loss("hinge").build({})
    d = loss.discriminator_loss(nn.Identity(), REAL, FAKE)
    # mean(relu(1-2), relu(1-0.5)) + mean(relu(1-1), relu(1+0.5)) = 0.25 + 0.75
    assert d.loss.item() == pytest.approx(1.0)
    assert d.real_score.item() == pytest.approx(1.25) and d.fake_score.item() == pytest.approx(-0.25)
    g = loss.generator_loss(nn.Identity(), FAKE)
    assert g.loss.item() == pytest.approx(0.25)  # -mean(-1, 0.5): G gains as D(G(z)) rises
    assert loss.generator_loss(nn.Identity(), torch.full((2, 1), 3.0)).loss.item() == pytest.approx(-3.0)


def test_bce_losses_unchanged(registry):
    ns = registry.loss("non-saturating").build({})
    d = ns.discriminator_loss(nn.Identity(), REAL, FAKE)
    sig = torch.sigmoid
    expected = -(sig(REAL).log().mean() + (1 - sig(FAKE)).log().mean())
    assert d.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert d.real_score.item() == pytest.approx(sig(REAL).mean().item())
    assert ns.generator_loss(nn.Identity(), FAKE).loss.item() == pytest.approx(-sig(FAKE).log().mean().item(), rel=1e-6)


def _linear_critic(weight, bias=0.5):
    critic = nn.Sequential(nn.Flatten(), nn.Linear(len(weight), 1))
    with torch.no_grad():
        critic[1].weight.copy_(torch.tensor([weight]))
        critic[1].bias.fill_(bias)
    return critic


def test_wgan_gp_penalty_of_a_linear_critic(registry):
    """D(x) = w.x + b has gradient w everywhere: penalty = gp_weight * (|w| - 1)^2."""
    loss = registry.loss("wgan-gp").build({"gp_weight": 2.5})
    critic = _linear_critic([3.0, 0.0, 4.0, 0.0])  # |w| = 5
    torch.manual_seed(0)
    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    assert loss.gradient_penalty(critic, real, fake).item() == pytest.approx(2.5 * 16, rel=1e-5)
    assert loss.gradient_penalty(_linear_critic([0.6, 0.8, 0.0, 0.0]), real, fake).item() == pytest.approx(
        0.0, abs=1e-5
    )

    w = torch.tensor([3.0, 0.0, 4.0, 0.0])
    mean_real, mean_fake = real.flatten(1).mean(0), fake.flatten(1).mean(0)
    terms = loss.discriminator_loss(critic, real, fake)
    # E[D(fake)] - E[D(real)] + penalty; the bias cancels
    assert terms.loss.item() == pytest.approx((w @ (mean_fake - mean_real)).item() + 40.0, rel=1e-5)
    assert terms.real_score.item() == pytest.approx((w @ mean_real).item() + 0.5, rel=1e-5)
    # the penalty's gradient reaches the critic's weights (create_graph=True):
    # d/dw = (mean_fake - mean_real) + 2 * gp_weight * (|w| - 1) * w / |w|
    terms.loss.backward()
    expected = (mean_fake - mean_real) + 2 * 2.5 * 4 * w / 5
    assert torch.allclose(critic[1].weight.grad[0], expected, atol=1e-4)
    assert critic[1].bias.grad.item() == pytest.approx(0.0, abs=1e-6)
    g = loss.generator_loss(critic, fake)
    assert g.loss.item() == pytest.approx(-((w @ mean_fake).item() + 0.5), rel=1e-5)


def test_wgan_gp_penalty_is_taken_between_real_and_fake(registry):
    """D(x) = |x|^2 / 2 has gradient x: with real == fake every interpolate is that image."""
    loss = registry.loss("wgan-gp").build({"gp_weight": 10.0})

    class Quadratic(nn.Module):
        def forward(self, x):
            return 0.5 * x.flatten(1).square().sum(1)

    image = torch.tensor([[[[3.0, 4.0]]]])  # |x| = 5
    assert loss.gradient_penalty(
        Quadratic(), image.repeat(4, 1, 1, 1), image.repeat(4, 1, 1, 1)
    ).item() == pytest.approx(160.0, rel=1e-5)
    # between 0 and an image of norm 5 the norms are mix * 5, so the penalty lies in [0, 10 * 16]
    penalty = loss.gradient_penalty(Quadratic(), image.repeat(64, 1, 1, 1), torch.zeros(64, 1, 1, 2)).item()
    assert 0 < penalty < 160


# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------


def test_ttur_learning_rates_reach_the_optimizers(registry, data):
    optimizers = {}

    def on_checkpoint(state):
        optimizers["d"] = [group["lr"] for group in state.d_opt["param_groups"]]
        optimizers["g"] = [group["lr"] for group in state.g_opt["param_groups"]]

    _, result = _train(
        registry,
        data,
        "mlp",
        schedule="ttur",
        steps=2,
        callbacks=Callbacks(on_checkpoint=on_checkpoint),
        hidden_dim=16,
        d_lr=3e-4,
        g_lr=5e-5,
        lr=1e-2,
    )
    assert result.status == "ok" and result.images == 2 * 100  # one D step per G step
    assert optimizers == {"d": [3e-4], "g": [5e-5]}  # the base lr is not used
    schedule = registry.schedule("ttur").build({"d_lr": 4e-4, "g_lr": 1e-4})
    assert schedule.learning_rates(2e-4) == (4e-4, 1e-4)


def test_adaptive_steps_follow_the_last_d_loss(registry):
    schedule = registry.schedule("adaptive").build({"threshold": 1.0, "max_d_steps": 4})
    assert schedule.discriminator_steps(0, LastLosses()) == 1  # no loss yet
    assert schedule.discriminator_steps(5, LastLosses(d_loss=torch.tensor(1.5))) == 4  # D losing
    assert schedule.discriminator_steps(5, LastLosses(d_loss=torch.tensor(0.5))) == 1  # D winning
    assert schedule.discriminator_steps(5, LastLosses(d_loss=torch.tensor(float("nan")))) == 1
    assert schedule.learning_rates(3e-4) == (3e-4, 3e-4)


def test_adaptive_gives_more_d_steps_while_d_loses(registry, data):
    # BCE's d_loss is always positive: threshold 0 means D always counts as losing
    _, losing = _train(registry, data, "mlp", schedule="adaptive", steps=6, hidden_dim=16, threshold=0.0, max_d_steps=3)
    _, winning = _train(
        registry, data, "mlp", schedule="adaptive", steps=6, hidden_dim=16, threshold=100.0, max_d_steps=3
    )
    assert losing.images == (1 + 5 * 3) * 100  # step 0 has no previous loss: one D step
    assert winning.images == 6 * 100


# ---------------------------------------------------------------------------
# VAE baseline
# ---------------------------------------------------------------------------


def test_vae_builds_decoder_and_objective(registry, data):
    nets = registry.architecture("vae").build({"latent_dim": 8, "hidden_dim": 32}, (1, 28, 28))
    assert nets.discriminator is None and nets.latent_dim == 8
    assert hasattr(nets.generator, "encoder") and hasattr(nets.generator, "decoder")
    images = nets.generator(torch.randn(5, 8))
    assert images.shape == (5, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    loss, metrics = nets.objective(data[:16])
    assert loss.shape == () and loss.requires_grad
    assert loss.item() == pytest.approx((metrics["reconstruction"] + metrics["kl"]).item(), rel=1e-5)
    assert metrics["kl"].item() >= 0
    # an untrained decoder outputs p ~ 1/2 per pixel: reconstruction ~ 784 ln 2 per image (MNIST is mostly black,
    # targets near 0, so it is within a factor of the chance cost)
    assert 0.5 * 784 * math.log(2) < metrics["reconstruction"].item() < 2 * 784 * math.log(2)
    encoder_params = set(map(id, nets.generator.encoder.parameters()))
    assert encoder_params <= set(map(id, nets.generator.parameters()))  # one optimizer trains both halves


def test_vae_objective_decreases_in_the_same_harness(registry, data):
    nets, result = _train(
        registry, data, "vae", steps=60, log_every=10, lr=1e-3, batch_size=100, latent_dim=8, hidden_dim=64
    )
    assert result.status == "ok" and result.steps == 60
    elbo = [row["g_loss"] for row in result.history]
    assert all(math.isfinite(value) for value in elbo) and all(math.isnan(row["d_loss"]) for row in result.history)
    assert elbo[-1] < 0.6 * elbo[0], elbo  # about 0.4 over seeds: 520 -> 215 nats


def test_vae_run_is_stored_with_an_elbo_loss_column(registry, tmp_path):
    config = RunConfig(
        architecture="vae",
        steps=5,
        train_limit=2000,
        log_every=5,
        device="cpu",
        params={"latent_dim": 8, "hidden_dim": 32},
    )
    config = dataclasses.replace(config, eval=dataclasses.replace(config.eval, samples=0))
    row = execute(config, registry, tmp_path)
    assert row["status"] == "ok" and row["loss"] == "elbo" and row["d_loss"] is None and row["g_loss"] > 0
    stored = store.read_results(tmp_path)
    assert [r["loss"] for r in stored] == ["elbo"]


def test_the_metrics_an_objective_returns_are_recorded_as_curves(registry, tmp_path):
    """Nets.objective's metrics dict (the VAE's reconstruction and KL) goes into every history row and metrics.csv."""
    config = RunConfig(
        architecture="vae",
        steps=20,
        train_limit=2000,
        log_every=5,
        device="cpu",
        params={"latent_dim": 8, "hidden_dim": 32},
    )
    config = dataclasses.replace(config, eval=dataclasses.replace(config.eval, samples=0))
    row = execute(config, registry, tmp_path)
    rows = store.read_csv(tmp_path / row["run_id"] / "metrics.csv")
    assert len(rows) == 4 and all(float(r["reconstruction"]) > 0 and float(r["kl"]) >= 0 for r in rows)
    for r in rows:  # the ELBO is reconstruction + KL, each a mean over the same window of steps
        assert float(r["g_loss"]) == pytest.approx(float(r["reconstruction"]) + float(r["kl"]), rel=1e-4)


# ---------------------------------------------------------------------------
# Runs that diverge or collapse
# ---------------------------------------------------------------------------


def test_diverged_run_is_marked_keeps_its_files_and_exits_zero(tmp_path):
    out = tmp_path / "runs"
    result = run_cli(
        "run",
        "plugins.mlp",
        "--set",
        "lr=1e30",
        "--set",
        "hidden_dim=32",
        "--steps",
        "200",
        "--log-every",
        "5",
        "--train-limit",
        "2000",
        "--eval-samples",
        "0",
        "--device",
        "cpu",
        "--out",
        str(out),
        env=BUILTINS_ONLY,
    )
    assert result.returncode == 0, result.stderr
    rows = store.read_results(out)
    assert sorted(r["architecture"] for r in rows) == ["deep-leakyrelu", "mlp", "mlp-batchnorm"]
    for row in rows:
        assert row["status"] == "diverged", row
        step = int(row["diverged_step"])
        assert (
            0 < step < 200 and int(row["steps"]) == step
        )  # the step the loss went non-finite, not a log row (a multiple of 5)
        run_dir = out / row["run_id"]
        for name in ("config.json", "metrics.csv", "summary.json", "samples.png", "generator.pt"):
            assert (run_dir / name).is_file(), (row["run_id"], name)
        assert not (run_dir / "checkpoint.pt").exists()
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "diverged" and summary["diverged_step"] == step
        assert int(store.read_csv(run_dir / "metrics.csv")[-1]["step"]) == step
    assert "diverged" in result.stdout


def _write_idx(path, array):
    """An unsigned-byte IDX file, the format MNIST ships in."""
    header = bytes([0, 0, 0x08, array.dim()]) + b"".join(size.to_bytes(4, "big") for size in array.shape)
    path.write_bytes(header + array.contiguous().numpy().tobytes())


@pytest.fixture(scope="module")
def small_mnist_root(registry, tmp_path_factory):
    """Real MNIST cut to 2,000 train and 1,000 test images, as a --data-root. The
    evaluator compares samples with the whole test split (precision/recall take
    k-NN radii over it), so a 1,000-image split keeps each evaluation to about a second."""
    from gbench.data import load_split

    raw = tmp_path_factory.mktemp("small-mnist") / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, limit, prefix in (("train", 2000, "train"), ("test", 1000, "t10k")):
        images, labels = load_split(registry.dataset("mnist"), split, None, limit)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images[:, 0])
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels.to(torch.uint8))
    assert sorted(torch.bincount(labels).tolist())[0] >= 80  # every digit is in the small test split
    return raw.parent.parent


def _collapse_plugin(tmp_path, data):
    """A file plugin with two generators that ignore training: `one-image`
    emits the same image for every z; `replay` returns real MNIST digits."""
    digits = tmp_path / "digits.pt"
    torch.save(data[:500].clone(), digits)
    path = tmp_path / "collapse_plugin.py"
    path.write_text(
        textwrap.dedent(
            f"""
            import torch
            from torch import nn

            from gbench import hookimpl
            from gbench.plugins.registry import Architecture, Hyperparameter, Nets

            class OneImage(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.image = nn.Parameter(torch.zeros(1, 1, 28, 28))

                def forward(self, z):
                    return torch.tanh(self.image).expand(len(z), -1, -1, -1)

            class Replay(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.register_buffer("digits", torch.load({str(digits)!r}))
                    self.unused = nn.Parameter(torch.zeros(()))

                def forward(self, z):
                    index = (z[:, 0] * 1e4).floor().long() % len(self.digits)
                    return self.digits[index] + 0 * self.unused

            def critic():
                return nn.Sequential(nn.Flatten(), nn.Linear(784, 1))

            LATENT = Hyperparameter("latent_dim", 4, low=1, high=8)

            @hookimpl
            def gbench_register_architectures(register):
                register(Architecture("one-image", lambda p, s: Nets(OneImage(), critic(), p["latent_dim"]), (LATENT,)))
                register(Architecture("replay", lambda p, s: Nets(Replay(), critic(), p["latent_dim"]), (LATENT,)))
            """
        )
    )
    return path


def test_one_image_generator_is_flagged_collapsed(data, small_mnist_root, tmp_path):
    from gbench.plugins.loading import load_plugins

    registry = load_plugins(extra=[str(_collapse_plugin(tmp_path, data))]).registry
    out = tmp_path / "runs"
    rows = {}
    for architecture, eval_every in (("one-image", 5), ("replay", None)):
        config = RunConfig(
            architecture=architecture,
            steps=10,
            train_limit=2000,
            log_every=5,
            device="cpu",
            data_root=str(small_mnist_root),
            params={"batch_size": 50},
        )
        config = dataclasses.replace(config, eval=dataclasses.replace(config.eval, samples=500, every=eval_every))
        rows[architecture] = execute(config, registry, out)
    collapsed, healthy = rows["one-image"], rows["replay"]
    assert collapsed["status"] == "collapsed" and collapsed["classes_covered"] <= 2
    assert collapsed["collapsed_step"] == 5  # the first evaluation, during training, already saw it
    assert healthy["status"] == "ok" and healthy["collapsed_step"] is None and healthy["classes_covered"] >= 8
    assert collapsed["fid"] > 10 * healthy["fid"]
    stored = {r["architecture"]: (r["status"], r["collapsed_step"]) for r in store.read_results(out)}
    assert stored == {"one-image": ("collapsed", "5"), "replay": ("ok", "")}
    history = store.read_csv(out / collapsed["run_id"] / "metrics.csv")
    assert [(int(r["step"]), int(float(r["classes_covered"]))) for r in history] == [(5, 1), (10, 1)]
    assert (out / collapsed["run_id"] / "samples.png").is_file() and (
        out / collapsed["run_id"] / "generator.pt"
    ).is_file()
