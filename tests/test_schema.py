"""gbench.results.schema: one results row, read the same way by the store, tables and statistics."""

import math
import textwrap

import pytest
from conftest import run_cli
from rich.console import Console

from gbench.analysis.comparisons import setting_names
from gbench.results import schema, store
from gbench.results.display import results_table, table_columns
from gbench.results.records import RunRecord

# A third-party plugin's hyperparameters, unknown to gbench's core.
PLUGIN = textwrap.dedent(
    """
    import math

    from torch import nn

    from gbench import hookimpl
    from gbench.plugins.registry import Architecture, Hyperparameter, Nets


    def build(params, image_shape):
        pixels = math.prod(image_shape)
        layers = [nn.Linear(params["latent_dim"], 32), nn.ReLU()]
        for _ in range(params["blocks"] - 1):
            layers += [nn.Linear(32, 32), nn.ReLU()]
        generator = nn.Sequential(*layers, nn.Linear(32, pixels), nn.Tanh(), nn.Unflatten(1, tuple(image_shape)))
        discriminator = nn.Sequential(
            nn.Flatten(), nn.Linear(pixels, 32), nn.LeakyReLU(0.2), nn.Dropout(params["dropout"]), nn.Linear(32, 1)
        )
        return Nets(generator=generator, discriminator=discriminator, latent_dim=params["latent_dim"])


    @hookimpl
    def gbench_register_architectures(register):
        register(Architecture("res-blocks", build, hyperparameters=(
            Hyperparameter("latent_dim", 8, low=2, high=64),
            Hyperparameter("blocks", 1, low=1, high=8),
            Hyperparameter("dropout", 0.25, low=0.0, high=0.9),
        )))
    """
)


def row(run_id, blocks, dropout=0.25, **more):
    base = {
        "run_id": run_id,
        "status": "ok",
        "architecture": "res-blocks",
        "loss": "non-saturating",
        "schedule": "k-steps",
        "dataset": "mnist",
    }
    return {
        **base,
        "seed": 0,
        "steps": 20,
        "batch_size": 100,
        "lr": 0.0002,
        "blocks": blocks,
        "dropout": dropout,
        "d_real": 0.5,
        **more,
    }


def text_of(table) -> str:
    console = Console(record=True, width=250)
    console.print(table)
    return console.export_text()


def headers(table) -> list[str]:
    return [str(column.header) for column in table.columns]


def test_the_kind_of_every_column():
    assert [schema.kind_of(name) for name in ("run_id", "seed", "status", "suite", "fid", "d_real", "kid_std")] == [
        "identity",
        "identity",
        "bookkeeping",
        "bookkeeping",
        "metric",
        "metric",
        "metric",
    ]
    # not listed: a plugin's hyperparameter, and metrics named like metrics (another issue adds them)
    assert schema.kind_of("blocks") == "hyperparameter" and schema.is_setting_column("blocks")
    assert schema.kind_of("fid_infinity") == "metric" and schema.kind_of("density") == "metric"
    assert (
        schema.is_setting_column("architecture")
        and not schema.is_setting_column("seed")
        and not schema.is_setting_column("trial")
    )
    assert schema.hyperparameter_columns([row("a", 2), {"hidden_dim": 4}]) == [
        "batch_size",
        "lr",
        "blocks",
        "dropout",
        "hidden_dim",
    ]


def test_a_plugin_hyperparameter_that_differs_gets_a_column_and_a_shared_one_the_caption():
    table = results_table([row("a", 2), row("b", 3)])
    assert "blocks" in headers(table) and "dropout" not in headers(table)
    text = text_of(table)
    assert "dropout 0.25" in table.caption and "batch 100" in table.caption and "lr 0.0002" in table.caption
    blocks = headers(table).index("blocks")
    cells = [list(column.cells) for column in table.columns][blocks]
    assert cells == ["2", "3"] and "res-blocks" in text
    # the other way round: blocks shared, dropout differs
    table = results_table([row("a", 2, 0.1), row("b", 2, 0.5)])
    assert "dropout" in headers(table) and "blocks" not in headers(table) and "blocks 2" in table.caption


