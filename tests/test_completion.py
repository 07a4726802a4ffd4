"""gbench completion: the script it prints really completes commands, options and choices in bash."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory):
    result = run_cli("completion", "bash")
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("completion") / "gbench.bash"
    path.write_text(result.stdout)
    return path


def complete(script, line: str) -> list[str]:
    """What bash offers on TAB at the end of ``line``, through the script's own completion function."""
    words = line.split(" ")
    program = f"""
source {script}
COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}
COMP_WORDS=({" ".join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}
_shtab_gbench
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return sorted(filter(None, result.stdout.splitlines()))


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize(
    "line, offered",
    [
        ("gbench ru", ["run"]),
        ("gbench s", ["sample", "show", "sweep"]),
        ("gbench comp", ["completion"]),
        ("gbench cl", ["clean"]),
        ("gbench clean --d", ["--dry-run"]),
        ("gbench run --eval-s", ["--eval-samples"]),
        ("gbench run --lo", ["--log", "--log-every", "--loss"]),
        ("gbench run plugins.mlp --device ", ["auto", "cpu", "cuda"]),
        ("gbench tune --n-j", ["--n-jobs"]),
        ("gbench completion ", ["bash", "tcsh", "zsh"]),
    ],
)
def test_bash_completes_commands_options_and_choices(bash_script, line, offered):
    assert complete(bash_script, line) == offered


def test_the_bash_script_registers_itself_for_gbench(bash_script):
    result = subprocess.run(
        ["bash", "-c", f"source {bash_script}; complete -p gbench"], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "complete -o bashdefault -F _shtab_gbench gbench"


def test_zsh_script_names_every_command():
    from gbench.cli import COMMANDS

    result = run_cli("completion", "zsh")
    assert result.returncode == 0 and result.stdout.startswith("#compdef gbench")
    assert all(f"\n    {name}:'" in result.stdout for name in COMMANDS), result.stdout[:2000]


def test_an_unknown_shell_is_one_line():
    assert_one_line_error(run_cli("completion", "fish"), "invalid choice: 'fish'", "bash")
