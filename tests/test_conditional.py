"""Class-conditional GANs (issue #36 points 1, 2 and 6): the plugin contract, the labels both loops
train with, the built-in `cmlp`, `cdcgan` and `acgan` (plugins/conditional.py), the per-class sample
grid, `gbench sample --label`, `gbench interpolate --from-label/--to-label` and `gbench tune` over a
conditional architecture. Real MNIST, real nets (kept tiny), real CLI."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch
from PIL import Image
from test_population import _assert_close_to_solo

from gbench.config import RunConfig, resolve_params
from gbench.data import to_uint8
from gbench.plugins.labels import LabelledDiscriminator
from gbench.plugins.loading import load_plugins
from gbench.training import runner
from gbench.training.conditioning import Conditioning
from gbench.training.draws import BatchStream, RunRandom
from gbench.training.nets import build
from gbench.training.population.batchable import trial_step_failure
from gbench.training.population.loop import Member, train_population
from gbench.training.samples import COLUMNS, fixed_noise
from gbench.training.state import TrainState
from gbench.training.trainer import Callbacks, TrainSettings, train

CPU = torch.device("cpu")
PLUGIN = "plugins.conditional"  # loaded as a target module, as `gbench run plugins.conditional` loads it
SMALL = {"hidden_dim": 8, "latent_dim": 8, "embed_dim": 4, "batch_size": 16}
VARIANTS = [
    ("cmlp", {"discriminator": "concat"}),
    ("cmlp", {"discriminator": "projection"}),
    ("cdcgan", {"discriminator": "concat"}),
    ("cdcgan", {"discriminator": "projection", "batchnorm": False, "spectral_norm": True}),
]
LOSSES = ["non-saturating", "minimax", "lsgan", "wgan-gp", "hinge", "acgan"]
TINY_RUN = ("--steps", "3", "--batch-size", "16", "--train-limit", "600", "--log-every", "1")


@pytest.fixture(scope="module")
def registry():
    return load_plugins(extra=[PLUGIN]).registry


@pytest.fixture(scope="module")
def cache():
    return runner.DataCache()


def _config(registry, architecture="cmlp", loss="non-saturating", schedule="k-steps", seed=0, **overrides):
    config = RunConfig(architecture=architecture, loss=loss, schedule=schedule, seed=seed, train_limit=600)
    small = {k: v for k, v in SMALL.items() if k != "embed_dim" or registry.architecture(architecture).conditional}
    return dataclasses.replace(config, params=resolve_params(registry, config, {**small, **overrides}))


def _prepared(registry, cache, config):
    """The nets, loss, schedule, data and conditioning a run of ``config`` trains with."""
    nets, loss, schedule = build(registry, config, CPU)
    data = cache.training_tensor(registry, config, CPU)
    return nets, loss, schedule, data, runner.conditioning(registry, config, cache, CPU)


def _settings(config, steps, **extra):
    batch_size, lr = int(config.params["batch_size"]), float(config.params["lr"])
    return TrainSettings(steps=steps, batch_size=batch_size, lr=lr, log_every=5, seed=config.seed, **extra)


def _main(capsys, *argv):
    """gbench.cli.main in this process: (exit code, what it printed, stderr)."""
    from rich.console import Console

    from gbench.cli import main
    from gbench.results import display

    printed = io.StringIO()
    console, display.console = display.console, Console(file=printed, width=200)
    try:
        code = main(list(argv))
    except SystemExit as exited:
        code = int(exited.code or 0)
    finally:
        display.console = console
    return code, printed.getvalue(), capsys.readouterr().err


def _refused(capsys, out, *argv):
    """Exit 2, one line on stderr, no traceback, no run folder left in ``out``; the line."""
    code, _, err = _main(capsys, *argv)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    assert not out.exists() or not [p for p in out.iterdir() if p.is_dir()], list(out.iterdir())
    return lines[0]


# ---------------------------------------------------------------------------
# The contract: who is conditional, which labels a loss's D sees
# ---------------------------------------------------------------------------


def test_the_conditional_builtins_declare_themselves_and_get_the_class_count(registry):
    assert registry.architecture("cmlp").conditional and registry.architecture("cdcgan").conditional
    assert not registry.architecture("mlp").conditional and not registry.architecture("dcgan").conditional
    assert registry.loss("acgan").needs_labels and not registry.loss("hinge").needs_labels
    assert build(registry, _config(registry), CPU)[0].num_classes == 10  # MNIST's
    assert build(registry, _config(registry, "mlp"), CPU)[0].num_classes == 0
    nets = build(registry, _config(registry, "cdcgan", discriminator="projection"), CPU)[0]
    images = nets.generator(torch.randn(3, 8), torch.tensor([0, 4, 9]))
    assert images.shape == (3, 1, 28, 28) and nets.discriminator(images, torch.tensor([0, 4, 9])).shape == (3, 11)


def test_a_loss_written_for_unconditional_nets_sees_each_batch_with_its_own_labels():
    seen = []

    def discriminator(images, labels):
        seen.append(labels)
        return torch.cat([images.sum(1, keepdim=True), torch.zeros(len(images), 3)], dim=1)

    real, fake, mixed = torch.ones(2, 5), torch.zeros(2, 5), torch.full((2, 5), 0.5)
    real_labels, fake_labels = torch.tensor([1, 2]), torch.tensor([0, 0])
    judge = LabelledDiscriminator(discriminator, [(real, real_labels), (fake, fake_labels)])
    assert torch.equal(judge(real), torch.tensor([5.0, 5.0]))  # the score column alone
    judge(fake), judge(mixed)  # an image batch the loss made itself (WGAN-GP's mix) is judged with the real labels
    assert [labels.tolist() for labels in seen] == [[1, 2], [0, 0], [1, 2]]
    score, classes = judge.judge(real)
    assert score.shape == (2,) and classes.shape == (2, 3)


def test_real_labels_come_with_their_images_and_leave_the_batch_order_alone(registry, cache):
    config = _config(registry)
    data, labels = cache.training_tensor(registry, config, CPU), cache.training_labels(registry, config, CPU)
    plain = BatchStream(data, 16, RunRandom(3, CPU).order)
    labelled = BatchStream(data, 16, RunRandom(3, CPU).order, labels)
    # each image's label found on its own: the label of the (first) training image with its pixels
    row_of: dict[bytes, int] = {}
    for row, image in enumerate(data):
        row_of.setdefault(image.numpy().tobytes(), row)
    for _ in range(45):  # past the end of an epoch (600 // 16 = 37 batches) and its reshuffle
        images, (batch_labels,) = labelled.next_labelled()
        assert torch.equal(images, plain.next())
        assert batch_labels.tolist() == [int(labels[row_of[image.numpy().tobytes()]]) for image in images]


def test_fake_labels_follow_the_training_labels_class_frequencies(registry, cache):
    labels = cache.training_labels(registry, _config(registry), CPU)
    expected = np.bincount(labels.numpy(), minlength=10) / len(labels)
    conditioning = Conditioning(labels, 10)
    draws = conditioning.draw(60_000, torch.Generator().manual_seed(0), conditioning.frequencies)
    observed = np.bincount(draws.numpy(), minlength=10) / len(draws)
    assert np.abs(observed - expected).max() < 0.01  # a frequency's sd at n = 60000 is below 0.0013
    assert torch.equal(draws, conditioning.draw(60_000, torch.Generator().manual_seed(0), conditioning.frequencies))
    without_nines = Conditioning(labels[labels != 9], 10)
    assert 9 not in without_nines.draw(5000, torch.Generator().manual_seed(1), without_nines.frequencies).tolist()


# ---------------------------------------------------------------------------
# Every built-in conditional variant, every loss and schedule, solo and as a population, fp32 and bf16
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("loss_name", LOSSES)
@pytest.mark.parametrize("architecture, extra", VARIANTS)
def test_every_conditional_variant_trains_with_every_loss_solo_and_as_a_population(
    registry, cache, architecture, extra, loss_name, precision
):
    if loss_name == "acgan" and extra["discriminator"] == "concat":
        pytest.skip("acgan needs the projection discriminator's class logits (refused: see the preflight test)")
    config = _config(registry, architecture, loss_name, **extra)
    nets, loss, schedule, data, conditioning = _prepared(registry, cache, config)
    result = train(nets, loss, schedule, data, _settings(config, 2, precision=precision), conditioning=conditioning)
    assert result.status == "ok" and result.steps == 2 and np.isfinite(result.history[-1]["d_loss"])
    members = [
        Member(build(registry, _config(registry, architecture, loss_name, seed=s, **extra), CPU)[0], schedule, s)
        for s in (0, 1)
    ]
    assert trial_step_failure(members, loss, data, _settings(config, 1, precision=precision), conditioning) is None


@pytest.mark.parametrize("schedule", ["ttur", "adaptive"])
@pytest.mark.parametrize("architecture", ["cmlp", "cdcgan"])
def test_every_schedule_trains_a_conditional_population(registry, cache, architecture, schedule):
    config = _config(registry, architecture, "acgan", schedule, discriminator="projection")
    nets, loss, schedule_fn, data, conditioning = _prepared(registry, cache, config)
    members = [Member(build(registry, dataclasses.replace(config, seed=s), CPU)[0], schedule_fn, s) for s in (0, 1)]
    results = train_population(members, loss, data, _settings(config, 3), conditioning)
    assert [result.status for result in results] == ["ok", "ok"] and all(r.steps == 3 for r in results)


@pytest.mark.parametrize(
    "architecture, loss_name, extra",
    [("cmlp", "acgan", {"discriminator": "projection"}), ("cdcgan", "hinge", {"discriminator": "concat"})],
)
def test_a_member_trains_as_its_solo_run(registry, cache, architecture, loss_name, extra):
    """Member i draws the labels, noise and batches the solo run with seed i draws: their weights agree within
    tests/test_population.py's tolerance (float reassociation only). Not WGAN-GP: its penalty's mix comes from
    torch's global generator, which a population draws per member, not as the solo runs do."""
    solo, members = [], []
    for seed in (0, 1, 2):
        config = _config(registry, architecture, loss_name, seed=seed, **extra)
        nets, loss, schedule, data, conditioning = _prepared(registry, cache, config)
        solo.append((nets, train(nets, loss, schedule, data, _settings(config, 20), conditioning=conditioning)))
        members.append(Member(build(registry, config, CPU)[0], schedule, seed))
    results = train_population(members, loss, data, _settings(config, 20), conditioning)
    _assert_close_to_solo(solo, members, results, lr=float(config.params["lr"]), steps=20)


