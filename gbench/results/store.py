"""The results store: one folder per run, one row per run in ``results.csv``.

Every file is written to a temporary name and renamed into place, so a
reader never sees half a file. ``results.csv`` is shared by every process
writing into the same OUT: updates take an exclusive ``flock`` on
``OUT/.results.lock``, so concurrent runs lose no row. A new run's row is
appended (one write and one fsync, whatever the table's length); a row that
replaces another, or brings a new column, rewrites the table through a
temporary file as before. Readers take the lock shared, so they never see a
row half appended. Before appending, a writer notes the table's length and the
row's in the lock file; a writer killed mid-append leaves that note, and the
next one cuts the partial row off (readers skip it meanwhile).

Layout of ``OUT/<run-id>/``: ``config.json`` (the resolved config),
``metrics.csv`` (per-step history), ``summary.json``, ``samples.png`` (8x8
grid from fixed noise), ``generator.pt`` (weights), ``checkpoint.pt`` while
a run is unfinished.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from gbench.errors import GbenchError
from gbench.results import schema

if TYPE_CHECKING:
    import torch

RESULTS = "results.csv"
LOCK = ".results.lock"


def ensure_writable(out: str | os.PathLike) -> Path:
    """Create OUT if needed and prove it can be written, or fail in one line."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as error:
        raise GbenchError(
            f"cannot write to --out {str(path)!r} ({error.strerror or error}); choose a writable folder, e.g. --out runs"
        ) from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp's 0600 would hide results from others


