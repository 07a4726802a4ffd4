"""gbench clean OUT: remove the run folders that hold no finished run (killed, interrupted, damaged)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gbench.errors import GbenchError
from gbench.results import display
from gbench.training import leftovers

HELP = (
    "Remove the unfinished run folders in a results folder (killed, interrupted or damaged runs; never a finished run, "
    "never results.csv, never a run being trained now). --dry-run lists them only."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", nargs="?", default="runs", help="results folder (default runs)")
    parser.add_argument("--dry-run", action="store_true", help="list the folders it would remove, and remove nothing")


def run(args: argparse.Namespace) -> int:
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise GbenchError(f"{args.out!r} is a file, not a results folder; give the --out folder of your runs")
    if not Path(args.out).is_dir():
        raise GbenchError(f"results folder {args.out!r} does not exist; give the --out folder of your runs")
    unfinished = leftovers.unfinished(args.out)
    for folder in unfinished:
        if folder.state == leftovers.RUNNING:
            display.console.print(f"kept {folder.describe()}", highlight=False, soft_wrap=True)
    removed = leftovers.remove(unfinished, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for folder in removed:
        display.stdout.print(f"{verb} {folder.path}  ({folder.state})", highlight=False, soft_wrap=True)
    folders = f"{len(removed)} unfinished run folder{'' if len(removed) == 1 else 's'}"
    summary = f"{verb} {folders} from {args.out}; finished runs and results.csv kept"
    display.stdout.print(
        summary + ("; run without --dry-run to remove them" if args.dry_run and removed else ""),
        highlight=False,
        soft_wrap=True,
    )
    return 0
