"""Interrupted runs: marked on disk, found again by their arguments, resumed.

A run stopped by SIGTERM or Ctrl-C keeps its folder with ``checkpoint.pt``
(the whole training state at the last step boundary) and ``interrupted.json``
(this marker: the config's hash, the step it reached, the signal). Nothing
else in the folder says "finished": there is no summary.json and no row in
results.csv, so ``show``, ``export`` and ``report`` never count it, and
``show`` lists it as ``interrupted``.

A plain ``gbench run`` names its folders with a timestamp and a random token,
so running the same command again would start a new folder. Instead, a run
with no fixed ``run_id`` first looks for a marker holding its config's hash
and, if one is there, takes that folder over (``os.replace`` of the marker to
a name of its own, so of two processes started at once only one resumes it).
Sweeps and tunes fix their run ids, so they find their folders without this.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from gbench.config import RunConfig
from gbench.results import store

MARKER = "interrupted.json"
STATUS = "interrupted"
#: Config keys that do not change what a run computes, left out of its hash.
UNHASHED = ("run_id", "threads")


def config_hash(config: RunConfig) -> str:
    """The same arguments give the same hash, whatever folder the run got."""
    data = {k: v for k, v in config.to_dict().items() if k not in UNHASHED}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def mark(run_dir: Path, config: RunConfig, step: int | None, total_steps: int, signal_name: str, status: str = STATUS, error: str | None = None) -> None:
    """Write the marker (atomically) after the state is saved; ``status`` "failed" (gbench/training/failed.py) carries the ``error``."""
    clear(run_dir)
    store.write_json(
        run_dir / MARKER,
        {"status": status, "config_hash": config_hash(config), "step": step, "total_steps": total_steps, "signal": signal_name,
         "resume": "run the same gbench command again; it resumes this run from checkpoint.pt", **({"error": error} if error else {})},
    )  # fmt: skip


def clear(run_dir: Path) -> None:
    """The run finished (or is marked again): drop the marker and any claim on it."""
    for path in [run_dir / MARKER, *run_dir.glob(f".{MARKER}.*.claimed")]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def read_marker(run_dir: Path) -> dict[str, Any] | None:
    """The marker of an interrupted, unfinished run, or None (a damaged marker counts as none)."""
    if (run_dir / "summary.json").exists():
        return None
    try:
        data = json.loads((run_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(out: Path, config: RunConfig) -> str | None:
    """The run id of an interrupted run with these arguments, taken over by this process; else None.

    The marker is renamed to ``.interrupted.json.PID.claimed`` (atomic: of two
    processes only one wins); a claim whose process is gone (killed hard) is
    claimable again.
    """
    wanted = config_hash(config)
    for claimed in Path(out).glob(f"*/.{MARKER}.*.claimed"):
        with contextlib.suppress(ValueError, OSError):
            if not _alive(int(claimed.name.split(".")[-2])):
                os.replace(claimed, claimed.parent / MARKER)
    for marker in sorted(Path(out).glob(f"*/{MARKER}")):
        data = read_marker(marker.parent)
        if not data or data.get("config_hash") != wanted:
            continue
        try:
            os.replace(marker, marker.with_name(f".{MARKER}.{os.getpid()}.claimed"))
        except FileNotFoundError:
            continue  # another process took it a moment ago
        return marker.parent.name
    return None


def unclaim(run_dir: Path) -> None:
    """Give a claimed run back (this process could not resume it): it stays marked interrupted."""
    with contextlib.suppress(FileNotFoundError):
        os.replace(run_dir / f".{MARKER}.{os.getpid()}.claimed", run_dir / MARKER)


def interrupted_runs(out: str | os.PathLike) -> list[dict[str, Any]]:
    """``{"run_id", "status", "step", "total_steps", "signal", "error"}`` of each interrupted (or failed) run under OUT."""
    found = []
    for marker in sorted(Path(out).glob(f"*/{MARKER}")):
        data = read_marker(marker.parent)
        if data:
            status = str(data.get("status") or STATUS)
            found.append({"run_id": marker.parent.name, "status": status, **{k: data.get(k) for k in ("step", "total_steps", "signal", "error")}})
    return found
