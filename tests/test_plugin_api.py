"""The third-party plugin API end to end.

- gbench.testing's contract checks pass for every built-in plugin, and catch
  broken architectures, losses and schedules;
- the example package examples/gbench-sn-mlp, really pip-installed, shows in
  `gbench plugins` and trains with `gbench run sn-mlp`;
- broken installed plugins (a fake distribution on PYTHONPATH: a .dist-info
  with entry_points.txt, which importlib.metadata finds like an installed one)
  are reported naming plugin, hook and problem, and never stop the others;
- GBENCH_DISABLE_PLUGIN_AUTOLOAD and GBENCH_PLUGINS.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import json
import os
import site
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, install_example_plugin, run_cli
from torch import nn

from gbench import testing
from gbench.commands.plugins import describe
from gbench.errors import GbenchError
from gbench.plugins.loading import load_plugins, resolve_target
from gbench.plugins.registry import Architecture, Loss, LossTerms, Nets, Schedule
from gbench.training.validate import validate

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "examples" / "gbench-sn-mlp"
TINY_RUN = ("--steps", "5", "--train-limit", "2000", "--eval-samples", "0")


# ---------------------------------------------------------------------------
# Fixtures: the example package installed; a broken distribution on the path
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sn_mlp():
    """examples/gbench-sn-mlp, pip-installed (editable) unless it already is (tests/conftest.py installs it before
    the workers start)."""
    install_example_plugin()
    importlib.invalidate_caches()
    distribution = metadata.distribution("gbench-sn-mlp")
    if importlib.util.find_spec("gbench_sn_mlp") is None:  # installed by this process: run its .pth here too
        site.addsitedir(str(distribution.locate_file("")))
    return distribution


BROKEN_MODULES = {
    "boom": "raise RuntimeError('the plugin author left a bug here')\n",
    "typo": """
        from gbench import hookimpl

        @hookimpl
        def gbench_register_architecture(register):
            pass
    """,
    "undecorated": """
        def gbench_register_losses(register):
            pass
    """,
    "dup": """
        from gbench import hookimpl
        from gbench.plugins.registry import Architecture
        import plugins.mlp

        @hookimpl
        def gbench_register_architectures(register):
            register(Architecture("mlp", plugins.mlp.build_mlp, (plugins.mlp.LATENT_DIM, plugins.mlp.HIDDEN_DIM)))
    """,
    "nodefault": """
        from gbench import hookimpl
        from gbench.plugins.registry import Schedule, Hyperparameter

        @hookimpl
        def gbench_register_schedules(register):
            register(Schedule("lazy", lambda params: None, (Hyperparameter("patience", None, low=1, high=9),)))
    """,
    "badrange": """
        from gbench import hookimpl
        from gbench.plugins.registry import Loss, Hyperparameter

        @hookimpl
        def gbench_register_losses(register):
            register(Loss("soft", lambda params: None, (Hyperparameter("margin", 5.0, low=0.0, high=1.0),)))
    """,
    # These load fine; `gbench run` must stop them before training.
    "flatgen": """
        from torch import nn
        from gbench import hookimpl
        from gbench.plugins.registry import Architecture, Nets

        def build(params, image_shape):  # forgot the Unflatten: (B, 784), not (B, 1, 28, 28)
            return Nets(nn.Sequential(nn.Linear(8, 784), nn.Tanh()), nn.Sequential(nn.Flatten(), nn.Linear(784, 1)), 8)

        @hookimpl
        def gbench_register_architectures(register):
            register(Architecture("flat-gen", build))
    """,
    "tenlogits": """
        from torch import nn
        from gbench import hookimpl
        from gbench.plugins.registry import Architecture, Nets

        def build(params, image_shape):  # a classifier's head: ten logits per image
            generator = nn.Sequential(nn.Linear(8, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
            return Nets(generator, nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), 8)

        @hookimpl
        def gbench_register_architectures(register):
            register(Architecture("ten-logits", build))
    """,
}


@pytest.fixture(scope="session")
def broken_root(tmp_path_factory) -> Path:
    """A folder that, on sys.path or PYTHONPATH, holds an 'installed' distribution
    `gbench-broken-plugins` with one gbench entry point per module above."""
    root = tmp_path_factory.mktemp("broken-site")
    dist_info = root / "gbench_broken_plugins-0.0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: gbench-broken-plugins\nVersion: 0.0.1\n")
    (dist_info / "entry_points.txt").write_text(
        "[gbench]\n" + "".join(f"{name} = gbench_test_{name}\n" for name in BROKEN_MODULES)
    )
    for name, source in BROKEN_MODULES.items():
        (root / f"gbench_test_{name}.py").write_text(textwrap.dedent(source))
    return root


@pytest.fixture
def with_broken(broken_root, monkeypatch):
    """Plugins loaded in this process with the broken distribution installed."""
    monkeypatch.syspath_prepend(str(broken_root))
    return load_plugins()


def cli_with_broken(broken_root: Path, *args: str, env: dict | None = None):
    path = os.pathsep.join(filter(None, [str(broken_root), os.environ.get("PYTHONPATH")]))
    return run_cli(*args, env={"PYTHONPATH": path, **(env or {})})


# ---------------------------------------------------------------------------
# gbench.testing: the built-ins pass the contract; broken things fail it
# ---------------------------------------------------------------------------

_LOADED = load_plugins()
_BUILTIN_OWNERS = [name for name, info in _LOADED.infos.items() if info.source.startswith("distribution gbench ")]
#: Built-in data sets whose files no test machine has (torchvision downloads them; nothing downloads at test time):
#: tests/test_vision_sets.py runs each loader on small files it writes in the set's real format.
ONLY_IN_THEIR_FORMAT_TESTS = {"cifar10", "cifar100", "svhn", "stl10", "celeba"}
BUILTINS = [
    (kind, name)
    for owner in _BUILTIN_OWNERS
    for kind in ("architecture", "loss", "schedule", "dataset")
    for name in _LOADED.registry.owned_by(kind, owner)
    if not (kind == "dataset" and name in ONLY_IN_THEIR_FORMAT_TESTS)
]


def test_the_data_sets_left_out_here_are_loaded_from_their_real_formats_elsewhere():
    vision_tests = (Path(__file__).parent / "test_vision_sets.py").read_text()
    for name in ONLY_IN_THEIR_FORMAT_TESTS:
        assert name in _LOADED.registry.names("dataset") and f'"{name}"' in vision_tests, name


CHECKS = {
    "architecture": testing.check_architecture,
    "loss": testing.check_loss,
    "schedule": testing.check_schedule,
    "dataset": testing.check_dataset,
}


def test_the_builtins_cover_every_kind():
    kinds = {kind for kind, _ in BUILTINS}
    assert kinds == {"architecture", "loss", "schedule", "dataset"}
    assert {("architecture", "mlp"), ("loss", "minimax"), ("schedule", "k-steps"), ("dataset", "fashion-mnist")} <= set(
        BUILTINS
    )


@pytest.mark.parametrize(("kind", "name"), BUILTINS, ids=[f"{kind}-{name}" for kind, name in BUILTINS])
def test_builtin_meets_the_plugin_contract(registry, kind, name):
    result = CHECKS[kind](name, registry=registry)
    if kind == "dataset":
        images, labels = result
        assert images.dtype == torch.uint8 and len(images) == len(labels) == 100
    else:
        assert result.status == "ok" and result.steps == 3


def _flat_generator(params, image_shape):
    return Nets(nn.Sequential(nn.Linear(8, 784), nn.Tanh()), nn.Sequential(nn.Flatten(), nn.Linear(784, 1)), 8)


def _unbounded_generator(params, image_shape):  # no Tanh: pixels leave [-1, 1]
    generator = nn.Sequential(nn.Linear(8, 784), nn.Unflatten(1, (1, 28, 28)))
    with torch.no_grad():
        generator[0].bias.fill_(3.0)
    return Nets(generator, nn.Sequential(nn.Flatten(), nn.Linear(784, 1)), 8)


class _DetachedGeneratorLoss:
    def discriminator_loss(self, discriminator, real, fake):
        return LossTerms(discriminator(fake).mean() - discriminator(real).mean())

    def generator_loss(self, discriminator, fake):
        return LossTerms(-discriminator(fake.detach()).mean())  # G never learns


class _FloatSteps:
    def learning_rates(self, lr):
        return lr, lr

    def discriminator_steps(self, step, last):
        return 1.5


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: testing.check_architecture(Architecture("flat", _flat_generator)),
            "architecture 'flat': generator output has shape (2, 784) for 2 noise vectors; expected (2, 1, 28, 28)",
        ),
        (
            lambda: testing.check_architecture(Architecture("unbounded", _unbounded_generator)),
            # caught before training now, as `gbench run` catches it
            "architecture 'unbounded': the generator's images span",
        ),
        (
            lambda: testing.check_loss(Loss("detached", lambda params: _DetachedGeneratorLoss())),
            "loss 'detached': generator_loss(D, fake)'s loss has no gradient for G's weights",
        ),
        (
            lambda: testing.check_schedule(Schedule("float-steps", lambda params: _FloatSteps())),
            "schedule 'float-steps': discriminator_steps(0, last) returned 1.5; expected an int >= 0",
        ),
        (lambda: testing.check_architecture("mlpp"), "unknown architecture 'mlpp'"),
    ],
    ids=["generator-shape", "generator-range", "loss-gradient", "schedule-steps", "unknown-name"],
)
def test_contract_catches_a_broken_spec(call, message):
    with pytest.raises(GbenchError) as caught:
        call()
    assert message in str(caught.value)
    if "unknown" not in message:  # names the plugin (the spec's module) and the hook
        assert f"plugin '{__name__}', hook gbench_register_" in str(caught.value)


# ---------------------------------------------------------------------------
# The example package, installed
# ---------------------------------------------------------------------------


def test_installed_example_passes_its_own_tests(sn_mlp):
    """Runs examples/gbench-sn-mlp/tests here (cheaper than a nested pytest), so they cannot rot."""
    spec = importlib.util.spec_from_file_location("gbench_sn_mlp_tests", PACKAGE / "tests" / "test_sn_mlp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = [function for name, function in vars(module).items() if name.startswith("test_")]
    assert len(tests) == 3
    for test in tests:
        test()


def test_gbench_plugins_table_lists_the_example_package_and_broken_ones(sn_mlp, broken_root):
    # wide: this test reads the cells, not the fit
    result = cli_with_broken(broken_root, "plugins", env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    assert "sn-mlp" in result.stdout and "gbench-sn-mlp (gbench_sn_mlp)" in result.stdout
    assert "power_iterations=1" in result.stdout and "int in 1..10" in result.stdout
    assert "hook API 1." in result.stdout and "6 broken" in result.stdout
    assert "RuntimeError: the plugin author left a bug here" in " ".join(result.stdout.split())


def test_gbench_plugins_json(sn_mlp):
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    from gbench.plugins.hookspecs import HOOK_API_VERSION

    assert report["hook_api_version"] == HOOK_API_VERSION and report["autoload"] is True and report["only"] == []
    plugins = {plugin["name"]: plugin for plugin in report["plugins"]}
    assert all(plugin["status"] == "ok" and plugin["error"] is None for plugin in plugins.values())
    sn = plugins["sn-mlp"]
    assert (sn["version"], sn["status"], sn["error"], sn["builtin"]) == (sn_mlp.version, "ok", None, False)
    assert (sn["distribution"], sn["module"], sn["hooks"]) == (
        "gbench-sn-mlp",
        "gbench_sn_mlp",
        ["gbench_register_architectures"],
    )
    assert Path(sn["path"]).resolve() == (PACKAGE / "gbench_sn_mlp.py").resolve()
    [architecture] = sn["architectures"]
    assert architecture["name"] == "sn-mlp" and sn["losses"] == sn["schedules"] == sn["datasets"] == []
    assert [
        (hp["name"], hp["type"], hp["default"], hp["low"], hp["high"]) for hp in architecture["hyperparameters"]
    ] == [
        ("latent_dim", "int", 64, 2, 1024),
        ("hidden_dim", "int", 256, 8, 2048),
        ("power_iterations", "int", 1, 1, 10),
    ]
    assert plugins["mlp"]["builtin"] is True and plugins["mlp"]["distribution"] == "gbench"
    assert {a["name"] for a in plugins["mlp"]["architectures"]} >= {"mlp", "mlp-batchnorm", "deep-leakyrelu"}
    assert next(d for d in plugins["datasets"]["datasets"] if d["name"] == "mnist")["image_shape"] == [1, 28, 28]


def test_gbench_run_trains_the_example_package(sn_mlp, tmp_path):
    result = run_cli(
        "run", "sn-mlp", "--steps", "10", "--train-limit", "2000", "--eval-samples", "0", "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "results.csv") as handle:
        [row] = list(csv.DictReader(handle))
    assert (row["architecture"], row["status"], row["steps"], row["power_iterations"]) == ("sn-mlp", "ok", "10", "1")


# ---------------------------------------------------------------------------
# Broken installed plugins: named, explained, and harmless to the others
# ---------------------------------------------------------------------------

LOAD_ERRORS = {
    "boom": 'Error importing plugin "boom" (gbench_test_boom): RuntimeError: the plugin author left a bug here',
    "typo": (
        "hook gbench_register_architecture (did you mean gbench_register_architectures?) matches no gbench hookspec"
    ),
    "undecorated": "hook gbench_register_losses is not decorated with @gbench.hookimpl",
    "dup": (
        "hook gbench_register_architectures failed: architecture name 'mlp' is registered "
        "twice: by plugin 'mlp' and by plugin 'dup'; rename one of them"
    ),
    "nodefault": "hook gbench_register_schedules failed: schedule 'lazy': hyperparameter 'patience' has no default",
    "badrange": (
        "hook gbench_register_losses failed: loss 'soft': default of hyperparameter "
        "'margin' is invalid: margin=5.0 is outside its range 0.0..1.0"
    ),
}


@pytest.mark.parametrize("name", LOAD_ERRORS)
def test_broken_plugin_is_recorded_with_hook_and_reason(with_broken, name):
    info = with_broken.infos[name]
    assert info.error == LOAD_ERRORS[name] or info.error.startswith(LOAD_ERRORS[name])
    assert info.source == f"distribution gbench-broken-plugins 0.0.1 (gbench_test_{name})"
    assert not any(owner == name for owner in with_broken.registry.owners.values())


def test_broken_plugins_leave_the_others_whole(with_broken):
    assert {info.name for info in with_broken.broken} == set(LOAD_ERRORS)
    assert with_broken.registry.owners[("architecture", "mlp")] == "mlp"
    assert {"flat-gen", "ten-logits"} <= set(with_broken.registry.names("architecture"))


@pytest.mark.parametrize(
    ("owner", "message"),
    [
        (
            "flatgen",
            "plugin 'flatgen', hook gbench_register_architectures, architecture 'flat-gen': generator "
            "output has shape (2, 784) for 2 noise vectors; expected (2, 1, 28, 28)",
        ),
        (
            "tenlogits",
            "plugin 'tenlogits', hook gbench_register_architectures, architecture 'ten-logits': "
            "discriminator output has shape (2, 10) for 2 images; expected one logit per image",
        ),
    ],
)
def test_validate_names_plugin_hook_and_shape(with_broken, owner, message):
    with pytest.raises(GbenchError) as caught:
        validate(with_broken.registry, owner)
    assert message in str(caught.value)


def test_validate_passes_every_loaded_builtin_with_its_defaults(registry):
    for owner in _BUILTIN_OWNERS:
        validate(registry, owner)


def test_plugins_report_marks_broken_ones(with_broken):
    plugins = {plugin["name"]: plugin for plugin in describe(with_broken)["plugins"]}
    for name, error in LOAD_ERRORS.items():
        assert plugins[name]["status"] == "broken" and plugins[name]["error"].startswith(error)
        assert plugins[name]["distribution"] == "gbench-broken-plugins" and plugins[name]["architectures"] == []
    assert plugins["mlp"]["status"] == plugins["flatgen"]["status"] == "ok"
    assert [a["name"] for a in plugins["flatgen"]["architectures"]] == ["flat-gen"]


def test_gbench_run_works_beside_broken_plugins(broken_root, tmp_path):
    result = cli_with_broken(broken_root, "run", "plugins.mlp", *TINY_RUN, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "warning: plugin 'boom' is broken and was skipped" in result.stderr
    with open(tmp_path / "results.csv") as handle:
        assert sorted(row["architecture"] for row in csv.DictReader(handle)) == [
            "deep-leakyrelu",
            "mlp",
            "mlp-batchnorm",
        ]


@pytest.mark.parametrize("name", LOAD_ERRORS)
def test_asking_for_a_broken_plugin_names_it_and_the_reason(with_broken, name):
    with pytest.raises(GbenchError) as caught:
        resolve_target(name)
    assert str(caught.value).startswith(f"plugin {name!r} is broken: {LOAD_ERRORS[name]}")
    assert "\n" not in str(caught.value)


def test_gbench_run_validates_before_training(broken_root, tmp_path):
    # GBENCH_PLUGINS=flatgen: the six broken plugins beside it do not even load, so no warnings precede the one line
    result = cli_with_broken(
        broken_root, "run", "flatgen", *TINY_RUN, "--out", str(tmp_path), env={"GBENCH_PLUGINS": "flatgen"}
    )
    assert_one_line_error(
        result,
        "plugin 'flatgen', hook gbench_register_architectures, architecture "
        "'flat-gen': generator output has shape (2, 784)",
    )
    assert not (tmp_path / "results.csv").exists() and not any(tmp_path.glob("flat-gen-*"))


# ---------------------------------------------------------------------------
# Switches: GBENCH_DISABLE_PLUGIN_AUTOLOAD, GBENCH_PLUGINS
# ---------------------------------------------------------------------------


def test_disable_autoload_keeps_only_the_builtins(sn_mlp, broken_root, monkeypatch):
    monkeypatch.syspath_prepend(str(broken_root))
    monkeypatch.setenv("GBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugins = load_plugins()
    assert sorted(plugins.infos) == sorted(_BUILTIN_OWNERS) and not plugins.broken
    assert "sn-mlp" not in plugins.registry.names("architecture")
    report = describe(plugins)
    assert report["autoload"] is False and all(plugin["builtin"] for plugin in report["plugins"])


def test_gbench_plugins_names_only_these(sn_mlp, broken_root, monkeypatch):
    monkeypatch.syspath_prepend(str(broken_root))
    monkeypatch.setenv("GBENCH_PLUGINS", "sn-mlp, flatgen")
    plugins = load_plugins()
    assert sorted(plugins.infos) == sorted([*_BUILTIN_OWNERS, "sn-mlp", "flatgen"]) and not plugins.broken
    assert plugins.registry.owners[("architecture", "sn-mlp")] == "sn-mlp"
    monkeypatch.setenv("GBENCH_PLUGINS", "flatgen")
    assert "sn-mlp" not in load_plugins().infos


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "GBENCH_PLUGINS",
            "other",
            "plugin 'sn-mlp' is installed but was not loaded: GBENCH_PLUGINS=other "
            "does not name it; add sn-mlp to it or unset it",
        ),
        (
            "GBENCH_DISABLE_PLUGIN_AUTOLOAD",
            "1",
            "plugin 'sn-mlp' is installed but was not loaded: GBENCH_DISABLE_PLUGIN_AUTOLOAD is set; unset it",
        ),
    ],
)
def test_asking_for_a_plugin_a_switch_left_out_says_which(sn_mlp, monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(GbenchError) as caught:
        resolve_target("sn-mlp")
    assert message in str(caught.value)


# ---------------------------------------------------------------------------
# The same plugin installed and given as a file (#17.3)
# ---------------------------------------------------------------------------


def test_an_installed_plugin_given_again_as_its_file_is_taken_from_the_file(sn_mlp, tmp_path):
    installed_source = Path(importlib.import_module("gbench_sn_mlp").__file__).read_bytes()
    copy = tmp_path / "copy_of_sn_mlp.py"
    copy.write_bytes(installed_source)
    for same in (PACKAGE / "gbench_sn_mlp.py", copy):  # the package's own file, and an identical copy elsewhere
        plugins = load_plugins(extra=[str(same)])
        assert plugins.registry.owners[("architecture", "sn-mlp")] == str(same)
        assert "sn-mlp" not in plugins.infos  # the installed one made way, silently


def test_a_different_plugin_of_the_same_name_says_how_to_choose(sn_mlp, tmp_path):
    other = tmp_path / "my_sn_mlp.py"
    other.write_text(
        "from gbench import hookimpl\nfrom gbench.plugins.registry import Architecture\nimport plugins.mlp as m\n\n"
        "@hookimpl\ndef gbench_register_architectures(register):\n"
        "    register(Architecture('sn-mlp', m.build_mlp, (m.LATENT_DIM, m.HIDDEN_DIM)))\n"
    )
    with pytest.raises(GbenchError) as caught:
        load_plugins(extra=[str(other)])
    message = str(caught.value)
    assert "\n" not in message
    for needle in (
        "'sn-mlp' is registered twice",
        "installed plugin 'sn-mlp'",
        "rename one of them",
        "GBENCH_DISABLE_PLUGIN_AUTOLOAD=1",
        "pip uninstall gbench-sn-mlp",
    ):
        assert needle in message, (needle, message)
    # and the way out it names works
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
        assert load_plugins(extra=[str(other)]).registry.owners[("architecture", "sn-mlp")] == str(other)
