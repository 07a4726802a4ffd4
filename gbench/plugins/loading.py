"""Build a plugin manager, load plugins, and fill a registry from them.

No global state: every call to :func:`load_plugins` makes a fresh pluggy
manager, so tests stay isolated. Built-in plugins are ordinary entry points of
the ``gbench`` group, loaded exactly like third-party ones.

Environment switches (as pytest's and llm's):

- ``GBENCH_DISABLE_PLUGIN_AUTOLOAD=1``: load only gbench's own built-in
  entry points, no third-party ones.
- ``GBENCH_PLUGINS=name1,name2``: load only these third-party entry points
  (the built-ins always load).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from gbench import env
from gbench.errors import GbenchError
from gbench.names import closest, missing_file
from gbench.plugins import columns, hookspecs
from gbench.plugins.registry import Registry

GROUP = "gbench"
#: registration hook -> the kind of thing it registers
HOOKS = {
    # metrics first: a hyperparameter named like a metric column is then refused on the plugin that declares it
    "gbench_register_metrics": "metric",
    "gbench_register_architectures": "architecture",
    "gbench_register_losses": "loss",
    "gbench_register_schedules": "schedule",
    "gbench_register_datasets": "dataset",
}
#: Every hook a plugin may implement: the registration hooks above and the lifecycle hooks (gbench.plugins.observers).
#: every hook a plugin may implement: the registration hooks above and the observer hooks
ALL_HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("gbench_"))


@dataclass
class PluginInfo:
    """One loaded (or broken) plugin, for ``gbench plugins`` and error messages."""

    name: str
    source: str  # "distribution gbench 0.1.0", "module plugins.mlp", "file path/x.py"
    version: str = ""
    hooks: list[str] = field(default_factory=list)
    error: str | None = None  # why it is broken, when it is
    distribution: str = ""  # the installed distribution it came from ("" for module and file targets)


@dataclass
class Plugins:
    """A plugin manager, the registry it filled, and what was loaded."""

    manager: pluggy.PluginManager
    registry: Registry
    infos: dict[str, PluginInfo]

    @property
    def broken(self) -> list[PluginInfo]:
        return [info for info in self.infos.values() if info.error]


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(GROUP)
    manager.add_hookspecs(hookspecs)
    return manager


def _unknown_hooks(module: Any) -> list[str]:
    """Hook-like names that match no hookspec: a misspelt hook must not pass silently."""
    unknown = []
    for attr in dir(module):
        if attr.startswith("gbench_") and attr not in ALL_HOOKS and callable(getattr(module, attr)):
            unknown.append(attr)
    return unknown


def _hooks_of(module: Any) -> list[str]:
    return [name for name in ALL_HOOKS if callable(getattr(module, name, None))]


def _register(manager: pluggy.PluginManager, module: Any, info: PluginInfo) -> bool:
    """Register one module, recording (not raising) why it is unusable."""
    unknown = _unknown_hooks(module)
    if unknown:
        close = {name: closest(name, ALL_HOOKS) for name in unknown}
        hints = "; ".join(f"{n} (did you mean {c}?)" if c else n for n, c in close.items())
        info.error = f"hook {hints} matches no gbench hookspec; known hooks: {', '.join(ALL_HOOKS)}"
        return False
    undecorated = [name for name in _hooks_of(module) if not hasattr(getattr(module, name), f"{GROUP}_impl")]
    if undecorated:  # pluggy would skip it silently
        info.error = (
            f"hook {undecorated[0]} is not decorated with @gbench.hookimpl, so gbench would never "
            "call it; add `@hookimpl` (from gbench import hookimpl) above it"
        )
        return False
    try:
        manager.register(module, name=info.name)
    except (pluggy.PluginValidationError, ValueError) as error:
        # pluggy's message spans lines ("Plugin .. for hook ..", the definition, the reason): keep it to one.
        lines = str(error).splitlines()
        hook = next((name for name in ALL_HOOKS if f"'{name}'" in lines[0]), None) if lines else None
        if hook and len(lines) >= 3:
            info.error = (
                f"hook {lines[1].removeprefix('hookimpl definition: ')} does not match "
                f"its hookspec {signature_of(hook)}: {lines[-1]}"
            )
        else:
            info.error = f"invalid hook implementation: {' '.join(str(error).split())}"
        return False
    info.hooks = _hooks_of(module)
    return True


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(
        metadata.entry_points(group=GROUP), key=lambda ep: (ep.dist.name != "gbench" if ep.dist else True, ep.name)
    )


def import_target(target: str) -> tuple[ModuleType, str]:
    """Import a plugin given as a dotted module path or a ``.py`` file path."""
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = Path(target)
        if not path.is_file():
            raise missing_file("plugin file", target, example="a .py file with @hookimpl functions, or a module name")
        module_name = f"gbench_file_plugin_{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise GbenchError(
                f"plugin file {target!r} cannot be imported as Python; give a "
                "path to a .py file with @hookimpl functions"
            )
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as error:  # a plugin's own bug: name it, no traceback
            del sys.modules[module_name]
            raise GbenchError(f'Error importing plugin "{target}": {type(error).__name__}: {error}') from None
        return module, f"file {path}"
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as error:
        if error.name and target.startswith(error.name):
            raise unknown_target(target) from None
        raise GbenchError(f'Error importing plugin "{target}": {type(error).__name__}: {error}') from None
    except Exception as error:
        raise GbenchError(f'Error importing plugin "{target}": {type(error).__name__}: {error}') from None
    return module, f"module {target}"


def unknown_target(target: str) -> GbenchError:
    """No plugin or module ``target``: the closest installed plugin or
    module (``plugins.mpl``: plugins.mlp), else the list of them."""
    known = sorted({name for ep in _entry_points() for name in (ep.name, ep.module)})
    close = closest(target, known)
    if close:
        return GbenchError(f"no plugin or module named {target!r} (did you mean {close!r}?)")
    return GbenchError(
        f"no plugin or module named {target!r}; installed plugins and their "
        f"modules: {', '.join(known)}; or give a path/to/plugin.py"
    )


def _same_code(module: ModuleType, other: object) -> bool:
    """Whether two plugin modules are one file, or two files of identical source."""
    mine, theirs = getattr(module, "__file__", None), getattr(other, "__file__", None)
    if not mine or not theirs or other is module:
        return False
    try:
        return Path(mine).resolve() == Path(theirs).resolve() or Path(mine).read_bytes() == Path(theirs).read_bytes()
    except OSError:
        return False


def load_plugins(extra: list[str] | tuple[str, ...] = ()) -> Plugins:
    """Load the entry-point plugins (and ``extra`` module/file targets) into a fresh registry.

    A broken entry-point plugin is recorded with its reason and skipped, so it
    never stops the others; a broken ``extra`` target raises, since the user
    asked for it by name.
    """
    manager = _new_manager()
    infos: dict[str, PluginInfo] = {}
    only = env.names_list("GBENCH_PLUGINS")
    no_autoload = env.flag("GBENCH_DISABLE_PLUGIN_AUTOLOAD")

    for ep in _entry_points():
        builtin = ep.dist is not None and ep.dist.name == "gbench"
        if not builtin and (no_autoload or (only and ep.name not in only)):
            continue
        dist = f"distribution {ep.dist.name} {ep.dist.version}" if ep.dist else "entry point"
        info = PluginInfo(
            name=ep.name,
            source=f"{dist} ({ep.value})",
            version=ep.dist.version if ep.dist else "",
            distribution=ep.dist.name if ep.dist else "",
        )
        infos[ep.name] = info
        try:
            module = ep.load()
        except Exception as error:  # any failure inside a third-party import
            info.error = f'Error importing plugin "{ep.name}" ({ep.value}): {type(error).__name__}: {error}'
            continue
        _register(manager, module, info)

    for target in extra:
        module, source = import_target(target)
        existing = manager.get_name(module) if manager.is_registered(module) else None
        if existing:  # already loaded through its entry point
            continue
        for name in [n for n in infos if _same_code(module, manager.get_plugin(n))]:
            # An installed plugin given again as its own file (or a copy of it): the file wins,
            # silently; keeping both would register every name twice.
            manager.unregister(name=name)
            del infos[name]
        info = PluginInfo(name=target, source=source, version=getattr(module, "__version__", ""))
        if not _register(manager, module, info):
            raise GbenchError(f"plugin {target!r}: {info.error}")
        infos[target] = info

    registry = Registry(hook=manager.hook)
    for hook_name, kind in HOOKS.items():
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            info = infos[impl.plugin_name]
            if info.error:
                continue

            def register(spec: Any, _kind: str = kind, _owner: str = impl.plugin_name) -> None:
                clash = registry.owners.get((_kind, str(getattr(spec, "name", ""))))
                installed = infos[clash].distribution if clash in infos else ""
                if clash is not None and _owner in extra and installed and installed != "gbench":
                    raise GbenchError(
                        f"{_kind} name {spec.name!r} is registered twice: by the installed plugin "
                        f"{clash!r} and by {_owner!r}, whose code differs; "
                        "rename one of them, or set GBENCH_DISABLE_PLUGIN_AUTOLOAD=1 to load no "
                        f"installed plugins, or pip uninstall {installed}"
                    )
                registry.register(_kind, spec, _owner)

            try:
                impl.function(register=register)
            except Exception as error:
                # a registry error already starts "plugin 'name', ...": the prefix below names the plugin once
                reason = (
                    str(error).removeprefix(f"plugin {impl.plugin_name!r}, ")
                    if isinstance(error, GbenchError)
                    else f"{type(error).__name__}: {error}"
                )
                info.error = f"hook {hook_name} failed: {reason}"
                registry.unregister_owner(impl.plugin_name)
    for target in extra:
        if target in infos and infos[target].error:
            raise GbenchError(f"plugin {target!r}: {infos[target].error}")
    columns.declare(registry.metric_columns(), installed_only=not extra)
    return Plugins(manager=manager, registry=registry, infos=infos)


def plugin_name_for_target(plugins: Plugins, target: str) -> str:
    """The registered plugin name a ``gbench run TARGET`` refers to."""
    if target in plugins.infos:
        return target
    module = sys.modules.get(target)
    if module is not None and plugins.manager.is_registered(module):
        return plugins.manager.get_name(module) or target
    raise GbenchError(f"no plugin named {target!r}; installed: {', '.join(sorted(plugins.infos))}")


def resolve_target(target: str, extra: list[str] | tuple[str, ...] = ()) -> tuple[Plugins, str]:
    """Load plugins so that ``target`` (entry-point name, module or file) is among them, and the ``extra``
    ones (``--plugin FILE.py``, a suite's ``plugins``: a dataset plugin beside any target)."""
    plugins = load_plugins(extra=list(extra))
    if target in plugins.infos:
        info = plugins.infos[target]
        if info.error:
            raise GbenchError(f"plugin {target!r} is broken: {info.error}")
        return plugins, target
    for name, info in plugins.infos.items():  # a module path that an entry point already loads
        if not info.error and info.source.endswith(f"({target})"):
            return plugins, name
    if any(ep.name == target for ep in _entry_points()):  # installed, but an env switch left it out
        if env.flag("GBENCH_DISABLE_PLUGIN_AUTOLOAD"):
            why = "GBENCH_DISABLE_PLUGIN_AUTOLOAD is set; unset it to load third-party plugins"
        else:
            why = (
                f"GBENCH_PLUGINS={os.environ.get('GBENCH_PLUGINS', '')} does not "
                f"name it; add {target} to it or unset it"
            )
        raise GbenchError(f"plugin {target!r} is installed but was not loaded: {why}")
    plugins = load_plugins(extra=[*extra, target])
    return plugins, plugin_name_for_target(plugins, target)


def signature_of(hook_name: str) -> str:
    """The signature of a hookspec as the plugin guide writes it (annotations as written, unquoted)."""
    signature = inspect.signature(getattr(hookspecs, hook_name))

    def text(annotation: Any) -> str:
        return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)

    params = ", ".join(
        p.name if p.annotation is p.empty else f"{p.name}: {text(p.annotation)}" for p in signature.parameters.values()
    )
    returns = "" if signature.return_annotation is signature.empty else f" -> {text(signature.return_annotation)}"
    return f"{hook_name}({params}){returns}"
