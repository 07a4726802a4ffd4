"""The house's shape, checked on the source: gbench's import graph has no circle and its packages stack in one order.

Every import counts: module level, function level and under ``TYPE_CHECKING``
(a circle hidden behind one of those is still a circle a reader has to hold in
mind). Each package has a layer; a module may import its own layer and those
below it. An import from a lower layer up to a higher one "points back up":
at most one is allowed, listed in BACK_UP with its reason, and its line says why.

``python tests/test_import_graph.py`` prints the counts.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from test_layout import PACKAGE, imported_modules, is_cli, reaches_cli

#: Bottom to top. A module may import modules of its own layer and of the layers below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "core",
        (
            "gbench",
            "gbench.errors",
            "gbench.names",
            "gbench.env",
            "gbench.torchtools",
            "gbench.memory",
            "gbench.secrets",
            "gbench.safe_pickle",
        ),
    ),
    ("plugin API", ("gbench.plugins",)),
    ("config", ("gbench.options", "gbench.config", "gbench.datasource")),
    (
        "data",
        (
            "gbench.data",
            "gbench.vision_sets",
            "gbench.celeba",
            "gbench.stacked_mnist",
            "gbench.imagefiles",
            "gbench.owndata",
        ),
    ),
    ("results", ("gbench.results",)),
    ("evaluation", ("gbench.evaluation",)),
    ("training", ("gbench.training",)),
    ("analysis", ("gbench.analysis",)),
    ("report", ("gbench.report",)),
    ("studies", ("gbench.studies",)),
    ("edges", ("gbench.testing", "gbench.commands", "gbench.cli", "gbench.__main__", "gbench.api")),
]

#: (importer, imported) -> why. At most one.
BACK_UP = {
    (
        "gbench.evaluation.imagesets",
        "gbench.training.runner",
    ): "a run folder as an image set needs its generator loaded as the run saved it",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, dict[str, int]]:
    """module -> {imported gbench module: line}, every form of import included."""
    paths = {module_name(p): p for p in sorted(package.rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for name, path in paths.items():
        edges: dict[str, int] = {}
        for line, imported in imported_modules(path):
            # "from gbench.x import y" lists both gbench.x and gbench.x.y: keep whichever is a module
            target = imported if imported in paths else None
            if target is None and "." in imported and imported.rsplit(".", 1)[0] in paths:
                continue  # a name imported from a module: the module itself is listed on its own
            if target is not None and target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    # a package's __init__ imported only because "from gbench.pkg import module" names it: not an edge of its own
    for edges in graph.values():
        for target in [
            t for t in edges if paths[t].name == "__init__.py" and any(o.startswith(t + ".") for o in edges)
        ]:
            del edges[target]
    return graph


def cycles(graph: dict[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each a circle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(module: str) -> int:
    best = (-1, -1)  # (length of the matching prefix, layer)
    for number, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), number)
    assert best[1] >= 0, f"{module} belongs to no layer: add it to LAYERS in {Path(__file__).name}"
    return best[1]


def back_up_imports(graph: dict[str, dict[str, int]]) -> list[tuple[str, str, int]]:
    return [(a, b, line) for a, edges in graph.items() for b, line in edges.items() if layer_of(b) > layer_of(a)]


def counts(package: Path = PACKAGE) -> dict[str, int]:
    graph = import_graph(package)
    return {
        "modules": len(graph),
        "imports": sum(len(e) for e in graph.values()),
        "circles": len(cycles(graph)),
        "modules in circles": sum(len(c) for c in cycles(graph)),
        "back up": len(back_up_imports(graph)),
    }


def test_the_cycle_finder_finds_circles():
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": ["e"]}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": ["b"], "b": []}) == []


def test_hidden_imports_are_edges(tmp_path):
    """TYPE_CHECKING and function-level imports are edges: a circle behind them is found."""
    package = tmp_path / "gbench"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "one.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gbench.two import B\n"
    )
    (package / "two.py").write_text("def f():\n    from gbench import one\n")
    graph = {
        module: edges
        for module, edges in (
            (f"gbench.{p.stem}" if p.stem != "__init__" else "gbench", _edges(p, package))
            for p in sorted(package.glob("*.py"))
        )
    }
    assert cycles(graph) == [["gbench.one", "gbench.two"]]


def _edges(path: Path, package: Path) -> list[str]:
    names = {f"gbench.{p.stem}" for p in package.glob("*.py")}
    return [n for _, n in imported_modules_at(path, package) if n in names]


def imported_modules_at(path: Path, package: Path) -> list[tuple[int, str]]:
    """imported_modules for a module of another tree (the test's own), parsed as if it sat in gbench/."""
    return imported_modules(PACKAGE / path.relative_to(package), path.read_text())


def test_no_import_circle():
    found = cycles(import_graph())
    assert not found, "import circles (TYPE_CHECKING and function-level imports count):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


def test_packages_stack_in_one_order():
    """Imports point down or sideways; the one that points back up is listed with its reason, and its line says why."""
    found = back_up_imports(import_graph())
    unexplained = [
        f"{a}:{line} imports {b} (layer {LAYERS[layer_of(b)][0]} above {LAYERS[layer_of(a)][0]})"
        for a, b, line in found
        if (a, b) not in BACK_UP
    ]
    assert not unexplained, "imports that point back up:\n" + "\n".join(unexplained)
    assert len(BACK_UP) <= 1
    for a, _, line in found:
        path = PACKAGE.parent / (a.replace(".", "/") + ".py")
        text = path.read_text().splitlines()[line - 1]
        assert "#" in text, f"{path}:{line}: an import that points back up says why on its line"
    assert {(a, b) for a, b, _ in found} == set(BACK_UP), "BACK_UP lists an import that no longer exists: remove it"


def test_the_library_never_imports_the_commands():
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = [
        f"{a} imports {b}"
        for a, targets in import_graph().items()
        for b in targets
        if reaches_cli(b) and not is_cli(paths[a])
    ]
    assert not edges, edges


if __name__ == "__main__":
    for key, value in counts(Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE).items():
        print(f"{key}: {value}")
