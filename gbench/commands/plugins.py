"""gbench plugins: what each loaded plugin provides, and which are broken and why."""

from __future__ import annotations

import argparse
import json
from importlib import metadata
from typing import Any

from rich.table import Table

from gbench import __version__, env
from gbench.plugins.hookspecs import HOOK_API_VERSION
from gbench.plugins.loading import GROUP, PluginInfo, Plugins, load_plugins
from gbench.plugins.registry import KINDS, Hyperparameter
from gbench.results import display

HELP = (
    "List the loaded plugins: version, origin, and the architectures, "
    "losses, schedules, datasets and metrics each provides."
)

#: kind -> its key in --json output (and its heading in the table)
PLURAL = {
    "architecture": "architectures",
    "loss": "losses",
    "schedule": "schedules",
    "dataset": "datasets",
    "metric": "metrics",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="also load these module paths or path/to/file.py plugins (to check one before packaging it)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON for scripts instead of a table (keys are stable; see docs/plugins.md)",
    )


def run(args: argparse.Namespace) -> int:
    plugins = load_plugins(extra=args.targets)
    report = describe(plugins)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        display.stdout.print(table(report))
    return 0


# ---------------------------------------------------------------------------
# The report: plain data, printed as JSON or as a table
# ---------------------------------------------------------------------------


def describe(plugins: Plugins) -> dict[str, Any]:
    """``{"gbench_version", "hook_api_version", "autoload", "only", "plugins": [...]}``, one entry per plugin."""
    entry_points = {ep.name: ep for ep in metadata.entry_points(group=GROUP)}
    only = env.names_list("GBENCH_PLUGINS")
    autoload = not env.flag("GBENCH_DISABLE_PLUGIN_AUTOLOAD")
    return {
        "gbench_version": __version__,
        "hook_api_version": HOOK_API_VERSION,
        "autoload": autoload,
        "only": only,
        "plugins": [_plugin(plugins, info, entry_points.get(info.name)) for info in plugins.infos.values()],
    }


def _plugin(plugins: Plugins, info: PluginInfo, ep: metadata.EntryPoint | None) -> dict[str, Any]:
    module = plugins.manager.get_plugin(info.name)
    # None: a module or file target
    loaded_from = ep if ep is not None and info.source.endswith(f"({ep.value})") else None
    entry: dict[str, Any] = {
        "name": info.name,
        "version": info.version or None,
        "status": "broken" if info.error else "ok",
        "error": info.error,
        "builtin": bool(loaded_from and loaded_from.dist is not None and loaded_from.dist.name == "gbench"),
        "distribution": loaded_from.dist.name if loaded_from and loaded_from.dist is not None else None,
        "module": loaded_from.value if loaded_from else getattr(module, "__name__", None),
        "path": getattr(module, "__file__", None),
        "source": info.source,
        "hooks": list(info.hooks),
    }
    registry = plugins.registry
    for kind in KINDS:
        entry[PLURAL[kind]] = [_thing(kind, registry.get(kind, name)) for name in registry.owned_by(kind, info.name)]
    return entry


def _thing(kind: str, spec: Any) -> dict[str, Any]:
    thing: dict[str, Any] = {"name": spec.name, "description": spec.description}
    if kind == "dataset":
        thing.update(
            image_shape=list(spec.image_shape), num_classes=spec.num_classes, class_names=list(spec.class_names)
        )
        return thing
    if kind == "metric":
        thing.update(
            needs=list(spec.needs),
            columns=[{"name": c.name, "direction": c.direction, "description": c.description} for c in spec.columns],
        )
        return thing
    if kind == "loss":
        thing["score"] = spec.score
    thing["hyperparameters"] = [_hyperparameter(hp) for hp in spec.hyperparameters]
    return thing


def _hyperparameter(hp: Hyperparameter) -> dict[str, Any]:
    return {
        "name": hp.name,
        "type": hp.type.__name__,
        "default": hp.default,
        "range": hp.describe_range(),
        "low": hp.low,
        "high": hp.high,
        "log": hp.log,
        "choices": list(hp.choices) if hp.choices is not None else None,
        "search": list(hp.search) if hp.search is not None else None,
        "tunable": hp.tunable,
        "help": hp.help,
    }


def table(report: dict[str, Any]) -> Table:
    plugins = report["plugins"]
    broken = sum(plugin["status"] == "broken" for plugin in plugins)
    title = (
        f"gbench {report['gbench_version']}: {len(plugins)} plugins"
        + (f", {broken} broken" if broken else "")
        + f" (hook API {report['hook_api_version']})"
    )
    result = Table(title=title, header_style="bold", show_lines=True)
    result.add_column("plugin", no_wrap=True)
    result.add_column("version", no_wrap=True)
    result.add_column("from", overflow="fold")
    result.add_column("provides", overflow="fold")
    for plugin in plugins:
        origin = f"{plugin['distribution']} ({plugin['module']})" if plugin["distribution"] else plugin["source"]
        if plugin["status"] == "broken":
            provides = f"[bold red]broken:[/] {_escape(plugin['error'])}"
        else:
            lines = []
            for kind in KINDS:
                for thing in plugin[PLURAL[kind]]:
                    lines.append(
                        f"[bold]{kind}[/] [cyan]{thing['name']}[/]"
                        + (f": {_escape(thing['description'])}" if thing["description"] else "")
                    )
                    if kind == "dataset":
                        lines.append(
                            f"  image shape {'x'.join(map(str, thing['image_shape']))}, {thing['num_classes']} classes"
                        )
                    for column in thing.get("columns", []):
                        better = f" ({column['direction']} is better)" if column["direction"] else ""
                        lines.append(f"  column {column['name']}{better}  [dim]{_escape(column['description'])}[/]")
                    for hp in thing.get("hyperparameters", []):
                        searched = f", searched {hp['search'][0]:g}..{hp['search'][1]:g}" if hp["search"] else ""
                        lines.append(
                            f"  {hp['name']}={hp['default']}  [dim]{hp['type']} in {_escape(hp['range'])}{searched}[/]"
                        )
            provides = "\n".join(lines) or "[dim]nothing (no registration hook)[/]"
        result.add_row(
            ("[red]" if plugin["status"] == "broken" else "") + _escape(plugin["name"]),
            plugin["version"] or "-",
            _escape(origin),
            provides,
        )
    if not report["autoload"]:
        result.caption = "GBENCH_DISABLE_PLUGIN_AUTOLOAD is set: only gbench's built-in plugins were loaded"
    elif report["only"]:
        result.caption = f"GBENCH_PLUGINS={','.join(report['only'])}: only these third-party plugins were loaded"
    return result


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(str(text))
