"""The plugin guide, docs/plugins.md, cannot drift from the code (datasette's
test_plugin_hooks_are_documented): every hook with its exact signature, every
field of the registry's types, the examples verbatim and working, the
entry-point section, the hook API version, the --json keys, the switches."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import struct
from pathlib import Path

import pluggy
import pytest

from gbench import testing
from gbench.commands.plugins import describe
from gbench.data import idx_dataset
from gbench.plugins import hookspecs, registry
from gbench.plugins.loading import load_plugins, resolve_target, signature_of

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "plugins.md"
EXAMPLES = sorted((REPO / "docs" / "examples").glob("*.py"))
PACKAGE = REPO / "examples" / "gbench-sn-mlp"


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE.read_text()


def hook_names() -> list[str]:
    manager = pluggy.PluginManager("gbench")
    manager.add_hookspecs(hookspecs)
    return sorted(name for name in vars(manager.hook) if name.startswith("gbench_"))


def section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n")
    ends = [m.start() for m in re.finditer(rf"\n#{{1,{len(level)}}} ", text[start + 1 :])]
    return text[start : start + 1 + ends[0]] if ends else text[start:]


def code_blocks(text: str, language: str) -> list[str]:
    return [block.strip("\n") for block in re.findall(rf"```{language}\n(.*?)```", text, re.S)]


# --- hooks --------------------------------------------------------------------


@pytest.mark.parametrize("hook", hook_names())
def test_plugin_hooks_are_documented_with_their_signature(guide, hook):
    assert f"\n### `{signature_of(hook)}`\n" in guide, f"docs/plugins.md needs a heading ### `{signature_of(hook)}`"


def test_documented_hooks_exist(guide):
    documented = re.findall(r"^### `(gbench_\w+)\(", guide, re.M)
    assert sorted(documented) == hook_names()


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_has_a_worked_example(hook):
    assert any(f"\ndef {hook}(" in path.read_text() for path in EXAMPLES), f"no docs/examples/*.py implements {hook}"


def test_the_guide_states_the_hook_api_version(guide):
    assert f'HOOK_API_VERSION = "{hookspecs.HOOK_API_VERSION}"' in guide
    assert re.fullmatch(r"\d+\.\d+", hookspecs.HOOK_API_VERSION)


# --- types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls",
    [
        registry.Hyperparameter,
        registry.Architecture,
        registry.Nets,
        registry.Loss,
        registry.LossTerms,
        registry.Schedule,
        registry.Dataset,
        registry.Metric,
        registry.MetricColumn,
        registry.MetricInputs,
    ],
)
def test_every_field_of_the_registry_types_is_documented(guide, cls):
    text = section(guide, f"### `gbench.registry.{cls.__name__}`")
    for field in dataclasses.fields(cls):
        assert f"`{field.name}`" in text, (
            f"field {field.name!r} of {cls.__name__} is missing from its section of docs/plugins.md"
        )


def test_every_argument_of_idx_dataset_is_documented(guide):
    text = section(guide, "### `gbench.data.idx_dataset`")
    for name in inspect.signature(idx_dataset).parameters:
        assert f"`{name}`" in text, name

    def written(p: inspect.Parameter) -> str:
        return (
            p.name
            if p.default is p.empty
            else f"{p.name}={json.dumps(p.default) if isinstance(p.default, str) else repr(p.default)}"
        )

    signature = f"idx_dataset({', '.join(map(written, inspect.signature(idx_dataset).parameters.values()))}) -> Dataset"
    assert signature in code_blocks(text, "python")


@pytest.mark.parametrize("function", testing.__all__)
def test_testing_calls_are_documented_with_their_arguments(guide, function):
    documented = re.search(rf"`{function}\((\w+), \*, ([^`]*)\)`", guide)
    assert documented, f"docs/plugins.md does not show {function}(...)"
    parameters = list(inspect.signature(getattr(testing, function)).parameters)
    assert documented.group(1) == parameters[0]
    assert re.findall(r"(\w+)=", documented.group(2)) == parameters[1:]


# --- worked examples ------------------------------------------------------------


def test_there_is_one_example_per_kind():
    assert [path.stem for path in EXAMPLES] == [
        "architecture",
        "conditional",
        "dataset",
        "diversity",
        "loss",
        "observer",
        "pacgan",
        "schedule",
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_in_the_guide_verbatim_and_short(guide, path):
    text = path.read_text().strip("\n")
    assert text in code_blocks(guide, "python"), (
        f"docs/plugins.md must include {path.name} verbatim in a ```python block"
    )
    assert len(text.splitlines()) < 40


def _load_example(name: str):
    plugins, owner = resolve_target(str(REPO / "docs" / "examples" / f"{name}.py"))
    assert not plugins.infos[owner].error
    return plugins.registry, owner


def test_architecture_example_trains():
    registry, owner = _load_example("architecture")
    assert registry.owned_by("architecture", owner) == ["mlp-dropout"]
    result = testing.check_architecture("mlp-dropout", registry=registry, params={"dropout": 0.5})
    assert result.steps == 3 and len(result.history) == 3


def test_loss_example_trains():
    registry, owner = _load_example("loss")
    assert registry.owned_by("loss", owner) == ["smoothed-bce"]
    result = testing.check_loss("smoothed-bce", registry=registry)
    assert all(0 < row["d_real"] < 1 for row in result.history)  # a probability: score="probability"


def test_schedule_example_trains_with_warmup_steps():
    registry, owner = _load_example("schedule")
    assert registry.owned_by("schedule", owner) == ["d-warmup"]
    result = testing.check_schedule("d-warmup", registry=registry, params={"warmup_steps": 2, "warmup_k": 3})
    # 2 warm-up steps of 3 D steps each, then one D step: 7 batches of 8 real images
    assert result.history[-1]["images"] == (3 + 3 + 1) * 8


def _write_idx(path: Path, array: bytes, dims: tuple[int, ...]) -> None:
    path.write_bytes(bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + array)


def test_dataset_example_reads_idx_files(tmp_path):
    registry, owner = _load_example("dataset")
    assert registry.owned_by("dataset", owner) == ["kmnist"]
    raw = tmp_path / "KMNIST" / "raw"
    raw.mkdir(parents=True)
    pixels = [i % 251 for i in range(5 * 28 * 28)]
    _write_idx(raw / "t10k-images-idx3-ubyte", bytes(pixels), (5, 28, 28))
    _write_idx(raw / "t10k-labels-idx1-ubyte", bytes([0, 1, 2, 9, 4]), (5,))
    images, labels = testing.check_dataset("kmnist", data_root=str(tmp_path), registry=registry)
    assert images.shape == (5, 1, 28, 28) and images.flatten().tolist() == pixels
    assert labels.tolist() == [0, 1, 2, 9, 4]
    assert registry.dataset("kmnist").class_names[9] == "wo"


def test_observer_example_hears_a_whole_run_in_order(tmp_path):
    from gbench.config import EvalOptions, RunConfig
    from gbench.training.runner import execute

    plugins = load_plugins(extra=[str(REPO / "docs" / "examples" / "observer.py")])
    config = RunConfig(
        "mlp", steps=6, train_limit=200, log_every=2, device="cpu", eval=EvalOptions(samples=100, every=3)
    )
    config = dataclasses.replace(config, params={"batch_size": 20})
    row = execute(config, plugins.registry, tmp_path)
    events = [json.loads(line) for line in (tmp_path / row["run_id"] / "events.jsonl").read_text().splitlines()]
    # rows every 2 steps and at each evaluation step (after the evaluation, so that the row holds its fid)
    assert [(e["event"], e.get("step")) for e in events] == [
        ("start", None),
        ("row", 2),
        ("evaluation", 3),
        ("row", 3),
        ("row", 4),
        ("row", 6),
        ("evaluation", 6),
        ("end", None),
    ]
    assert events[0] == {"event": "start", "architecture": "mlp", "lr": 2e-4}
    assert all(e["samples"] == [64, 1, 28, 28] for e in events if e["event"] == "evaluation")
    assert events[-1] == {"event": "end", "status": row["status"], "fid": row["fid"]}


def test_observer_example_hears_a_run_stopped_early(tmp_path):
    from gbench.config import EvalOptions, RunConfig
    from gbench.training.runner import RunHooks, execute

    class Pruned(Exception):
        pass

    def prune(step, metrics):  # what tune's pruner does at an evaluation
        raise Pruned

    plugins = load_plugins(extra=[str(REPO / "docs" / "examples" / "observer.py")])
    config = RunConfig(
        "mlp",
        steps=6,
        train_limit=200,
        log_every=2,
        device="cpu",
        eval=EvalOptions(samples=100, every=3),
        run_id="pruned",
    )
    config = dataclasses.replace(config, params={"batch_size": 20})
    with pytest.raises(Pruned):
        execute(config, plugins.registry, tmp_path, RunHooks(on_eval=prune))
    events = [json.loads(line) for line in (tmp_path / "pruned" / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["start", "row", "evaluation", "end"]
    assert events[-1] == {"event": "end", "status": "stopped", "fid": None}


# --- packaging, --json, switches ------------------------------------------------


def test_entry_point_section_is_five_lines_the_example_package_uses(guide):
    snippet = next(block for block in code_blocks(guide, "toml") if "[project.entry-points.gbench]" in block)
    lines = [line for line in snippet.splitlines() if line.strip()]
    assert len(lines) == 5
    pyproject = (PACKAGE / "pyproject.toml").read_text()
    assert all(line in pyproject.splitlines() for line in lines)
    assert pyproject.strip("\n") in code_blocks(guide, "toml"), (
        "the guide shows the example package's pyproject.toml verbatim"
    )


def test_json_keys_are_documented(guide):
    report = describe(
        load_plugins(
            extra=[str(REPO / "docs" / "examples" / "loss.py"), str(REPO / "docs" / "examples" / "dataset.py")]
        )
    )
    text = section(guide, "## `gbench plugins`")
    plugin = next(p for p in report["plugins"] if p["name"].endswith("loss.py"))  # smoothed-bce, with a hyperparameter
    dataset = next(p for p in report["plugins"] if p["datasets"])["datasets"][0]
    metric = next(p for p in report["plugins"] if p["metrics"])["metrics"][0]  # gbench's built-in metrics
    keys = {
        *report,
        *plugin,
        *plugin["losses"][0],
        *plugin["losses"][0]["hyperparameters"][0],
        *dataset,
        *metric,
        *metric["columns"][0],
    }
    missing = sorted(key for key in keys if f"`{key}`" not in text)
    assert not missing, f"--json keys missing from docs/plugins.md: {missing}"


def test_switches_are_documented(guide):
    text = section(guide, "## Choosing which plugins load")
    assert "`GBENCH_DISABLE_PLUGIN_AUTOLOAD=1`" in text and "`GBENCH_PLUGINS=" in text
