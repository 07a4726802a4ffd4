"""No file gbench reads can run code (docs/failures.md, "No file gbench reads runs code").

Each test plants, where gbench reads a file, a pickle whose loading runs
``touch MARKER`` (what an attacker's file would do with any command), runs
the real ``gbench`` commands that read that file, and checks that the marker
never appears and that the command either refuses in one line naming the
file (exit 2, no traceback) or, for a file it may ignore, ignores it. The
first test shows that every planted file does run its code when loaded the
unsafe way, so a missing marker means gbench loaded it safely.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, run_cli

from gbench.config import RunConfig
from gbench.data import load_split
from gbench.errors import GbenchError
from gbench.evaluation import extractors, inception_weights, weights_files
from gbench.evaluation.extractor_choice import Extractor
from gbench.plugins.loading import load_plugins
from gbench.training import interrupted

TINY_RUN = ("--steps", "2", "--train-limit", "200", "--seeds", "0")
EVAL_N = ("-n", "200")


class Payload:
    """Unpickling this runs ``touch MARKER``: the file an attacker would plant."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def plant_torch(path: Path, marker: Path) -> Path:
    """A torch.save file (zip) whose pickle runs the payload: what torch.load(weights_only=False) executes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"weights": torch.zeros(2), "hook": Payload(marker)}, path)
    return path


def plant_pickle(path: Path, marker: Path, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    """A bare pickle (protocol 0 is plain ASCII text) under any name: what pickle.load executes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(Payload(marker), protocol=protocol))
    return path


def plant_npy(path: Path, marker: Path) -> Path:
    """An .npy or .npz of an object array: numpy pickles its items; np.load(allow_pickle=True) executes them."""
    array = np.array([Payload(marker), None], dtype=object)
    if path.suffix == ".npz":
        np.savez(path, images=array)
    else:
        np.save(path, array, allow_pickle=True)
    return path


def refused_or_ignored(
    result: subprocess.CompletedProcess,
    marker: Path,
    planted: Path | None,
    may_ignore: bool = False,
    progress_first: bool = False,
) -> None:
    """No code ran; the command refused in one line naming ``planted`` (or, when allowed, ignored it and succeeded).
    ``progress_first``: eval and fid say what they evaluate before they open the extractor and the cache."""
    assert not marker.exists(), f"a planted pickle ran its code: {result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    if may_ignore and result.returncode == 0:
        return
    assert_one_line_error(result, *([str(planted)] if planted is not None else []), progress_first=progress_first)


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "CODE-RAN"


def test_every_planted_file_runs_its_code_when_loaded_unsafely(tmp_path, marker):
    """The control: each kind of planted file is live, so a marker that stays absent below means a safe load."""
    loaders = [
        (plant_torch(tmp_path / "a.pt", marker), lambda p: torch.load(p, weights_only=False)),
        (plant_pickle(tmp_path / "b.json", marker), lambda p: pickle.loads(p.read_bytes())),
        (plant_pickle(tmp_path / "c.toml", marker, protocol=0), lambda p: pickle.loads(p.read_bytes())),
        (plant_npy(tmp_path / "d.npy", marker), lambda p: np.load(p, allow_pickle=True)),
        (plant_npy(tmp_path / "e.npz", marker), lambda p: np.load(p, allow_pickle=True)["images"]),
    ]
    for path, load in loaders:
        load(path)
        assert marker.exists(), path
        marker.unlink()


# ---------------------------------------------------------------------------
# A finished run and a warm real-split cache to plant into (copies per test)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """One finished MLP run (final evaluation on), then `gbench eval` and `gbench fid` once each, filling the cache.

    ``real.npz`` (test images without their labels) makes `gbench
    fid` count the classes with the classifier and cache them.
    """
    root = tmp_path_factory.mktemp("world")
    (root / "mlp.toml").write_text('architecture = "mlp"\n')
    env = {"GBENCH_CACHE": str(root / "cache")}
    result = run_cli(*world_run(root), env=env)
    assert result.returncode == 0, result.stderr
    np.savez(root / "real.npz", images=load_split(load_plugins().registry.dataset("mnist"), "test")[0][:300].numpy())
    for command in reading_the_cache(root):
        result = run_cli(*command, env=env)
        assert result.returncode == 0, result.stderr
    return root


def world_run(root: Path) -> tuple[str, ...]:
    """The command of the world's one run: it trains the run, and resumes it once it is made interrupted."""
    return (
        "run",
        "plugins.mlp",
        "--config",
        str(root / "mlp.toml"),
        *TINY_RUN,
        "--eval-samples",
        "200",
        "--out",
        str(root / "out"),
    )


