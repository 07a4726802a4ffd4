"""Rich output: progress bars while runs train, tables of results."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from gbench.results import schema

# Wide tables stay readable when piped to a file (rich assumes 80 columns there).
console = Console(stderr=True)
stdout = Console() if Console().is_terminal else Console(width=240)


def progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


@contextlib.contextmanager
def live(renderable: Any) -> Iterator[Any]:
    """A rich Live display on stderr, redrawn by ``.update()``, its last frame kept.

    Off a terminal rich prints only the last frame and, unlike on a terminal,
    ends it without a newline, so whatever is printed next (the final tables
    in a log of ``2>&1``) would start on the frame's last line.
    """
    from rich.live import Live

    with Live(renderable, console=console, refresh_per_second=1, transient=False) as display:
        try:
            yield display
        except Exception:  # an error's one line is what to show, not a table half drawn above it (Ctrl-C keeps its table)
            display.transient = True
            raise
    if not console.is_terminal:
        console.line()


def format_cell(value: Any, spec: str) -> str:
    """A table cell: "-" for a missing value, numbers by the format ``spec`` ("s": as text)."""
    if value is None or value == "":
        return "-"
    if spec == "s":
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "nan"
    return format(number, spec)


#: Text columns, aligned left.
LEFT = ("run_id", "status", "architecture", "loss", "schedule", "dataset", "fid_extractor")


def table_columns(rows: list[dict[str, Any]]) -> list[schema.Column]:
    """The columns a results table of these rows shows, from the schema: who ran what, every
    hyperparameter (the plugins' own first, then gbench's training knobs), steps, then the metrics."""
    present = {name for row in rows for name, value in row.items() if value not in (None, "")}
    known = [c for c in schema.known_columns() if c.header and c.name in present]
    hyper = schema.hyperparameter_columns(rows)
    plugins = [schema.column(name) for name in hyper if name in present and schema.column(name) not in known]
    first = [c for c in known if c.kind == schema.IDENTITY or c.name == "status"]
    core_hyper = [c for c in known if c.kind == schema.HYPERPARAMETER]
    rest = [c for c in known if c not in first and c not in core_hyper]
    steps = [c for c in rest if c.kind == schema.BOOKKEEPING]
    metrics = [c for c in rest if c.kind == schema.METRIC]
    return [*first, *plugins, *core_hyper, *steps, *metrics]


def results_table(rows: Iterable[dict[str, Any]], title: str = "gbench results", run_ids: bool = True, last: int | None = None) -> Table:
    """A table of results rows. Columns whose value every row shares (set-up, hyperparameters of
    any plugin, steps, extractor) move to the caption, so the columns left are what tells rows apart.

    ``last``: draw only the last rows; the columns and the caption still come from every row,
    so "all runs" in the caption stays true.
    """
    rows = list(rows)
    table = Table(title=title, header_style="bold", show_lines=False)
    shown = table_columns(rows)
    if not run_ids:
        shown = [column for column in shown if column.name != "run_id"]
    shared = []
    if len(rows) > 1:
        for column in list(shown):
            values = {str(row.get(column.name)) for row in rows}
            if column.shared and len(values) == 1:
                shown.remove(column)
                label = "FID extractor" if column.name == "fid_extractor" else column.header
                shared.append(f"{label} {format_cell(rows[0].get(column.name), column.spec)}")
    scores = {row.get("score") for row in rows if row.get("score")}
    for column in shown:
        header = column.header
        if column.name in ("d_real", "d_fake") and scores == {"critic"}:
            header += " critic"
        table.add_column(header, justify="left" if column.name in LEFT else "right", overflow="fold")
    for row in rows if last is None else rows[len(rows) - last :]:
        style = {"diverged": "red", "collapsed": "yellow"}.get(str(row.get("status")), None)
        table.add_row(*[format_cell(row.get(column.name), column.spec) for column in shown], style=style)
    notes = ["all runs: " + ", ".join(shared)] if shared else []
    if len(scores) > 1:
        notes.append("D(x), D(G(z)): probabilities for BCE losses, mean critic outputs for the others (column 'score' in the CSV)")
    elif scores == {"critic"}:
        notes.append("D(x), D(G(z)) are mean critic outputs, not probabilities")
    table.caption = "\n".join(notes) or None
    return table
