"""Interrupted runs: marked on disk, found again by their arguments, resumed.

A run stopped by SIGTERM or Ctrl-C keeps its folder with ``checkpoint.pt``
(the whole training state at the last step boundary) and ``interrupted.json``
(this marker: the config's hash, the step it reached, the signal). Nothing
else in the folder says "finished": there is no summary.json and no row in
results.csv, so ``show``, ``export`` and ``report`` never count it, and
``show`` lists it as ``interrupted``.

A plain ``gbench run`` names its folders with a timestamp and a random token,
so running the same command again would start a new folder. Instead, a run
with no fixed ``run_id`` first looks for a folder whose config.json has its
config's hash (:mod:`gbench.training.leftovers`) and takes it over: it holds
the folder's lock (:func:`hold`, an flock the kernel drops when the process
dies, SIGKILL included), so of two processes started at once only one resumes
it, and ``show`` and ``clean`` leave a folder being trained alone.
Sweeps and tunes fix their run ids, so they find their folders without this.

A second signal raises at once, mid-step, so no new checkpoint is written:
the marker then holds the step of the last checkpoint, or ``"step": null``
when there is none, and the run restarts from step 0 (:func:`stop_message`
says which).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from pathlib import Path
from typing import IO, Any

from gbench.config import RunConfig
from gbench.results import store

MARKER = "interrupted.json"
STATUS = "interrupted"
#: Held (flock) by the process training the run; see :func:`hold`.
LOCK = ".running.lock"
_held: dict[Path, IO[bytes]] = {}
#: What this process marked, for the message it exits with: (run id, step saved or None).
marked: list[tuple[str, int | None]] = []
#: Config keys that do not change what a run computes, left out of its hash.
UNHASHED = ("run_id", "threads")


def config_hash(config: RunConfig) -> str:
    """The same arguments give the same hash, whatever folder the run got."""
    data = {k: v for k, v in config.to_dict().items() if k not in UNHASHED}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def mark(
    run_dir: Path,
    config: RunConfig,
    step: int | None,
    total_steps: int,
    signal_name: str,
    status: str = STATUS,
    error: str | None = None,
) -> None:
    """Write the marker (atomically) after the state is saved; ``step`` None: no checkpoint was ever written.
    ``status`` "failed" (gbench/training/failed.py) carries the ``error``."""
    clear(run_dir)
    if step is None:
        (run_dir / "checkpoint.pt").unlink(missing_ok=True)  # none of this run's: it never saved one
    again = (
        "it resumes this run from checkpoint.pt"
        if step is not None
        else "this run saved no state, so it restarts from step 0"
    )
    store.write_json(
        run_dir / MARKER,
        {
            "status": status,
            "config_hash": config_hash(config),
            "step": step,
            "total_steps": total_steps,
            "signal": signal_name,
            "resume": f"run the same gbench command again; {again}",
            **({"error": error} if error else {}),
        },
    )
    marked.append((run_dir.name, step))


def stop_message(signal_name: str, command: str) -> str:
    """What the CLI says when a signal stopped it: true to what each run it marked saved."""
    saved = [f"{run_id} at step {step}" for run_id, step in marked if step is not None]
    unsaved = [run_id for run_id, step in marked if step is None]
    parts = ["finished runs are kept"]
    if saved:
        parts.append(f"saved state: {', '.join(saved)}")
    if unsaved:
        parts.append(f"stopped before saving any state, will restart from step 0: {', '.join(unsaved)}")
    return f"gbench: stopped by {signal_name}; {'; '.join(parts)}: run `{command}` again to resume or restart them"


def clear(run_dir: Path) -> None:
    """The run finished (or is marked again): drop the marker, its lock and any claim an older gbench left."""
    release(run_dir)
    for path in [run_dir / MARKER, run_dir / LOCK, *run_dir.glob(f".{MARKER}.*.claimed")]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def read_marker(run_dir: Path) -> dict[str, Any] | None:
    """The marker of an interrupted, unfinished run, or None (none there, or damaged: see :func:`marker_problem`)."""
    if (run_dir / "summary.json").exists() or marker_problem(run_dir):
        return None
    try:
        data = json.loads((run_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def marker_problem(run_dir: Path) -> str | None:
    """Why RUN/interrupted.json cannot be read (cut, not JSON, a planted pickle), or None when it is absent or sound."""
    try:
        data = json.loads((run_dir / MARKER).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:  # UnicodeDecodeError is a ValueError
        return f"{type(error).__name__}: {str(error)[:80]}"
    if not isinstance(data, dict) or not isinstance(data.get("config_hash"), str):
        return "not a gbench marker: no config_hash"
    return None


def hold(run_dir: Path) -> bool:
    """Lock RUN for this process, or False when another process holds it (it is training the run now).

    An flock, not a pid file: the kernel drops it when the process ends, by SIGKILL
    too, so a folder left locked is never mistaken for a live run, and of two
    processes that reach for one folder at once only one gets it.
    """
    run_dir = Path(run_dir)
    if run_dir in _held:
        return True
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK, "a+b")  # noqa: SIM115 -- kept open while the run trains: closing it drops the lock
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return False
    _held[run_dir] = handle
    return True


def release(run_dir: Path) -> None:
    """Drop this process's lock on RUN (it could not take the run over after all, or the run stopped)."""
    handle = _held.pop(Path(run_dir), None)
    if handle is not None:
        handle.close()


def held_elsewhere(run_dir: Path) -> bool:
    """Another live process is training RUN now (it holds the folder's lock)."""
    if Path(run_dir) in _held or not (run_dir / LOCK).exists():
        return False
    if not hold(run_dir):
        return True
    release(run_dir)
    return False
