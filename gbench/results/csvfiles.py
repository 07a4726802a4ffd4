"""gbench's CSV files: written whole, read back checked (a cut or foreign file is one error line naming it)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gbench.errors import GbenchError
from gbench.results import schema
from gbench.results.atomic import atomic_write_text


def csv_text(rows: list[dict[str, Any]], columns: Iterable[str] | None = None) -> str:
    columns = list(columns) if columns is not None else schema.csv_columns(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


def write_csv(path: Path, rows: list[dict[str, Any]], columns: Iterable[str] | None = None) -> None:
    atomic_write_text(path, csv_text(rows, columns))


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV gbench wrote, checked: a cut or foreign file is a GbenchError naming it.

    gbench writes every CSV whole (temp file, then rename), ending in a newline,
    every row as wide as the header. Anything else was cut or written by
    another tool; csv's lenient default would make up a row from it (an
    unterminated quote swallows the rest of the file).
    """
    path = Path(path)
    if not path.exists():
        return []
    return parse_csv(path, path.read_bytes())


def parse_csv(path: Path, data: bytes) -> list[dict[str, str]]:
    """:func:`read_csv` on the bytes of ``path`` already read."""
    fix = "restore it from a backup, or delete it (its rows are lost) and run again"
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise GbenchError(f"{str(path)!r} is not a text CSV file; {fix}") from None
    if text and not text.endswith("\n"):
        raise GbenchError(f"{str(path)!r} ends in a cut line (no final newline: a write was interrupted); {fix}")
    try:
        lines = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error as error:
        raise GbenchError(f"{str(path)!r} is not a well-formed CSV file ({error}); {fix}") from None
    if not lines:
        return []
    header = lines[0]
    for number, line in enumerate(lines[1:], start=2):
        if len(line) != len(header):
            raise GbenchError(
                f"{str(path)!r} row {number} has {len(line)} fields, the header {len(header)}: "
                f"the file is damaged; {fix}"
            )
    return [dict(zip(header, line, strict=True)) for line in lines[1:]]