def test_hyperparameters_of_one_plugin_only_show_as_missing_for_the_others():
    other = {"run_id": "c", "status": "ok", "architecture": "mlp", "seed": 0, "hidden_dim": 64}
    names = [column.name for column in table_columns([row("a", 2), other])]
    # the plugins' own knobs first, then gbench's
    assert names.index("blocks") < names.index("lr") < names.index("d_real")
    assert "hidden_dim" in names
    table = results_table([row("a", 2), other], width=1000)  # every column: this test is about the cells, not the fit
    cells = list(table.columns[headers(table).index("hidden_dim")].cells)
    assert cells == ["-", "64"]


def test_plain_runs_are_named_by_the_plugin_hyperparameter_that_differs():
    records = [RunRecord("", 0, row("a", 2, fid=10.0)), RunRecord("", 0, row("b", 3, fid=12.0, study="s", trial=4))]
    assert setting_names(records) == ["blocks=2", "blocks=3"]  # study and trial are bookkeeping, not settings


def test_results_row_orders_cleans_and_checks_its_parts():
    identity = {
        "run_id": "r",
        "architecture": "res-blocks",
        "loss": "non-saturating",
        "schedule": "k-steps",
        "dataset": "mnist",
        "seed": 1,
    }
    built = schema.results_row(
        identity, {"blocks": 2}, {"fid": math.nan, "d_real": 0.5}, {"status": "ok", "suite": "s"}
    )
    assert list(built) == [
        "run_id",
        "architecture",
        "loss",
        "schedule",
        "dataset",
        "seed",
        "status",
        "suite",
        "blocks",
        "fid",
        "d_real",
    ]
    assert built["fid"] is None
    with pytest.raises(ValueError, match="hyperparameter 'fid' has the name of a metric column"):
        schema.results_row(identity, {"fid": 2})
    with pytest.raises(ValueError, match="'reconstruction' is not a metric column"):
        schema.results_row(identity, {}, {"reconstruction": 1.0})
    with pytest.raises(ValueError, match="identity columns"):
        schema.results_row({"run_id": "r"}, {})
    assert schema.csv_columns([built])[:8] == [
        "run_id",
        "status",
        "architecture",
        "loss",
        "schedule",
        "dataset",
        "seed",
        "d_real",
    ]


def test_gbench_run_and_show_show_a_third_party_hyperparameter(tmp_path):
    plugin = tmp_path / "res_blocks.py"
    plugin.write_text(PLUGIN)
    out = tmp_path / "runs"
    small = ["--steps", "4", "--train-limit", "400", "--eval-samples", "0", "--log-every", "2", "--device", "cpu"]
    for blocks in (2, 3):
        result = run_cli("run", str(plugin), *small, "--set", f"blocks={blocks}", "--out", str(out))
        assert result.returncode == 0, result.stderr
    stored = store.read_results(out)
    assert sorted(r["blocks"] for r in stored) == ["2", "3"] and {r["dropout"] for r in stored} == {"0.25"}
    shown = run_cli("show", str(out))
    assert shown.returncode == 0, shown.stderr
    header = next(line for line in shown.stdout.splitlines() if "blocks" in line and "status" in line)
    assert "dropout" not in header
    assert "dropout 0.25" in shown.stdout and "latent_dim 8" in shown.stdout


def test_kid_is_shown_times_1000_as_papers_print_it_and_stored_as_computed():
    """Issue #34 point 6: KID on the scale papers use (x 10^3), named in the header; results.csv keeps the value."""
    from gbench.plugins.columns import format_number
    from gbench.report.grids import format_value
    from gbench.results.display import format_cell

    kid = schema.column("kid_mean")
    assert kid.header == "KID×10³" and kid.spec == "x1000:.2f"
    assert format_cell(0.001234, kid.spec) == "1.23" == format_value(0.001234, kid.spec)
    assert format_number(-0.0004, kid.spec) == "-0.40" and format_number(2.5, ".1f") == "2.5"
    table = results_table(
        [{"run_id": "r", "status": "ok", "architecture": "mlp", "seed": 0, "kid_mean": 0.001234}], width=1000
    )
    assert "KID×10³" in headers(table) and list(table.columns[headers(table).index("KID×10³")].cells) == ["1.23"]
