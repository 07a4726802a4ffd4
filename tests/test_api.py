"""docs/api.md is the public API: each of its module sections lists exactly that module's ``__all__``,
its kept import paths are gbench.MOVED, and every gbench import the docs show resolves."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import gbench

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api.md"


def sections() -> dict[str, list[str]]:
    """``## `module``` -> the names of its ``- `name`:`` bullets."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in API.read_text().splitlines():
        heading = re.fullmatch(r"## `([\w.]+)`", line)
        if heading:
            current = found.setdefault(heading.group(1), [])
        elif line.startswith("## "):
            current = None
        elif current is not None and (bullet := re.match(r"- `(\w+)`:", line)):
            current.append(bullet.group(1))
    return found


def test_each_section_lists_its_modules_all():
    listed = sections()
    assert {"gbench", "gbench.registry", "gbench.testing", "gbench.data", "gbench.report"} <= set(listed)
    for module_name, names in listed.items():
        module = importlib.import_module(module_name)
        assert sorted(names) == sorted(module.__all__), f"docs/api.md's {module_name} section and its __all__ differ"
        for name in names:
            assert hasattr(module, name), f"{module_name}.{name}"


def test_kept_paths_are_the_modules_themselves():
    table = dict(re.findall(r"^\| `(gbench\.\w+)` \| `(gbench[\w.]+)` \|$", API.read_text(), re.M))
    assert table == gbench.MOVED
    for old, new in table.items():
        assert importlib.import_module(old) is importlib.import_module(new)


def test_every_gbench_import_in_the_docs_resolves():
    """A doc page or example that shows ``from gbench.x import y`` or ``gbench.x.y`` names something that exists."""
    pages = [*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md"), *(ROOT / "docs" / "examples").glob("*.py")]
    seen = 0
    for page in pages:
        text = page.read_text()
        for module_name, names in re.findall(r"from (gbench[\w.]*) import ([\w, ]+)", text):
            module = importlib.import_module(module_name)
            for name in (n.strip() for n in names.split(",") if n.strip()):
                seen += 1
                assert hasattr(module, name) or importlib.util.find_spec(f"{module_name}.{name}"), (
                    f"{page.name}: from {module_name} import {name}"
                )
    assert seen > 20  # the plugin guide, the reports page and the examples import from gbench
