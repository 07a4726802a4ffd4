"""The run options are declared once (gbench/options.py's OPTIONS), and every surface is derived from that table.

Each surface is read back from what users meet, not from the table's own helpers: the
``--help`` sections of run, tune and sweep (flags, help, checks), the keys a ``--config``
file and a suite's tables accept (through load_toml and parse_suite), the dataclasses'
defaults, and docs/running.md's options table. A fake option added to the table shows up
in each of them with no other change: adding an option is one entry. A RunConfig is
frozen: nothing changes one in place.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing

import pytest
from conftest import REPO

from gbench import config, options
from gbench.commands import run as run_command
from gbench.commands import sweep as sweep_command
from gbench.commands import tune as tune_command
from gbench.config import (
    EvalOptions,
    RunConfig,
    RunSettings,
    check_run_options,
    device_for,
    load_toml,
    settings_from_table,
)
from gbench.datasource import DataOptions
from gbench.errors import GbenchError
from gbench.options import OPTIONS, RunOption
from gbench.studies.sweep.suite import parse_suite

#: Options of `gbench run` that are the command's own, not run options (docs/running.md lists them too).
RUN_COMMAND_OWN = {"--rerun", "--log", "--mlflow-uri", "--quiet", "--verbose"}  # the command's own, not run options


def parser_for(command) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"gbench {command.__name__.rsplit('.', 1)[-1]}", exit_on_error=False)
    command.add_arguments(parser)
    return parser


def sections(parser: argparse.ArgumentParser) -> dict[str, dict[str, argparse.Action]]:
    """--help section title -> {flag: its action}."""
    return {
        str(group.title): {
            action.option_strings[-1]: action for action in group._group_actions if action.option_strings
        }
        for group in parser._action_groups
    }


def test_run_help_is_the_table_section_by_section_in_its_order():
    found = sections(parser_for(run_command))
    for section in (options.TRAINING, options.OWN_DATA, options.EVALUATION, options.POPULATIONS):
        declared = [o for o in OPTIONS if o.group == section]
        assert list(found[section]) == [o.flag for o in declared]
        for o in declared:
            action = found[section][o.flag]
            assert action.help == o.help_text(), o.name
            if o.default is not None and "{default}" in o.help:
                assert o.shown_default in str(action.help), o.name
            assert action.default is None  # unset: a --config file's value shows through
    assert options.option("log_every").help_text() == "record metrics every N steps (default 50)"
    assert options.option("schedule").help_text() == "discriminator step schedule (default k-steps)"
    assert options.option("epochs").help_text() == "training length in epochs (default 5)"


def test_tune_takes_the_run_options_and_precision_and_sweep_its_overrides():
    tune = {flag for section in sections(parser_for(tune_command)).values() for flag in section}
    assert {o.flag for o in OPTIONS if o.group in (options.TRAINING, options.EVALUATION)} | {"--precision"} <= tune
    assert not {o.flag for o in OPTIONS if o.group == options.POPULATIONS} - {"--precision"} & tune
    sweep = {
        flag: action for section in sections(parser_for(sweep_command)).values() for flag, action in section.items()
    }
    for name in ("out", "seeds", "device", "devices", "data_root", "population", "population_size"):
        o = options.option(name)
        assert sweep[o.flag].help == o.help_text("sweep") and sweep[o.flag].default is None, name
    assert sweep["--out"].help == "results folder (default runs/SUITE-NAME, or runs/SUITE-NAME-quick with --quick)"


def test_the_command_line_checks_come_from_the_table():
    parser = parser_for(run_command)
    assert parser.parse_args(["mlp", "--eval-samples", "0", "--epochs", "0.5", "--precision", "bf16"]).eval_samples == 0
    for argv, needle in [
        (["--steps", "0"], "--steps '0' must be at least 1"),
        (["--epochs", "x"], "--epochs 'x' is not a number"),
        (["--log-every", "1.5"], "--log-every '1.5' is not an integer"),
        (["--precision", "fp16"], "invalid choice: 'fp16'"),
        (["--devices", "gpu0"], "'gpu0' is not cpu, cuda, cuda:N or mps"),
    ]:
        with pytest.raises(argparse.ArgumentError, match=re.escape(needle)):
            parser.parse_args(["mlp", *argv])


def test_config_file_and_suite_keys_are_the_tables(tmp_path):
    file_keys = {o.name for o in OPTIONS if o.file}
    assert (
        config.CONFIG_FILE_KEYS == file_keys and "seeds" in file_keys and not {"set", "config", "devices"} & file_keys
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("stepz = 3\n")
    with pytest.raises(GbenchError) as error:
        load_toml(bad)
    assert str(error.value).endswith(f"valid keys: {', '.join(sorted(file_keys))}")

    suite_keys = sorted(o.name for o in OPTIONS if o.file and o.suite)
    assert "out" not in suite_keys and "seeds" not in suite_keys and "population" in suite_keys
    head = {"suite": {"name": "s"}, "variants": [{"name": "a"}]}
    with pytest.raises(GbenchError) as error:
        parse_suite({**head, "base": {"stepz": 3}})
    assert str(error.value).endswith(f"valid keys: {', '.join(suite_keys)}")
    with pytest.raises(GbenchError, match="unknown key 'out'"):
        parse_suite({**head, "base": {"out": "x"}})
    assert parse_suite({**head, "quick": {"seeds": [0]}}).quick == {"seeds": [0]}  # [quick] may also set the seeds


def test_file_values_are_checked_by_the_table_in_one_line():
    for table, needle in [
        ({"steps": True}, "steps=True has type bool, expected an int in 1..inf"),
        ({"eval_samples": -1}, "eval_samples=-1 is outside its range 0..inf"),
        ({"precision": "fp16"}, "precision='fp16' is not one of {fp32, bf16}"),
        ({"epochs": "many"}, "epochs='many' is not a valid float; give a float in 1e-09..inf, for example epochs=5.0"),
    ]:
        with pytest.raises(GbenchError) as error:
            check_run_options(table, "config file 'x.toml': ")
        assert str(error.value) == f"config file 'x.toml': {needle}"


def test_the_dataclasses_take_their_fields_defaults_from_the_table():
    """Every option that lands in a field has that field, of its
    type, with its default; and every such field is an option."""
    holders = {
        options.RUN: RunConfig,
        options.EVAL: EvalOptions,
        options.DATA: DataOptions,
        options.SETTINGS: RunSettings,
    }
    for o in OPTIONS:
        if o.lands == options.BY_HAND:
            continue
        holder = holders[o.lands]
        fields = {f.name: f for f in dataclasses.fields(holder)}
        assert o.field in fields, f"option {o.name!r} lands in {holder.__name__}.{o.field}, which has no such field"
        hints = typing.get_type_hints(holder)
        assert hints[o.field] in (o.type, o.type | None), o.name
        assert fields[o.field].default == o.default, o.name
    own = {"architecture", "seed", "params", "eval", "data", "run_id"}  # what each run sets, not an option
    run_fields = {f.name for f in dataclasses.fields(RunConfig)} - own
    assert run_fields == {o.field for o in OPTIONS if o.lands == options.RUN}
    # read from the files, not an option
    data_fields = {f.name for f in dataclasses.fields(DataOptions)} - {"content_hash"}
    assert data_fields == {o.field for o in OPTIONS if o.lands == options.DATA}
    assert RunSettings().seeds == [0] and settings_from_table({}) == RunSettings()


def test_every_option_reaches_its_field(tmp_path):
    """A file with every option set: each value lands where the table says (a run's config, its eval, the settings)."""
    values = {
        "dataset": "fashion-mnist",
        "epochs": 2.5,
        "steps": 7,
        "loss": "minimax",
        "schedule": "ttur",
        "device": "cpu",
        "threads": 2,
        "data_root": "d",
        "train_limit": 300,
        "log_every": 3,
        "checkpoint_every": 4,
        "out": "o",
        "eval_samples": 9,
        "eval_every": 5,
        "fid_extractor": "inception",
        "inception_weights": "w.pth",
        "population": "off",
        "population_size": 2,
        "precision": "bf16",
        "ema": 0.99,
        "image_size": 32,
        "channels": 1,
        "holdout": 0.25,
    }
    assert set(values) == {o.name for o in OPTIONS if o.lands != options.BY_HAND}
    path = tmp_path / "all.toml"
    path.write_text(
        "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in values.items())
        + 'architecture = "mlp"\nseeds = [1, 2]\nbatch_size = 20\n'
    )
    settings = settings_from_table(load_toml(path))
    run = settings.run
    for o in OPTIONS:
        if o.lands != options.BY_HAND:
            holder = {options.RUN: run, options.EVAL: run.eval, options.DATA: run.data, options.SETTINGS: settings}[
                o.lands
            ]
            assert getattr(holder, o.field) == values[o.name], o.name
    assert settings.architectures == ["mlp"] and settings.seeds == [1, 2] and settings.params == {"batch_size": 20}
    built = config.config_from_settings(settings, ("mlp", "minimax", "ttur"), 2, "r")
    assert dataclasses.replace(built, architecture="", seed=0, run_id=None) == run and (built.seed, built.run_id) == (
        2,
        "r",
    )


def test_a_new_option_is_one_table_entry(monkeypatch, tmp_path):
    """Added to OPTIONS alone, an option is a checked flag, a config file key and a suite key."""
    ema = RunOption(
        "ema_decay",
        float,
        "decay of the generator's moving average (default {default}; 0 turns it off)",
        0.0,
        low=0.0,
        high=1.0,
    )
    monkeypatch.setattr(options, "OPTIONS", (*OPTIONS, dataclasses.replace(ema, lands=options.BY_HAND)))
    parser = parser_for(run_command)
    assert (
        sections(parser)[options.TRAINING]["--ema-decay"].help
        == "decay of the generator's moving average (default 0; 0 turns it off)"
    )
    assert parser.parse_args(["mlp", "--ema-decay", "0.99"]).ema_decay == 0.99
    with pytest.raises(argparse.ArgumentError, match=re.escape("--ema-decay '2' must be at most 1.0")):
        parser.parse_args(["mlp", "--ema-decay", "2"])
    path = tmp_path / "ema.toml"
    path.write_text("ema_decay = 0.5\n")
    assert load_toml(path) == {"ema_decay": 0.5}
    with pytest.raises(GbenchError, match=re.escape("ema_decay=1.5 is outside its range 0.0..1.0")):
        check_run_options({"ema_decay": 1.5})
    assert parse_suite({"suite": {"name": "s"}, "base": {"ema_decay": 0.9}, "variants": [{"name": "a"}]}).base == {
        "ema_decay": 0.9
    }


def test_a_new_switch_is_one_table_entry(monkeypatch):
    """A bool option (--keep-going) is a switch on the command line and true/false in a file."""
    keep_going = RunOption("keep_going", bool, "train the other runs when one fails", lands=options.BY_HAND)
    monkeypatch.setattr(options, "OPTIONS", (*OPTIONS, keep_going))
    parser = parser_for(run_command)
    assert (
        parser.parse_args(["mlp", "--keep-going"]).keep_going is True and parser.parse_args(["mlp"]).keep_going is None
    )
    # checked as a plugin's bool is
    assert check_run_options({"keep_going": False, "steps": "3"}) == {"keep_going": False, "steps": 3}
    with pytest.raises(GbenchError, match=re.escape("keep_going=3 has type int, expected a bool")):
        check_run_options({"keep_going": 3})


def test_loss_and_schedule_defaults_are_spelled_once():
    """The issue's count: "k-steps" was the default in 7 places.
    Now only the table says it (plugins/ registers the names)."""
    for literal in ('"k-steps"', '"non-saturating"'):
        holders = [
            p.relative_to(REPO).as_posix() for p in sorted((REPO / "gbench").rglob("*.py")) if literal in p.read_text()
        ]
        assert holders == ["gbench/options.py"], literal


def test_running_md_shows_each_default():
    rows = [line for line in (REPO / "docs" / "running.md").read_text().splitlines() if line.startswith("| `--")]
    flags = {flag for row in rows for flag in re.findall(r"`(--[a-z-]+)", row.split(" | ")[0])}
    assert flags == {o.flag for o in OPTIONS if o.group is not None} | RUN_COMMAND_OWN
    for o in OPTIONS:
        if o.group is not None and o.default is not None:
            [row] = [row for row in rows if re.search(rf"`{re.escape(o.flag)}\b", row.split(" | ")[0])]
            # "0" not in "10000"
            shown = re.search(rf"(?<![\w.-]){re.escape(o.shown_default)}(?![\w-])", row.split(" | ", 1)[1])
            assert shown, f"docs/running.md's row of {o.flag} does not give its default {o.shown_default}"


def test_a_run_config_is_never_changed_in_place():
    run = RunConfig("mlp", steps=5)
    for thing, name, value in [
        (run, "params", {}),
        (run, "run_id", "x"),
        (run.eval, "samples", 0),
        (RunSettings(), "seeds", [1]),
    ]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(thing, name, value)
    assert dataclasses.replace(run, run_id="x").run_id == "x" and run.run_id is None


def test_one_device_rule_for_parallel_workers():
    assert [device_for(i, ["cuda:0", "cuda:1"], "cpu") for i in range(3)] == ["cuda:0", "cuda:1", "cuda:0"]
    # sweep: None is the suite's own device
    assert device_for(4, [], None) is None and device_for(4, [], "cpu") == "cpu"
    settings = RunSettings(run=RunConfig("", device="cpu"), devices=["cuda:1"])
    assert [settings.device_for(i) for i in range(2)] == ["cuda:1", "cuda:1"] and RunSettings().device_for(
        3
    ) == options.default("device")
