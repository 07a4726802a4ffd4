"""The CLI end to end, as a user drives it, on a small real MNIST subset."""

import csv
import json
import subprocess
import sys

import pytest
from conftest import assert_one_line_error, run_cli

from gbench.results import store

SMALL = ["--steps", "20", "--train-limit", "2000", "--eval-samples", "0", "--log-every", "10"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    result = run_cli("run", "plugins.mlp", *SMALL, "--seeds", "0,1", "--set", "hidden_dim=32", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out, result


def test_run_writes_the_store_and_prints_a_table(finished):
    out, result = finished
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 6  # 3 architectures x 2 seeds
    assert {row["architecture"] for row in rows} == {"mlp", "mlp-batchnorm", "deep-leakyrelu"}
    assert {row["seed"] for row in rows} == {"0", "1"}
    assert all(row["hidden_dim"] == "32" and row["status"] == "ok" for row in rows)
    for row in rows:
        run_dir = out / row["run_id"]
        assert {p.name for p in run_dir.iterdir()} == {
            "config.json",
            "metrics.csv",
            "summary.json",
            "samples.png",
            "generator.pt",
        }
        assert (run_dir / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        config = json.loads((run_dir / "config.json").read_text())
        assert config["params"]["hidden_dim"] == 32 and config["steps"] == 20
        history = list(csv.DictReader(open(run_dir / "metrics.csv")))
        assert [h["step"] for h in history] == ["10", "20"]
        assert float(row["train_seconds"]) > 0 and float(row["images_per_second"]) > 0
    for header in ("D(x)", "D(G(z))", "train s", "img/s", "deep-leakyrelu"):
        assert header in result.stdout


def test_same_seed_same_result_through_the_cli(finished, tmp_path):
    out, _ = finished
    # the same command again, into another folder: the same numbers (seeds trained one by one on a CPU in fp32, as
    # the first time; a population differs from solo runs by float reassociation only: tests/test_population.py)
    again = run_cli("run", "plugins.mlp", *SMALL, "--seeds", "0,1", "--set", "hidden_dim=32", "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    first = {(r["architecture"], r["seed"]): r for r in csv.DictReader(open(out / "results.csv"))}
    for row in csv.DictReader(open(tmp_path / "results.csv")):
        for key in ("d_loss", "g_loss", "d_real", "d_fake"):
            assert row[key] == first[(row["architecture"], row["seed"])][key]


def test_show_and_export(finished, tmp_path):
    out, _ = finished
    shown = run_cli("show", str(out))
    assert shown.returncode == 0 and "6 runs" in shown.stdout
    for fmt in ("csv", "json", "parquet"):
        target = tmp_path / f"all.{fmt}"
        exported = run_cli("export", str(out), "--format", fmt, "-o", str(target))
        assert exported.returncode == 0, exported.stderr
        import pandas as pd

        table = {"csv": pd.read_csv, "json": lambda p: pd.read_json(p, orient="records"), "parquet": pd.read_parquet}[
            fmt
        ](target)
        assert len(table) == 6 and "d_real" in table.columns
        assert table["d_real"].between(0, 1).all()


def many_runs(out, count=45):
    """A results folder of ``count`` runs in three settings (lr), a third
    of them diverged, FIDs spread out, written by gbench's store."""
    rows = [
        {
            "run_id": f"run-{i:03d}",
            "status": "diverged" if i % 3 == 2 else "ok",
            "architecture": "mlp",
            "seed": i // 3,
            "lr": (0.001, 0.0002, 0.0005)[i % 3],
            "steps": 100,
            "fid": round(10 + (i * 37 % 41) * 0.9, 2),
        }
        for i in range(count)
    ]
    store.write_csv(out / "results.csv", rows)
    return rows


def test_show_on_many_runs_draws_a_summary_and_the_latest_rows(tmp_path):
    rows = many_runs(tmp_path)
    shown = run_cli("show", str(tmp_path), "--last", "5")
    assert shown.returncode == 0, shown.stderr
    drawn = [row["run_id"] for row in rows if row["run_id"] in shown.stdout]
    assert drawn == [f"run-{i:03d}" for i in range(40, 45)]
    assert f"{tmp_path}: 45 runs (ok 30, diverged 15) in 3 settings" in shown.stdout
    assert "40 earlier runs not drawn" in shown.stdout and "--all" in shown.stdout
    for lr in (0.001, 0.0002, 0.0005):  # best and mean FID per setting, computed here from the rows
        fids = [row["fid"] for row in rows if row["lr"] == lr]
        ok = sum(row["status"] == "ok" for row in rows if row["lr"] == lr)
        line = next(line for line in shown.stdout.splitlines() if f"lr={lr} " in line)
        assert line.split("│")[2:6] == [
            f" {len(fids):>4} ",
            f" {ok:>2} ",
            f" {min(fids):8.2f} ",
            f" {sum(fids) / len(fids):8.2f} ",
        ], line
    default = run_cli("show", str(tmp_path))
    assert [row["run_id"] for row in rows if row["run_id"] in default.stdout] == [f"run-{i:03d}" for i in range(25, 45)]
    every = run_cli("show", str(tmp_path), "--all")
    assert every.returncode == 0 and "45 runs" in every.stdout and "not drawn" not in every.stdout
    assert all(row["run_id"] in every.stdout for row in rows)
    bad = run_cli("show", str(tmp_path), "--last", "0")
    assert bad.returncode == 2 and "--last takes a whole number of runs, at least 1, not '0'" in bad.stderr


def test_show_and_export_start_without_torch(finished, tmp_path):
    # Only the chosen command's module is imported; `run`'s would pull in torch (~2 s).
    out, _ = finished
    code = (
        "import sys; from gbench.cli import main; "
        f"codes = [main(['show', {str(out)!r}]), main(['export', {str(out)!r}, '-o', {str(tmp_path / 'x.csv')!r}])]; "
        "assert codes == [0, 0], codes; assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x.csv").read_text().count("\n") == 7  # header + 6 runs


def test_config_file_and_options(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        "steps = 10\ntrain_limit = 1000\neval_samples = 0\nlog_every = 5\ndataset = "
        '"fashion-mnist"\n[params]\nlatent_dim = 16\nhidden_dim = 16\n'
    )
    result = run_cli(
        "run", "plugins.mlp", "--config", str(config), "--set", "latent_dim=8", "--out", str(tmp_path / "o")
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(open(tmp_path / "o" / "results.csv")))
    assert {(r["dataset"], r["latent_dim"], r["hidden_dim"], r["steps"]) for r in rows} == {
        ("fashion-mnist", "8", "16", "10")
    }


def test_file_plugin_target(tmp_path):
    plugin = tmp_path / "myarch.py"
    plugin.write_text(
        "from gbench import hookimpl\nfrom gbench.plugins.registry import Architecture\nimport plugins.mlp as m\n\n"
        "@hookimpl\ndef gbench_register_architectures(register):\n"
        "    register(Architecture('my-mlp', m.build_mlp, (m.LATENT_DIM, m.HIDDEN_DIM)))\n"
    )
    result = run_cli("run", str(plugin), *SMALL, "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    assert [r["architecture"] for r in csv.DictReader(open(tmp_path / "o" / "results.csv"))] == ["my-mlp"]


@pytest.mark.parametrize(
    "args, needles",
    [
        (["run", "plugins.nope"], ["plugins.nope"]),
        (
            ["run", "plugins.mlp", "--set", "hiden_dim=3"],
            ["unknown hyperparameter 'hiden_dim'", "did you mean 'hidden_dim'", "valid keys"],
        ),
        (["run", "plugins.mlp", "--set", "hidden_dim=abc"], ["hidden_dim='abc' is not a valid int"]),
        (["run", "plugins.mlp", "--set", "hidden_dim"], ["--set 'hidden_dim' is not of the form key=value"]),
        (["run", "plugins.mlp", "--steps", "0"], ["--steps '0' must be at least 1"]),
        (["run", "plugins.mlp", "--steps", "-5"], ["--steps '-5' must be at least 1"]),
        (["run", "plugins.mlp", "--epochs", "x"], ["--epochs 'x' is not a number"]),
        (["run", "plugins.mlp", "--seeds", "a,b"], ["--seeds 'a,b'"]),
        (["run", "plugins.mlp", "--loss", "wasserstein-typo"], ["unknown loss 'wasserstein-typo'", "non-saturating"]),
        (["run", "plugins.mlp", "--dataset", "cifar"], ["unknown dataset 'cifar'", "fashion-mnist"]),
        (["run", "plugins.mlp", "--config", "missing.toml"], ["missing.toml"]),
        (["show", "no-such-folder"], ["no-such-folder"]),
        (["export", "no-such-folder"], ["no-such-folder"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needles, tmp_path):
    assert_one_line_error(run_cli(*args, "--out", str(tmp_path)) if args[0] == "run" else run_cli(*args), *needles)


def test_missing_data_names_the_files_and_the_fix(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(
        "run",
        "plugins.mlp",
        *SMALL,
        "--data-root",
        str(empty),
        "--out",
        str(tmp_path / "o"),
        env={"GBENCH_DATA": str(empty), "GBENCH_CACHE": str(tmp_path / "cache")},
    )
    assert_one_line_error(result, "mnist train data not found", "train-images-idx3-ubyte", str(empty), "--data-root")


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert_one_line_error(
        run_cli("run", "plugins.mlp", *SMALL, "--out", str(blocker / "sub")),
        "cannot write to --out",
        str(blocker / "sub"),
    )


def test_bad_toml_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("stepz = 3\n")
    assert_one_line_error(
        run_cli("run", "plugins.mlp", "--config", str(config), "--out", str(tmp_path)),
        "unknown key 'stepz'",
        "valid keys",
    )


def test_every_command_has_working_help(capsys):
    from gbench.cli import COMMANDS, main

    for argv in [["--help"], *[[name, "--help"] for name in COMMANDS]]:
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0, argv
        assert "usage: gbench" in capsys.readouterr().out


def _main_error(capsys, *argv: str) -> tuple[int, str]:
    """gbench.cli.main in this process (the command's own code path, without a fresh interpreter's start)."""
    from gbench.cli import main

    code = main(list(argv))
    return code, capsys.readouterr().err.strip()


BOOL_AS_INT = "latent_dim=True has type bool, expected an int in 2..1024"


def test_true_is_no_int_in_set_config_file_and_suite_alike(tmp_path, capsys):
    # --set, through the real command
    assert_one_line_error(
        run_cli("run", "plugins.mlp", "--set", "latent_dim=True", "--out", str(tmp_path / "o")), BOOL_AS_INT
    )
    # a --config file's [params] and its run options
    config = tmp_path / "run.toml"
    config.write_text("[params]\nlatent_dim = true\n")
    code, err = _main_error(capsys, "run", "plugins.mlp", "--config", str(config), "--out", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 0 and BOOL_AS_INT in err, err
    config.write_text("steps = true\n")
    code, err = _main_error(capsys, "run", "plugins.mlp", "--config", str(config), "--out", str(tmp_path / "o"))
    assert code == 2 and f"config file {str(config)!r}: steps=True has type bool, expected an int in 1..inf" in err, err
    # a suite file: the same message, after where it is
    suite = tmp_path / "s.toml"
    suite.write_text(
        '[suite]\nname = "t"\n[base]\narchitecture = "mlp"\n[[variants]]\nname = "a"\nparams = { latent_dim = true }\n'
    )
    code, err = _main_error(capsys, "sweep", str(suite), "--out", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 0 and f"suite {str(suite)!r}: variant 'a': {BOOL_AS_INT}" in err, err
    suite.write_text('[suite]\nname = "t"\n[base]\narchitecture = "mlp"\nsteps = true\n[[variants]]\nname = "a"\n')
    code, err = _main_error(capsys, "sweep", str(suite), "--out", str(tmp_path / "o"))
    assert code == 2 and "variant 'a': steps=True has type bool, expected an int in 1..inf" in err, err
    assert not (tmp_path / "o").exists()


def test_architecture_picks_some_of_the_targets_architectures(tmp_path, capsys):
    result = run_cli(
        "run", "plugins.mlp", *SMALL, "--architecture", "deep-leakyrelu,mlp-batchnorm", "--out", str(tmp_path / "o")
    )
    assert result.returncode == 0, result.stderr
    assert sorted(r["architecture"] for r in csv.DictReader(open(tmp_path / "o" / "results.csv"))) == [
        "deep-leakyrelu",
        "mlp-batchnorm",
    ]
    code, err = _main_error(
        capsys, "run", "plugins.mlp", "--architecture", "mlp,mlp-batchnrom", "--out", str(tmp_path / "x")
    )
    assert code == 2 and err.count("\n") == 0, err
    for needle in (
        "architecture 'mlp-batchnrom'",
        "did you mean 'mlp-batchnorm'",
        "its architectures: deep-leakyrelu, mlp, mlp-batchnorm",
    ):
        assert needle in err, (needle, err)


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--device", "mps"], ["--device mps", "no MPS"]),
        (["--device", "cuda:1"], ["--device cuda:1"]),
        (["--device", "gpu"], ["--device 'gpu' is not one of auto, cpu, cuda, cuda:N or mps"]),
        (["--devices", "cuda:0,gpu"], ["--devices", "'gpu' is not cpu, cuda, cuda:N or mps"]),
        (["--devices", "cuda:0,cuda:0"], ["names a device twice"]),
        (["--devices", "cpu,mps"], ["--device mps", "no MPS"]),
    ],
)
def test_devices_this_machine_lacks_are_one_line(args, needles, tmp_path, capsys):
    import torch

    if torch.cuda.device_count() > 1 or (torch.backends.mps.is_available() and "mps" in " ".join(args)):
        pytest.skip("this machine has the device")
    if args[1] == "mps":  # through the real command once
        assert_one_line_error(run_cli("run", "plugins.mlp", *args, "--out", str(tmp_path / "o")), *needles)
        return
    try:
        code, err = _main_error(capsys, "run", "plugins.mlp", *args, "--out", str(tmp_path / "o"))
    except SystemExit as exited:  # argparse's own one-line error
        code, err = int(exited.code or 0), capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not (tmp_path / "o").exists()


def test_devices_are_parsed_into_the_settings_for_workers():
    from gbench.cli import build_parser
    from gbench.commands._options import settings_from_args

    args = build_parser("tune").parse_args(["tune", "plugins.mlp", "--devices", "cpu", "--device", "cpu"])
    settings = settings_from_args(args)
    assert settings.devices == ["cpu"] and [settings.device_for(i) for i in range(3)] == ["cpu", "cpu", "cpu"]
    from gbench.config import RunSettings

    two = RunSettings(devices=["cuda:0", "cuda:1"])
    assert [two.device_for(i) for i in range(3)] == ["cuda:0", "cuda:1", "cuda:0"] and RunSettings().device_for(
        5
    ) == "auto"
