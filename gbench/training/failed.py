"""A plugin that raises while a run trains: the run is marked failed, the error is one line.

A plugin's architecture (its nets' forward), loss or schedule may raise at any
step. That is the plugin's bug, not gbench's, so the user gets one
:class:`GbenchError` line naming the plugin, its file, the hook that registered
the thing, its name and the step, instead of a traceback. The run keeps its
folder and its last ``checkpoint.pt``, and gets the marker of an interrupted
run (:mod:`gbench.training.interrupted`) with ``"status": "failed"``: it has
no summary.json and no results row, ``gbench show`` lists it as failed, and the
same command again takes the folder over and retries it from that checkpoint.

An exception with no frame in the run's plugin files (tune's pruning, a bug
in gbench itself) is not the plugin's and is left to its caller.
"""

from __future__ import annotations

import inspect
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Protocol

from torch import nn

from gbench.config import RunConfig
from gbench.errors import GbenchError
from gbench.plugins.registry import Registry
from gbench.training import interrupted


class PreparedRun(Protocol):
    """What this module reads of :class:`gbench.training.runner.PreparedRun`
    (named here, not imported: the runner imports this)."""

    config: RunConfig
    run_dir: Path
    loss: Any
    schedule: Any
    steps: int
    saved: dict[str, Any]
    registry: Registry | None


STATUS = "failed"
#: The parts of a run a plugin provides, and the hook that registers each.
PARTS = {
    "architecture": "gbench_register_architectures",
    "loss": "gbench_register_losses",
    "schedule": "gbench_register_schedules",
}
#: The loops whose local ``step`` counts the steps finished when a plugin raised.
TRAINING_LOOPS = {"train", "train_population"}


def plugin_file(registry: Registry, kind: str, name: str) -> str | None:
    """The source file of the plugin module that registered ``kind`` ``name`` (its build function's module)."""
    build = getattr(registry.get(kind, name), "build", None)
    module = sys.modules.get(getattr(build, "__module__", "") or "")
    found = getattr(module, "__file__", None)
    if found is None and build is not None:
        try:
            found = inspect.getsourcefile(build)
        except TypeError:
            return None
    return str(Path(found).resolve()) if found else None


def _frames(tb: TracebackType | None) -> list[FrameType]:
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def _kind_of(frame: FrameType, caller_line: str, run: PreparedRun, candidates: list[str]) -> str:
    """Which part raised: the object the plugin's method ran on, else the line that called into the plugin."""
    this = frame.f_locals.get("self")
    if isinstance(this, nn.Module):
        return "architecture"
    if this is not None and isinstance(this, type(run.loss)) and "loss" in candidates:
        return "loss"
    if this is not None and isinstance(this, type(run.schedule)) and "schedule" in candidates:
        return "schedule"
    if len(candidates) == 1:
        return candidates[0]
    for kind, word in (("schedule", "schedule."), ("loss", "loss.")):
        if kind in candidates and word in caller_line:
            return kind
    return "architecture" if "architecture" in candidates else candidates[0]


def describe(error: BaseException, run: PreparedRun, registry: Registry) -> str | None:
    """One line naming the plugin, file, hook, name and step of a
    plugin's exception; None when no plugin frame raised it."""
    config = run.config
    names = {"architecture": config.architecture, "loss": config.loss, "schedule": config.schedule}
    files = {kind: plugin_file(registry, kind, name) for kind, name in names.items()}
    frames = _frames(error.__traceback__)
    summary = traceback.extract_tb(error.__traceback__)
    inside = [
        index for index, frame in enumerate(frames) if str(Path(frame.f_code.co_filename).resolve()) in files.values()
    ]
    if not inside:
        return None
    # the plugin code entered first (outermost) says which part was called; its innermost frame is where it raised
    first, last = inside[0], inside[-1]
    raised_file = str(Path(frames[last].f_code.co_filename).resolve())
    candidates = [kind for kind, file in files.items() if file == str(Path(frames[first].f_code.co_filename).resolve())]
    caller_line = (summary[first - 1].line or "") if first > 0 else ""
    kind = _kind_of(frames[first], caller_line, run, candidates)
    loops = [
        frame
        for frame in frames
        if frame.f_code.co_name in TRAINING_LOOPS and isinstance(frame.f_locals.get("step"), int)
    ]
    finished = int(loops[-1].f_locals["step"]) if loops else 0
    in_eval = any(frame.f_code.co_name == "on_eval" for frame in frames)
    # an evaluation runs after its step; a training failure is inside the next one
    step = finished if in_eval else finished + 1
    owner = registry.owners.get((kind, names[kind]), "?")
    reason = (str(error).strip().splitlines() or [""])[0][:200]
    saved = run.saved["step"]
    kept = (
        f"keeps its checkpoint of step {saved}"
        if saved is not None
        else "has no checkpoint (use --checkpoint-every N to keep one)"
    )
    return (
        f"plugin {owner!r} ({raised_file}:{frames[last].f_lineno}), hook {PARTS[kind]}, {kind} {names[kind]!r} raised "
        f"{type(error).__name__}{': ' + reason if reason else ''} at step {step}/{run.steps} of run {config.run_id}; "
        f"the run is marked failed and {kept}: fix the plugin and run the same command again to retry it"
    )


def mark(run: PreparedRun, message: str) -> None:
    """Mark the run failed (the interrupted marker with status "failed"):
    not finished, listed by show, retried by the same command."""
    interrupted.mark(
        run.run_dir, run.config, run.saved["step"], run.steps, "plugin error", status=STATUS, error=message
    )


def handle(error: BaseException, runs: Sequence[PreparedRun], training: int) -> GbenchError | None:
    """The one-line error for a plugin's exception, with every run of ``runs`` marked (None: not a plugin's).

    The first ``training`` runs were training (a population fails as one) and
    are marked failed; the rest (a one-by-one loop's runs not yet trained) are
    marked interrupted, so the same command takes their folders back too.
    """
    registry = runs[0].registry
    if registry is None or isinstance(error, (GbenchError, KeyboardInterrupt)) or not isinstance(error, Exception):
        return None
    message = describe(error, runs[0], registry)
    if message is None:
        return None
    for run in runs[:training]:
        mark(run, message)
    for run in runs[training:]:
        interrupted.mark(
            run.run_dir,
            run.config,
            run.saved["step"],
            run.steps,
            f"run {runs[0].config.run_id} failed before it started",
        )
    return GbenchError(message)
