"""--log tensorboard and --log mlflow, read back with each library's own reader
from a real tiny `gbench run` (the CLI, in a fresh process)."""

from __future__ import annotations

import json
import math

import pytest
from conftest import assert_one_line_error, run_cli

from gbench.plugins import observers

STEPS, EVAL_EVERY = 20, 10


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One `mlp` run, logged to both trackers, with evaluations at steps 10 and 20."""
    out = tmp_path_factory.mktemp("tracked")
    config = out / "mlp.toml"
    config.write_text('architecture = "mlp"\n')
    result = run_cli(
        "run",
        "plugins.mlp",
        "--config",
        str(config),
        "--steps",
        str(STEPS),
        "--train-limit",
        "500",
        "--log-every",
        "5",
        "--eval-samples",
        "200",
        "--eval-every",
        str(EVAL_EVERY),
        "--device",
        "cpu",
        "--out",
        str(out),
        "--log",
        "tensorboard,mlflow",
        env={"MLFLOW_TRACKING_URI": ""},
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = [path.parent for path in out.glob("*/summary.json")]
    return out, run_dir, json.loads((run_dir / "summary.json").read_text())


def test_tensorboard_has_the_curves_the_grid_and_the_hyperparameters(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    _, run_dir, summary = tracked
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    for tag in (
        "train/d_loss",
        "train/g_loss",
        "train/D(x)",
        "train/D(G(z))",
        "eval/fid",
        "eval/kid_mean",
        "eval/classes_covered",
    ):
        assert tag in scalars, (tag, scalars)
    assert [s.step for s in events.Scalars("train/d_loss")] == [5, 10, 15, 20]
    assert [s.value for s in events.Scalars("train/D(x)")][-1] == pytest.approx(summary["d_real"], rel=1e-5)
    fid = events.Scalars("eval/fid")
    assert [s.step for s in fid] == [EVAL_EVERY, STEPS]
    assert fid[-1].value == pytest.approx(summary["fid"], rel=1e-5)
    images = events.Images("samples")
    assert [image.step for image in images] == [EVAL_EVERY, STEPS]
    assert images[0].width == images[0].height == 8 * 28 + 9 * 2  # an 8x8 grid of 28x28 images, 2-pixel padding

    start = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    )
    hparams = start.session_start_info.hparams
    assert hparams["architecture"].string_value == "mlp"
    assert hparams["lr"].number_value == pytest.approx(2e-4)
    assert hparams["latent_dim"].number_value == summary["latent_dim"]
    assert "_hparams_/session_end_info" in events.PluginTagToContent("hparams")


def test_mlflow_has_parameters_metrics_over_steps_and_artifacts(tracked):
    from mlflow.tracking import MlflowClient

    out, run_dir, summary = tracked
    # the default local store, beside the run folders
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("gbench")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == summary["run_id"] and run.info.status == "FINISHED"
    assert run.data.tags["gbench.status"] == summary["status"]
    assert run.data.params["architecture"] == "mlp" and float(run.data.params["lr"]) == pytest.approx(2e-4)
    assert run.data.params["steps"] == str(STEPS)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "d_loss")] == [5, 10, 15, 20]
    fid = client.get_metric_history(run.info.run_id, "fid")
    assert [m.step for m in fid] == [EVAL_EVERY, STEPS]
    assert fid[-1].value == pytest.approx(summary["fid"], rel=1e-5)
    assert run.data.metrics["train_seconds"] == pytest.approx(summary["train_seconds"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"samples.png", "generator.pt", "samples"} <= artifacts, artifacts
    grids = {a.path for a in client.list_artifacts(run.info.run_id, "samples")}
    assert grids == {f"samples/step-{EVAL_EVERY:07d}.png", f"samples/step-{STEPS:07d}.png"}
    assert (out / "mlartifacts").is_dir()  # artifacts beside the runs, not in the working directory


def test_mlflow_uri_points_the_runs_at_another_store(tmp_path):
    store = tmp_path / "server.db"
    result = run_cli(
        "run",
        "plugins.mlp",
        "--steps",
        "4",
        "--train-limit",
        "200",
        "--log-every",
        "2",
        "--eval-samples",
        "0",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "runs"),
        "--log",
        "mlflow",
        "--mlflow-uri",
        f"sqlite:///{store}",
        cwd=tmp_path,  # a bare sqlite URI puts MLflow's artifacts in ./mlruns, as mlflow itself does
    )
    assert result.returncode == 0, result.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    runs = client.search_runs([client.get_experiment_by_name("gbench").experiment_id])
    assert sorted(run.data.params["architecture"] for run in runs) == ["deep-leakyrelu", "mlp", "mlp-batchnorm"]
    assert not (tmp_path / "runs" / "mlflow.db").exists()
    assert (tmp_path / "mlruns").is_dir()


def test_an_unknown_tracker_is_one_line_with_the_known_ones():
    result = run_cli("run", "plugins.mlp", "--log", "tensorbord")
    assert_one_line_error(result, "unknown tracker 'tensorbord'", "did you mean 'tensorboard'", "mlflow")


def test_a_missing_tracker_package_says_which_extra_to_install(monkeypatch, capsys):
    from gbench.cli import main

    # as if tensorboard were not installed
    monkeypatch.setitem(observers.TRACKERS, "tensorboard", "gbench_no_such_package")
    with pytest.raises(SystemExit) as stopped:
        main(["run", "plugins.mlp", "--log", "tensorboard"])
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and 'pip install "gbench[tensorboard]"' in lines[0], lines


def test_trackers_stay_quiet_unless_asked(monkeypatch):
    monkeypatch.delenv(observers.LOG_ENV, raising=False)
    assert not observers.enabled("tensorboard")
    monkeypatch.setenv(observers.LOG_ENV, "mlflow")
    assert observers.enabled("mlflow") and not observers.enabled("tensorboard")


def test_numbers_keep_nan_and_drop_text_and_flags():
    values = observers.numbers({"fid": float("nan"), "step": 3, "fid_extractor": "lenet", "ok": True}, skip=("step",))
    assert list(values) == ["fid"] and math.isnan(values["fid"])
