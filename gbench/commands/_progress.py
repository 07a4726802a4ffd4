"""How the commands that train show progress, by where their output goes.

On a terminal: rich's live bars and tables. In a log (``> run.log 2>&1``, nohup,
SLURM, CI, a Jupyter ``!`` cell) rich hides those, so plain lines take their
place: one when a run starts (what, how many steps), one at most every
LINE_SECONDS or LINE_FRACTION of the steps (step, images/s, time left), one when
it ends (its FID). ``--quiet``: none of it, only errors and the final table;
``--verbose``: every log row as well. Lines go where the bars would (stderr), so
stdout holds the results alone.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import Progress

from gbench.results import display

QUIET, NORMAL, VERBOSE = -1, 0, 1
#: A progress line when this long has passed since the last one ...
LINE_SECONDS = 30.0
#: ... or this share of the steps is done since it, whichever comes first.
LINE_FRACTION = 0.1


def verbosity(args: argparse.Namespace) -> int:
    return QUIET if getattr(args, "quiet", False) else VERBOSE if getattr(args, "verbose", False) else NORMAL


def duration(seconds: float) -> str:
    """1h02m, 3m05s, 42s: a time left or taken, to the second below an hour."""
    if not math.isfinite(seconds):
        return "?"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s" if rest >= 60 else f"{rest}s"


@dataclass
class Throttle:
    """Says when the next plain line is due: LINE_SECONDS since the last, or LINE_FRACTION more of ``total`` done."""

    total: float
    done: float = 0.0
    at: float = field(default_factory=time.monotonic)

    def due(self, done: float) -> bool:
        now = time.monotonic()
        if now - self.at < LINE_SECONDS and done - self.done < LINE_FRACTION * self.total:
            return False
        self.done, self.at = done, now
        return True


def row_text(row: dict[str, Any], skip: tuple[str, ...] = ("step",)) -> str:
    """A log row's numbers, short: ``d_loss 0.6931 g_loss 0.7012 ...``."""
    parts = []
    for key, value in row.items():
        if key not in skip and isinstance(value, (int, float)) and not isinstance(value, bool):
            parts.append(f"{key} {value:.4g}")
    return " ".join(parts)


class RunProgress:
    """gbench run's progress over its groups (a population, or one run): bars, plain lines, or nothing."""

    def __init__(self, level: int, console: Console | None = None):
        self.level, self.console = level, console or display.console
        self.plain = not self.console.is_terminal
        self.bars: Progress | None = None

    def __enter__(self) -> RunProgress:
        if self.level > QUIET and not self.plain:
            self.bars = display.progress()
            self.bars.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bars is not None:
            if exc[0] is not None and not issubclass(exc[0], KeyboardInterrupt):
                self.bars.live.transient = True  # an error's one line is what to show, not a half-drawn bar above it
            self.bars.__exit__(*exc)

    def say(self, text: str) -> None:
        if self.level > QUIET:
            (self.bars.console if self.bars is not None else self.console).print(text, highlight=False, soft_wrap=True)

    def group(self, label: str, steps: int, runs: int) -> GroupProgress:
        return GroupProgress(self, label, steps, runs)


