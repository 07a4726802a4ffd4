"""Rich output: progress bars while runs train, tables of results."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

# Wide tables stay readable when piped to a file (rich assumes 80 columns there).
console = Console(stderr=True)
stdout = Console() if Console().is_terminal else Console(width=240)

#: (column, header, format) of the results table; a column shows when any row has it.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("run_id", "run", "s"),
    ("status", "status", "s"),
    ("architecture", "arch", "s"),
    ("loss", "loss", "s"),
    ("schedule", "schedule", "s"),
    ("dataset", "dataset", "s"),
    ("seed", "seed", "s"),
    ("latent_dim", "latent", "s"),
    ("hidden_dim", "hidden", "s"),
    ("depth", "depth", "s"),
    ("k", "k", "s"),
    ("lr", "lr", "g"),
    ("batch_size", "batch", "s"),
    ("steps", "steps", "s"),
    ("d_real", "D(x)", ".3f"),
    ("d_fake", "D(G(z))", ".3f"),
    ("d_loss", "d_loss", ".3f"),
    ("g_loss", "g_loss", ".3f"),
    ("fid", "FID", ".2f"),
    ("kid_mean", "KID", ".4f"),
    ("precision", "prec", ".3f"),
    ("recall", "recall", ".3f"),
    ("classes_covered", "classes", "s"),
    ("fid_extractor", "extractor", "s"),
    ("train_seconds", "train s", ".1f"),
    ("eval_seconds", "eval s", ".1f"),
    ("images_per_second", "img/s", ",.0f"),
)


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
        yield display
    if not console.is_terminal:
        console.line()


def _format(value: Any, spec: str) -> str:
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


#: Columns that move to the caption when every row has the same value (keeps wide tables readable).
SHARED_COLUMNS = ("loss", "schedule", "dataset", "seed", "latent_dim", "hidden_dim", "depth", "k", "lr", "batch_size", "steps", "fid_extractor")


def results_table(rows: Iterable[dict[str, Any]], title: str = "gbench results", run_ids: bool = True) -> Table:
    rows = list(rows)
    table = Table(title=title, header_style="bold", show_lines=False)
    shown = [(key, header, spec) for key, header, spec in COLUMNS if any(row.get(key) not in (None, "") for row in rows)]
    if not run_ids:
        shown = [column for column in shown if column[0] != "run_id"]
    shared = []
    if len(rows) > 1:
        for key, header, spec in list(shown):
            values = {str(row.get(key)) for row in rows}
            if key in SHARED_COLUMNS and len(values) == 1:
                shown.remove((key, header, spec))
                shared.append(f"{'FID extractor' if key == 'fid_extractor' else header} {_format(rows[0].get(key), spec)}")
    scores = {row.get("score") for row in rows if row.get("score")}
    for key, header, _ in shown:
        if key in ("d_real", "d_fake") and scores == {"critic"}:
            header += " critic"
        table.add_column(
            header, justify="left" if key in ("run_id", "status", "architecture", "loss", "schedule", "dataset", "fid_extractor") else "right", overflow="fold"
        )
    for row in rows:
        style = {"diverged": "red", "collapsed": "yellow"}.get(str(row.get("status")), None)
        table.add_row(*[_format(row.get(key), spec) for key, _, spec in shown], style=style)
    notes = ["all runs: " + ", ".join(shared)] if shared else []
    if len(scores) > 1:
        notes.append("D(x), D(G(z)): probabilities for BCE losses, mean critic outputs for the others (column 'score' in the CSV)")
    elif scores == {"critic"}:
        notes.append("D(x), D(G(z)) are mean critic outputs, not probabilities")
    table.caption = "\n".join(notes) or None
    return table
