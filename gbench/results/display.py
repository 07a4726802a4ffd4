"""Rich output: progress bars while runs train, tables of results."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from gbench.plugins import columns
from gbench.results import schema

# Wide tables stay readable when piped to a file (rich assumes 80 columns there), unless COLUMNS says otherwise.
# soft_wrap: a line of text (a path, a count, a command to copy) is never broken at the width; tables still fit it.
console = Console(stderr=True, soft_wrap=True)
stdout = (
    Console(soft_wrap=True)
    if Console().is_terminal or os.environ.get("COLUMNS", "").isdigit()
    else Console(width=240, soft_wrap=True)
)


def note(text: str) -> None:
    """A line for the user beside the results (stderr): what was left out, and why."""
    console.print(text, highlight=False, soft_wrap=True)


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
        # an error's one line is what to show, not a table half drawn above it (Ctrl-C keeps its table)
        except Exception:
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
    return columns.format_number(number, spec)


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


def print_results(rows: Iterable[dict[str, Any]], title: str = "gbench results", **options: Any) -> None:
    """Print :func:`results_table` on stdout, and after it the line
    naming the columns left out (unwrapped: a path stays whole)."""
    table, left_out = results_and_left_out(rows, title, **options)
    stdout.print(table)
    if left_out:
        stdout.print(left_out, highlight=False, soft_wrap=True)


def results_table(rows: Iterable[dict[str, Any]], title: str = "gbench results", **options: Any) -> Table:
    """:func:`results_and_left_out`'s table, the line on the columns left out in its caption."""
    table, left_out = results_and_left_out(rows, title, **options)
    if left_out:
        table.caption = "\n".join([str(table.caption or ""), left_out]).strip()
    return table


def results_and_left_out(
    rows: Iterable[dict[str, Any]],
    title: str = "gbench results",
    run_ids: bool = True,
    last: int | None = None,
    width: int | None = None,
    columns: list[str] | None = None,
    out: str = "OUT",
) -> tuple[Table, str]:
    """A table of results rows. Columns whose value every row shares (set-up, hyperparameters of
    any plugin, steps, extractor) move to the caption, so the columns left are what tells rows apart.

    ``last``: draw only the last rows; the columns and the caption still come from every row,
    so "all runs" in the caption stays true. ``width`` (default: stdout's): the columns that fit
    it at their full width, by :func:`fit_columns`, and a line naming the ones left out (else "");
    a cell never wraps. ``columns``: exactly these (results.csv names or headers), whatever the width.
    """
    rows = list(rows)
    table = Table(title=title, header_style="bold", show_lines=False)
    shown = table_columns(rows)
    if not run_ids:
        shown = [column for column in shown if column.name != "run_id"]
    shared = []
    if len(rows) > 1 and columns is None:
        for column in list(shown):
            values = {str(row.get(column.name)) for row in rows}
            if column.shared and len(values) == 1:
                shown.remove(column)
                label = "FID extractor" if column.name == "fid_extractor" else column.header
                shared.append(f"{label} {format_cell(rows[0].get(column.name), column.spec)}")
    scores = {row.get("score") for row in rows if row.get("score")}
    drawn = rows if last is None else rows[len(rows) - last :]
    headers = {
        column.name: column.header + (" critic" if column.name in ("d_real", "d_fake") and scores == {"critic"} else "")
        for column in shown
    }
    cells = {column.name: [format_cell(row.get(column.name), column.spec) for row in drawn] for column in shown}
    left_out: list[schema.Column] = []
    if columns is not None:
        shown = named_columns(columns, rows)
        headers = {column.name: column.header or column.name for column in shown}
        cells = {column.name: [format_cell(row.get(column.name), column.spec) for row in drawn] for column in shown}
    else:
        widths = {name: max(len(headers[name]), *map(len, cells[name])) for name in headers}
        shown, left_out = fit_columns(shown, widths, width or stdout.width)
    for column in shown:
        table.add_column(
            headers[column.name], justify="left" if column.name in LEFT else "right", no_wrap=True, overflow="ellipsis"
        )
    for index, row in enumerate(drawn):
        style = {"diverged": "red", "collapsed": "yellow"}.get(str(row.get("status")), None)
        table.add_row(*[cells[column.name][index] for column in shown], style=style)
    notes = ["all runs: " + ", ".join(shared)] if shared else []
    if len(scores) > 1:
        notes.append(
            "D(x), D(G(z)): probabilities for BCE losses, mean critic outputs "
            "for the others (column 'score' in the CSV)"
        )
    elif scores == {"critic"}:
        notes.append("D(x), D(G(z)) are mean critic outputs, not probabilities")
    table.caption = "\n".join(notes) or None
    names = ",".join(column.name for column in left_out)
    left_out_line = (
        f"not shown, too wide for {width or stdout.width} columns: {', '.join(headers[c.name] for c in left_out)}; "
        f"`gbench show {out} --columns {names}` shows them (any results.csv columns, in "
        f"that order), `gbench export {out}` writes every column"
    )
    return table, left_out_line if left_out else ""


def priority(column: schema.Column) -> int:
    """Which columns a narrow table keeps first: what ran (architecture, loss, seed ...), then FID, then status, then
    the run id (35 characters or more: beside it, FID would not fit 80 columns), then the rest."""
    if column.name == "run_id":
        return 3
    return 0 if column.kind == schema.IDENTITY else 1 if column.name == "fid" else 2 if column.name == "status" else 4


def fit_columns(
    columns: list[schema.Column], widths: dict[str, int], width: int
) -> tuple[list[schema.Column], list[schema.Column]]:
    """The columns that fit ``width`` at their full ``widths`` (in
    table order), taken by :func:`priority`; and those left out.

    A rich table with borders takes a cell's width plus 3 (a space each side, a rule), plus 1 for the last rule.
    """
    kept: set[str] = set()
    used = 1
    for column in sorted(columns, key=priority):  # sorted() is stable: table order within a priority
        if used + widths[column.name] + 3 <= width or not kept:  # the first column is drawn however narrow the screen
            kept.add(column.name)
            used += widths[column.name] + 3
    return [c for c in columns if c.name in kept], [c for c in columns if c.name not in kept]


def named_columns(names: list[str], rows: list[dict[str, Any]]) -> list[schema.Column]:
    """``--columns``' names (results.csv's, or a table header), as
    columns; an unknown one is a GbenchError with the closest name."""
    from gbench.names import unknown

    present = schema.csv_columns(rows)
    by_header = {column.header.lower(): column.name for column in map(schema.column, present) if column.header}
    chosen = []
    for name in names:
        name = by_header.get(name.lower(), name)
        if name not in present:
            raise unknown("column", name, present, fix="; `gbench export` lists every column")
        chosen.append(schema.column(name))
    return chosen