def test_same_seed_same_run_and_a_resume_is_bit_for_bit(registry, cache, tmp_path):
    config = _config(registry, "cdcgan", "acgan", discriminator="projection")
    saved = {}

    def keep(state: TrainState) -> None:  # through the checkpoint file, as a resume reads it
        state.save(tmp_path / f"checkpoint-{state.step}.pt")
        saved[state.step] = tmp_path / f"checkpoint-{state.step}.pt"

    def run(callbacks=None, resume=None):
        nets, loss, schedule, data, conditioning = _prepared(registry, cache, config)
        settings = _settings(config, 8, checkpoint_every=3)
        result = train(nets, loss, schedule, data, settings, callbacks, resume=resume, conditioning=conditioning)
        return nets, result

    first, first_result = run(Callbacks(on_checkpoint=keep))
    again, again_result = run()
    resumed, resumed_result = run(resume=TrainState.load(saved[3]))
    for nets, result in ((again, again_result), (resumed, resumed_result)):
        for module in ("generator", "discriminator"):
            ours, theirs = getattr(first, module).state_dict(), getattr(nets, module).state_dict()
            assert all(torch.equal(ours[name], theirs[name]) for name in ours), module
        assert _untimed(result.history) == _untimed(first_result.history)
    assert first_result.history[-1]["step"] == 8


