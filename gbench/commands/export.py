"""gbench export OUT: the table of all runs as CSV, JSON or Parquet (pandas)."""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

from gbench.errors import GbenchError
from gbench.results import schema, store

HELP = "Export the table of all runs in a results folder as csv, json or parquet."
FORMATS = ("csv", "json", "parquet")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", nargs="?", default="runs", help="results folder (default runs)")
    parser.add_argument(
        "--format", type=_format, metavar="{" + ",".join(FORMATS) + "}", help="default: from -o's suffix, else csv"
    )
    parser.add_argument("-o", "--output", help="file to write (default: stdout for csv/json)")


def _format(text: str) -> str:
    from gbench.names import unknown

    if text.lower() not in FORMATS:
        raise argparse.ArgumentTypeError(str(unknown("format", text, FORMATS)))
    return text.lower()


def format_for(output: str | None) -> str:
    """-o's format from its suffix: csv when it has none or another
    (results.txt), but a near miss (.jsn, .parq) is refused."""
    from gbench.names import closest

    suffix = Path(output).suffix.lstrip(".").lower() if output else ""
    if suffix in FORMATS or not suffix:
        return suffix or "csv"
    near = closest(suffix, FORMATS)
    if near:
        raise GbenchError(
            f"-o {output!r}: unknown suffix .{suffix} (did you mean .{near}?); "
            f"name the file *.{near}, or give --format {near}"
        )
    return "csv"


def frame(out: str):
    import pandas as pd

    rows = store.read_results(out)
    table = pd.DataFrame(rows, columns=schema.csv_columns(rows))
    # results.csv holds text: give numbers back their types for json and parquet
    for column in table.columns:
        # a flag on every row (discriminator_wins): bool, as read_csv reads it
        if len(table) and table[column].isin(("True", "False")).all():
            table[column] = table[column] == "True"
            continue
        converted = pd.to_numeric(table[column].replace("", None), errors="coerce")
        if converted.notna().sum() == (table[column] != "").sum():
            table[column] = converted
    return table


def check_output(output: str) -> Path:
    """``-o``'s file can be written: not a folder, in a folder that
    exists and takes new files (checked before reading anything)."""
    target = Path(output)
    if target.is_dir():
        raise GbenchError(f"-o {output!r} is a folder; give a file name, e.g. -o {str(target / 'results.csv')!r}")
    if not target.parent.is_dir():
        raise GbenchError(
            f"cannot write {str(target)!r}: folder {str(target.parent)!r} does not exist; create it or pick another -o"
        )
    if not os.access(target.parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise GbenchError(f"cannot write -o {output!r}: permission denied; pick a file in a folder you can write")
    return target


def run(args: argparse.Namespace) -> int:
    fmt = args.format or format_for(args.output)
    if fmt == "parquet" and not args.output:
        raise GbenchError("parquet is binary: give a file with -o, e.g. -o results.parquet")
    target = check_output(args.output) if args.output else None
    table = frame(args.out)
    buffer = io.BytesIO()
    if fmt == "csv":
        buffer.write(table.to_csv(index=False).encode())
    elif fmt == "json":
        buffer.write(table.to_json(orient="records", indent=2).encode())
    else:
        table.to_parquet(buffer, index=False)
    if target is not None:
        try:
            store.atomic_write_bytes(target, buffer.getvalue())
        except OSError as error:  # root passes os.access; a read-only mount or an ACL may still refuse
            raise GbenchError(
                f"cannot write -o {args.output!r} ({error.strerror}); pick a file in a folder you can write"
            ) from None
    else:
        import sys

        sys.stdout.write(buffer.getvalue().decode())
    return 0
