"""A user's day (issue #35): a start that does not wait on torch,
tables that fit the terminal, "did you mean" for every typed name.

No training here: the results folders are written by the test (store.upsert_result, as a run writes them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, assert_one_line_error, run_cli

from gbench.results import display, schema, store

#: A run_id as gbench makes them, and words that wrapped mid-name at 80 columns before (issue #35 point 4).
RUN_IDS = ("mlp-batchnorm-mnist-s0-20260101-120000-abcdef", "mlp-batchnorm-mnist-s1-20260101-120001-fedcba")


def results_folder(out: Path) -> Path:
    """Two runs' rows with every column a finished run has (no training)."""
    out.mkdir(parents=True, exist_ok=True)
    for seed, (run_id, status) in enumerate(zip(RUN_IDS, ("collapsed", "ok"))):
        row = schema.results_row(
            identity={
                "run_id": run_id,
                "architecture": "mlp-batchnorm",
                "loss": "non-saturating",
                "schedule": "k-steps",
                "dataset": "mnist",
                "seed": seed,
            },
            params={"batch_size": 100, "lr": 0.0002, "latent_dim": 64, "hidden_dim": 256},
            metrics={
                "d_loss": 1.25 + seed,
                "g_loss": 0.75,
                "d_real": 0.5,
                "d_fake": 0.25,
                "fid": 101.5 + seed,
                "kid_mean": 0.125,
                "precision": 0.5,
                "recall": 0.25,
                "classes_covered": 3 + seed,
                "train_seconds": 12.5,
                "images_per_second": 5000.0 + seed,
            },
            bookkeeping={
                "status": status,
                "steps": 1000 + seed,
                "score": "probability",
                "device": "cpu",
                "population": 1,
            },
        )
        store.upsert_result(out, row)
    return out


def show(out: Path, columns: int, *extra: str) -> subprocess.CompletedProcess:
    result = run_cli("show", str(out), *extra, env={"COLUMNS": str(columns)})
    assert result.returncode == 0, result.stderr
    return result


# --- 3. no torch at start ----------------------------------------------------------

NO_TORCH = """
import contextlib, io, sys
from gbench.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as stop:
        code = stop.code
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'optuna'))
print(code, heavy[:5])
"""


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["run", "--help"],
        ["tune", "--help"],
        ["show"],
        ["export"],
        ["export", "--format", "json"],
        ["completion", "bash"],
    ],
)
def test_these_commands_start_without_importing_torch(tmp_path, command):
    out = str(results_folder(tmp_path / "out"))
    argv = [*command, out] if command[0] in ("show", "export") else command
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # exit code 0, and no torch, torchvision or Optuna module loaded
    assert result.stdout.split(maxsplit=1) == ["0", "[]\n"], result.stdout


# --- 4. tables that fit --------------------------------------------------------------


