import textwrap

import pytest

from gbench.errors import GbenchError
from gbench.plugins.loading import load_plugins, resolve_target


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
        from gbench.plugins.registry import Architecture
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
    with pytest.raises(
        GbenchError,
        match="gbench_register_architecture .did you mean gbench_register_architectures.. matches no gbench hookspec",
    ):
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
        from gbench.plugins.registry import Architecture

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


def test_library_functions_take_the_registry_and_never_load_plugins(monkeypatch, registry, tmp_path):
    """Plugins load once, at the edge: a library call must not load a set of its own (#11.2)."""
    import inspect
    from pathlib import Path

    import gbench.plugins.loading
    from gbench.studies.sweep import suite
    from gbench.training import runner

    def refuse(*args, **kwargs):
        raise AssertionError("a library function loaded plugins itself")

    monkeypatch.setattr(gbench.plugins.loading, "load_plugins", refuse)
    monkeypatch.setattr(gbench.plugins.loading, "resolve_target", refuse)
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "suites" / "s1_mlp_capacity.toml"
    assert suite.load_suite(path).variants  # structure only, no registry: nothing loaded
    assert suite.load_suite(path, registry).runs(registry)  # checked with the caller's registry
    assert inspect.signature(runner.load_run).parameters["registry"].default is inspect.Parameter.empty
    with pytest.raises(GbenchError, match="not a finished gbench run folder"):
        runner.load_run(tmp_path, registry)
