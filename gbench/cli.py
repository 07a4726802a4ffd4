"""The ``gbench`` command line: a thin table of commands, each one module.

Each module in :mod:`gbench.commands` defines ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``. Bad input (a :class:`GbenchError` or a bad option)
prints one line and exits with code 2; there is no traceback for it.
Whatever reaches the terminal from here has its URLs' passwords masked
(:mod:`gbench.secrets`), tracebacks of bugs included.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from gbench import __version__
from gbench.errors import GbenchError
from gbench.memory import keep_freed_memory
from gbench.plugins import observers
from gbench.secrets import mask, masked_command
from gbench.training import signals

#: command name -> module; help comes from the module's HELP.
COMMANDS = {
    "run": "gbench.commands.run",
    "show": "gbench.commands.show",
    "clean": "gbench.commands.clean",
    "export": "gbench.commands.export",
    "tune": "gbench.commands.tune",
    "sweep": "gbench.commands.sweep",
    "report": "gbench.commands.report",
    "interpolate": "gbench.commands.interpolate",
    "plugins": "gbench.commands.plugins",
    "eval": "gbench.commands.eval",
    "fid": "gbench.commands.fid",
    "sample": "gbench.commands.sample",
    "extractor": "gbench.commands.extractor",
    "completion": "gbench.commands.completion",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``only`` just that command's part.

    ``only`` keeps e.g. ``gbench show`` from importing every command's module
    (``run`` imports torch, about 2 s) just to parse its own arguments.
    """
    parser = _Parser(prog="gbench", description="Benchmark GAN variants: train, evaluate, tune, compare.")
    parser.add_argument("--version", action="version", version=f"gbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(module_name)
        # argparse %-formats help strings: a literal "95%" must not break --help.
        command = sub.add_parser(name, help=module.HELP.replace("%", "%%"), description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The first word not starting with "-" is the command (top-level options take no value).
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(only=first if first in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    # --quiet: errors (written below, not through rich) and the results on stdout only
    if getattr(args, "quiet", False):
        from gbench.results import display

        display.console.quiet = True
    signals.install()  # SIGTERM (SLURM, Kubernetes, timeout) stops as Ctrl-C does
    try:
        keep_freed_memory()  # no page faults on every large tensor of every step (gbench/memory.py)
        if hasattr(args, "mlflow_uri"):  # run, sweep, tune: an unreachable tracker fails here, before any training
            observers.check_trackers()
        return int(args._run(args) or 0)
    except GbenchError as error:
        sys.stderr.write(f"gbench {args.command}: error: {mask(str(error))}\n")
        return 2
    except KeyboardInterrupt as stop:
        name = "SIGTERM" if isinstance(stop, signals.Terminated) else "interrupted (SIGINT)"
        from gbench.training import interrupted  # loaded already by any command that trains

        sys.stderr.write(interrupted.stop_message(name, masked_command(["gbench", *argv])) + "\n")
        return signals.exit_code(stop)
    except Exception:  # a bug: keep its traceback, but a library's message may quote a --storage or --mlflow-uri URL
        sys.stderr.write(mask(traceback.format_exc()))
        return 1


if __name__ == "__main__":
    sys.exit(main())