def test_at_80_columns_the_table_fits_keeps_identity_fid_and_status_and_names_what_it_left_out(tmp_path):
    out = results_folder(tmp_path / "out")
    result = show(out, 80)
    table = [line for line in result.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and max(len(line) for line in table) <= 80
    header = table[1]
    for kept in ("arch", "seed", "FID", "status"):
        assert f" {kept} " in header
    for cell in ("mlp-batchnorm", "101.50", "102.50", "collapsed"):  # whole, never broken over two lines
        assert any(f" {cell} " in line for line in table), cell
    [note] = [line for line in result.stdout.splitlines() if line.startswith("not shown, too wide for 80 columns:")]
    left_out = note.split("--columns ")[1].split("`")[0].split(",")
    assert "images_per_second" in left_out and "run_id" in left_out and "fid" not in left_out
    assert f"gbench export {out}" in note
    # the left-out columns are what --columns shows
    shown = show(out, 80, "--columns", ",".join(left_out[:2]))
    header = [line for line in shown.stdout.splitlines() if line.startswith("┃")][0]
    assert [cell.strip() for cell in header.strip("┃").split("┃")] == [
        schema.column(name).header for name in left_out[:2]
    ]


def test_at_200_columns_every_column_is_drawn_and_nothing_is_left_out(tmp_path):
    out = results_folder(tmp_path / "out")
    result = show(out, 200)
    header = [line for line in result.stdout.splitlines() if line.startswith("┃")][0]
    for name in ("run", "status", "FID", "KID×10³", "img/s", "d_loss", "classes"):
        assert f" {name} " in header
    assert "not shown" not in result.stdout


def test_fit_columns_keeps_identity_then_fid_then_status_in_table_order():
    columns = [schema.column(name) for name in ("run_id", "status", "architecture", "d_loss", "fid")]
    widths = {"run_id": 10, "status": 6, "architecture": 4, "d_loss": 6, "fid": 6}
    # architecture, fid and status, with their rules
    kept, left = display.fit_columns(columns, widths, width=1 + 7 + 9 + 9)
    assert [c.name for c in kept] == ["status", "architecture", "fid"] and [c.name for c in left] == [
        "run_id",
        "d_loss",
    ]
    kept, left = display.fit_columns(columns, widths, width=1 + 7 + 9 + 9 + 13 + 9)  # and the run id, and d_loss
    assert kept == columns and left == []


def test_an_unknown_column_name_says_the_closest(tmp_path):
    out = results_folder(tmp_path / "out")
    assert_one_line_error(
        run_cli("show", str(out), "--columns", "fidd"), "unknown column 'fidd'", "did you mean 'fid'?"
    )


# --- 5. did you mean -----------------------------------------------------------------


def test_a_mistyped_plugin_module_says_the_closest_and_a_far_one_lists_them(tmp_path):
    assert_one_line_error(
        run_cli("run", "plugins.mpl", "--out", str(tmp_path)),
        "no plugin or module named 'plugins.mpl'",
        "did you mean 'plugins.mlp'?",
    )
    far = run_cli("run", "zzzzzz", "--out", str(tmp_path))
    assert_one_line_error(far, "no plugin or module named 'zzzzzz'", "plugins.mlp", "plugins.dcgan", "mlp")
    near_file = run_cli("run", "plugins/mpl.py", "--out", str(tmp_path), cwd=REPO)
    assert_one_line_error(near_file, "plugin file 'plugins/mpl.py' does not exist", "did you mean 'plugins/mlp.py'?")


def test_a_mistyped_suite_file_says_the_closest_suite_and_a_far_one_lists_them(tmp_path):
    result = run_cli("sweep", "s3_dynamic_short.toml", cwd=REPO)
    assert_one_line_error(
        result,
        "suite file 's3_dynamic_short.toml' does not exist",
        "did you mean 'benchmarks/suites/s3_dynamics_short.toml'?",
    )
    beside = tmp_path / "mine.toml"
    beside.write_text("")
    result = run_cli("report", str(tmp_path / "out"), "--suite-file", str(tmp_path / "mien.toml"))
    assert_one_line_error(result, f"did you mean {str(beside)!r}?")
    result = run_cli("sweep", "qqqqqq.toml", cwd=REPO)
    assert_one_line_error(result, "does not exist; there: benchmarks/suites/s1_mlp_capacity.toml")


def test_a_mistyped_export_format_or_suffix_says_the_closest(tmp_path):
    out = results_folder(tmp_path / "out")
    assert_one_line_error(
        run_cli("export", str(out), "--format", "jsn"), "unknown format 'jsn'", "did you mean 'json'?"
    )
    assert_one_line_error(
        run_cli("export", str(out), "--format", "xml"), "unknown format 'xml'", "known: csv, json, parquet"
    )
    assert_one_line_error(
        run_cli("export", str(out), "-o", str(tmp_path / "all.jsn")), "unknown suffix .jsn", "did you mean .json?"
    )
    assert not (tmp_path / "all.jsn").exists()
    assert run_cli("export", str(out), "--format", "JSON").returncode == 0
    written = run_cli("export", str(out), "-o", str(tmp_path / "all.json"))
    assert written.returncode == 0 and [
        row["run_id"] for row in json.loads((tmp_path / "all.json").read_text())
    ] == list(RUN_IDS)


def test_a_mistyped_study_name_says_the_closest_in_the_storage(tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    for name in ("s1-mlp-capacity", "s3-dynamics"):
        optuna.create_study(storage=url, study_name=name)
    result = run_cli("report", "--storage", url, "--study-name", "s1-mlp-capasity")
    assert_one_line_error(
        result,
        "no study named 's1-mlp-capasity' in ",
        "(did you mean 's1-mlp-capacity'?); studies there: s1-mlp-capacity, s3-dynamics",
    )
