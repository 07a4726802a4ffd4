"""What runs leave in OUT, and what the same command does with each folder.

Every folder under OUT with a config.json is one run, in one of these states:

- finished: it has summary.json. The same command keeps it rather than train
  it again (the same configuration and seed give the same result); ``--rerun``
  trains a new run on purpose.
- running: another live process holds its lock (:func:`interrupted.hold`).
  Nobody else touches it.
- interrupted: SIGTERM or Ctrl-C wrote interrupted.json. The same command
  resumes it from checkpoint.pt, or restarts it from step 0 in its folder
  when it was stopped before it saved any state (``"step": null``).
- killed: config.json but no summary, no marker and no live process (SIGKILL,
  the OOM killer, a power cut). The same command resumes it from checkpoint.pt
  when one was written, else restarts it from step 0 in its folder.
- damaged: its interrupted.json (or config.json) cannot be read. The same
  command stops before any training, naming the file in one line.

``gbench show`` lists every unfinished folder with what the same command will
do with it; ``gbench clean`` removes the unfinished ones no process holds.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gbench.config import RunConfig
from gbench.errors import GbenchError
from gbench.training import interrupted

FINISHED, RUNNING, INTERRUPTED, FAILED, KILLED, DAMAGED = (
    "finished",
    "running",
    "interrupted",
    "failed",
    "killed",
    "damaged",
)


@dataclass
class Folder:
    """One run folder under OUT and its state."""

    path: Path
    state: str
    step: int | None = (
        None  # the saved step it resumes from (a marker's); None with a checkpoint means "its checkpoint's step"
    )
    total_steps: int | None = None
    signal: str | None = None
    problem: str | None = None  # why a damaged folder's file cannot be read
    error: str | None = None  # a failed run's: the plugin's error (gbench/training/failed.py)
    config_hash: str | None = None

    @property
    def has_checkpoint(self) -> bool:
        return (self.path / "checkpoint.pt").exists()

    def describe(self) -> str:
        """One line: what the folder holds and what the same command will do with it."""
        name = self.path.name
        if self.state == RUNNING:
            return f"{name}: running now (another gbench process holds it); left alone"
        # without its config the run cannot be matched to a command
        if self.state == DAMAGED and self.config_hash is None:
            return f"{name}: {self.problem}; restore it, or `gbench clean` removes the folder"
        if self.state == DAMAGED:
            return (
                f"{name}: {self.problem}; delete that file and the same command takes "
                "the run over, or `gbench clean` removes the folder"
            )
        if self.state == FAILED:  # a plugin raised: step is that of the checkpoint kept
            kept = (
                f"last checkpoint at step {self.step}/{self.total_steps}" if self.step is not None else "no checkpoint"
            )
            return f"{name}: failed ({kept}): {self.error}"
        if self.state == INTERRUPTED and self.step is not None:
            return (
                f"{name}: interrupted at step {self.step}/{self.total_steps} "
                f"({self.signal}); the same command resumes it from step {self.step}"
            )
        if self.state == INTERRUPTED:
            return (
                f"{name}: interrupted ({self.signal}) before it saved any state; the "
                "same command restarts it from step 0 in its folder"
            )
        if self.has_checkpoint:
            return (
                f"{name}: unfinished, killed (no summary.json, no interrupted.json); the "
                "same command resumes it from its checkpoint.pt"
            )
        return (
            f"{name}: unfinished, killed before it saved any state (only config.json); "
            "the same command restarts it from step 0 in its folder"
        )


def run_folders(out: str | Path) -> list[Path]:
    """The run folders under OUT (those with a config.json), by name."""
    root = Path(out)
    if not root.is_dir():
        return []
    return sorted(path for path in root.iterdir() if path.is_dir() and (path / "config.json").is_file())


def inspect(run_dir: Path, with_hash: bool = False) -> Folder:
    """The folder's state (its config hash too with ``with_hash``; always for an unfinished one)."""
    finished = (run_dir / "summary.json").exists()
    folder = Folder(run_dir, FINISHED if finished else KILLED)
    if with_hash or not finished:
        try:
            folder.config_hash = interrupted.config_hash(
                RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
            )
        except (OSError, ValueError, TypeError, AttributeError) as error:
            folder.problem = f"config.json is damaged ({type(error).__name__})"
    if finished:
        return folder
    if interrupted.held_elsewhere(run_dir):
        folder.state = RUNNING
        return folder
    problem = interrupted.marker_problem(run_dir)
    if problem or folder.problem:
        folder.state = DAMAGED
        folder.problem = folder.problem or f"{interrupted.MARKER} is damaged ({problem})"
        return folder
    marker = interrupted.read_marker(run_dir)
    if marker is not None:
        failed = marker.get("status") == "failed"
        folder.state, folder.signal, folder.total_steps = (
            FAILED if failed else INTERRUPTED,
            marker.get("signal"),
            marker.get("total_steps"),
        )
        folder.error = marker.get("error") if failed else None
        step = marker.get("step")
        folder.step = step if isinstance(step, int) and folder.has_checkpoint else None
    return folder