def _untimed(history):
    return [{key: value for key, value in row.items() if key != "seconds"} for row in history]


# ---------------------------------------------------------------------------
# Refused before training, in one line, nothing written
# ---------------------------------------------------------------------------


def test_a_conditional_mismatch_is_refused_before_training(capsys, tmp_path):
    out = tmp_path / "out"
    line = _refused(
        capsys,
        out,
        "run",
        "plugins.mlp",
        "--plugin",
        PLUGIN,
        "--architecture",
        "mlp",
        "--loss",
        "acgan",
        *TINY_RUN,
        "--eval-samples",
        "0",
        "--out",
        str(out),
    )
    assert "--loss acgan needs class labels" in line and "'mlp' is not conditional" in line and "cmlp" in line
    line = _refused(
        capsys,
        out,
        "run",
        PLUGIN,
        "--architecture",
        "cmlp",
        "--loss",
        "acgan",
        *TINY_RUN,
        "--eval-samples",
        "0",
        "--out",
        str(out),
    )
    assert "reads the discriminator's class logits" in line and "--set discriminator=projection" in line
    line = _refused(
        capsys,
        out,
        "tune",
        PLUGIN,
        "--architecture",
        "cmlp",
        "--loss",
        "acgan",
        "--trials",
        "1",
        "--objective",
        "wall_time",
        *TINY_RUN,
        "--eval-samples",
        "0",
        "--out",
        str(out),
    )
    assert "reads the discriminator's class logits" in line
    unlabelled = tmp_path / "digits.npz"  # images without y: one class, nothing to condition on
    np.savez(unlabelled, x=np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8))
    line = _refused(
        capsys,
        out,
        "run",
        PLUGIN,
        "--architecture",
        "cmlp",
        "--dataset",
        f"npz:{unlabelled}",
        *TINY_RUN,
        "--eval-samples",
        "0",
        "--out",
        str(out),
    )
    assert "'cmlp' is conditional" in line and "has no class labels" in line


