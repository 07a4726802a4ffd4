"""--precision is part of what a run is: run, sweep (suite key) and tune record it, and
fp32 and bf16 runs of the same arguments are two settings, never one folder or one row group."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

from conftest import assert_one_line_error, run_cli

from gbench.analysis.comparisons import setting_names
from gbench.config import RunConfig
from gbench.results.records import load_local
from gbench.training.interrupted import config_hash

SMALL = (
    "--steps",
    "10",
    "--train-limit",
    "500",
    "--eval-samples",
    "0",
    "--set",
    "hidden_dim=16",
    "--set",
    "latent_dim=8",
)


def _rows(out: Path) -> list[dict]:
    with open(out / "results.csv") as file:
        return list(csv.DictReader(file))


def test_precision_is_in_the_interrupted_runs_hash():
    fp32 = RunConfig(architecture="mlp", steps=10, params={"hidden_dim": 16})
    bf16 = RunConfig(architecture="mlp", steps=10, params={"hidden_dim": 16}, precision="bf16")
    assert config_hash(fp32) != config_hash(bf16)  # an fp32 command never takes over a bf16 run's folder
    # older config.json
    assert RunConfig.from_dict({k: v for k, v in fp32.to_dict().items() if k != "precision"}).precision == "fp32"


def test_run_fp32_and_bf16_are_two_settings(tmp_path):
    out = tmp_path / "runs"
    for precision in ("fp32", "bf16"):
        result = run_cli(
            "run", "plugins.mlp", "--architecture", "mlp", *SMALL, "--precision", precision, "--out", str(out)
        )
        assert result.returncode == 0, result.stderr
    rows = _rows(out)
    assert sorted(row["train_precision"] for row in rows) == ["bf16", "fp32"]
    for row in rows:
        assert json.loads((out / row["run_id"] / "config.json").read_text())["precision"] == row["train_precision"]
    names = setting_names(load_local(out))
    assert sorted(names) == ["train_precision=bf16", "train_precision=fp32"]


def test_a_suite_variant_sets_precision(tmp_path):
    suite = tmp_path / "precision.toml"
    suite.write_text(
        textwrap.dedent("""\
        [suite]
        name = "precision"
        target = "plugins.mlp"
        seeds = [0]

        [base]
        architecture = "mlp"
        steps = 10
        train_limit = 500
        eval_samples = 0
        params = { hidden_dim = 16, latent_dim = 8 }

        [[variants]]
        name = "fp32"

        [[variants]]
        name = "bf16"
        precision = "bf16"
        """)
    )
    out = tmp_path / "runs"
    result = run_cli("sweep", str(suite), "--out", str(out), "--no-report")
    assert result.returncode == 0, result.stderr
    assert {row["variant"]: row["train_precision"] for row in _rows(out)} == {"fp32": "fp32", "bf16": "bf16"}


def test_tune_precision(tmp_path):
    out = tmp_path / "runs"
    space = ("--space", "architecture=mlp", "--space", "hidden_dim=16:32")
    result = run_cli(
        "tune",
        "plugins.mlp",
        "--trials",
        "1",
        "--pruner",
        "none",
        *SMALL[:4],
        "--eval-samples",
        "50",
        *space,
        "--precision",
        "bf16",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert [row["train_precision"] for row in _rows(out)] == ["bf16"]
    bad = run_cli("tune", "plugins.mlp", "--trials", "1", "--precision", "fp16", "--out", str(out))
    assert_one_line_error(bad, "fp16")