class GroupProgress:
    """One group's bar or lines; its methods are the runs' hooks (gbench.training.runner.RunHooks)."""

    def __init__(self, owner: RunProgress, label: str, steps: int, runs: int):
        self.owner, self.label, self.steps = owner, label, steps
        self.total = steps * runs
        self.latest: dict[str, dict[str, Any]] = {}  # run id -> its last log row
        self.resumed: dict[str, int] = {}  # run id -> the step it resumed from
        self.started = time.monotonic()
        self.throttle = Throttle(self.total)
        self.task = owner.bars.add_task(label, total=None) if owner.bars is not None else None
        if owner.plain:
            owner.say(f"{label}: started, {steps} steps{' each' if runs > 1 else ''}")

    def on_progress(self, done: int, total: int) -> None:
        if self.owner.bars is not None and self.task is not None:
            self.owner.bars.update(self.task, completed=done, total=total)

    def on_resume(self, run_id: str, step: int, total: int) -> None:
        self.resumed[run_id] = step
        self.owner.say(f"resumed interrupted run {run_id} from step {step}/{total}")

    def on_log_row(self, run_id: str, row: dict[str, Any]) -> None:
        self.latest[run_id] = row
        if self.owner.level >= VERBOSE:
            self.owner.say(f"{run_id} step {row['step']}/{self.steps}: {row_text(row)}")
        elif (
            self.owner.plain
            and self.owner.level > QUIET
            and int(row["step"]) < self.steps
            and self.throttle.due(self.done())
        ):
            self.owner.say(self.progress_line(int(row["step"])))

    def done(self) -> int:
        return sum(int(row["step"]) for row in self.latest.values())

    def images_per_second(self) -> float:
        """Training images a second, of the runs training now (a
        population's members together); evaluations not counted."""
        training = [row for row in self.latest.values() if int(row["step"]) < self.steps]
        return sum(float(row["images"]) / float(row["seconds"]) for row in training if float(row["seconds"]) > 0)

    def progress_line(self, step: int) -> str:
        done, before = self.done(), sum(self.resumed.values())
        rate = (done - before) / max(time.monotonic() - self.started, 1e-9)  # steps a second here, evaluations included
        left = (self.total - done) / rate if rate > 0 else math.inf
        return (
            f"{self.label}: step {step}/{self.steps} ({100 * done / self.total:.0f}%), "
            f"{self.images_per_second():.0f} images/s, {duration(left)} left"
        )

    def end(self, rows: list[dict[str, Any]]) -> None:
        statuses = ",".join(sorted({str(row.get("status")) for row in rows}))
        if self.owner.bars is not None and self.task is not None:
            self.owner.bars.update(
                self.task, description=self.owner.bars.tasks[self.task].description + f" [{statuses}]"
            )
        if self.owner.plain:
            fids = ", ".join(
                f"seed {row.get('seed')} FID {display.format_cell(row.get('fid'), '.2f')} ({row.get('status')})"
                for row in rows
            )
            self.owner.say(f"{self.label}: done in {duration(time.monotonic() - self.started)}: {fids}")


@dataclass
class StatusLines:
    """A live table's plain stand-in in a log (sweep, tune): a status line at most every LINE_SECONDS or
    LINE_FRACTION of ``total`` done (--verbose: whenever it changes). ``started``/``done_before``: for the time left."""

    level: int
    total: int
    console: Console = field(default_factory=lambda: display.console)
    throttle: Throttle | None = None
    started: float = field(default_factory=time.monotonic)
    done_before: int | None = None
    last: str = ""

    @property
    def plain(self) -> bool:
        """Whether lines are printed at all: not on a terminal (the live table is there), not with --quiet."""
        return self.level > QUIET and not self.console.is_terminal

    def time_left(self, done: int, total: int) -> str:
        """Elapsed and left, from the pace since the first update (what was done before this process does not count)."""
        elapsed = time.monotonic() - self.started
        rate = (done - (self.done_before or 0)) / max(elapsed, 1e-9)
        return f"{duration(elapsed)} elapsed, {duration((total - done) / rate if rate > 0 else math.inf)} left"

    def update(self, done: int, text: str) -> None:
        if self.done_before is None:
            self.done_before = done
        self.throttle = self.throttle or Throttle(self.total, done=done)
        changed, self.last = text != self.last, text
        if self.plain and (self.throttle.due(done) or (self.level >= VERBOSE and changed)):
            self.console.print(text, highlight=False, soft_wrap=True)


def log_line(text: str) -> None:
    """A line only in a log (no terminal): what a command is doing,
    where a terminal user sees it happen (eval, fid, report)."""
    if not display.console.is_terminal:
        display.console.print(text, highlight=False, soft_wrap=True)
