"""Metrics as plugins (issue #31 points 4 and 5): a new metric is one file, and columns are declared, not guessed.

docs/examples/diversity.py is installed the way a third party's plugin is (an
entry point in a dist-info on the path); its column must reach results.csv,
summary.json, `gbench show`, `gbench export` and the report, with the value
of an independent numpy computation. A hyperparameter or metric column named
like another column is refused at registration: one line, exit 2, nothing trained.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import assert_one_line_error, run_cli
from scipy.spatial.distance import pdist
from torch_fidelity.utils import create_feature_extractor

from gbench.data import load_split
from gbench.errors import GbenchError
from gbench.evaluation import extractors
from gbench.evaluation.evaluate import EvalSettings, evaluate_images
from gbench.evaluation.extractor_choice import resolve_extractor
from gbench.plugins import columns
from gbench.plugins.loading import load_plugins
from gbench.plugins.registry import Architecture, Hyperparameter, Metric, MetricColumn, Registry
from gbench.results import schema, store
from gbench.results.display import table_columns
from gbench.results.records import load_local

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "diversity.py"
SMALL = ["--steps", "4", "--train-limit", "400", "--eval-samples", "60", "--log-every", "2", "--device", "cpu"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """The example installed as a third party's plugin: its module and a dist-info with its entry point, on
    PYTHONPATH."""
    site = tmp_path_factory.mktemp("site")
    shutil.copy(EXAMPLE, site / "gbench_diversity.py")
    dist_info = site / "gbench_diversity-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: gbench-diversity\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[gbench]\ndiversity = gbench_diversity\n")
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_a_metric_in_one_file_reaches_results_show_export_and_the_report(installed, tmp_path):
    out = tmp_path / "runs"
    trained = run_cli(
        "run", "plugins.mlp", "--architecture", "mlp", *SMALL, "--seeds", "0,1", "--out", str(out), env=installed
    )
    assert trained.returncode == 0, trained.stderr
    rows = store.read_results(out)
    assert len(rows) == 2 and "diversity" in store.read_csv(out / "results.csv")[0]
    values = [float(row["diversity"]) for row in rows]
    assert all(value > 0 for value in values)
    summary = json.loads((out / rows[0]["run_id"] / "summary.json").read_text())
    assert summary["diversity"] == pytest.approx(values[0], rel=1e-12)

    shown = run_cli("show", str(out), env={**installed, "COLUMNS": "400"})  # wide enough for every column
    assert shown.returncode == 0, shown.stderr
    header = next(line for line in shown.stdout.splitlines() if "FID" in line and "status" in line)
    assert "diversity" in header
    assert all(f"{value:.2f}" in shown.stdout for value in values)

    exported = tmp_path / "all.csv"
    result = run_cli("export", str(out), "--format", "csv", "-o", str(exported), env=installed)
    assert result.returncode == 0, result.stderr
    assert sorted(pd.read_csv(exported)["diversity"]) == pytest.approx(sorted(values), rel=1e-9)

    report = tmp_path / "report"
    result = run_cli("report", str(out), "-o", str(report), env=installed)
    assert result.returncode == 0, result.stderr
    lines = (report / "report.md").read_text().splitlines()
    # a study table: one row per setting
    header = next(index for index, line in enumerate(lines) if "| diversity |" in line)
    column = [cell.strip() for cell in lines[header].split("|")].index("diversity")
    row = [cell.strip() for cell in lines[header + 2].split("|")]  # under the |---| line
    assert row[column] == f"{np.mean(values):.2f}"  # the mean over the two seeds, in the metric's declared format


def test_diversity_equals_numpy_mean_pairwise_distance_of_the_same_features(installed):
    registry = load_plugins(extra=[str(EXAMPLE)]).registry
    mnist = registry.dataset("mnist")
    fake = load_split(mnist, "train", limit=300)[0]
    real = load_split(mnist, "test")[0][:300]
    settings = EvalSettings(kid_subsets=0, precision_recall=False)
    result = evaluate_images(fake, mnist, real, settings, metrics=registry.metrics())
    # the extractor's features computed here, apart from the evaluation's batches, and the distances in numpy
    extractor = resolve_extractor(None, mnist)
    model = create_feature_extractor(
        extractor.name, [extractor.layer], cuda=False, verbose=False, **extractors.weights_argument(extractor)
    )
    with torch.no_grad():
        features = model(fake)[0].numpy().astype(np.float64)
    assert result.diversity == pytest.approx(pdist(features).mean(), rel=1e-6)
    assert result.as_row()["diversity"] == result.diversity and np.isfinite(result.fid)
    # a collapsed "generator" (one image 300 times) has no diversity at all
    collapsed = evaluate_images(fake[:1].repeat(300, 1, 1, 1), mnist, real, settings, metrics=registry.metrics())
    # cdist's matrix-product path leaves ~1e-7
    assert collapsed.diversity < 1e-5 * result.diversity and result.diversity > 1.0
    # only what is asked for is computed: without the class metrics' "labels" they are NaN, and the row has no diversity
    only = evaluate_images(
        fake, mnist, real, settings, metrics=[registry.get("metric", "fid"), registry.get("metric", "diversity")]
    )
    assert list(only.as_row())[:2] == ["fid", "diversity"] and only.fid == result.fid


def test_the_built_in_metrics_come_through_the_hook_and_declare_the_columns():
    plugins = load_plugins()
    assert plugins.registry.owned_by("metric", "metrics") == [
        "class_coverage",
        "classes",
        "fid",
        "fid_infinity",
        "intra_fid",
        "kid",
        "label_accuracy",
        "precision_recall",
        "stacked_modes",
    ]
    directions = {column.name: column.direction for column in plugins.registry.metric_columns()}
    assert directions["fid"] == "lower" and directions["precision"] == "higher" and directions["kid_std"] == ""
    assert schema.kind_of("coverage") == schema.METRIC and schema.kind_of("class_counts") == schema.METRIC
    # no name patterns: hyperparameters named like metrics are hyperparameters, and results_row takes them
    for name in ("class_weight", "recall_k", "train_steps", "fid_weight"):
        assert schema.kind_of(name) == schema.HYPERPARAMETER
    identity = {"run_id": "r", "architecture": "a", "loss": "l", "schedule": "s", "dataset": "mnist", "seed": 0}
    row = schema.results_row(identity, {"class_weight": 0.5, "recall_k": 3, "train_steps": 10}, {"fid": 3.0})
    assert row["recall_k"] == 3 and row["fid"] == 3.0


def _net_builder(params, image_shape):
    raise AssertionError("a refused plugin must not build")


@pytest.mark.parametrize(
    ("hyperparameter", "needles"),
    [
        (
            "fid",
            [
                "hyperparameter 'fid' has the name of column 'fid' of metric 'fid' (plugin 'metrics')",
                "rename the hyperparameter",
            ],
        ),
        (
            "steps",
            ["hyperparameter 'steps' has the name of gbench's bookkeeping column 'steps'", "rename the hyperparameter"],
        ),
    ],
)
def test_a_hyperparameter_named_like_a_column_is_refused_at_registration(hyperparameter, needles):
    registry = Registry()
    for metric in load_plugins().registry.metrics():
        registry.register("metric", metric, "metrics")
    with pytest.raises(GbenchError) as error:
        registry.register(
            "architecture",
            Architecture("odd", _net_builder, (Hyperparameter(hyperparameter, 1, low=0, high=9),)),
            "third",
        )
    assert all(needle in str(error.value) for needle in needles) and "\n" not in str(error.value)
    assert registry.names("architecture") == []


def test_a_metric_column_that_clashes_is_refused_naming_both():
    registry = Registry()
    with pytest.raises(
        GbenchError,
        match="plugin 'a', metric 'mine': column 'score' has the name of gbench's bookkeeping column 'score'; "
        "rename the metric's column",
    ):
        registry.register(
            "metric", Metric("mine", (MetricColumn("score", "higher"),), lambda inputs: {"score": 1.0}), "a"
        )
    registry.register(
        "metric", Metric("mine", (MetricColumn("sharpness", "higher"),), lambda inputs: {"sharpness": 1.0}), "a"
    )
    with pytest.raises(
        GbenchError,
        match=r"plugin 'b', metric 'theirs': column 'sharpness' has the name of column 'sharpness' "
        r"of metric 'mine' \(plugin 'a'\)",
    ):
        registry.register(
            "metric", Metric("theirs", (MetricColumn("sharpness", "higher"),), lambda inputs: {"sharpness": 2.0}), "b"
        )
    registry.register(
        "architecture", Architecture("net", _net_builder, (Hyperparameter("width", 4, low=1, high=8),)), "c"
    )
    with pytest.raises(
        GbenchError, match="column 'width' has the name of a hyperparameter of architecture 'net' \\(plugin 'c'\\)"
    ):
        registry.register("metric", Metric("wide", (MetricColumn("width"),), lambda inputs: {"width": 1}), "d")
    with pytest.raises(GbenchError, match="direction 'up'"):
        registry.register("metric", Metric("up", (MetricColumn("upness", "up"),), lambda inputs: {"upness": 1}), "d")  # type: ignore[arg-type]


HYPERPARAMETER_PLUGIN = textwrap.dedent(
    """
    from gbench import hookimpl
    from gbench.plugins.registry import Architecture, Hyperparameter


    def build(params, image_shape):
        raise AssertionError("never built: registration refuses the plugin")


    @hookimpl
    def gbench_register_architectures(register):
        register(Architecture("fid-net", build, hyperparameters=(Hyperparameter("fid", 1.0, low=0.0, high=2.0),)))
    """
)
METRIC_PLUGIN = textwrap.dedent(
    """
    from gbench import hookimpl
    from gbench.plugins.registry import Metric, MetricColumn


    @hookimpl
    def gbench_register_metrics(register):
        register(Metric("my-kid", (MetricColumn("kid_mean", "lower"),), lambda inputs: {"kid_mean": 0.0}))
    """
)


@pytest.mark.parametrize(
    ("source", "needles"),
    [
        (
            HYPERPARAMETER_PLUGIN,
            [
                "hyperparameter 'fid' has the name of column 'fid' of metric 'fid' (plugin 'metrics')",
                "rename the hyperparameter",
            ],
        ),
        (
            METRIC_PLUGIN,
            [
                "column 'kid_mean' has the name of column 'kid_mean' of metric 'kid' (plugin 'metrics')",
                "rename the metric's column",
            ],
        ),
    ],
    ids=["hyperparameter", "metric"],
)
def test_the_cli_refuses_a_clashing_plugin_in_one_line_before_training(tmp_path, source, needles):
    plugin = tmp_path / "clash.py"
    plugin.write_text(source)
    out = tmp_path / "runs"
    assert_one_line_error(run_cli("run", str(plugin), *SMALL, "--out", str(out)), *needles)
    assert not out.exists()


def test_a_results_csv_of_the_old_layout_reads_as_before(tmp_path):
    """Before metrics were declared, fid_extractor and fid_samples followed fid, and kid_std ... class_counts sorted
    after collapsed_step."""
    header = (
        "run_id,status,architecture,loss,schedule,dataset,seed,steps,epochs,batch_size,lr,d_loss,g_loss,d_real,d_fake,score,fid,fid_extractor,"
        "fid_samples,kid_mean,precision,recall,density,coverage,classes_covered,train_seconds,eval_seconds,images_per_second,device,population,"
        "train_precision,diverged_step,collapsed_step,class_counts,class_kl,created,fid_infinity,hidden_dim,inception_score,kid_std"
    )
    values = (
        "r1,ok,mlp,non-saturating,k-steps,mnist,0,4,1.0,100,0.0002,1.1,0.7,0.6,0.5,probability,117.9,lenet-mnist@712ee890,"
        "60,3.1,0.1,0.0,0.04,0.0,2,"
    )
    values += "5.0,6.9,80.7,cpu,1,fp32,,4,0 32 0 0 28 0 0 0 0 0,1.55,2026-12-06T10:19:10,,256,1.0,0.26"
    (tmp_path / "results.csv").write_text(header + "\n" + values + "\n")
    (row,) = [record.row for record in load_local(tmp_path)]
    kinds = {name: schema.kind_of(name) for name in row}
    assert [name for name, kind in kinds.items() if kind == schema.HYPERPARAMETER] == ["batch_size", "lr", "hidden_dim"]
    assert all(
        kinds[name] == schema.METRIC
        for name in ("fid", "fid_infinity", "kid_std", "inception_score", "class_counts", "fid_extractor")
    )
    shown = [column.name for column in table_columns([row])]
    assert {"fid", "kid_mean", "precision", "classes_covered", "fid_extractor"} <= set(shown) and "hidden_dim" in shown
    assert row["fid"] == 117.9 and row["class_counts"] == "0 32 0 0 28 0 0 0 0 0"


def test_the_installed_plugins_columns_are_remembered_for_readers_that_load_no_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("GBENCH_CACHE", str(tmp_path))
    loaded = load_plugins().registry.metric_columns()  # writes the memo of the installed plugins' columns
    monkeypatch.setattr(columns, "_declared", None)  # a new process: nothing loaded yet
    assert columns.remembered() == loaded and columns.declared() == loaded
    memo = tmp_path / "metric-columns.json"
    stored = json.loads(memo.read_text())
    monkeypatch.setattr(columns, "_declared", None)
    memo.write_text(json.dumps({**stored, "installed": [*stored["installed"], "other=other (other 1.0)"]}))
    assert columns.remembered() is None  # other plugins installed since: the memo does not count
    memo.write_text('{"installed": ')  # damaged: load the plugins instead, no error
    assert columns.remembered() is None
    load_plugins(extra=[str(EXAMPLE)])  # a file given on the command line is not an installed plugin: no memo of it
    assert memo.read_text() == '{"installed": '


def test_a_metric_that_fails_or_returns_other_columns_is_one_line_naming_it():
    registry = load_plugins().registry
    mnist = registry.dataset("mnist")
    images = load_split(mnist, "test")[0][:60]
    settings = EvalSettings(kid_subsets=0, precision_recall=False)
    broken = Metric("broken", (MetricColumn("sharpness", "higher"),), lambda inputs: 1 / 0)
    with pytest.raises(
        GbenchError, match="metric 'broken' failed: ZeroDivisionError: division by zero; fix its compute"
    ):
        evaluate_images(images, mnist, images, settings, metrics=[registry.get("metric", "fid"), broken])
    other = Metric("other", (MetricColumn("sharpness", "higher"),), lambda inputs: {"blur": 1.0})
    with pytest.raises(
        GbenchError, match=r"metric 'other' returned \['blur'\] but declares the columns \['sharpness'\]"
    ):
        evaluate_images(images, mnist, images, settings, metrics=[other])


def test_a_metric_of_other_data_sets_writes_nan_and_keeps_no_samples(monkeypatch, tmp_path):
    """``Metric.datasets``: Stacked MNIST's modes need the generated images; on MNIST nothing may keep them for it."""
    monkeypatch.setenv("GBENCH_CACHE", str(tmp_path / "cache"))
    mnist = load_plugins().registry.dataset("mnist")
    seen: list[object] = []

    def probe(inputs: columns.MetricInputs) -> dict[str, float]:
        seen.append(inputs.samples)
        return {"probe": 1.0}

    def elsewhere(inputs: columns.MetricInputs) -> dict[str, float]:
        raise AssertionError("computed on a data set it does not measure")

    metrics = [
        columns.Metric("probe", (columns.MetricColumn("probe", "higher"),), probe),
        columns.Metric(
            "elsewhere",
            (columns.MetricColumn("elsewhere", "higher"),),
            elsewhere,
            needs=("samples",),
            datasets=("stacked-mnist",),
        ),
    ]
    real = load_split(mnist, "test")[0][:200]
    result = evaluate_images(
        load_split(mnist, "train", limit=100)[0],
        mnist,
        real,
        EvalSettings(kid_subsets=0, precision_recall=False),
        metrics=metrics,
    )
    assert seen == [None] and result.values["probe"] == 1.0 and np.isnan(result.values["elsewhere"])
    assert list(result.values) == ["probe", "elsewhere"]