# ---------------------------------------------------------------------------
# The CLI end to end: a run of both architectures, its grid, evaluation, sample, interpolate, tune
# ---------------------------------------------------------------------------


def _png_cells(path, rows, columns, side=28):
    """The grid's images, as save_image_grid lays them out (2 pixels of padding), row by row."""
    grid = np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("L"))
    assert grid.shape == (rows * (side + 2) + 2, columns * (side + 2) + 2)
    return [
        grid[2 + r * (side + 2) : 2 + r * (side + 2) + side, 2 + c * (side + 2) : 2 + c * (side + 2) + side]
        for r in range(rows)
        for c in range(columns)
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, registry):
    """`gbench run plugins.conditional` with evaluation: both built-in architectures train, two seeds of each
    as one population; the cmlp run's folder."""
    from gbench.cli import main

    out = tmp_path_factory.mktemp("conditional")
    code = main(
        [
            "run",
            PLUGIN,
            *TINY_RUN,
            "--eval-samples",
            "10",
            "--seeds",
            "0,1",
            "--population",
            "on",
            "--set",
            "hidden_dim=8",
            "--set",
            "latent_dim=8",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


def test_the_cli_trains_every_conditional_architecture_with_evaluation(trained):
    from gbench.results import store

    rows = store.read_results(trained)
    runs = sorted((row["architecture"], row["seed"]) for row in rows)
    assert runs == [("cdcgan", "0"), ("cdcgan", "1"), ("cmlp", "0"), ("cmlp", "1")]
    assert {row["population"] for row in rows} == {"2"} and {row["status"] for row in rows} <= {"ok", "collapsed"}
    # evaluation called the conditional generator with its labels
    assert all(np.isfinite(float(row["fid"])) for row in rows)


def test_samples_png_is_one_row_per_class_with_the_same_noise_down_each_column(trained, registry):
    run_dir = next(trained.glob("cmlp-*-s0-*"))
    _, nets = runner.load_run(run_dir, registry)
    cells = _png_cells(run_dir / "samples.png", rows=10, columns=COLUMNS)
    z = fixed_noise(nets.latent_dim, COLUMNS, CPU)
    with torch.no_grad():
        for label in range(10):  # computed here, from the saved weights: row `label`, column c is G(z_c, label)
            expected = to_uint8(nets.generator(z, torch.full((COLUMNS,), label))).numpy()[:, 0]
            for column in range(COLUMNS):
                got = cells[label * COLUMNS + column].astype(int)
                assert np.abs(got - expected[column]).max() <= 1, (label, column)


def test_sample_label_writes_only_that_class_and_refuses_what_is_not_a_class(trained, registry, capsys, tmp_path):
    run_dir = next(trained.glob("cmlp-*-s0-*"))
    code, out, _ = _main(
        capsys,
        "sample",
        str(run_dir),
        "--plugin",
        PLUGIN,
        "-n",
        "6",
        "--label",
        "7",
        "--seed",
        "3",
        "-o",
        str(tmp_path / "sevens.npz"),
    )
    assert code == 0 and "class 7" in out
    _, nets = runner.load_run(run_dir, registry)
    z = torch.randn(6, nets.latent_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = to_uint8(nets.generator(z, torch.full((6,), 7)))
    assert torch.equal(torch.from_numpy(np.load(tmp_path / "sevens.npz")["images"]), expected)
    code, out, _ = _main(
        capsys, "sample", str(run_dir), "--plugin", PLUGIN, "-n", "12", "-o", str(tmp_path / "all.npz")
    )
    assert code == 0 and "every class in turn" in out
    z = torch.randn(12, nets.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # sample i of class i mod 10, as evaluation draws them
        expected = to_uint8(nets.generator(z, torch.arange(12) % 10))
    assert torch.equal(torch.from_numpy(np.load(tmp_path / "all.npz")["images"]), expected)
    line = _refused(
        capsys,
        tmp_path / "none",
        "sample",
        str(run_dir),
        "--plugin",
        PLUGIN,
        "-n",
        "2",
        "--label",
        "10",
        "-o",
        str(tmp_path / "tens.npz"),
    )
    assert "--label 10 is not a class of this run; give one of 0..9" in line


def test_sample_label_is_refused_for_an_unconditional_run(capsys, tmp_path):
    out = tmp_path / "plain"
    assert (
        _main(
            capsys, "run", "plugins.mlp", "--architecture", "mlp", *TINY_RUN, "--eval-samples", "0", "--out", str(out)
        )[0]
        == 0
    )
    run_dir = next(out.glob("mlp-*"))
    line = _refused(
        capsys, tmp_path / "none", "sample", str(run_dir), "-n", "2", "--label", "3", "-o", str(tmp_path / "x.npz")
    )
    assert "--label 3" in line and "not conditional" in line
    line = _refused(
        capsys,
        tmp_path / "none",
        "interpolate",
        str(run_dir),
        "--from-label",
        "1",
        "--to-label",
        "2",
        "-o",
        str(tmp_path / "x.png"),
    )
    assert "not conditional" in line


def test_interpolate_moves_between_two_classes_at_one_z(trained, registry, capsys, tmp_path):
    run_dir = next(trained.glob("cmlp-*-s0-*"))
    path = tmp_path / "three-to-eight.png"
    code, out, _ = _main(
        capsys,
        "interpolate",
        str(run_dir),
        "--plugin",
        PLUGIN,
        "--from-label",
        "3",
        "--to-label",
        "8",
        "--steps",
        "4",
        "-o",
        str(path),
    )
    assert code == 0 and "class 3 to class 8" in out
    cells = _png_cells(path, rows=2, columns=4)
    _, nets = runner.load_run(run_dir, registry)
    z = torch.randn(2, nets.latent_dim, generator=torch.Generator().manual_seed(0))[:1]  # the strip's z0
    with torch.no_grad():  # alpha 0 and 1 (top row's ends) are exactly class 3 and class 8 at z0
        three, eight = to_uint8(nets.generator(z.expand(2, -1), torch.tensor([3, 8]))).numpy()[:, 0]
    assert np.abs(cells[0].astype(int) - three).max() <= 1 and np.abs(cells[3].astype(int) - eight).max() <= 1
    assert not np.array_equal(cells[0], cells[3])
    line = _refused(
        capsys,
        tmp_path / "none",
        "interpolate",
        str(run_dir),
        "--plugin",
        PLUGIN,
        "--to-label",
        "8",
        "-o",
        str(tmp_path / "y.png"),
    )
    assert "--to-label 8 needs --from-label" in line


def test_tune_searches_a_conditional_architecture(capsys, tmp_path):
    from gbench.results import store

    out = tmp_path / "tune"
    code, _, err = _main(
        capsys,
        "tune",
        PLUGIN,
        "--architecture",
        "cmlp",
        "--loss",
        "acgan",
        "--trials",
        "2",
        "--objective",
        "wall_time",
        "--sampler-seed",  # unseeded, two trials draw the same embed_dim about once in 21 runs
        "0",
        *TINY_RUN,
        "--eval-samples",
        "0",
        "--set",
        "hidden_dim=8",
        "--set",
        "discriminator=projection",
        "--out",
        str(out),
    )
    assert code == 0, err
    rows = store.read_results(out)
    assert len(rows) == 2 and {(row["architecture"], row["loss"], row["status"]) for row in rows} == {
        ("cmlp", "acgan", "ok")
    }
    assert len({row["embed_dim"] for row in rows}) == 2  # the trials searched the architecture's own knob


def test_the_guides_conditional_example_trains():
    from conftest import REPO

    from gbench import testing

    example = str(REPO / "docs" / "examples" / "conditional.py")
    result = testing.check_architecture("label-mlp", plugin=example, steps=3)
    assert result.status == "ok" and result.steps == 3
    registry = load_plugins(extra=[example]).registry
    assert registry.architecture("label-mlp").conditional
