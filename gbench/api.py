"""The Python API for notebooks and scripts: ``gbench.run``, ``gbench.load``, ``gbench.sweep``, ``gbench.tune``.

Each function is the command of the same name, run in this process. Its keyword
arguments are the command's options in snake_case (``batch_size=100`` is
``--batch-size 100``), and they go through the command line's own parser and
code: every option, default and check is the CLI's, so the two cannot drift
apart. A list is joined with commas (``seeds=[0, 1]`` is ``--seeds 0,1``); a
repeatable option takes a dict or a list (``set={"lr": 1e-3}`` is
``--set lr=0.001``); a flag takes True.

Bad input raises :class:`gbench.errors.GbenchError` whose message is the very
line the CLI prints for it (``gbench run: error: ...``). The commands' tables,
progress bars and notes are not shown unless ``verbose=True``, and then as plain
text: a live bar redrawn in place is what a notebook cell cannot show.

This module is an edge, like :mod:`gbench.cli`: it drives the commands, and the
library never imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gbench import env
from gbench.errors import GbenchError
from gbench.names import unknown
from gbench.secrets import mask

if TYPE_CHECKING:
    import optuna
    import pandas as pd

__all__ = ["load", "run", "sweep", "tune"]  # the public API (docs/api.md), exported as gbench.run etc.

#: Environment variables an option sets for the command's whole process (``--log``, ``--mlflow-uri``):
#: a notebook runs many commands in one process, so each call puts them back as they were.
_OPTION_ENVIRONMENT = ("GBENCH_LOG", "MLFLOW_TRACKING_URI")


def run(target: str, *, verbose: bool = False, **options: Any) -> pd.DataFrame:
    """``gbench run TARGET --OPTION VALUE ...``: train, evaluate, store; the results.csv rows of these runs.

    Runs OUT already holds (same configuration and seed) are kept, not trained
    again, unless ``rerun=True``; their rows are returned all the same.
    """
    args = _invoke("run", [str(target)], options, verbose)
    out, rows = args.made
    return _rows(out, [str(row["run_id"]) for row in rows])


def load(out: str | os.PathLike[str] = "runs") -> pd.DataFrame:
    """Every run in a results folder, as ``gbench export OUT`` gives it (numbers as numbers)."""
    from gbench.commands import export

    args = _parse("export", [str(out)], {})
    return _calling("export", lambda: export.frame(args.out))


def sweep(suite: str | os.PathLike[str], *, verbose: bool = False, **options: Any) -> pd.DataFrame:
    """``gbench sweep SUITE.toml --OPTION VALUE ...``: run the suite; the rows of its runs that are in its OUT.

    Runs that did not finish (the CLI's exit code 1) are returned too where they have a row (``status``
    says how they ended); the command run again retries them.
    With ``storage=`` several machines share the study and each keeps its own runs:
    this machine's are returned, and ``gbench report --storage`` reads them all.
    """
    args = _invoke("sweep", [str(suite)], options, verbose)
    plan = args.made
    return _rows(plan.out, [run.config.run_id for run in plan.runs], missing_ok=True)


def tune(target: str = "mlp", *, verbose: bool = False, **options: Any) -> tuple[pd.DataFrame, optuna.Study]:
    """``gbench tune TARGET --OPTION VALUE ...``: search; the rows
    of the study's runs, and the study loaded from its storage."""
    import optuna

    args = _invoke("tune", [str(target)], options, verbose)
    opened = args.made
    study = optuna.load_study(study_name=opened.study.study_name, storage=opened.storage_url)
    ids = [
        run_id for trial in study.trials for run_id in str(trial.user_attrs.get("run_id") or "").split(",") if run_id
    ]
    return _rows(opened.tuner.out, list(dict.fromkeys(ids)), missing_ok=True), study


# ---------------------------------------------------------------------------
# Keyword arguments to the command's argv, and the command run as cli.main runs it
# ---------------------------------------------------------------------------


def command_parser(command: str) -> argparse.ArgumentParser:
    """The CLI's own parser of one command (``gbench COMMAND``'s options, defaults and checks)."""
    from gbench.cli import build_parser

    parser = build_parser(only=command)
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return subparsers.choices[command]


def option_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """snake_case keyword -> the option it stands for: ``batch_size``
    -> ``--batch-size``, ``output`` -> ``-o/--output``."""
    found = {}
    for action in parser._actions:
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs and not isinstance(action, argparse._HelpAction):
            found[longs[0][2:].replace("-", "_")] = action
    return found


