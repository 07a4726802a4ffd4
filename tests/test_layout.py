"""The layout docs/design.md promises, checked on the source itself.

- The library never reaches up into the CLI: no module of gbench/ outside
  gbench/commands/ and gbench/cli.py imports gbench.commands, in any form
  (``import gbench.commands.run``, ``from gbench.commands import run``,
  ``from gbench import commands``, a relative import, or any of these inside
  a function).
- No module is over MAX_LINES lines: each reads in one sitting.
- Lines are at most 120 characters, and ruff checks it (E501 is not ignored); no code is laid out by hand
  against the formatter (no skip or off markers for ruff format).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gbench"
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def is_cli(path: Path) -> bool:
    """The command line: gbench/commands/, cli.py, __main__.py (``python -m gbench``, which only calls cli.main),
    and api.py (gbench.run and the others: the commands run in-process)."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] == "commands" or relative in (Path("cli.py"), Path("__main__.py"), Path("api.py"))


def imported_modules(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a module, function-level ones included.

    ``source``: this text instead of the file's, parsed as if it were at ``path`` (relative imports).
    """
    package = ["gbench", *path.relative_to(PACKAGE).with_suffix("").parts[:-1]]
    if path.name == "__init__.py":
        package = ["gbench", *path.relative_to(PACKAGE).parts[:-1]]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..commands import y
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]  # from gbench import commands
    return found


def reaches_cli(name: str) -> bool:
    return name == "gbench.commands" or name.startswith("gbench.commands.") or name == "gbench.cli"


def test_the_import_check_sees_every_form():
    """The checker itself: each way of importing the commands is caught (a checker that sees nothing would pass
    anything)."""
    where = PACKAGE / "tune.py"  # for the relative import; the text below is parsed, never imported
    forms = {
        "import gbench.commands.run": "gbench.commands.run",
        "from gbench.commands import _options": "gbench.commands",
        "from gbench import commands": "gbench.commands",
        "from .commands.run import warn_broken": "gbench.commands.run",
        "from . import cli": "gbench.cli",
        "def f():\n    from gbench.commands.run import combos_for_target": "gbench.commands.run",
    }
    for source, expected in forms.items():
        names = [name for _, name in imported_modules(where, source)]
        assert expected in names and any(reaches_cli(n) for n in names), (source, names)
    assert not any(
        reaches_cli(name)
        for _, name in imported_modules(where, "import gbench.config\nfrom gbench import commandsx, store")
    )


def test_the_library_never_imports_the_commands():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
        for path in modules()
        if not is_cli(path)
        for line, name in imported_modules(path)
        if reaches_cli(name)
    ]
    assert not offenders, (
        "the library reaches up into the CLI (move the call into the command and pass its result down):\n"
        + "\n".join(offenders)
    )


def long_modules() -> dict[str, int]:
    lengths = {str(path.relative_to(PACKAGE.parent)): len(path.read_text().splitlines()) for path in modules()}
    return {name: count for name, count in lengths.items() if count > MAX_LINES}


def test_no_module_is_over_400_lines():
    offenders = long_modules()
    assert not offenders, f"modules over {MAX_LINES} lines: " + ", ".join(
        f"{name} ({count})" for name, count in sorted(offenders.items())
    )


def test_ruff_checks_the_line_length_and_nothing_is_laid_out_by_hand():
    import tomllib

    root = PACKAGE.parent
    ruff = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["ruff"]
    assert ruff["line-length"] == 120
    assert "E501" not in ruff["lint"].get("ignore", []) and "E" in ruff["lint"]["select"]
    sources = [
        p for folder in ("gbench", "plugins", "benchmarks", "tests", "examples") for p in (root / folder).rglob("*.py")
    ]
    marked = [
        str(p.relative_to(root))
        for p in sources
        if "fmt: " + "skip" in p.read_text() or "fmt: " + "off" in p.read_text()
    ]
    assert not marked, f"laid out by hand against ruff format: {marked}"
