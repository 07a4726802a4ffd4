"""What a sweep's study holds, per (variant, seed): the trial that stands for it, and the live table of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from gbench import study as studylib

if TYPE_CHECKING:
    from gbench.sweep import Plan


def trial_per_key(study: optuna.Study) -> dict[str, FrozenTrial]:
    """The trial that stands for each key: COMPLETE first, then RUNNING, WAITING, the latest FAIL."""
    rank = {TrialState.COMPLETE: 4, TrialState.RUNNING: 3, TrialState.WAITING: 2, TrialState.PRUNED: 1, TrialState.FAIL: 0}
    chosen: dict[str, FrozenTrial] = {}
    for trial in studylib.counted_trials(study):
        key = trial.user_attrs.get(studylib.KEY_ATTR)
        if key is None:
            continue
        old = chosen.get(key)
        if old is None or (rank[trial.state], trial.number) >= (rank[old.state], old.number):
            chosen[key] = trial
    return chosen


def progress_table(plan: Plan, study: optuna.Study, progress: dict[str, str] | None = None, limit: int = 30) -> Table:
    """Every planned (variant, seed) with its state, FID, wall time and worker; running ones first."""
    chosen = trial_per_key(study)
    keys = [run.key for run in plan.runs]
    keys += [k for k in chosen if k not in keys]
    done = sum(1 for k in keys if k in chosen and chosen[k].state == TrialState.COMPLETE)
    running = [k for k in keys if k in chosen and chosen[k].state == TrialState.RUNNING]
    table = Table(title=f"gbench sweep {plan.study_name}: {done}/{len(keys)} runs done, {len(running)} running", header_style="bold")
    for name in ("variant", "seed", "state", "FID", "wall s", "worker"):
        table.add_column(name, justify="right" if name in ("seed", "FID", "wall s") else "left")
    order = running + [k for k in keys if k not in running]
    for key in order[:limit]:
        variant, _, seed = key.rpartition("|")
        trial = chosen.get(key)
        state = trial.state.name.lower() if trial else "missing"
        if trial is not None and trial.state == TrialState.RUNNING and progress and key in progress:
            state = progress[key]
        fid = trial.user_attrs.get("fid") if trial else None
        wall = trial.user_attrs.get("wall_time") if trial else None
        worker = str(trial.user_attrs.get(studylib.WORKER_ATTR, "")).split("|")[0] if trial else ""
        style = {"complete": "green", "fail": "red"}.get(state) or ("cyan" if state.startswith("step") or state == "running" else None)
        table.add_row(variant, seed, state, "-" if fid is None else f"{fid:.2f}", "-" if wall is None else f"{wall:.1f}", worker, style=style)
    if len(order) > limit:
        table.caption = f"... and {len(order) - limit} more"
    return table
