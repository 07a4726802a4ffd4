"""Every file gbench writes is written whole: to a temporary name, fsynced, then renamed into place.

A reader never sees half a file, and a full disk (or a quota, or the file size
limit) leaves the old file untouched and is one error line naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from gbench.errors import GbenchError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: what open() would give; mkstemp's 0600 would hide results from others
_FILE_MODE = 0o666 & ~_umask()


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
        # the old file, if any, is untouched: the temp file took the hit
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            raise disk_full_error(path, error) from None
        raise


def disk_full_error(path: Path, error: OSError) -> GbenchError:
    return GbenchError(
        f"cannot write {str(path)!r}: {error.strerror} (disk full, over quota or over the file size limit); "
        "free space and run the same command again: files already written are whole"
    )


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())