def unfinished(out: str | Path) -> list[Folder]:
    """Every run folder under OUT without a summary.json, with its state (what ``show`` lists).

    One stat per finished folder (scandir knows a folder without one): at 10,000 runs
    this is what ``show`` adds to reading results.csv (benchmarks/leftovers_scan.py).
    """
    if not Path(out).is_dir():
        return []
    with os.scandir(out) as entries:
        candidates = sorted(
            Path(entry.path)
            for entry in entries
            if entry.is_dir() and not os.path.exists(os.path.join(entry.path, "summary.json"))
        )
    return [inspect(path) for path in candidates if (path / "config.json").is_file()]


class Leftovers:
    """OUT's run folders by config hash, read once before a batch
    of runs (:func:`gbench.training.batch.check_resumable`)."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.folders = [inspect(path, with_hash=True) for path in run_folders(out)]
        self.taken: set[Path] = set()

    def finished(self, wanted: str) -> str | None:
        """The run id of a finished run with this config hash (configuration and seed), if any."""
        return next((f.path.name for f in self.folders if f.state == FINISHED and f.config_hash == wanted), None)

    def take_over(self, wanted: str) -> tuple[str | None, str | None]:
        """An unfinished folder with this config hash, now held by
        this process, and a line to say when it restarts from step 0.

        A damaged marker in such a folder stops here, before any training, naming the file.
        """
        for folder in self.folders:
            if folder.config_hash != wanted or folder.path in self.taken or folder.state in (FINISHED, RUNNING):
                continue
            if folder.state == DAMAGED:
                raise GbenchError(
                    f"{str(folder.path / interrupted.MARKER)!r} is damaged "
                    f"({interrupted.marker_problem(folder.path)}); delete it and run "
                    f"the same command again to take run {folder.path.name} over (from its "
                    "checkpoint.pt if it has one), or restore the file"
                )
            if not interrupted.hold(folder.path) or (folder.path / "summary.json").exists():
                continue  # another process took it (or finished it) since the scan
            self.taken.add(folder.path)
            if folder.has_checkpoint:
                return folder.path.name, None  # the runner says "resumed interrupted run ... from step N"
            how = {INTERRUPTED: f"stopped by {folder.signal}", FAILED: "failed (a plugin raised)"}.get(
                folder.state, "killed (only config.json was left)"
            )
            return (
                folder.path.name,
                f"run {folder.path.name} was {how} before it saved any state: restarting it from step 0 in its folder",
            )
        return None, None


def remove(folders: Iterable[Folder], dry_run: bool) -> list[Folder]:
    """Delete the unfinished folders no process holds (never a
    finished one); return those removed, or those that would be."""
    removed = []
    for folder in folders:
        if folder.state in (FINISHED, RUNNING) or (folder.path / "summary.json").exists():
            continue
        if dry_run:
            removed.append(folder)
            continue
        if not interrupted.hold(folder.path):
            continue  # a process took it over since the scan
        try:
            shutil.rmtree(folder.path)
        finally:
            interrupted.release(folder.path)
        removed.append(folder)
    return removed


def take_over(out: Path, config: RunConfig) -> str | None:
    """The run id of an unfinished run with this config's arguments, now
    held by this process; else None (one run, as execute() starts it)."""
    return Leftovers(out).take_over(interrupted.config_hash(config))[0]
