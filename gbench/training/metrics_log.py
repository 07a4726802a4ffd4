"""A run's metrics.csv, written as it trains: one row appended (and flushed) per log row.

``tail -f``, a notebook or a second terminal can follow an hours-long run. The
file always holds whole rows, each step once, in order:

- a fresh run starts it with the header only (a folder taken over without a
  checkpoint starts over, so an older attempt's rows go);
- a resumed run rewrites it from the checkpoint's history (the rows up to the
  step it resumes from), so rows logged after that checkpoint by the stopped
  attempt go and come back once, as training reaches them again;
- a row with a column the header lacks (an evaluation's ``fid`` when the
  header was written without it) rewrites the file whole with the wider header;
- the end of the run rewrites it whole (:func:`write`): the final
  evaluation adds its FID to the last row.

Rewrites go through a temporary file and a rename: a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gbench.results import store
from gbench.training.trainer import HISTORY_COLUMNS

FILE = "metrics.csv"


def columns_for(rows: Iterable[dict[str, Any]], expected: Iterable[str] = ()) -> list[str]:
    """The trainer's columns, then every other column of ``rows`` (and ``expected``), sorted by name."""
    extra = {key for row in rows for key in row} | set(expected)
    return [*HISTORY_COLUMNS, *sorted(extra - set(HISTORY_COLUMNS))]


class MetricsLog:
    """The metrics.csv of one run folder. ``expected``: columns known before training (an evaluation's curves)."""

    def __init__(self, run_dir: Path, history: list[dict[str, Any]], expected: Iterable[str] = ()):
        self.path = run_dir / FILE
        self.expected = tuple(expected)
        self.rows = list(history)
        self.columns = columns_for(self.rows, self.expected)
        store.write_csv(self.path, self.rows, columns=self.columns)

    def append(self, row: dict[str, Any]) -> None:
        """Add one log row: appended and flushed, or the file rewritten when the row brings a new column."""
        self.rows.append(dict(row))
        if not set(row) <= set(self.columns):
            self.columns = columns_for(self.rows, self.expected)
            store.write_csv(self.path, self.rows, columns=self.columns)
            return
        with open(self.path, "a", newline="") as file:  # one write of one whole line; closing flushes it
            file.write(csv_line(row, self.columns))


def csv_line(row: dict[str, Any], columns: list[str]) -> str:
    """One row as :func:`gbench.results.store.csv_text` writes it, without the header."""
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n").writerow(
        {key: ("" if value is None else value) for key, value in row.items()}
    )
    return buffer.getvalue()


def write(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """A run's whole history, as it ends (the last row holds the final evaluation's metrics)."""
    store.write_csv(run_dir / FILE, history, columns=columns_for(history))
