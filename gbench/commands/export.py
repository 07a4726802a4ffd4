"""gbench export OUT: the table of all runs as CSV, JSON or Parquet (pandas)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from gbench.errors import GbenchError
from gbench.results import schema, store

HELP = "Export the table of all runs in a results folder as csv, json or parquet."
FORMATS = ("csv", "json", "parquet")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", nargs="?", default="runs", help="results folder (default runs)")
    parser.add_argument("--format", choices=FORMATS, help="default: from -o's suffix, else csv")
    parser.add_argument("-o", "--output", help="file to write (default: stdout for csv/json)")


def frame(out: str):
    import pandas as pd

    rows = store.read_results(out)
    table = pd.DataFrame(rows, columns=schema.csv_columns(rows))
    # results.csv holds text: give numbers back their types for json and parquet
    for column in table.columns:
        converted = pd.to_numeric(table[column].replace("", None), errors="coerce")
        if converted.notna().sum() == (table[column] != "").sum():
            table[column] = converted
    return table


def run(args: argparse.Namespace) -> int:
    fmt = args.format or (Path(args.output).suffix.lstrip(".") if args.output and Path(args.output).suffix.lstrip(".") in FORMATS else "csv")
    if fmt == "parquet" and not args.output:
        raise GbenchError("parquet is binary: give a file with -o, e.g. -o results.parquet")
    table = frame(args.out)
    buffer = io.BytesIO()
    if fmt == "csv":
        buffer.write(table.to_csv(index=False).encode())
    elif fmt == "json":
        buffer.write(table.to_json(orient="records", indent=2).encode())
    else:
        table.to_parquet(buffer, index=False)
    if args.output:
        target = Path(args.output)
        if not target.parent.exists():
            raise GbenchError(f"cannot write {str(target)!r}: folder {str(target.parent)!r} does not exist; create it or pick another -o")
        store.atomic_write_bytes(target, buffer.getvalue())
    else:
        import sys

        sys.stdout.write(buffer.getvalue().decode())
    return 0
