"""gbench show OUT: the results table of a folder of runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from gbench.errors import GbenchError
from gbench.results import display, store
from gbench.training import interrupted

HELP = "Print the results of every run in a results folder as a table."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", nargs="?", default="runs", help="results folder (default runs)")


def run(args: argparse.Namespace) -> int:
    stopped = interrupted.interrupted_runs(args.out)
    try:
        rows = store.read_results(args.out)
    except GbenchError:
        if not stopped or (Path(args.out) / store.RESULTS).exists():
            raise
        rows = []  # no run finished yet, but some were interrupted: list those
    display.stdout.print(display.results_table(rows, title=f"{args.out}: {len(rows)} runs"))
    for run in stopped:  # not in results.csv: only finished runs are
        if run["status"] == "failed":  # a plugin raised (gbench/training/failed.py): step is that of the checkpoint kept
            kept = f"last checkpoint at step {run['step']}/{run['total_steps']}" if run["step"] is not None else "no checkpoint"
            line = f"{run['run_id']}: failed ({kept}): {run['error']}"
        else:
            line = f"{run['run_id']}: {run['status']} at step {run['step']}/{run['total_steps']} ({run['signal']}); run the same command again to resume it"
        display.console.print(
            line,
            highlight=False,
            soft_wrap=True,
        )
    return 0
