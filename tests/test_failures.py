"""What happens when things fail: each test backs one line of docs/failures.md.

Real processes, real files, real signals: a test starts the real ``gbench``
CLI, breaks something the way the world does (a wrong --data-root, SIGTERM
from a scheduler, a truncated file, a full disk) and checks what the user
sees and what stays on disk.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from conftest import assert_one_line_error, run_cli

MNIST_RAW = Path(os.environ["GBENCH_DATA"]) / "MNIST" / "raw"
TINY = ("--steps", "2", "--train-limit", "200", "--eval-samples", "0")


# --- 1. an explicit --data-root is the only place gbench looks ------------------


def test_missing_data_root_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "no-such-dir"
    result = run_cli("run", "plugins.mlp", *TINY, "--data-root", str(missing), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, str(missing), "does not exist")
    assert not (tmp_path / "o" / "results.csv").exists()


def test_data_root_without_the_files_names_them_even_when_gbench_data_has_them(tmp_path):
    # GBENCH_DATA (set by conftest) holds MNIST: an explicit root must not fall back to it
    partial = tmp_path / "partial" / "MNIST" / "raw"
    partial.mkdir(parents=True)
    shutil.copy(MNIST_RAW / "train-images-idx3-ubyte", partial)  # the labels file is missing
    result = run_cli("run", "plugins.mlp", *TINY, "--data-root", str(tmp_path / "partial"), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, str(tmp_path / "partial"), "train-labels-idx1-ubyte", "train-images-idx3-ubyte")
    assert not (tmp_path / "o" / "results.csv").exists()


def test_data_root_from_a_config_file_is_honoured_too(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'data_root = "{tmp_path / "nothing-here"}"\n')
    result = run_cli("run", "plugins.mlp", *TINY, "--config", str(config), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, str(tmp_path / "nothing-here"))


def test_a_data_root_holding_the_files_trains(tmp_path):
    root = tmp_path / "root" / "MNIST" / "raw"
    root.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (root / name).symlink_to(MNIST_RAW / name)
    result = run_cli("run", "plugins.mlp", *TINY, "--data-root", str(tmp_path / "root"), "--out", str(tmp_path / "o"), env={"GBENCH_DATA": str(tmp_path / "x")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o" / "results.csv").read_text().count("\n") == 4  # header + the plugin's three architectures
