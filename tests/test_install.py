"""The README's two commands work in whichever interpreter gbench was installed
into: tox runs the tests with that interpreter (toxfile.py), not with the base
Python its virtualenvs would be built on. .ci/run runs this file through tox in
a fresh virtualenv, so the fresh-virtualenv path cannot break again."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_cli

import gbench


def test_gbench_is_imported_from_this_checkout():
    assert Path(gbench.__file__).resolve().parent == REPO / "gbench"


@pytest.mark.skipif("GBENCH_TOX_PYTHON" not in os.environ, reason="only under tox: the README's test command")
def test_tox_runs_the_tests_in_the_interpreter_that_runs_tox():
    # the interpreter `pip install -e ".[test]"` filled, which also holds tox itself
    assert Path(sys.executable).resolve() == Path(os.environ["GBENCH_TOX_PYTHON"]).resolve()
    assert ".tox" not in Path(sys.executable).parts


def test_installed_cli_trains_and_evaluates_a_tiny_run(tmp_path):
    result = run_cli(
        "run",
        "plugins.mlp",
        "--steps",
        "20",
        "--train-limit",
        "500",
        "--eval-samples",
        "200",
        "--seeds",
        "0",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + 3  # header + the three MLP architectures
    assert "fid" in rows[0].split(",")
