import textwrap

import pytest

from gbench.errors import GbenchError
from gbench.plugins import load_plugins, resolve_target


def test_builtins_load_through_the_entry_point_group():
    plugins = load_plugins()
    assert not plugins.broken
    for name in ("mlp", "losses", "schedules", "datasets"):
        assert plugins.infos[name].source.startswith("distribution gbench"), plugins.infos[name]
    registry = plugins.registry
    assert {"mlp", "mlp-batchnorm", "deep-leakyrelu"} <= set(registry.names("architecture"))
    assert {"minimax", "non-saturating"} <= set(registry.names("loss"))
    assert "k-steps" in registry.names("schedule")
    assert {"mnist", "fashion-mnist"} <= set(registry.names("dataset"))
    assert registry.owned_by("architecture", "mlp") == ["deep-leakyrelu", "mlp", "mlp-batchnorm"]


def test_module_path_target_resolves_to_its_entry_point():
    plugins, owner = resolve_target("plugins.mlp")
    assert owner == "mlp"


def _write(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_file_target_registers_on_the_fly(tmp_path):
    path = _write(
        tmp_path,
        "tiny.py",
        """
        from gbench import hookimpl
        from gbench.registry import Architecture
        import plugins.mlp as m

        @hookimpl
        def gbench_register_architectures(register):
            register(Architecture("tiny-mlp", m.build_mlp, (m.LATENT_DIM, m.HIDDEN_DIM)))
    """,
    )
    plugins, owner = resolve_target(path)
    assert plugins.registry.owned_by("architecture", owner) == ["tiny-mlp"]


def test_misspelt_hook_is_an_error_not_silence(tmp_path):
    path = _write(
        tmp_path,
        "typo.py",
        """
        from gbench import hookimpl

        @hookimpl
        def gbench_register_architecture(register):
            pass
    """,
    )
    with pytest.raises(GbenchError, match="gbench_register_architecture .did you mean gbench_register_architectures.. matches no gbench hookspec"):
        resolve_target(path)


def test_plugin_import_error_names_the_plugin(tmp_path):
    path = _write(tmp_path, "broken.py", "import not_a_module_anywhere\n")
    with pytest.raises(GbenchError, match=r'Error importing plugin ".*broken.py": ModuleNotFoundError'):
        resolve_target(path)


def test_duplicate_name_from_a_plugin_names_both(tmp_path):
    path = _write(
        tmp_path,
        "dup.py",
        """
        from gbench import hookimpl
        from gbench.registry import Architecture

        @hookimpl
        def gbench_register_architectures(register):
            register(Architecture("mlp", lambda p, s: None))
    """,
    )
    with pytest.raises(GbenchError, match="'mlp' is registered twice: by plugin 'mlp' and by plugin"):
        resolve_target(path)


def test_unknown_target():
    with pytest.raises(GbenchError, match="no plugin or module named 'plugins.nope'"):
        resolve_target("plugins.nope")
