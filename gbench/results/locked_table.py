"""OUT/results.csv shared by every process writing into the same OUT: the lock and the append.

Updates take an exclusive ``flock`` on ``OUT/.results.lock``, so concurrent
runs lose no row; readers take it shared, so they never see a row half
appended. A new run's row is appended (one write and one fsync, whatever the
table's length). Before appending, a writer notes the table's length and the
row's in the lock file; a writer killed mid-append leaves that note, and the
next one cuts the partial row off (readers skip it meanwhile).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from gbench.results.atomic import DISK_FULL, disk_full_error
from gbench.results.csvfiles import parse_csv

RESULTS = "results.csv"
LOCK = ".results.lock"


@contextlib.contextmanager
def locked(out: Path) -> Iterator[IO[bytes]]:
    """An exclusive lock on OUT's results table, across processes;
    a row a killed writer left half appended is cut off first."""
    # unbuffered: a failed write leaves nothing to flush at close
    with open(Path(out) / LOCK, "a+b", buffering=0) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            _finish_interrupted_append(Path(out) / RESULTS, handle)
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pending_append(handle: IO[bytes]) -> tuple[int, int] | None:
    """The note ``"<table length> <row length>"`` a writer leaves in the lock file while it appends;
    None when there is none."""
    handle.seek(0)
    words = handle.read().split()
    return (int(words[0]), int(words[1])) if len(words) == 2 and all(word.isdigit() for word in words) else None


def _finish_interrupted_append(path: Path, handle: IO[bytes]) -> None:
    """Cut off what a writer killed mid-append left (under the exclusive lock):
    the table goes back to its length before."""
    pending = pending_append(handle)
    if pending is None:
        return
    before, length = pending
    with contextlib.suppress(FileNotFoundError):
        size = path.stat().st_size
        # the row is not whole: its run is unlisted, as if killed before the append
        if size != before + length and size > before:
            os.truncate(path, before)
    _set_pending(handle, "")


def _set_pending(handle: IO[bytes], note: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(note.encode())
    # The note must be on disk before the row it guards; clearing it needs no fsync: a note
    # left over from a whole row is ignored (the table has its length plus the row's).
    if note:
        os.fsync(handle.fileno())


def _encoded_row(row: dict[str, Any], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n").writerow(
        {k: ("" if v is None else v) for k, v in row.items()}
    )
    return buffer.getvalue().encode()


def append_new_row(out: Path, row: dict[str, Any], handle: IO[bytes]) -> bool | None:
    """Append ``row`` to OUT/results.csv if it is a new run with no new column (one write, one fsync).

    True: appended. None: the run has a row already. False: this cannot be decided or done
    cheaply (no table yet, a new column, a header that does not start with run_id, a cut or
    odd file, or the run id's text found where it may be a row's start): the caller
    rewrites the whole table, which parses it and reports a damaged file as before.
    """
    path = out / RESULTS
    try:
        data = path.read_bytes()  # a byte search, no parsing: milliseconds at 10,000 rows
    except FileNotFoundError:
        return False
    header_end = data.find(b"\n")
    # a quoted header, or a row starting with a quote (a run id with a comma, or another tool's quoting),
    # is left to the parser
    if header_end < 0 or not data.endswith(b"\n") or b'"' in data[:header_end] or b'\n"' in data:
        return False
    columns = data[:header_end].decode(errors="replace").split(",")
    if columns[0] != "run_id" or not set(row) <= set(columns) or len(columns) < 2:
        return False
    line = _encoded_row(row, columns)
    # the run id as a row's first field: maybe a row to replace
    if b"\n" + line[: line.index(b",") + 1] in data:
        return None if _has_row(path, data, str(row["run_id"])) else False
    descriptor = None
    try:
        _set_pending(handle, f"{len(data)} {len(line)}")  # a note cut short by a full disk reads as no note
        descriptor = os.open(path, os.O_WRONLY)
        written = 0
        while written < len(line):
            written += os.pwrite(descriptor, line[written:], len(data) + written)
        os.fsync(descriptor)
    except OSError as error:
        if descriptor is not None:
            os.ftruncate(descriptor, len(data))  # the table as it was: no half row
        with contextlib.suppress(OSError):
            _set_pending(handle, "")
        if error.errno in DISK_FULL:
            raise disk_full_error(path, error) from None
        raise
    finally:
        if descriptor is not None:
            os.close(descriptor)
    _set_pending(handle, "")
    return True


def _has_row(path: Path, data: bytes, run_id: str) -> bool:
    return any(r.get("run_id") == run_id for r in parse_csv(path, data))


@contextlib.contextmanager
def shared_lock(out: Path) -> Iterator[IO[bytes] | None]:
    """OUT's results lock, shared: writers wait, other readers do not. None where it cannot be
    opened (a read-only folder that no writer ever locked: then no writer can be appending)."""
    handle = None
    for mode in ("rb", "a+b"):
        try:
            handle = open(out / LOCK, mode, buffering=0)
            break
        except OSError:
            continue
    if handle is None:
        yield None
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