def command_line(command: str, positionals: list[str], options: Mapping[str, Any]) -> list[str]:
    """``["run", "plugins.mlp", "--steps=20", ...]`` for ``gbench.run("plugins.mlp", steps=20, ...)``.

    ``--name=value`` (not two words): a value starting with "-" stays a value.
    """
    actions = option_actions(command_parser(command))
    argv = [command, *positionals]
    for name, value in options.items():
        if name not in actions:
            raise GbenchError(f"gbench.{command}(): {unknown('option', name, actions)}")
        option = [s for s in actions[name].option_strings if s.startswith("--")][0]
        if value is None:
            continue
        if actions[name].nargs == 0:  # a flag: --rerun, --quick, --no-report
            if not isinstance(value, bool):
                raise GbenchError(f"gbench.{command}(): {name}={value!r} is a flag; give {name}=True (or leave it out)")
            argv += [option] if value else []
        elif isinstance(actions[name], argparse._AppendAction):  # repeatable: --set, --space
            items = [f"{k}={v}" for k, v in value.items()] if isinstance(value, Mapping) else _listed(value)
            argv += [f"{option}={item}" for item in items]
        else:
            argv.append(f"{option}={','.join(_listed(value))}")
    return argv


def _listed(value: Any) -> list[str]:
    if isinstance(value, str | bytes | os.PathLike) or not isinstance(value, Iterable):
        return [os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    return [str(item) for item in value]


def _parse(command: str, positionals: list[str], options: Mapping[str, Any]) -> argparse.Namespace:
    """The command's arguments as the CLI parses them; its usage error (one line on stderr, exit 2) as a GbenchError."""
    from gbench.cli import build_parser

    argv = command_line(command, positionals, options)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return build_parser(only=command).parse_args(argv)
    except SystemExit:
        raise GbenchError(captured.getvalue().strip() or f"gbench {command}: error: bad arguments {argv[1:]}") from None


def _invoke(command: str, positionals: list[str], options: Mapping[str, Any], verbose: bool) -> argparse.Namespace:
    """Run a training command as :func:`gbench.cli.main` does; the Namespace carries what it made (``made``)."""
    from gbench.memory import keep_freed_memory
    from gbench.plugins import observers

    with env.kept(_OPTION_ENVIRONMENT):
        args = _parse(command, positionals, options)
        keep_freed_memory()
        with _output(verbose):
            if hasattr(args, "mlflow_uri"):  # as cli.main: an unreachable tracker fails here, before any training
                _calling(command, observers.check_trackers)
            _calling(command, lambda: args._run(args))
        return args


def _calling(command: str, call: Any) -> Any:
    """``call()``, its GbenchError raised again as the CLI's line for it (masked, as cli.main prints it)."""
    try:
        return call()
    except GbenchError as error:
        raise GbenchError(f"gbench {command}: error: {mask(str(error))}") from None


@contextlib.contextmanager
def _output(verbose: bool) -> Iterator[None]:
    """The commands' rich output: dropped, or (verbose) plain text,
    never a live bar redrawn in place or Jupyter's widgets."""
    from rich.console import Console

    from gbench.results import display

    saved = display.console, display.stdout
    if verbose:
        display.console = Console(file=sys.stderr, force_terminal=False, force_jupyter=False, width=160, soft_wrap=True)
        display.stdout = Console(file=sys.stdout, force_terminal=False, force_jupyter=False, width=240, soft_wrap=True)
    else:
        display.console = display.stdout = Console(file=io.StringIO(), force_terminal=False, force_jupyter=False)
    try:
        yield
    finally:
        display.console, display.stdout = saved


def _rows(out: Path, run_ids: list[str], missing_ok: bool = False) -> pd.DataFrame:
    """These runs' rows of OUT's table, as ``gbench export`` gives it, in ``run_ids``' order."""
    from gbench.commands import export

    table = export.frame(str(out))
    where = (
        {run_id: index for index, run_id in enumerate(table["run_id"].astype(str))} if "run_id" in table.columns else {}
    )
    lost = [run_id for run_id in run_ids if run_id not in where]
    if lost and not missing_ok:
        raise GbenchError(
            f"runs {', '.join(lost)} have no row in {out / 'results.csv'}; was the file changed while they ran?"
        )
    return table.iloc[[where[run_id] for run_id in run_ids if run_id in where]].reset_index(drop=True)