def reading_the_cache(root: Path) -> list[tuple[str, ...]]:
    """Every command that reads the real split's cache: a run's evaluation,
    both KID/PR implementations, `gbench fid` of a split and of a file."""
    run_dir = the_run(root)
    return [
        ("eval", str(run_dir), *EVAL_N),
        ("eval", str(run_dir), *EVAL_N, "--kid-pr-impl", "torch-fidelity"),
        ("fid", str(run_dir), "mnist:test", *EVAL_N),
        ("fid", str(run_dir), str(root / "real.npz"), *EVAL_N),
    ]


@pytest.fixture
def copy(world, tmp_path) -> Path:
    shutil.copytree(world, tmp_path / "w")
    return tmp_path / "w"


def the_run(root: Path) -> Path:
    [run_dir] = [p for p in (root / "out").iterdir() if p.is_dir()]
    return run_dir


# ---------------------------------------------------------------------------
# The real split's cache under $GBENCH_CACHE/fid-stats
# ---------------------------------------------------------------------------

CACHE_FILES = {
    "features": "gbench-*-features-*.pt",
    "stat-fid": "gbench-*-stat-fid-*.pt",
    "knn-radii": "gbench-*-knn-radii-*.pt",
    "classes": "gbench-classes-*.pt",
}


@pytest.mark.parametrize("kind", sorted(CACHE_FILES))
def test_a_pickle_in_the_real_split_cache_is_refused_by_eval_and_fid(copy, marker, kind):
    planted = sorted((copy / "cache" / "fid-stats").glob(CACHE_FILES[kind]))
    assert planted, kind  # the warm-up wrote this kind of entry
    for path in planted:
        plant_torch(path, marker)
    refusals = 0
    for command in reading_the_cache(copy):
        result = run_cli(*command, env={"GBENCH_CACHE": str(copy / "cache")})
        # k-NN radii are gbench's KID/PR's alone, class counts only for sets without labels: the others never open those
        refused_or_ignored(result, marker, None, may_ignore=True, progress_first=True)
        if result.returncode == 2:
            refusals += 1
            assert any(str(path) in result.stderr for path in planted) and "delete it" in result.stderr, result.stderr
    assert refusals == {"features": 4, "stat-fid": 4, "knn-radii": 3, "classes": 1}[kind]
    assert all(path.read_bytes()[:2] == b"PK" for path in planted)  # refused, not silently replaced


def test_a_cache_entry_of_numpy_statistics_torch_fidelity_wrote_is_never_read(copy, marker):
    """Version 1 stored numpy arrays (only an unsafe load reads those): its names are not looked up any more."""
    stats = next((copy / "cache" / "fid-stats").glob(CACHE_FILES["stat-fid"]))
    old = stats.with_name("gbench-00000000000000000000000000000000" + stats.name[len("gbench-") + 32 :])
    plant_torch(old, marker)
    result = run_cli("eval", str(the_run(copy)), *EVAL_N, env={"GBENCH_CACHE": str(copy / "cache")})
    assert result.returncode == 0 and not marker.exists(), result.stderr


# ---------------------------------------------------------------------------
# Extractor weights: --inception-weights, torch.hub's copy, the LeNet files
# ---------------------------------------------------------------------------


def test_inception_weights_holding_code_are_refused_by_fid_eval_and_run_before_training(copy, marker, tmp_path):
    evil = plant_torch(tmp_path / "evil.pth", marker)
    env = {"GBENCH_CACHE": str(copy / "cache")}
    inception = ("--fid-extractor", "inception", "--inception-weights", str(evil))
    images = tmp_path / "images.npz"
    np.savez(images, images=np.zeros((20, 1, 28, 28), dtype=np.uint8))
    for command in (
        ("fid", str(images), "mnist:test", "-n", "20", *inception),
        ("fid", str(images), "mnist:test", "-n", "20", *inception, "--kid-pr-impl", "torch-fidelity"),
        ("eval", str(the_run(copy)), "-n", "20", *inception),
        (
            "run",
            "plugins.mlp",
            "--config",
            str(copy / "mlp.toml"),
            *TINY_RUN,
            *inception,
            "--out",
            str(tmp_path / "new"),
        ),
    ):
        result = run_cli(*command, env=env)
        refused_or_ignored(result, marker, evil, progress_first=command[0] in ("fid", "eval"))  # run: before any line
    # refused before any run started
    assert not (tmp_path / "new").exists() or not [p for p in (tmp_path / "new").iterdir() if p.is_dir()]


