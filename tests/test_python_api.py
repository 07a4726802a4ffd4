"""gbench.run, load, sweep and tune (gbench/api.py): the commands in-process, on real data, real Optuna, real files.

What each returns is checked against the files the CLI writes, read by pandas on
its own (``pd.read_csv``) or by ``gbench export`` in a separate process; a bad
input's error is checked against the one line the real CLI prints for it.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import nbformat
import optuna
import pandas as pd
import pytest
from conftest import REPO, run_cli
from nbclient import NotebookClient
from scipy import stats
from test_sweep import write_suite

import gbench
from gbench import GbenchError

#: A few seconds a run: 20 steps on 1,000 images, FID from 100 samples at the end.
TINY = {
    "steps": 20,
    "train_limit": 1000,
    "eval_samples": 100,
    "log_every": 10,
    "architecture": "mlp",
    "set": {"latent_dim": 8, "hidden_dim": 16},
}


#: cli.main on each argv in one fresh process (the console script's entry point; one torch import for them all)
CLI_PROBE = """
import contextlib, io, json, sys
from gbench.cli import main
found = []
for argv in json.loads(sys.argv[1]):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exit:
            code = exit.code
    found.append([code, stderr.getvalue()])
print(json.dumps(found))
"""


def cli_error_lines(argvs: list[list[str]]) -> list[str]:
    """The line the CLI prints for each bad command line (a warning above
    it, e.g. for a broken plugin installed here, is not part of it)."""
    result = subprocess.run(
        [sys.executable, "-c", CLI_PROBE, json.dumps(argvs)], capture_output=True, text=True, cwd=REPO, check=True
    )
    lines = []
    for argv, (code, stderr) in zip(argvs, json.loads(result.stdout)):
        assert code == 2 and "Traceback" not in stderr, (argv, code, stderr)
        lines.append(stderr.strip().splitlines()[-1])
    return lines


def test_import_gbench_stays_light_and_the_api_is_its_attributes():
    probe = (
        "import sys, gbench; print('torch' in sys.modules, 'pandas' in "
        "sys.modules); gbench.load; print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.split() == ["False", "False", "False"]
    from gbench import api

    assert (gbench.run, gbench.load, gbench.sweep, gbench.tune) == (api.run, api.load, api.sweep, api.tune)
    assert sorted(gbench._API) == sorted(api.__all__)
    with pytest.raises(AttributeError, match="no attribute 'rnu'"):
        gbench.rnu  # noqa: B018


def test_run_returns_its_runs_rows_of_results_csv_and_load_is_export(tmp_path, capsys):
    out = tmp_path / "out"
    rows = gbench.run("plugins.mlp", seeds=[0, 1], out=out, **TINY)
    assert capsys.readouterr().out == ""  # quiet by default: no table, no progress bar in a notebook cell
    on_disk = pd.read_csv(out / "results.csv")
    pd.testing.assert_frame_equal(rows, on_disk)
    assert list(rows["seed"]) == [0, 1] and set(rows["hidden_dim"]) == {16} and rows["fid"].notna().all()

    # the same call again keeps the finished runs (as the CLI does) and returns their rows all the same
    again = gbench.run("plugins.mlp", seeds="1", out=str(out), **TINY)
    assert len(pd.read_csv(out / "results.csv")) == 2
    pd.testing.assert_frame_equal(again, on_disk.iloc[[1]].reset_index(drop=True))

    exported = run_cli("export", str(out))
    assert exported.returncode == 0, exported.stderr
    pd.testing.assert_frame_equal(gbench.load(out), pd.read_csv(io.StringIO(exported.stdout)))


def test_verbose_prints_the_commands_lines_as_plain_text(tmp_path, capsys):
    rows = gbench.run("plugins.mlp", out=tmp_path, verbose=True, **{**TINY, "eval_samples": 0})
    printed = capsys.readouterr()
    assert "\x1b[" not in printed.out + printed.err  # no terminal codes: a notebook shows them as garbage
    assert f"results: {tmp_path / 'results.csv'}" in printed.err
    assert rows.loc[0, "run_id"] in (tmp_path / "results.csv").read_text()


def test_a_bad_value_raises_the_cli_s_own_line(tmp_path):
    out = str(tmp_path)
    cases = [
        # refused by the parser
        (lambda: gbench.run("plugins.mlp", out=out, steps=0), ["run", "plugins.mlp", "--out", out, "--steps", "0"]),
        # by the settings
        (
            lambda: gbench.run("plugins.mlp", out=out, seeds="1-x"),
            ["run", "plugins.mlp", "--out", out, "--seeds", "1-x"],
        ),
        # the plugin
        (
            lambda: gbench.run("plugins.mlp", out=out, architecture="mlq"),
            ["run", "plugins.mlp", "--out", out, "--architecture", "mlq"],
        ),
        (lambda: gbench.sweep(tmp_path / "missing.toml"), ["sweep", str(tmp_path / "missing.toml")]),
        (lambda: gbench.tune(objective="fdi", out=out), ["tune", "--objective", "fdi", "--out", out]),
        (lambda: gbench.load(tmp_path / "missing"), ["export", str(tmp_path / "missing")]),
    ]
    for (call, _), line in zip(cases, cli_error_lines([argv for _, argv in cases])):
        with pytest.raises(GbenchError) as raised:
            call()
        assert str(raised.value) == line
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_an_unknown_option_or_a_flag_given_a_value_is_one_clear_error():
    with pytest.raises(
        GbenchError, match=r"^gbench.run\(\): unknown option 'step' \(did you mean 'steps'\?\); known: architecture, "
    ):
        gbench.run("plugins.mlp", step=20)
    with pytest.raises(GbenchError, match=r"^gbench.sweep\(\): quick=1 is a flag; give quick=True"):
        gbench.sweep("suite.toml", quick=1)


def test_sweep_returns_every_variant_and_seed_once(tmp_path):
    suite = write_suite(tmp_path)  # 2 variants x 2 seeds, 20 steps on 2,000 images, no evaluation
    out = tmp_path / "sweep"
    rows = gbench.sweep(suite, out=out, no_report=True)
    pd.testing.assert_frame_equal(rows, pd.read_csv(out / "results.csv"))
    assert sorted(zip(rows["variant"], rows["seed"])) == [
        ("baseline", 0),
        ("baseline", 1),
        ("hidden-48", 0),
        ("hidden-48", 1),
    ]
    assert set(rows["status"]) <= {"ok", "collapsed"} and set(rows["hidden_dim"]) == {32, 48}


def test_tune_returns_the_trials_runs_and_the_study_from_its_storage(tmp_path):
    out = tmp_path / "tune"
    space = ["architecture=mlp", "hidden_dim=16:48", "latent_dim=8:32:log"]
    rows, study = gbench.tune(
        "plugins.mlp", trials=2, pruner="none", sampler_seed=1, space=space, out=out, **{**TINY, "set": None}
    )
    assert isinstance(study, optuna.Study) and study.study_name == "tune-plugins.mlp"
    stored = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{out / 'tune.db'}")
    assert [t.number for t in stored.trials] == [t.number for t in study.trials] == [0, 1]
    pd.testing.assert_frame_equal(rows, pd.read_csv(out / "results.csv"))
    by_run = rows.set_index("run_id")
    for trial in study.trials:  # each trial's value is its run's FID in results.csv, its params the run's settings
        row = by_run.loc[trial.user_attrs["run_id"]]
        assert trial.values[0] == pytest.approx(row["fid"])
        assert (row["hidden_dim"], row["latent_dim"]) == (trial.params["hidden_dim"], trial.params["latent_dim"])


def test_the_example_notebook_runs_and_shows_the_comparison_and_the_plot(tmp_path):
    """docs/examples/notebook.ipynb in a real Jupyter kernel (nbclient),
    in an empty folder: no cell fails, and what it shows is right."""
    notebook = nbformat.read(REPO / "docs" / "examples" / "notebook.ipynb", as_version=4)
    kernel_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env=kernel_env)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    results = pd.read_csv(tmp_path / "runs-notebook" / "results.csv")
    assert len(results) == 4 and sorted(zip(results["hidden_dim"], results["seed"])) == [
        (16, 0),
        (16, 1),
        (64, 0),
        (64, 1),
    ]

    printed = "".join(output.get("text", "") for output in code[2].outputs if output.output_type == "stream")
    table = [line.split() for line in printed.splitlines() if re.match(r"(16|64)\s", line)]
    assert [line[0] for line in table] == ["16", "64"]  # the comparison: two settings, one row each
    for hidden, count, mean, _ in table:
        fids = results.loc[results["hidden_dim"] == int(hidden), "fid"]
        assert (int(count), float(mean)) == (2, pytest.approx(fids.mean(), rel=1e-5))
    wide, narrow = (results.loc[results["hidden_dim"] == h, "fid"] for h in (64, 16))
    t, p = stats.ttest_ind(wide, narrow, equal_var=False)
    assert f"{wide.mean() - narrow.mean():+.2f} FID (Welch t = {t:.2f}, p = {p:.3f}, 2 seeds each)" in printed

    assert any("image/png" in output.get("data", {}) for output in code[3].outputs)  # FID over steps, drawn
    shown = code[4].outputs[0]["data"]["text/plain"]
    assert all(run_id in shown for run_id in results["run_id"])
