"""What the full study would cost, from a reduced-budget run of it.

A short suite (``full = "s1_mlp_capacity.toml"`` in its [suite] table) runs a
study at a fraction of its budget. :func:`full_study_estimate` scales what
its runs measured, setting by setting, to the full suite's budget: training
seconds per step times the full number of steps, plus evaluation seconds
times the full number of evaluations, over the full suite's seeds. The report
prints it beside its title, with the command that runs the full study.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gbench.analysis.comparisons import setting_names
from gbench.analysis.curves import evaluations
from gbench.analysis.stats import finite
from gbench.config import DEFAULT_EPOCHS, EvalOptions
from gbench.results.flags import run_seconds


@dataclass
class SettingCost:
    name: str
    steps_here: float
    steps_full: int
    seconds_per_step: float
    seconds_per_eval: float
    evals_full: int
    seeds: int

    @property
    def seconds(self) -> float:
        return self.seeds * (self.seconds_per_step * self.steps_full + self.seconds_per_eval * self.evals_full)


@dataclass
class Estimate:
    command: str
    settings: list[SettingCost]
    missing: list[str]  # full-suite variants this report has no runs of

    @property
    def seconds(self) -> float:
        return sum(cost.seconds for cost in self.settings)

    def text(self) -> str:
        hours = self.seconds / 3600
        runs = sum(cost.seeds for cost in self.settings)
        text = (
            f"Reduced budget. The full study is `{self.command}`: {runs} runs, about {hours:.1f} hours of one worker "
            f"on the machine these runs used ({hours / 2:.1f} with --jobs 2 on 2 cores, roughly), estimated from "
            "each setting's measured seconds per step and per evaluation scaled to the full steps and evaluations."
        )
        if self.missing:
            text += f" Not estimated (no runs here): {', '.join(self.missing)}."
        return text


def _steps(settings: dict[str, Any], steps_per_epoch: float) -> int:
    if settings.get("steps") is not None:
        return int(settings["steps"])
    return max(1, math.ceil(float(settings.get("epochs", DEFAULT_EPOCHS)) * steps_per_epoch))


def _evals(steps: float, settings: dict[str, Any]) -> int:
    if int(settings.get("eval_samples", EvalOptions.samples) or 0) <= 0:
        return 0
    every = settings.get("eval_every")
    # counted as the trainer makes them: a multiple of eval_every that is the last step is the final evaluation
    return evaluations(int(steps), int(every) if every else None)


def full_study_estimate(records: Sequence[Any], suite: Any) -> Estimate | None:
    """The estimate for ``suite``'s full study (its ``full`` suite file), or None when it names none."""
    # the suite loads its own full file (gbench.studies.sweep.suite): analysis never imports the studies above it
    full = suite.full_suite() if hasattr(suite, "full_suite") else None
    if full is None:
        return None
    path = Path(full.path)
    names = setting_names(records)
    costs, missing = [], []
    for variant in full.variants:
        rows = [r.row for r, name in zip(records, names) if name == variant.name]
        # a population's wall time is shared by its members: a run's own cost is its share (gbench.results.flags)
        measured = [
            (
                finite([run_seconds(row)]),
                finite([row.get("steps")]),
                finite([row.get("epochs")]),
                finite([row.get("eval_seconds")]),
            )
            for row in rows
        ]
        measured = [m for m in measured if m[0] and m[1]]
        if not measured:
            missing.append(variant.name)
            continue
        steps_here = sum(m[1][0] for m in measured) / len(measured)
        per_step = sum(m[0][0] / m[1][0] for m in measured) / len(measured)
        epochs = [m[2][0] for m in measured if m[2]]
        steps_per_epoch = steps_here / (sum(epochs) / len(epochs)) if epochs else steps_here
        # a row's eval_seconds: its final evaluation's
        per_eval = sum((m[3][0] if m[3] else 0.0) for m in measured) / len(measured)
        target = full.settings(variant)
        steps_full = _steps(target, steps_per_epoch)
        costs.append(
            SettingCost(
                variant.name, steps_here, steps_full, per_step, per_eval, _evals(steps_full, target), len(full.seeds)
            )
        )
    try:
        shown = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        shown = path
    return Estimate(f"gbench sweep {shown.as_posix()}", costs, missing)