def test_inception_weights_in_torch_hub_holding_code_are_refused(copy, marker, tmp_path):
    """Without --inception-weights gbench uses torch.hub's downloaded copy: that file is read the same safe way."""
    hub = plant_torch(tmp_path / "torch" / "hub" / "checkpoints" / Path(inception_weights.INCEPTION_URL).name, marker)
    images = tmp_path / "images.npz"
    np.savez(images, images=np.zeros((20, 1, 28, 28), dtype=np.uint8))
    env = {"GBENCH_CACHE": str(copy / "cache"), "TORCH_HOME": str(tmp_path / "torch"), "GBENCH_OFFLINE": "1"}
    result = run_cli("fid", str(images), "mnist:test", "-n", "20", "--fid-extractor", "inception", env=env)
    refused_or_ignored(result, marker, hub, progress_first=True)


def test_lenet_weights_holding_code_are_refused(marker, tmp_path, monkeypatch):
    evil = plant_torch(tmp_path / "lenet-mnist.pt", marker)
    with pytest.raises(GbenchError, match="holds objects other than tensors") as error:
        extractors.LeNetFeatureExtractor("lenet-mnist", ["128"], feature_extractor_weights_path=str(evil))
    assert str(evil) in str(error.value)
    # The shipped file, replaced (with its SHA-256 updated to match, as after a retraining): still loaded safely.
    monkeypatch.setattr(extractors, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setitem(extractors.EXTRACTOR_SHA256, "lenet-mnist", weights_files.file_sha256(evil))
    with pytest.raises(GbenchError, match="holds objects other than tensors"):
        extractors.load_lenet("lenet-mnist")
    with pytest.raises(GbenchError, match="holds objects other than tensors"):
        inception_weights.weights_argument(Extractor(inception_weights.INCEPTION, evil, "x", "64", 3, True))
    assert not marker.exists()


def test_verified_inception_weights_reach_torch_fidelity_as_the_same_tensors(tmp_path):
    """The bytes torch-fidelity gets hold exactly the file's tensors, so a sound file gives the same extractor."""
    path = inception_weights.write_random_inception_weights(tmp_path / "inception.pt", seed=1)
    source = inception_weights.weights_argument(Extractor(inception_weights.INCEPTION, path, "x", "64", 3, True))[
        "feature_extractor_weights_path"
    ]
    handed = torch.load(source, weights_only=True)
    original = torch.load(path, weights_only=True)
    assert handed.keys() == original.keys() and all(torch.equal(handed[k], original[k]) for k in original)


# ---------------------------------------------------------------------------
# A run folder's files and the results table
# ---------------------------------------------------------------------------


def test_a_generator_pt_holding_code_is_refused_by_eval_sample_and_fid(copy, marker, tmp_path):
    run_dir = the_run(copy)
    weights = plant_torch(run_dir / "generator.pt", marker)
    for command in (
        ("eval", str(run_dir), *EVAL_N),
        ("sample", str(run_dir), "-n", "4", "-o", str(tmp_path / "s.npz")),
        ("fid", str(run_dir), "mnist:test", *EVAL_N),
    ):
        refused_or_ignored(run_cli(*command, env={"GBENCH_CACHE": str(copy / "cache")}), marker, weights)
    assert not (tmp_path / "s.npz").exists()


@pytest.mark.parametrize("name", ["config.json", "summary.json"])
def test_a_run_json_holding_a_pickle_is_refused(copy, marker, name):
    run_dir = the_run(copy)
    planted = plant_pickle(run_dir / name, marker)
    commands = [("eval", str(run_dir), *EVAL_N)]
    if name == "config.json":
        commands.append(("sample", str(run_dir), "-n", "4", "-o", str(copy / "s.npz")))
    for command in commands:
        refused_or_ignored(run_cli(*command, env={"GBENCH_CACHE": str(copy / "cache")}), marker, planted)


def make_interrupted(root: Path) -> tuple[Path, tuple[str, ...]]:
    """The finished run turned back into an interrupted one (marker,
    no summary, no row), and the command that resumes it."""
    run_dir = the_run(root)
    config = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    (run_dir / "summary.json").unlink()
    results = root / "out" / "results.csv"
    results.write_text(results.read_text().splitlines()[0] + "\n")  # the header alone
    interrupted.mark(run_dir, config, 1, 2, "SIGTERM")
    return run_dir, world_run(root)


def test_a_checkpoint_holding_code_stops_the_resume_in_one_line(copy, marker):
    run_dir, command = make_interrupted(copy)
    checkpoint = plant_torch(run_dir / "checkpoint.pt", marker)
    refused_or_ignored(run_cli(*command, env={"GBENCH_CACHE": str(copy / "cache")}), marker, checkpoint)
    assert checkpoint.exists() and (run_dir / "interrupted.json").exists()


def test_an_interrupted_json_holding_a_pickle_is_named_damaged_by_show_and_run(copy, marker):
    run_dir, command = make_interrupted(copy)
    planted = plant_pickle(run_dir / "interrupted.json", marker)
    show = run_cli("show", str(copy / "out"))
    refused_or_ignored(show, marker, None, may_ignore=True)
    assert show.returncode == 0 and f"{run_dir.name}: interrupted.json is damaged" in show.stderr, show.stderr
    rerun = run_cli(*command, env={"GBENCH_CACHE": str(copy / "cache")})
    refused_or_ignored(rerun, marker, planted)  # one line naming it, before any training
    assert len(list(csv.DictReader(open(copy / "out" / "results.csv")))) == 0 and planted.exists()


@pytest.mark.parametrize("protocol", [0, pickle.DEFAULT_PROTOCOL])
def test_a_results_csv_holding_a_pickle_is_refused_by_show_export_and_report(copy, marker, protocol):
    """Protocol 0 is plain text, so the CSV parser sees it: refused as not gbench's table, not unpickled."""
    out = copy / "out"
    results = plant_pickle(out / "results.csv", marker, protocol)
    for command in (
        ("show", str(out)),
        ("export", str(out), "--format", "json"),
        ("report", str(out), "-o", str(copy / "report")),
    ):
        refused_or_ignored(run_cli(*command), marker, results)


def test_a_metrics_csv_holding_a_pickle_is_refused_by_report(copy, marker):
    metrics = plant_pickle(the_run(copy) / "metrics.csv", marker)
    refused_or_ignored(run_cli("report", str(copy / "out"), "-o", str(copy / "report")), marker, metrics)


# ---------------------------------------------------------------------------
# TOML files and the image sets of `gbench fid`
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [0, pickle.DEFAULT_PROTOCOL])
def test_a_config_or_suite_toml_holding_a_pickle_is_refused(marker, tmp_path, protocol):
    planted = plant_pickle(tmp_path / "evil.toml", marker, protocol)
    for command in (
        ("run", "plugins.mlp", "--config", str(planted), *TINY_RUN, "--out", str(tmp_path / "out")),
        ("sweep", str(planted), "--out", str(tmp_path / "out")),
    ):
        refused_or_ignored(run_cli(*command), marker, planted)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


IMAGE_SETS = {
    "evil.pt": plant_torch,
    "evil.npz": plant_npy,
    "evil.npy": plant_npy,
    "pickle.npz": plant_pickle,
    "pickle.pt": plant_pickle,
}


@pytest.mark.parametrize("name", sorted(IMAGE_SETS))
@pytest.mark.parametrize("side", ["A", "B"])
def test_an_image_set_holding_code_is_one_line_for_fid(copy, marker, tmp_path, name, side):
    planted = IMAGE_SETS[name](tmp_path / name, marker)
    sets = (str(planted), "mnist:test") if side == "A" else ("mnist:test", str(planted))
    result = run_cli("fid", *sets, "--dataset", "mnist", *EVAL_N, env={"GBENCH_CACHE": str(copy / "cache")})
    refused_or_ignored(result, marker, planted)
