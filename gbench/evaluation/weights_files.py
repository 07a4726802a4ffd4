"""Extractor weights files: their SHA-256 (the ``@1a2b3c4d`` of every FID label) and their tensors, loaded safely.

A weights file is read with ``weights_only=True`` (:func:`gbench.results.store.load_tensor_file`):
a file holding code is one error line naming it, never a call.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch

from gbench.errors import GbenchError
from gbench.results import store


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def weights_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a weights file, memoised by (path, size, mtime): Inception's is 95 MB."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_MEMO:
        _SHA_MEMO[key] = file_sha256(path)
    return _SHA_MEMO[key]


def state_dict_bytes(state_dict: dict) -> bytes:
    """What ``torch.save`` writes for a state dict (byte-stable for equal tensors)."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, buffer)
    return buffer.getvalue()


def verified_state_dict(
    path: str | os.PathLike, fix: str = "give a state dict of tensors saved with torch.save"
) -> dict[str, torch.Tensor]:
    """A weights file's state dict, loaded with ``weights_only=True``:
    a file holding code is one GbenchError line naming it."""
    state = store.load_tensor_file(Path(path), fix=fix)
    tensors_by_name = isinstance(state, dict) and all(
        isinstance(key, str) and torch.is_tensor(value) for key, value in state.items()
    )
    if not tensors_by_name or not state:
        raise GbenchError(f"{str(path)!r} is not a state dict of tensors; {fix}")
    return state
