"""The results store: one folder per run, one row per run in ``results.csv``.

Every file is written to a temporary name and renamed into place
(:mod:`gbench.results.atomic`), so a reader never sees half a file.
``results.csv`` is shared by every process writing into the same OUT: updates
hold its lock and append a new run's row (:mod:`gbench.results.locked_table`);
a row that replaces another, or brings a new column, rewrites the table
through a temporary file. CSV files are read back checked
(:mod:`gbench.results.csvfiles`).

Layout of ``OUT/<run-id>/``: ``config.json`` (the resolved config),
``metrics.csv`` (per-step history), ``summary.json``, ``samples.png`` (8x8
grid from fixed noise), ``generator.pt`` (weights), ``checkpoint.pt`` while
a run is unfinished.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gbench.errors import GbenchError
from gbench.results import schema
from gbench.results.atomic import DISK_FULL, atomic_write_bytes, atomic_write_text
from gbench.results.csvfiles import csv_text, parse_csv, read_csv, write_csv
from gbench.results.locked_table import LOCK, RESULTS, append_new_row, locked, pending_append, shared_lock

if TYPE_CHECKING:
    import torch

#: The names the rest of gbench reaches through ``store.``: this module's own and those of the modules it is built on.
__all__ = [
    "DISK_FULL",
    "LOCK",
    "RESULTS",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_results_header",
    "csv_text",
    "ensure_result",
    "ensure_writable",
    "load_tensor_file",
    "locked",
    "parse_csv",
    "read_csv",
    "read_json",
    "read_results",
    "save_image_grid",
    "save_tensor_file",
    "upsert_result",
    "write_csv",
    "write_json",
]


def ensure_writable(out: str | os.PathLike) -> Path:
    """Create OUT if needed and prove it can be written, or fail in one line."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as error:
        raise GbenchError(
            f"cannot write to --out {str(path)!r} ({error.strerror or error}); "
            "choose a writable folder, e.g. --out runs"
        ) from None
    return path


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(schema.json_safe(data), indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    # a cut or foreign file: one line, not a traceback
    except (ValueError, UnicodeDecodeError) as error:
        raise GbenchError(
            f"{str(path)!r} is damaged or not gbench's JSON ({error}); "
            "restore it from a backup or delete its run folder and run it again"
        ) from None


def upsert_result(out: Path, row: dict[str, Any]) -> None:
    """Insert or replace (by run_id) one row of OUT/results.csv, safely under concurrency.

    A new run's row is appended; a replaced row (a resumed or re-evaluated run) moves
    to the end of a rewritten table, as it always did.
    """
    out = Path(out)
    with locked(out) as handle:
        if append_new_row(out, row, handle):
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
        appended = append_new_row(out, row, handle)
        if appended is not False:
            return
        rows = read_csv(out / RESULTS)
        if all(r.get("run_id") != row["run_id"] for r in rows):
            write_csv(out / RESULTS, [*rows, row])


def read_results(out: str | os.PathLike) -> list[dict[str, str]]:
    out = Path(out)
    if not (out / RESULTS).exists():
        if not out.exists():
            raise GbenchError(
                f"results folder {str(out)!r} does not exist; give the --out folder of a gbench run (default: runs)"
            )
        raise GbenchError(
            f"{str(out / RESULTS)!r} does not exist: no run has finished in {str(out)!r} yet; "
            f"run `gbench run plugins.mlp --out {out}` first"
        )
    # a folder (or a device) by that name: reading it would be a traceback
    if not (out / RESULTS).is_file():
        raise GbenchError(
            f"{str(out / RESULTS)!r} is not a file; move it away: gbench keeps the table of finished runs there"
        )
    with shared_lock(out) as handle:
        data = (out / RESULTS).read_bytes()
        pending = pending_append(handle) if handle is not None else None
    if pending is not None:
        before, length = pending
        if len(data) != before + length and len(data) > before:  # a writer killed mid-append: its half row is not a row
            data = data[:before]
    rows = parse_csv(out / RESULTS, data)
    check_results_header(out / RESULTS)
    return rows


def check_results_header(path: Path) -> None:
    """A results.csv gbench did not write (no run_id column) is an error, not an empty table."""
    with open(path, newline="") as file:
        header = next(csv.reader(file), [])
    if "run_id" not in header:
        raise GbenchError(
            f"{str(path)!r} is not a gbench results table "
            f"(its header has no run_id column: {', '.join(header[:4]) or 'the file is empty'}); "
            "move it away, or give the --out of a gbench run"
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
        # torch reports a truncated zip as RuntimeError ("failed finding central directory"),
        # an empty file as EOFError
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
