"""The README and the docs site cannot drift from the code or from each other.

- docs/running.md documents every option `gbench run` accepts (read from the
  parser itself, so a new option without a line fails here).
- The README opens with the two commands CI runs (.ci/run), verbatim.
- Every relative link of the README points at a file that exists (and at a
  heading of that file, when it names one), and the README links every page
  of the site.
- mkdocs.yml's nav lists every page in docs/, and only pages that exist; the
  full check of links and anchors is `mkdocs build --strict` in tox's lint step.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
RUNNING = DOCS / "running.md"

# The first two lines of the README's first code block: .ci/run and tests/test_install.py run exactly these.
INSTALL_COMMAND = 'pip install -c constraints.txt -e ".[test]" && GBENCH_DATA=../shared/data gbench run plugins.mlp'
TEST_COMMAND = "GBENCH_DATA=../shared/data tox"

LINK = re.compile(r"\]\(([^)\s]+)\)")


def run_options() -> list[str]:
    from gbench.cli import build_parser

    parser = build_parser("run")
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return [
        option
        for action in commands.choices["run"]._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]


def undocumented(options: list[str], page: str) -> list[str]:
    """The options with no row of their own in the page's options table (rows start with | `--)."""
    rows = [line for line in page.splitlines() if line.startswith("| `--")]
    return [option for option in options if not any(re.search(rf"`{re.escape(option)}\b", row) for row in rows)]


def test_every_run_option_has_a_row_in_the_options_table():
    options = run_options()
    assert len(options) > 20  # the parser was read: a broken lookup must not pass an empty list
    missing = undocumented(options, RUNNING.read_text())
    assert not missing, f"gbench run options without a row in docs/running.md's options table: {missing}"


def test_the_options_check_tells_similar_names_apart():
    """The check itself: --device's row does not document --devices, nor a mention outside the table."""
    page = "| `--device DEVICE` | where |\n| `--seeds 0,1,2` | seeds |\n\nSee also `--out DIR`.\n"
    assert undocumented(["--device", "--devices", "--seeds", "--out"], page) == ["--devices", "--out"]


def test_the_readme_opens_with_the_two_commands_ci_runs():
    text = README.read_text()
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert first_block[:2] == [INSTALL_COMMAND, TEST_COMMAND]
    ci = (REPO / ".ci" / "run").read_text()
    # what CI runs is the README's first two lines
    assert 'pip install -q -c constraints.txt -e ".[test]"' in ci and "\ntox\n" in ci


def anchors(path: Path) -> set[str]:
    """GitHub's and MkDocs' heading ids for the ATX headings of a Markdown file (outside code blocks)."""
    found, in_code = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def readme_links() -> list[str]:
    return [
        target
        for target in LINK.findall(README.read_text())
        if not target.startswith(("http://", "https://", "mailto:"))
    ]


def test_every_relative_link_of_the_readme_resolves():
    links = readme_links()
    assert len(links) >= 10
    for target in links:
        file, _, anchor = target.partition("#")
        path = (REPO / file) if file else README
        assert path.exists(), f"README links {target}, but {file} does not exist"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"README links {target}, but {file} has no heading with that id"


def test_the_readme_links_every_page_of_the_site():
    linked = {(REPO / target.partition("#")[0]).resolve() for target in readme_links()}
    pages = [page for page in DOCS.glob("*.md") if page.name != "index.md"] + [DOCS / "studies" / "index.md"]
    missing = [str(page.relative_to(REPO)) for page in pages if page.resolve() not in linked]
    assert not missing, f"README does not link: {missing}"


def nav_pages(entries: list) -> list[str]:
    pages: list[str] = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


@pytest.fixture(scope="module")
def nav() -> list[str]:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    assert config["docs_dir"] == "docs"
    return nav_pages(config["nav"])


def test_the_site_nav_lists_every_page_and_only_real_ones(nav):
    on_disk = sorted(str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md"))
    assert sorted(nav) == on_disk
    assert len(nav) == len(set(nav)), "a page is in the nav twice"
