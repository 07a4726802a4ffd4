"""gbench show OUT: a summary of a folder of runs and its latest rows (every row with --all)."""

from __future__ import annotations

import argparse
import math
from collections import Counter
from pathlib import Path
from typing import Any

from rich.table import Table

from gbench.errors import GbenchError
from gbench.results import display, schema, store
from gbench.training import leftovers

HELP = (
    "Print the results of a results folder: every run when there are few, else "
    "a summary and the latest runs (--all: every run)."
)

#: Rows drawn by default. Drawing 10,000 rows took rich about 9 s, for a table nobody reads.
LATEST = 20
#: Settings listed in the summary, lowest best FID first.
BEST_SETTINGS = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", nargs="?", default="runs", help="results folder (default runs)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--all", action="store_true", help="draw every run's row")
    shown.add_argument(
        "--last",
        type=_count,
        metavar="N",
        default=LATEST,
        help=f"draw the N latest runs' rows (default {LATEST}); above N runs a summary comes first",
    )
    parser.add_argument(
        "--columns",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        metavar="NAME[,NAME]",
        help=(
            "draw these results.csv columns (or headers), in this order (default: those that "
            "fit the terminal, who ran what first, then FID and status)"
        ),
    )


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"--last takes a whole number of runs, at least 1, not {text!r}; e.g. --last 50"
        )
    return value


def run(args: argparse.Namespace) -> int:
    unfinished = leftovers.unfinished(args.out)
    try:
        rows = store.read_results(args.out)
    except GbenchError:
        if not unfinished or (Path(args.out) / store.RESULTS).exists():
            raise
        rows = []  # no run finished yet, but some folders hold unfinished ones: list those
    last = None if args.all or len(rows) <= args.last else args.last
    if last is None:
        display.print_results(rows, f"{args.out}: {len(rows)} runs", columns=args.columns, out=args.out)
    else:
        display.stdout.print(status_line(args.out, rows), highlight=False, soft_wrap=True)
        display.stdout.print(settings_table(rows))
        display.print_results(
            rows, f"the latest {last} of {len(rows)} runs", last=last, columns=args.columns, out=args.out
        )
        display.stdout.print(
            f"{len(rows) - last} earlier runs not drawn: `gbench show {args.out} "
            "--all` draws every run, `--last N` the latest N; "
            f"`gbench export {args.out}` writes them all",
            highlight=False,
            soft_wrap=True,
        )
    show_unfinished(args.out, unfinished)
    return 0


def show_unfinished(out: str, unfinished: list[leftovers.Folder]) -> None:
    """A line for each folder that is not a finished run (not in
    results.csv), saying what the same command does with it."""
    for folder in unfinished:
        display.console.print(folder.describe(), highlight=False, soft_wrap=True)
    removable = [folder for folder in unfinished if folder.state != leftovers.RUNNING]
    if removable:
        display.console.print(
            f"{len(removable)} unfinished run folder{'s' if len(removable) > 1 else ''} in {out}: the same command "
            "finishes them; "
            f"`gbench clean {out}` removes them (--dry-run lists what it would remove)",
            highlight=False,
            soft_wrap=True,
        )


def status_line(out: str, rows: list[dict[str, str]]) -> str:
    counts = Counter(row.get("status") or "-" for row in rows)
    by_status = ", ".join(f"{status} {count}" for status, count in counts.most_common())
    return f"{out}: {len(rows)} runs ({by_status}) in {len(setting_groups(rows))} settings"


def setting_groups(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """Rows by setting: a sweep's variant, else the set-up and hyperparameter values that differ among the rows."""
    # every row of a CSV has its columns
    keys = [key for key in (rows[0] if rows else {}) if schema.is_setting_column(key)]
    varying = [key for key in keys if len({row.get(key) for row in rows}) > 1]
    groups: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        name = (
            row.get("variant")
            or ",".join(f"{key}={row.get(key) or '-'}" for key in varying)
            or row.get("architecture")
            or "run"
        )
        groups.setdefault(name, []).append(row)
    return groups


def _fid(row: dict[str, Any]) -> float | None:
    try:
        value = float(row.get("fid") or "nan")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def settings_table(rows: list[dict[str, str]]) -> Table:
    """The settings with the lowest best FID: runs, ok runs, best and mean FID over the runs that have one."""
    groups = setting_groups(rows)
    summaries = []
    for name, members in groups.items():
        fids = [fid for fid in map(_fid, members) if fid is not None]
        ok = sum(row.get("status") == "ok" for row in members)
        summaries.append(
            (min(fids) if fids else math.inf, name, len(members), ok, sum(fids) / len(fids) if fids else None)
        )
    summaries.sort(key=lambda item: (item[0], item[1]))
    shown = summaries[:BEST_SETTINGS]
    title = (
        "best FID per setting"
        if len(summaries) <= BEST_SETTINGS
        else f"best FID per setting: the {len(shown)} lowest of {len(summaries)} settings"
    )
    table = Table(title=title, header_style="bold")
    for header in ("setting", "runs", "ok", "best FID", "mean FID"):
        table.add_column(header, justify="left" if header == "setting" else "right", overflow="fold")
    for best, name, count, ok, mean in shown:
        table.add_row(
            name,
            str(count),
            str(ok),
            display.format_cell(best if math.isfinite(best) else None, ".2f"),
            display.format_cell(mean, ".2f"),
        )
    return table
