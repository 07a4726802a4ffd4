"""`gbench extractor train DATASET` for a colour dataset: a domain LeNet trained,
hashed, registered, and the default FID extractor for that data only."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from conftest import assert_one_line_error, run_cli

from gbench.data import load_split
from gbench.errors import GbenchError
from gbench.evaluation import domain_extractors, extractors
from gbench.evaluation.extractor_choice import resolve_extractor

TRAIN_PER_BATCH, TEST_SIZE = 80, 200


def write_learnable_cifar(root: Path, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """torchvision's cifar-10-batches-py whose classes differ in their
    red level, so a few epochs learn them; returns the test split."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 16, (n, 3, 32, 32), dtype=np.uint8)
        images[:, 0] += (labels * 24).astype(np.uint8)[:, None, None]
        return images, labels

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        x, y = split(TRAIN_PER_BATCH)
        (folder / f"data_batch_{i}").write_bytes(
            pickle.dumps({"data": x.reshape(len(x), -1), "labels": [int(v) for v in y]}, protocol=2)
        )
    test_x, test_y = split(TEST_SIZE)
    (folder / "test_batch").write_bytes(
        pickle.dumps({"data": test_x.reshape(len(test_x), -1), "labels": [int(v) for v in test_y]}, protocol=2)
    )
    return test_x, test_y


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train once on data A (8 epochs of 4 steps, seconds) into a private cache; the CLI's output and the folders."""
    base = tmp_path_factory.mktemp("domain")
    data, cache = base / "A", base / "cache"
    test_x, _ = write_learnable_cifar(data, seed=0)
    result = run_cli(
        "extractor", "train", "cifar10", "--epochs", "8", env={"GBENCH_DATA": str(data), "GBENCH_CACHE": str(cache)}
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, data, cache, test_x


@pytest.fixture
def using(monkeypatch):
    def point(data: Path, cache: Path) -> None:
        monkeypatch.setenv("GBENCH_DATA", str(data))
        monkeypatch.setenv("GBENCH_CACHE", str(cache))

    return point


def test_training_writes_hashed_weights_and_a_record_of_the_data(trained):
    stdout, _, cache, test_x = trained
    match = re.search(
        r"lenet-cifar10: test accuracy ([\d.]+), sha256 ([0-9a-f]{64}); registered as lenet-cifar10@([0-9a-f]{8})",
        stdout,
    )
    assert match, stdout
    accuracy, sha, short = float(match.group(1)), match.group(2), match.group(3)
    assert accuracy > 0.3  # ten red levels are learnable: it trained (chance is 0.1)
    weights = cache / "extractors" / f"lenet-cifar10-{short}.pt"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == sha and sha.startswith(short)
    record = json.loads((cache / "extractors" / f"lenet-cifar10-{short}.json").read_text())
    # the test split's content, hashed here
    digest = hashlib.sha256(str(test_x.shape).encode() + test_x.tobytes()).hexdigest()
    assert record["test_hash"] == digest and record["image_shape"] == [3, 32, 32] and record["epochs"] == 8
    net = extractors._from_file(weights)
    assert net.image_shape == (3, 32, 32) and net.conv1.in_channels == 3 and net.fc1.in_features == 32 * 5 * 5


def test_it_is_the_default_for_that_data_and_no_other(trained, using, registry, tmp_path):
    stdout, data, cache, _ = trained
    cifar10 = registry.dataset("cifar10")
    using(data, cache)
    chosen = resolve_extractor(None, cifar10)
    assert chosen.name == "lenet-cifar10" and chosen.channels == 3 and chosen.label in stdout
    assert resolve_extractor("lenet", cifar10).label == chosen.label

    other = tmp_path / "B"  # cifar10 by name, other content: not picked silently
    write_learnable_cifar(other, seed=1)
    using(other, cache)
    assert domain_extractors.default_domain_lenet(cifar10) is None
    with pytest.raises(GbenchError, match="gbench extractor train cifar10"):
        resolve_extractor("lenet", cifar10)
    assert domain_extractors.default_domain_lenet(registry.dataset("svhn")) is None  # another dataset


def test_fid_names_it_and_matches_numpy(trained, using, registry):
    _, data, cache, _ = trained
    result = run_cli(
        "fid",
        "cifar10:train",
        "cifar10:test",
        "-n",
        "200",
        "--no-kid",
        "--no-precision-recall",
        env={"GBENCH_DATA": str(data), "GBENCH_CACHE": str(cache)},
    )
    assert result.returncode == 0, result.stderr
    line = dict(part.split("=", 1) for part in re.search(r"^fid=.*$", result.stdout, re.M).group(0).split())
    label = line["extractor"]
    assert label.startswith("lenet-cifar10@")
    net = extractors._from_file(cache / "extractors" / f"lenet-cifar10-{label.split('@')[1]}.pt")
    using(data, cache)
    a, b = (load_split(registry.dataset("cifar10"), split, limit=200)[0] for split in ("train", "test"))
    with torch.inference_mode():
        features = [net(x)[0].double().numpy() for x in (a, b)]
    mu, sigma = [f.mean(0) for f in features], [np.cov(f, rowvar=False) for f in features]
    expected = np.sum((mu[0] - mu[1]) ** 2) + np.trace(
        sigma[0] + sigma[1] - 2 * scipy.linalg.sqrtm(sigma[0] @ sigma[1]).real
    )
    assert float(line["fid"]) == pytest.approx(expected, rel=1e-3)


def test_altered_weights_are_refused_in_one_line(trained, using, registry, tmp_path):
    _, data, cache, _ = trained
    copy = tmp_path / "cache"
    (copy / "extractors").mkdir(parents=True)
    for path in (cache / "extractors").iterdir():
        (copy / "extractors" / path.name).write_bytes(path.read_bytes())
    weights = next((copy / "extractors").glob("*.pt"))
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(blob))
    using(data, copy)
    with pytest.raises(GbenchError, match=f"{weights}.*not the registered") as error:
        resolve_extractor(None, registry.dataset("cifar10"))
    assert "\n" not in str(error.value)


def test_missing_data_and_a_planted_pickle_stop_before_training(tmp_path):
    result = run_cli(
        "extractor", "train", "svhn", env={"GBENCH_DATA": str(tmp_path), "GBENCH_CACHE": str(tmp_path / "cache")}
    )
    assert_one_line_error(result, "svhn train data not found", str(tmp_path), "unset GBENCH_OFFLINE")

    write_learnable_cifar(tmp_path, seed=2)
    marker = tmp_path / "MARKER"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {shlex.quote(str(marker))}",))

    planted = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    planted.write_bytes(pickle.dumps({"data": Payload(), "labels": []}, protocol=2))
    result = run_cli(
        "extractor", "train", "cifar10", env={"GBENCH_DATA": str(tmp_path), "GBENCH_CACHE": str(tmp_path / "cache")}
    )
    assert_one_line_error(result, str(planted), "numpy arrays")
    assert not marker.exists() and not (tmp_path / "cache" / "extractors").exists()


@pytest.mark.parametrize(
    "args, needles",
    [
        (["mnist", "--epochs", "3"], ["--epochs 3", "lenet-mnist", "drop --epochs"]),
        (["cifar10", "--install"], ["--install", "'cifar10' has none"]),
    ],
)
def test_options_that_do_not_apply_are_one_line(args, needles, tmp_path):
    assert_one_line_error(run_cli("extractor", "train", *args, env={"GBENCH_CACHE": str(tmp_path)}), *needles)
