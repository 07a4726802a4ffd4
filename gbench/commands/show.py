"""gbench show OUT: the results table of a folder of runs."""

from __future__ import annotations

import argparse

from gbench import display, store

HELP = "Print the results of every run in a results folder as a table."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", nargs="?", default="runs", help="results folder (default runs)")


def run(args: argparse.Namespace) -> int:
    rows = store.read_results(args.out)
    display.stdout.print(display.results_table(rows, title=f"{args.out}: {len(rows)} runs"))
    return 0
