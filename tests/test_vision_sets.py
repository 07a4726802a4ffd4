"""The colour datasets read small files in their real on-disk
formats, written here; pixels and labels round-trip exactly.

Nothing downloads (conftest sets GBENCH_OFFLINE=1). CIFAR's python batches are
pickles: a planted one that would run ``touch MARKER`` is refused in one line
and the marker never appears.
"""

from __future__ import annotations

import os
import pickle
import shlex
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from gbench.data import load_split
from gbench.errors import GbenchError
from gbench.stacked_mnist import STACKED_COUNTS, stacked_indices

RNG = np.random.default_rng(0)


def images(n: int, shape: tuple[int, ...]) -> np.ndarray:
    return RNG.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def write_cifar10_python(
    root: Path, per_batch: int = 4, test_size: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """torchvision's cifar-10-batches-py: five training batches and a test batch, dicts pickled with numpy data."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_x, train_y = images(5 * per_batch, (3, 32, 32)), RNG.integers(0, 10, 5 * per_batch)
    test_x, test_y = images(test_size, (3, 32, 32)), RNG.integers(0, 10, test_size)
    for i in range(5):
        part = slice(i * per_batch, (i + 1) * per_batch)
        batch = {
            "batch_label": f"training batch {i + 1} of 5",
            "labels": [int(v) for v in train_y[part]],
            "data": train_x[part].reshape(-1, 3072),
            "filenames": ["x.png"] * per_batch,
        }
        (folder / f"data_batch_{i + 1}").write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "test_batch").write_bytes(
        pickle.dumps({"labels": [int(v) for v in test_y], "data": test_x.reshape(-1, 3072)}, protocol=2)
    )
    return train_x, train_y, test_x, test_y


def test_cifar10_python_batches_round_trip(registry, tmp_path):
    train_x, train_y, test_x, test_y = write_cifar10_python(tmp_path)
    x, y = load_split(registry.dataset("cifar10"), "train", tmp_path)
    assert x.dtype == torch.uint8 and x.shape == (20, 3, 32, 32)
    assert np.array_equal(x.numpy(), train_x) and np.array_equal(y.numpy(), train_y)
    x, y = load_split(registry.dataset("cifar10"), "test", tmp_path)
    assert np.array_equal(x.numpy(), test_x) and np.array_equal(y.numpy(), test_y)


def test_cifar100_binary_records_round_trip(registry, tmp_path):
    """cifar-100-binary: records of coarse label, fine label, then 3072 bytes; gbench uses the fine label."""
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    for split in ("train", "test"):
        x, fine, coarse = images(20, (3, 32, 32)), RNG.integers(0, 100, 20), RNG.integers(0, 20, 20)
        records = np.concatenate(
            [coarse[:, None].astype(np.uint8), fine[:, None].astype(np.uint8), x.reshape(20, -1)], axis=1
        )
        (folder / f"{split}.bin").write_bytes(records.tobytes())
        got_x, got_y = load_split(registry.dataset("cifar100"), split, tmp_path)
        assert np.array_equal(got_x.numpy(), x) and np.array_equal(got_y.numpy(), fine)


def test_a_cifar_pickle_that_runs_code_is_refused(registry, tmp_path):
    write_cifar10_python(tmp_path)
    marker = tmp_path / "MARKER"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {shlex.quote(str(marker))}",))

    planted = tmp_path / "cifar-10-batches-py" / "test_batch"
    planted.write_bytes(pickle.dumps({"data": Payload(), "labels": []}, protocol=2))
    with pytest.raises(GbenchError, match="posix.system|os.system") as error:
        load_split(registry.dataset("cifar10"), "test", tmp_path)
    assert str(planted) in str(error.value) and "\n" not in str(error.value)
    assert not marker.exists()
    pickle.loads(planted.read_bytes())  # the unsafe way does run it: the refusal above is what kept it from running
    assert marker.exists()


def test_svhn_mat_round_trips_and_reads_label_10_as_0(registry, tmp_path):
    folder = tmp_path / "svhn"
    folder.mkdir()
    x, digits = images(12, (3, 32, 32)), np.arange(12) % 10
    stored = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)  # SVHN's files write 0 as 10
    scipy.io.savemat(folder / "test_32x32.mat", {"X": x.transpose(2, 3, 1, 0), "y": stored})
    got_x, got_y = load_split(registry.dataset("svhn"), "test", tmp_path)
    assert np.array_equal(got_x.numpy(), x) and np.array_equal(got_y.numpy(), digits)


def test_stl10_column_major_binary_round_trips(registry, tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    x, labels = images(3, (3, 96, 96)), np.array([0, 9, 4])
    # columns first, as STL-10 stores them
    (folder / "train_X.bin").write_bytes(np.ascontiguousarray(x.transpose(0, 1, 3, 2)).tobytes())
    (folder / "train_y.bin").write_bytes((labels + 1).astype(np.uint8).tobytes())
    got_x, got_y = load_split(registry.dataset("stl10"), "train", tmp_path)
    assert np.array_equal(got_x.numpy(), x) and np.array_equal(got_y.numpy(), labels)


def test_celeba_folder_uses_the_partition_and_the_male_attribute(registry, tmp_path):
    folder = tmp_path / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    for name in names:
        Image.fromarray(images(1, (80, 64, 3))[0]).save(folder / "img_align_celeba" / name, quality=90)
    partitions, male = [0, 0, 1, 2, 0, 2], [1, -1, 1, -1, -1, 1]
    (folder / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, partitions)))
    header = "6\n5_o_Clock_Shadow Male Smiling\n"
    (folder / "list_attr_celeba.txt").write_text(header + "".join(f"{n}  -1 {m:2d}  1\n" for n, m in zip(names, male)))
    for split, code in (("train", 0), ("test", 2)):
        chosen = [i for i, p in enumerate(partitions) if p == code]
        x, y = load_split(registry.dataset("celeba"), split, tmp_path)
        # the central 64x64 of each 64-wide, 80-high image, decoded by PIL on its own
        expected = np.stack(
            [
                np.asarray(Image.open(folder / "img_align_celeba" / names[i]).convert("RGB"))[8:72].transpose(2, 0, 1)
                for i in chosen
            ]
        )
        assert x.shape == (len(chosen), 3, 64, 64) and np.array_equal(x.numpy(), expected)
        assert y.tolist() == [int(male[i] == 1) for i in chosen]
    cached = sorted((Path(os.environ["GBENCH_CACHE"]) / "celeba").glob("celeba-64-*.npy"))
    assert cached, "the resized pixels are cached"
    x_before, _ = load_split(registry.dataset("celeba"), "test", tmp_path)
    first = folder / "img_align_celeba" / names[3]  # partition 2: in the test split
    Image.fromarray(np.zeros((80, 64, 3), dtype=np.uint8)).save(first)  # a changed file is read again, not served stale
    os.utime(first, ns=(1, 1))
    x_after, _ = load_split(registry.dataset("celeba"), "test", tmp_path)
    assert x_after[0].max() == 0 and torch.equal(x_after[1:], x_before[1:])


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn", "stl10", "celeba"])
def test_offline_missing_set_names_where_it_looked_and_how_to_get_it(registry, tmp_path, monkeypatch, name):
    monkeypatch.setenv("GBENCH_DATA", str(tmp_path))
    with pytest.raises(GbenchError) as error:
        load_split(registry.dataset(name), "train")
    message = str(error.value)
    assert "\n" not in message and f"{name} train data not found" in message
    assert str(tmp_path) in message and "unset GBENCH_OFFLINE" in message and "--data-root" in message


def test_explicit_root_without_the_files_says_so(registry, tmp_path):
    with pytest.raises(GbenchError, match=r"cifar-10-batches-py/.*leave --data-root out"):
        load_split(registry.dataset("cifar10"), "train", tmp_path)


def test_a_truncated_binary_batch_is_named(registry, tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(bytes(3073 * 2 + 5))
    with pytest.raises(GbenchError, match="test_batch.bin.*not a whole number of 3073-byte"):
        load_split(registry.dataset("cifar10"), "test", tmp_path)


def test_stacked_mnist_stacks_seeded_mnist_digits(registry):
    mnist_x, mnist_y = load_split(registry.dataset("mnist"), "test")
    x, y = load_split(registry.dataset("stacked-mnist"), "test")
    assert x.shape == (STACKED_COUNTS["test"], 3, 28, 28) and x.dtype == torch.uint8
    index = stacked_indices(len(mnist_x), STACKED_COUNTS["test"], seed=1).numpy()
    assert np.array_equal(x.numpy(), mnist_x.numpy()[:, 0][index])
    digits = mnist_y.numpy()[index]
    assert np.array_equal(y.numpy(), digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2])
    again, _ = load_split(registry.dataset("stacked-mnist"), "test")
    assert torch.equal(x, again)
    assert len(np.unique(y.numpy())) > 990  # 10,000 draws over 1,000 modes leave few empty