#: errno values that mean "no room to write": no space, over quota, over RLIMIT_FSIZE.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, _FILE_MODE)
        os.replace(temp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        if (
            isinstance(error, OSError) and error.errno in DISK_FULL
        ):  # the old file, if any, is untouched: the temp file took the hit
            raise _disk_full(path, error) from None
        raise


def _disk_full(path: Path, error: OSError) -> GbenchError:
    return GbenchError(
        f"cannot write {str(path)!r}: {error.strerror} (disk full, over quota or over the file size limit); "
        "free space and run the same command again: files already written are whole"
    )


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(schema.json_safe(data), indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as error:  # a cut or foreign file: one line, not a traceback
        raise GbenchError(
            f"{str(path)!r} is damaged or not gbench's JSON ({error}); restore it from a backup or delete its run folder and run it again"
        ) from None


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
                f"{str(path)!r} row {number} has {len(line)} fields, the header {len(header)}: the file is damaged; {fix}"
            )
    return [dict(zip(header, line, strict=True)) for line in lines[1:]]


@contextlib.contextmanager
def locked(out: Path) -> Iterator[IO[bytes]]:
    """An exclusive lock on OUT's results table, across processes; a row a killed writer left half appended is cut off first."""
    with open(
        Path(out) / LOCK, "a+b", buffering=0
    ) as handle:  # unbuffered: a failed write leaves nothing to flush at close
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            _finish_interrupted_append(Path(out) / RESULTS, handle)
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pending_append(handle: IO[bytes]) -> tuple[int, int] | None:
    """The note ``"<table length> <row length>"`` a writer leaves in the lock file while it appends; None when there is none."""
    handle.seek(0)
    words = handle.read().split()
    return (int(words[0]), int(words[1])) if len(words) == 2 and all(word.isdigit() for word in words) else None


def _finish_interrupted_append(path: Path, handle: IO[bytes]) -> None:
    """Cut off what a writer killed mid-append left (under the exclusive lock): the table goes back to its length before."""
    pending = _pending_append(handle)
    if pending is None:
        return
    before, length = pending
    with contextlib.suppress(FileNotFoundError):
        size = path.stat().st_size
        if (
            size != before + length and size > before
        ):  # the row is not whole: its run is unlisted, as if killed before the append
            os.truncate(path, before)
    _set_pending(handle, "")


def _set_pending(handle: IO[bytes], note: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(note.encode())
    if note:  # the note must be on disk before the row it guards; clearing it needs no fsync: a note
        os.fsync(handle.fileno())  # left over from a whole row is ignored (the table has its length plus the row's)


def _encoded_row(row: dict[str, Any], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n").writerow(
        {k: ("" if v is None else v) for k, v in row.items()}
    )
    return buffer.getvalue().encode()


def _append_new_row(out: Path, row: dict[str, Any], handle: IO[bytes]) -> bool | None:
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
    # a quoted header, or a row starting with a quote (a run id with a comma, or another tool's quoting), is left to the parser
    if header_end < 0 or not data.endswith(b"\n") or b'"' in data[:header_end] or b'\n"' in data:
        return False
    columns = data[:header_end].decode(errors="replace").split(",")
    if columns[0] != "run_id" or not set(row) <= set(columns) or len(columns) < 2:
        return False
    line = _encoded_row(row, columns)
    if b"\n" + line[: line.index(b",") + 1] in data:  # the run id as a row's first field: maybe a row to replace
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
            raise _disk_full(path, error) from None
        raise
    finally:
        if descriptor is not None:
            os.close(descriptor)
    _set_pending(handle, "")
    return True


def _has_row(path: Path, data: bytes, run_id: str) -> bool:
    return any(r.get("run_id") == run_id for r in parse_csv(path, data))


def upsert_result(out: Path, row: dict[str, Any]) -> None:
    """Insert or replace (by run_id) one row of OUT/results.csv, safely under concurrency.

    A new run's row is appended; a replaced row (a resumed or re-evaluated run) moves
    to the end of a rewritten table, as it always did.
    """
    out = Path(out)
    with locked(out) as handle:
        if _append_new_row(out, row, handle):
            return
        rows = read_csv(out / RESULTS)
        rows = [r for r in rows if r.get("run_id") != row["run_id"]] + [row]
        write_csv(out / RESULTS, rows)


def ensure_result(out: Path, row: dict[str, Any]) -> None:
    """Add a finished run's row to OUT/results.csv unless it is there already.

    A process killed between a run's summary.json and its results row leaves
    the run finished but unlisted; resuming it lists it without training it again.
    """
    out = Path(out)
    with locked(out) as handle:
        appended = _append_new_row(out, row, handle)
        if appended is not False:
            return
        rows = read_csv(out / RESULTS)
        if all(r.get("run_id") != row["run_id"] for r in rows):
            write_csv(out / RESULTS, [*rows, row])


@contextlib.contextmanager
def _shared_lock(out: Path) -> Iterator[IO[bytes] | None]:
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


def read_results(out: str | os.PathLike) -> list[dict[str, str]]:
    out = Path(out)
    if not (out / RESULTS).exists():
        if not out.exists():
            raise GbenchError(
                f"results folder {str(out)!r} does not exist; give the --out folder of a gbench run (default: runs)"
            )
        raise GbenchError(
            f"{str(out / RESULTS)!r} does not exist: no run has finished in {str(out)!r} yet; run `gbench run plugins.mlp --out {out}` first"
        )
    if not (out / RESULTS).is_file():  # a folder (or a device) by that name: reading it would be a traceback
        raise GbenchError(
            f"{str(out / RESULTS)!r} is not a file; move it away: gbench keeps the table of finished runs there"
        )
    with _shared_lock(out) as handle:
        data = (out / RESULTS).read_bytes()
        pending = _pending_append(handle) if handle is not None else None
    if (
        pending is not None and len(data) != sum(pending) and len(data) > pending[0]
    ):  # a writer killed mid-append: its half row is not a row
        data = data[: pending[0]]
    rows = parse_csv(out / RESULTS, data)
    check_results_header(out / RESULTS)
    return rows


def check_results_header(path: Path) -> None:
    """A results.csv gbench did not write (no run_id column) is an error, not an empty table."""
    with open(path, newline="") as file:
        header = next(csv.reader(file), [])
    if "run_id" not in header:
        raise GbenchError(
            f"{str(path)!r} is not a gbench results table (its header has no run_id column: {', '.join(header[:4]) or 'the file is empty'}); move it away, or give the --out of a gbench run"
        )


def load_tensor_file(path: Path, map_location: Any = "cpu", fix: str = "delete the run folder and run it again") -> Any:
    """torch.load with ``weights_only=True``; a damaged or foreign file is one GbenchError line naming it.

    gbench's one loader of ``.pt`` files (runs, caches, extractor weights, image sets): only
    tensors and plain values come back, so no file can run code (docs/failures.md).
    """
    import pickle
    import warnings
    import zipfile

    import torch

    try:
        with warnings.catch_warnings():
            # A bare pickle (no torch zip) of a newer protocol makes torch warn before it refuses the
            # file: the refusal below is the one line the user needs, not torch's warning text too.
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise GbenchError(f"{str(path)!r} does not exist; {fix}") from None
    except pickle.UnpicklingError:  # weights_only=True refused an object: never run a file's code
        raise GbenchError(
            f"{str(path)!r} holds objects other than tensors and plain values, so it is not a gbench file; {fix}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, AttributeError, KeyError) as error:
        # torch reports a truncated zip as RuntimeError ("failed finding central directory"), an empty file as EOFError
        text = str(error)
        reason = (
            "cut short, or not a torch file"
            if "zip" in text or "central directory" in text or isinstance(error, EOFError)
            else text.splitlines()[0][:120]
        )
        raise GbenchError(f"{str(path)!r} is damaged ({reason}); {fix}") from None


def save_tensor_file(path: Path, obj: Any) -> None:
    """torch.save through a temp file and rename."""
    import torch  # here, not at the top: `gbench show` and `export` need no torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def save_image_grid(path: Path, images: torch.Tensor, nrow: int = 8) -> None:
    """Save float images in [-1, 1] as one PNG grid."""
    import torch
    from PIL import Image
    from torchvision.utils import make_grid

    grid = make_grid(
        images.detach().cpu().float(), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2, pad_value=1.0
    )
    array = grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    if array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
