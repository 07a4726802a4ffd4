"""Your own images (issue #33): --dataset folder:PATH and npz:PATH, their shape options, hash, memory check, and
every mismatch refused before training; --plugin for a dataset plugin beside any target.

Real PNG files and .npz archives written here with PIL and numpy, real training runs of a few steps."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, run_cli
from PIL import Image

from gbench.datasource import DataOptions
from gbench.errors import GbenchError
from gbench.imagefiles import scan_folder
from gbench.owndata import check_fits, own_dataset

CLASSES = {"blue": (30, 40, 200), "red": (210, 30, 20)}
PER_CLASS = 20
TINY = ("--steps", "2", "--batch-size", "8", "--log-every", "1")


def _noisy(colour: tuple[int, int, int], rng: np.random.Generator, size: tuple[int, int] = (32, 32)) -> np.ndarray:
    """An HxWx3 image of one colour with noise, so that every file differs."""
    base = np.array(colour)[None, None, :] + rng.integers(-25, 26, (size[1], size[0], 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def write_folder(root: Path, seed: int = 0) -> Path:
    """Two class subfolders of PER_CLASS 32x32 RGB PNG files each."""
    rng = np.random.default_rng(seed)
    for name, colour in CLASSES.items():
        (root / name).mkdir(parents=True)
        for index in range(PER_CLASS):
            Image.fromarray(_noisy(colour, rng)).save(root / name / f"{index:03d}.png")
    return root


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("data") / "colours")


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    """gbench.cli.main in this process: (exit code, stdout, stderr); a usage error's SystemExit counts as its code."""
    from gbench.cli import main

    try:
        code = main(list(argv))
    except SystemExit as exited:
        code = int(exited.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _refused(capsys, out: Path, *argv: str) -> str:
    """The command exits 2 with one line on stderr, no traceback, and leaves no run folder in ``out``."""
    code, _, err = _main(capsys, *argv, "--out", str(out))
    lines = [line for line in err.strip().splitlines() if line.strip() and not line.startswith("warning: plugin")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    assert not out.exists() or not [p for p in out.iterdir() if p.is_dir()], list(out.iterdir())
    return lines[0]


# ---------------------------------------------------------------------------
# Loading: pixels, labels, held-out split, shape options (checked against PIL directly)
# ---------------------------------------------------------------------------


def test_folder_loads_every_image_with_its_class_label(colours):
    dataset = own_dataset(f"folder:{colours}", DataOptions())
    assert dataset.image_shape == (3, 32, 32) and dataset.class_names == ("blue", "red") and dataset.holdout == 0.1
    train, train_labels = dataset.load("train", [])
    test, test_labels = dataset.load("test", [])
    assert train.dtype == torch.uint8 and len(test) == 4 and len(train) == 2 * PER_CLASS - 4  # round(40 * 0.1) held out
    # every file's pixels, read by PIL here, appear once, under the label of its folder
    expected = {
        np.asarray(Image.open(path)).transpose(2, 0, 1).tobytes(): label
        for label, name in enumerate(CLASSES)
        for path in (colours / name).iterdir()
    }
    loaded = {
        image.numpy().tobytes(): int(label)
        for image, label in zip(torch.cat([train, test]), torch.cat([train_labels, test_labels]))
    }
    assert loaded == expected
    # the held-out split is seeded: a second scan of the same files splits them the same way
    again = own_dataset(f"folder:{colours}", DataOptions())
    assert torch.equal(again.load("test", [])[0], test) and torch.equal(again.load("train", [])[0], train)


def test_image_size_crops_the_centre_and_channels_converts(tmp_path):
    rng = np.random.default_rng(1)
    names = [f"{index}.png" for index in range(4)]
    for name in names:
        Image.fromarray(_noisy((90, 150, 60), rng, size=(40, 30))).save(tmp_path / name)
    dataset = own_dataset(f"folder:{tmp_path}", DataOptions(image_size=16, channels=1, holdout=0.5))
    assert dataset.image_shape == (1, 16, 16) and dataset.class_names == ()
    images = torch.cat([dataset.load("train", [])[0], dataset.load("test", [])[0]])
    # independently: grey, the centred 30x30 square (x from 5 to 35), resized to 16x16
    expected = {
        np.asarray(
            Image.open(tmp_path / n).convert("L").crop((5, 0, 35, 30)).resize((16, 16), Image.Resampling.BICUBIC)
        ).tobytes()
        for n in names
    }
    assert {image[0].numpy().tobytes() for image in images} == expected
    # without --image-size the images' own (non-square) size holds
    assert own_dataset(f"folder:{tmp_path}", DataOptions(holdout=0.5)).image_shape == (3, 30, 40)


def test_npz_nhwc_and_nchw_load_alike_and_a_test_split_is_kept(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    y = np.arange(12) % 3
    np.savez(tmp_path / "nhwc.npz", x=x, y=y)
    np.savez_compressed(tmp_path / "nchw.npz", x=x.transpose(0, 3, 1, 2), y=y)
    first, second = (own_dataset(f"npz:{tmp_path / n}", DataOptions()) for n in ("nhwc.npz", "nchw.npz"))
    assert first.image_shape == second.image_shape == (3, 8, 8) and first.class_names == ("0", "1", "2")
    for split in ("train", "test"):
        assert torch.equal(first.load(split, [])[0], second.load(split, [])[0]) and torch.equal(
            first.load(split, [])[1], second.load(split, [])[1]
        )
    images, labels = first.load("train", [])
    for image, label in zip(images, labels):  # each loaded image is one of x, with its own label
        index = next(i for i in range(12) if np.array_equal(x[i].transpose(2, 0, 1), image.numpy()))
        assert y[index] == label
    np.savez(tmp_path / "split.npz", x=x[:10], x_test=x[10:])
    split = own_dataset(f"npz:{tmp_path / 'split.npz'}", DataOptions())
    assert split.holdout is None and torch.equal(
        split.load("test", [])[0], torch.from_numpy(x[10:].transpose(0, 3, 1, 2).copy())
    )


# ---------------------------------------------------------------------------
# The content hash: the data, not where it lies
# ---------------------------------------------------------------------------


def test_hash_changes_with_one_pixel_and_not_with_the_folders_name_or_place(colours, tmp_path):
    original = scan_folder(colours).content_hash
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(colours, moved)
    (moved / "red" / "000.png").rename(moved / "red" / "zzz.png")  # file names are not data either
    assert scan_folder(moved).content_hash == original
    pixels = np.asarray(Image.open(moved / "blue" / "005.png")).copy()
    pixels[3, 4, 0] ^= 1
    Image.fromarray(pixels).save(moved / "blue" / "005.png")
    changed = scan_folder(moved).content_hash
    assert changed != original
    (moved / "red").rename(moved / "crimson")  # a class renamed: labels are data
    assert scan_folder(moved).content_hash not in (original, changed)


# ---------------------------------------------------------------------------
# Damaged or unusable data: one line, naming the file or the value, before anything loads
# ---------------------------------------------------------------------------


def test_bad_files_are_one_error_naming_them(tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("RGB", (32, 32)).save(mixed / "a.png")
    Image.new("RGB", (28, 28)).save(mixed / "b.png")
    with pytest.raises(GbenchError, match=r"2 sizes, e\.g\. 28x28 and 32x32; give --image-size N"):
        own_dataset(f"folder:{mixed}", DataOptions())
    (mixed / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image at all")
    with pytest.raises(GbenchError, match=f"{str(mixed / 'c.png')!r} is not a readable PNG"):
        own_dataset(f"folder:{mixed}", DataOptions(image_size=32))
    np.savez(tmp_path / "nox.npz", images=np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(GbenchError, match=r"has no array 'x' \(it holds images\)"):
        own_dataset(f"npz:{tmp_path / 'nox.npz'}", DataOptions())
    with pytest.raises(GbenchError, match="does not exist"):
        own_dataset(f"folder:{tmp_path / 'nowhere'}", DataOptions())


class _Planted:
    """Unpickling this would run code: it writes a file."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (self.path, "ran"))


def test_an_object_array_is_refused_without_running_its_code(tmp_path):
    marker = tmp_path / "ran.txt"
    archive = tmp_path / "evil.npz"
    np.savez(archive, x=np.array([_Planted(marker)], dtype=object))
    with zipfile.ZipFile(archive) as opened:
        assert "x.npy" in opened.namelist()
    with pytest.raises(GbenchError, match="array 'x' has dtype object; gbench reads uint8 only"):
        own_dataset(f"npz:{archive}", DataOptions())
    assert not marker.exists()


def test_a_set_too_large_for_memory_is_refused_before_loading(colours):
    with pytest.raises(GbenchError) as error:
        own_dataset(f"folder:{colours}", DataOptions(image_size=64), memory=1_000_000)
    # 40 images x 3x64x64 x 5 bytes (uint8 + float32) = 2,457,600
    # bytes = 2.3 MiB; the limit 1,000,000 bytes = 1.0 MiB (0.95 MiB)
    assert "40 images of 3x64x64 need 2.3 MiB" in str(error.value) and "the 1.0 MiB available" in str(error.value)
    check_fits("x", 40, (3, 64, 64), memory=40 * 3 * 64 * 64 * 5)  # exactly fits: no error


# ---------------------------------------------------------------------------
# Through the command line
# ---------------------------------------------------------------------------


def test_colour_folder_trains_mlp_and_dcgan_and_shows_in_show_export_and_report(colours, tmp_path, capsys):
    out = tmp_path / "runs"
    result = run_cli(
        "run", "plugins.dcgan", "--dataset", f"folder:{colours}", *TINY, "--eval-samples", "100", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    note = "evaluation: no feature extractor fits dataset folder:"
    err = " ".join(result.stderr.split())  # rich wraps long lines at the terminal's width
    assert note in err and "--inception-weights PATH" in err and "gbench extractor train folder:" in err
    assert err.index(note) < err.index("[1/1] dcgan")  # said before the progress bar
    code, _, err = _main(
        capsys,
        "run",
        "plugins.mlp",
        "--architecture",
        "mlp",
        "--dataset",
        f"folder:{colours}",
        *TINY,
        "--out",
        str(out),
    )
    assert code == 0, err
    rows = {row["architecture"]: row for row in json.loads(_export(capsys, out))}
    assert sorted(rows) == ["dcgan", "mlp"]
    digest = scan_folder(colours).content_hash
    for row in rows.values():
        assert (
            row["dataset"] == f"folder:{colours}"
            and row["data_hash"] == digest
            and row["image_shape"] == "3x32x32"
            and row.get("fid") is None
        )
        assert row["status"] == "ok" and f"-colours-{digest[:8]}-s0-" in row["run_id"]
        config = json.loads((out / row["run_id"] / "config.json").read_text())
        assert (
            config["data"] == {"image_size": None, "channels": None, "holdout": 0.1, "content_hash": digest}
            and config["eval"]["samples"] == 0
        )
    code, shown, err = _main(capsys, "show", str(out))
    assert code == 0 and all(row["run_id"] in shown for row in rows.values()), err
    code, _, err = _main(capsys, "report", str(out), "-o", str(tmp_path / "report"))
    assert code == 0, err
    report = (tmp_path / "report" / "report.md").read_text()
    assert "dcgan" in report and "mlp" in report


def _export(capsys, out: Path) -> str:
    code, _, err = _main(capsys, "export", str(out), "--format", "json", "-o", str(out / "rows.json"))
    assert code == 0, err
    return (out / "rows.json").read_text()


def test_npz_digits_get_an_fid_labelled_with_the_data(tmp_path, capsys):
    from gbench.data import load_split
    from gbench.plugins.loading import load_plugins

    digits, labels = load_split(load_plugins().registry.dataset("mnist"), "test", limit=400)
    np.savez(tmp_path / "digits.npz", x=digits[:, 0].numpy(), y=labels.numpy())  # (N, 28, 28): one channel
    out = tmp_path / "runs"
    argv = (
        "run",
        "plugins.mlp",
        "--architecture",
        "mlp",
        "--dataset",
        f"npz:{tmp_path / 'digits.npz'}",
        *TINY,
        "--fid-extractor",
        "lenet-mnist",
    )
    code, _, err = _main(capsys, *argv, "--eval-samples", "40", "--out", str(out))
    assert code == 0, err
    (row,) = json.loads(_export(capsys, out))
    scan_hash = own_dataset(f"npz:{tmp_path / 'digits.npz'}", DataOptions()).content_hash
    assert (
        row["fid"] is not None and row["fid"] > 0 and row["image_shape"] == "1x28x28" and row["data_hash"] == scan_hash
    )
    assert row["fid_extractor"].startswith("lenet-mnist@") and row["fid_extractor"].endswith(
        f" on digits@{scan_hash[:8]}"
    )


def test_every_mismatch_is_refused_before_training(colours, tmp_path, capsys):
    folder = f"folder:{colours}"
    out = tmp_path / "out"
    line = _refused(capsys, out, "run", "plugins.dcgan", "--dataset", folder, "--image-size", "48", *TINY)
    assert "dcgan serves 28, 32 and 64 pixel square images with 1 or 3 channels, not 3x48x48" in line
    line = _refused(
        capsys,
        out,
        "run",
        "plugins.mlp",
        "--architecture",
        "mlp",
        "--dataset",
        folder,
        "--fid-extractor",
        "lenet",
        *TINY,
    )
    assert "--fid-extractor lenet" in line and "no shipped or trained weights for dataset" in line
    line = _refused(capsys, out, "run", "plugins.mlp", "--dataset", folder, "--fid-extractor", "lenet-mnist", *TINY)
    assert "takes 1x28x28 images" in line and "3x32x32" in line
    assert "--image-size '0' must be at least 1" in _refused(
        capsys, out, "run", "plugins.mlp", "--dataset", folder, "--image-size", "0"
    )
    assert "--channels: invalid choice: 2 (choose from 1, 3)" in _refused(
        capsys, out, "run", "plugins.mlp", "--dataset", folder, "--channels", "2"
    )
    assert "--holdout '1.5' must be at most 0.9" in _refused(
        capsys, out, "run", "plugins.mlp", "--dataset", folder, "--holdout", "1.5"
    )
    line = _refused(capsys, out, "run", "plugins.mlp", "--dataset", "mnist", "--image-size", "32")
    assert "--image-size shapes your own images" in line and "dataset 'mnist' has its fixed shape" in line
    line = _refused(capsys, out, "run", "plugins.mlp", "--dataset", "my-photos")
    assert (
        "unknown dataset 'my-photos'" in line
        and "fashion-mnist, mnist" in line
        and "--dataset folder:PATH" in line
        and "--plugin FILE.py" in line
    )
    damaged = tmp_path / "damaged"
    shutil.copytree(colours, damaged)
    # cut short after its header
    (damaged / "red" / "007.png").write_bytes((damaged / "red" / "007.png").read_bytes()[:60])
    line = _refused(capsys, out, "run", "plugins.mlp", "--dataset", f"folder:{damaged}", *TINY)
    assert str(damaged / "red" / "007.png") in line and "not a readable PNG" in line


def test_a_lenet_trained_on_own_images_is_their_default_extractor(colours, tmp_path, capsys, monkeypatch):
    """`gbench extractor train folder:PATH` with the runs' own shape
    options: the runs on that data then take its FID by default."""
    monkeypatch.setenv("GBENCH_CACHE", str(tmp_path / "cache"))  # this test's registry of domain LeNets only
    folder, shape = f"folder:{colours}", ("--image-size", "28", "--holdout", "0.5")
    code, out, err = _main(capsys, "extractor", "train", folder, *shape, "--epochs", "1")
    assert code == 0 and "registered as lenet-folder_" in out, err
    code, _, err = _main(capsys, "extractor", "train", "mnist", "--image-size", "28")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--image-size shapes your own images" in err
    runs = tmp_path / "runs"
    code, _, err = _main(
        capsys,
        "run",
        "plugins.mlp",
        "--architecture",
        "mlp",
        "--dataset",
        folder,
        *shape,
        *TINY,
        "--eval-samples",
        "20",
        "--out",
        str(runs),
    )
    assert code == 0 and "no feature extractor fits" not in err, err
    (row,) = json.loads(_export(capsys, runs))
    assert (
        row["fid"] is not None
        and row["fid_extractor"].startswith("lenet-folder_")
        and row["fid_extractor"].endswith(f"on colours@{row['data_hash'][:8]}")
    )


DATA_PLUGIN = """
import torch
from gbench import hookimpl
from gbench.plugins.registry import Dataset


def load(split, roots):
    generator = torch.Generator().manual_seed(0 if split == "train" else 1)
    count = 64 if split == "train" else 16
    images = torch.randint(0, 256, (count, 1, 12, 12), generator=generator, dtype=torch.uint8)
    return images, torch.zeros(count, dtype=torch.int64)


@hookimpl
def gbench_register_datasets(register):
    register(Dataset("my-data", load, image_shape=(1, 12, 12), num_classes=1))
"""


def test_a_dataset_plugin_loads_beside_any_target(tmp_path, capsys):
    plugin = tmp_path / "my_data.py"
    plugin.write_text(DATA_PLUGIN)
    out = tmp_path / "runs"
    code, _, err = _main(
        capsys,
        "run",
        "plugins.mlp",
        "--architecture",
        "mlp",
        "--plugin",
        str(plugin),
        "--dataset",
        "my-data",
        *TINY,
        "--eval-samples",
        "0",
        "--out",
        str(out),
    )
    assert code == 0, err
    (row,) = json.loads(_export(capsys, out))
    assert row["dataset"] == "my-data" and row["status"] == "ok"
    # a suite's plugins = [...], relative to the suite file
    from gbench.studies.sweep.suite import load_registry, load_suite

    suite_file = tmp_path / "suite.toml"
    suite_file.write_text(
        '[suite]\nname = "own"\ntarget = "plugins.mlp"\nplugins = ["my_data.py"]\n[base]\narchitecture = '
        '"mlp"\ndataset = "my-data"\n[[variants]]\nname = "a"\n'
    )
    suite = load_suite(suite_file)
    runs = suite.runs(load_registry(suite), seeds=[0])
    assert [run.config.dataset for run in runs] == ["my-data"]


def test_docs_name_every_new_option():
    running = (REPO / "docs" / "running.md").read_text()
    for option in ("--image-size", "--channels", "--holdout", "--plugin", "folder:", "npz:"):
        assert option in running, option


def test_tune_and_sweep_find_the_missing_extractor_before_training(colours, tmp_path, capsys):
    # tune optimises FID: with no extractor for the data it stops before any trial, naming the option to give
    line = _refused(
        capsys,
        tmp_path / "tune",
        "tune",
        "plugins.mlp",
        "--architecture",
        "mlp",
        "--dataset",
        f"folder:{colours}",
        "--trials",
        "1",
        *TINY,
    )
    assert (
        "no feature extractor fits dataset folder:" in line
        and "the objective needs FID: give --inception-weights PATH" in line
    )
    # a suite's variant on own data trains without FID, and the plan holds the line its sweep says first
    from gbench.studies.sweep.plan import plan

    suite_file = tmp_path / "suite.toml"
    suite_file.write_text(
        '[suite]\nname = "own"\n[base]\narchitecture = "mlp"\ndataset = '
        f'"folder:{colours}"\nimage_size = 28\n[[variants]]\nname = "a"\n'
    )
    planned = plan(suite_file, out=str(tmp_path / "sweep"), seeds=[0, 1])
    assert [run.config.eval.samples for run in planned.runs] == [0, 0] and [
        run.config.data.image_size for run in planned.runs
    ] == [28, 28]
    assert len(planned.notes) == 1 and "dataset folder:" in planned.notes[0] and "(3x28x28)" in planned.notes[0]
