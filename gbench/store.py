"""The results store: one folder per run, one row per run in ``results.csv``.

Every file is written to a temporary name and renamed into place, so a
reader never sees half a file. ``results.csv`` is shared by every process
writing into the same OUT: updates take an exclusive ``flock`` on
``OUT/.results.lock``, re-read the file, change one row and rename a new copy
into place, so concurrent runs lose no row.

Layout of ``OUT/<run-id>/``: ``config.json`` (the resolved config),
``metrics.csv`` (per-step history), ``summary.json``, ``samples.png`` (8x8
grid from fixed noise), ``generator.pt`` (weights), ``checkpoint.pt`` while
a run is unfinished.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gbench import schema
from gbench.errors import GbenchError

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
        raise GbenchError(f"cannot write to --out {str(path)!r} ({error.strerror or error}); choose a writable folder, e.g. --out runs") from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp's 0600 would hide results from others


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
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(schema.json_safe(data), indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


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
    if not Path(path).exists():
        return []
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """An exclusive lock on OUT's results table, across processes."""
    with open(Path(out) / LOCK, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upsert_result(out: Path, row: dict[str, Any]) -> None:
    """Insert or replace (by run_id) one row of OUT/results.csv, safely under concurrency."""
    out = Path(out)
    with locked(out):
        rows = read_csv(out / RESULTS)
        rows = [r for r in rows if r.get("run_id") != row["run_id"]] + [row]
        write_csv(out / RESULTS, rows)


def read_results(out: str | os.PathLike) -> list[dict[str, str]]:
    out = Path(out)
    if not (out / RESULTS).exists():
        if not out.exists():
            raise GbenchError(f"results folder {str(out)!r} does not exist; give the --out folder of a gbench run (default: runs)")
        raise GbenchError(f"{str(out / RESULTS)!r} does not exist: no run has finished in {str(out)!r} yet; run `gbench run plugins.mlp --out {out}` first")
    return read_csv(out / RESULTS)


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

    grid = make_grid(images.detach().cpu().float(), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2, pad_value=1.0)
    array = grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    if array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
