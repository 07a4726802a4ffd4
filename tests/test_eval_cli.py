"""gbench eval / fid / sample / extractor end to end through the real CLI, on real MNIST."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli
from PIL import Image

import gbench

FAST = ["--no-kid", "--no-precision-recall"]
# gbench.evaluation.extractors.lenet_weights_path, without importing torch-fidelity
SHIPPED = Path(gbench.__file__).parent / "weights" / "lenet-mnist.pt"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-cli")
    config = root / "run.toml"
    config.write_text('architecture = "mlp"\n')
    result = run_cli(
        "run",
        "plugins.mlp",
        "--config",
        str(config),
        "--steps",
        "30",
        "--train-limit",
        "2000",
        "--eval-samples",
        "0",
        "--out",
        str(root / "out"),
    )
    assert result.returncode == 0, result.stderr
    (folder,) = [p for p in (root / "out").iterdir() if p.is_dir()]
    return folder


def fid_of(result) -> float:
    assert result.returncode == 0, result.stderr
    match = re.search(r"^fid=(\S+) .*extractor=(\S+)", result.stdout, re.M)
    assert match, result.stdout
    assert match.group(2).startswith("lenet-mnist@")
    return float(match.group(1))


def results_rows(out):
    with open(out / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_eval_updates_the_row_and_keeps_the_rest(run_dir):
    out = run_dir.parent
    (before,) = results_rows(out)
    assert not before.get("fid")  # trained with --eval-samples 0
    result = run_cli("eval", str(run_dir), "--eval-samples", "300", *FAST)
    assert result.returncode == 0, result.stderr
    assert "lenet-mnist@" in result.stdout and "FID" in result.stdout
    (after,) = results_rows(out)  # replaced, not appended
    assert after["run_id"] == before["run_id"] == run_dir.name
    assert float(after["fid"]) > 0 and after["fid_extractor"].startswith("lenet-mnist@")
    assert after["classes_covered"] != "" and len(after["class_counts"].split()) == 10
    # skipped: empty, not 0
    assert after["fid_samples"] == "300" and after["density"] == after["coverage"] == after["fid_infinity"] == ""
    for column in ("status", "architecture", "steps", "train_seconds", "created", "hidden_dim"):
        assert after[column] == before[column], column
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["fid"] == pytest.approx(float(after["fid"]))
    assert summary["fid_extractor"] == after["fid_extractor"] and summary["kid_mean"] is None
    assert summary["train_seconds"] == pytest.approx(float(before["train_seconds"]))


@pytest.fixture(scope="module")
def samples(run_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("samples")
    npz, pngs = root / "s.npz", root / "pngs"
    for target in (npz, pngs):
        result = run_cli("sample", str(run_dir), "-n", "300", "-o", str(target), "--seed", "3")
        assert result.returncode == 0, result.stderr
    return npz, pngs


def test_sample_writes_npz_and_pngs(samples):
    npz, pngs = samples
    with np.load(npz) as archive:
        assert archive.files == ["images"]
        images = archive["images"]
    assert images.shape == (300, 1, 28, 28) and images.dtype == np.uint8
    assert images.std() > 0  # not a blank set
    files = sorted(pngs.glob("*.png"))
    assert len(files) == 300 and files[0].name == "000000.png" and files[-1].name == "000299.png"
    assert not [p for p in pngs.iterdir() if p.suffix != ".png"]  # no temp files left behind
    with Image.open(files[7]) as image:
        assert image.mode == "L" and image.size == (28, 28)
        assert np.array_equal(np.asarray(image), images[7, 0])  # same seed, same images, lossless


def test_fid_png_folder_equals_npz(samples):
    npz, pngs = samples
    from_pngs = fid_of(run_cli("fid", str(pngs), "mnist:test", "-n", "1000", *FAST))
    from_npz = fid_of(run_cli("fid", str(npz), "mnist:test", "-n", "1000", *FAST))
    assert from_pngs == from_npz > 0


def test_fid_real_vs_real_far_below_noise(tmp_path):
    noise = tmp_path / "noise.npz"
    np.savez(noise, images=np.random.default_rng(0).integers(0, 256, (1000, 28, 28), dtype=np.uint8))
    real = fid_of(run_cli("fid", "mnist:train", "mnist:test", "-n", "1000", *FAST))
    random = fid_of(run_cli("fid", str(noise), "mnist:test", "-n", "1000", *FAST))
    assert real < 10 and random > 5 * real


def test_fid_kid_pr_impls_agree():
    lines = {}
    for impl in ("gbench", "torch-fidelity"):
        result = run_cli("fid", "mnist:train", "mnist:test", "-n", "1000", "--kid-pr-impl", impl)
        assert result.returncode == 0, result.stderr
        lines[impl] = dict(part.split("=", 1) for part in re.search(r"^fid=.*$", result.stdout, re.M).group(0).split())
    ours, reference = lines["gbench"], lines["torch-fidelity"]
    assert (ours["fid"], ours["precision"], ours["recall"]) == (
        reference["fid"],
        reference["precision"],
        reference["recall"],
    )
    assert float(ours["kid_mean"]) == pytest.approx(float(reference["kid_mean"]), rel=1e-4)
    assert 0.5 < float(ours["precision"]) <= 1 and 0.5 < float(ours["recall"]) <= 1  # real against real


@pytest.mark.parametrize(
    "args, needles",
    [
        (["eval", "{tmp}"], ["is not a finished gbench run folder"]),
        (["fid", "{tmp}", "mnist:test"], ["{tmp}", "neither a gbench run folder"]),
        (["fid", "mnist:train", "mnist:valid"], ["'valid'", "mnist:test"]),
        (["fid", "{tmp}/missing.npz", "mnist:test"], ["missing.npz", "does not exist"]),
        (["fid", "mnist:train", "mnist:test", "-n", "0"], ["--eval-samples '0'"]),
        (["fid", "{tmp}/b.npz", "{tmp}/b.npz"], ["pass --dataset"]),
        (["fid", "{tmp}/a.npz", "mnist:test"], ["float32", "uint8"]),
        (["sample", "{run}", "-n", "5", "-o", "{tmp}/x.png"], ["x.png", ".npz"]),
        (["extractor", "train", "cifar"], ["unknown dataset 'cifar'"]),
        (["extractor", "train", "mnist", "-o", "{shipped}"], ["shipped weights file", "--install"]),
        (["extractor"], ["ACTION"]),
        (["fid", "mnist:train", "mnist:test", "--kid-pr-impl", "numpy"], ["'numpy'", "torch-fidelity"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needles, tmp_path, run_dir):
    np.savez(tmp_path / "a.npz", images=np.zeros((10, 1, 28, 28), dtype=np.float32))
    np.savez(tmp_path / "b.npz", images=np.zeros((10, 28, 28), dtype=np.uint8))
    assert SHIPPED.is_file()
    names = {"tmp": str(tmp_path), "run": str(run_dir), "shipped": str(SHIPPED)}
    result = run_cli(*[arg.format(**names) for arg in args])
    assert_one_line_error(result, *[needle.format(**names) for needle in needles])


def test_fid_accepts_what_the_library_accepts(tmp_path):
    """`gbench fid` and evaluate_images share one minimum: 2 images without precision/recall, k + 1 = 4 with them."""
    rng = np.random.default_rng(0)
    two, three = tmp_path / "two.npz", tmp_path / "three.npz"
    np.savez(two, images=rng.integers(0, 256, (2, 28, 28), dtype=np.uint8))
    np.savez(three, images=rng.integers(0, 256, (3, 28, 28), dtype=np.uint8))
    result = run_cli("fid", str(two), "mnist:test", "-n", "500", *FAST)
    assert result.returncode == 0, result.stderr  # the command used to demand 4
    assert re.search(r"^fid=\S+ .* a=2 ", result.stdout, re.M), result.stdout
    assert_one_line_error(
        run_cli("fid", str(three), "mnist:test", "-n", "500", "--no-kid"),
        "holds 3 images",
        "at least 4",
        "--no-precision-recall",
    )


def test_extractor_actions_other_than_train_are_refused_by_argparse():
    # The command has no branch of its own for them: argparse's choice list is the only guard, so it must hold.
    result = run_cli("extractor", "export", "mnist")
    assert result.returncode == 2 and "invalid choice: 'export'" in result.stderr and "Traceback" not in result.stderr


def test_eval_with_fid_infinity_writes_it_and_the_sample_count_to_the_row(run_dir):
    result = run_cli("eval", str(run_dir), "--eval-samples", "400", "--fid-infinity", "--no-kid")
    assert result.returncode == 0, result.stderr
    assert "FID samples (N)" in result.stdout and "FID-infinity" in result.stdout
    (row,) = results_rows(run_dir.parent)
    assert row["fid_samples"] == "400" and float(row["fid_infinity"]) < float(row["fid"])
    assert 0 < float(row["coverage"]) <= 1 and float(row["density"]) > 0


def test_fid_prints_the_sample_count_density_coverage_and_fid_infinity():
    result = run_cli("fid", "mnist:train", "mnist:test", "-n", "1000", "--no-kid", "--fid-infinity")
    assert result.returncode == 0, result.stderr
    line = dict(part.split("=", 1) for part in re.search(r"^fid=.*$", result.stdout, re.M).group(0).split())
    assert line["fid_samples"] == "1000" and line["a"] == "1000"
    # real against real: small, and less once the 1/N bias is gone
    assert float(line["fid_infinity"]) < float(line["fid"]) < 10
    assert 0.5 < float(line["density"]) < 1.5 and 0.3 < float(line["coverage"]) < 1
    assert "FID samples (N)" in result.stderr and "FID-infinity" in result.stderr  # the table


def test_torch_fidelity_on_the_png_folder_gives_gbench_s_fid(samples, tmp_path):
    """The documented path for other tools: `gbench sample -o DIR`, then torch-fidelity's own calculate_metrics
    on that folder (read as RGB PNGs) with gbench's registered LeNet, against the test split written as PNGs."""
    import torch_fidelity

    from gbench.data import load_split
    from gbench.evaluation import extractors
    from gbench.evaluation.imagesets import write_png_folder
    from gbench.plugins.loading import load_plugins

    _, pngs = samples
    real_dir = tmp_path / "mnist-test"
    write_png_folder(real_dir, load_split(load_plugins().registry.dataset("mnist"), "test", limit=2000)[0])
    ours = fid_of(run_cli("fid", str(pngs), str(real_dir), "--dataset", "mnist", *FAST))
    extractors.register_extractors()
    theirs = torch_fidelity.calculate_metrics(
        input1=str(pngs),
        input2=str(real_dir),
        fid=True,
        feature_extractor="lenet-mnist",
        cuda=False,
        cache=False,
        verbose=False,
        save_cpu_ram=True,
    )[torch_fidelity.KEY_METRIC_FID]
    # PNG is lossless uint8: the same pixels through the same network. Only the batch size differs
    # (torch-fidelity 64, gbench 500), which can move float32 sums in the last bits.
    assert theirs == pytest.approx(ours, rel=1e-5) and ours > 0
