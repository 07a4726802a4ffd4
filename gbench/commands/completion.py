"""gbench completion SHELL: print a shell completion script for every command and option.

The script is static (shtab writes it from the argparse parser), so completing
costs the shell nothing: no Python starts on TAB. Turn it on with, e.g.,
``gbench completion bash > ~/.local/share/bash-completion/completions/gbench``.
"""

from __future__ import annotations

import argparse
import sys

HELP = "Print a shell completion script (bash, zsh, tcsh) for gbench's commands and options."
SHELLS = ("bash", "zsh", "tcsh")
#: Arguments that name files or folders, by dest: the shell completes paths there.
FILES = ("target", "suite", "config", "inception_weights", "storage_file", "weights")
FOLDERS = ("out", "data_root", "run_dir", "runs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=SHELLS, help="the shell to write the script for")


def script(shell: str) -> str:
    import shtab

    from gbench.cli import build_parser

    parser = build_parser()
    for action in _all_actions(parser):
        if action.dest in FILES:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        elif action.dest in FOLDERS:
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
        elif action.dest == "device" and action.choices is None:
            # --device is free text (cuda:N, mps) checked by torchtools; TAB offers the common names. This
            # parser only writes the script, so the choices set here never restrict what gbench accepts.
            action.choices = ["auto", "cpu", "cuda"]
    return shtab.complete(parser, shell=shell)


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    actions = list(parser._actions)  # argparse keeps no public list of a parser's actions
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                actions += _all_actions(sub)
    return actions


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(script(args.shell))
    return 0
