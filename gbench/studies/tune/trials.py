"""The trials of a ``gbench tune`` study as people and programs read them: a table and trials.csv."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from gbench.results import store
from gbench.studies.tune.searchspace import AXES
from gbench.studies.workers import WORKER_ATTR

SAME_AS_ATTR = "same_as"  # the earlier trial whose run this one reused (gbench.studies.tune.tune.Tuner.earlier_result)


def format_cell(value: Any) -> str:
    """A value as a table cell: ``-`` for none, 4 significant digits for floats."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.4g}"
    return str(value)


def param_columns(trials: list[FrozenTrial]) -> list[str]:
    """The parameters any of the trials has: the axes first, then the rest by name."""
    names: list[str] = []
    for trial in trials:
        for name in trial.params:
            if name not in names:
                names.append(name)
    return [n for n in AXES if n in names] + sorted(n for n in names if n not in AXES)


def trial_table(
    trials: list[FrozenTrial],
    objectives: list[str],
    title: str,
    progress: dict[int, str] | None = None,
    limit: int | None = 25,
) -> Table:
    """The trials (the last ``limit`` of them) with their parameters, objectives and state; ``progress``: notes for
    running ones."""
    shown = trials[-limit:] if limit else trials
    names = param_columns(shown)
    table = Table(title=title, header_style="bold")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True, min_width=9)
    for name in names:
        table.add_column(name, justify="right")
    for name in objectives:
        table.add_column(name.upper() if name != "wall_time" else "wall s", justify="right")
    if "wall_time" not in objectives:
        table.add_column("wall s", justify="right")
    table.add_column("run / note", no_wrap=True, overflow="ellipsis", max_width=48)
    styles = {TrialState.PRUNED: "yellow", TrialState.FAIL: "red", TrialState.RUNNING: "cyan"}
    for trial in shown:
        state = trial.state.name.lower()
        note = str(trial.user_attrs.get("run_id", ""))
        if SAME_AS_ATTR in trial.user_attrs:
            note = f"same run as #{trial.user_attrs[SAME_AS_ATTR]}, not trained again"
        if trial.state == TrialState.PRUNED:
            state = f"pruned@{trial.user_attrs.get('pruned_step', trial.last_step)}"
        elif trial.state == TrialState.RUNNING and progress and trial.number in progress:
            note = progress[trial.number]
        elif trial.state == TrialState.FAIL and trial.user_attrs.get("error"):
            note = str(trial.user_attrs["error"])[:60]
        values = list(trial.values) if trial.values else []
        cells = [str(trial.number), state, *(format_cell(trial.params.get(n)) for n in names)]
        for index, name in enumerate(objectives):
            if trial.state == TrialState.COMPLETE and index < len(values):
                cells.append(format_cell(values[index]))
            else:
                cells.append(format_cell(trial.user_attrs.get("fid" if name == "fid" else name)))
        if "wall_time" not in objectives:
            cells.append(format_cell(trial.user_attrs.get("wall_time")))
        cells.append(note)
        table.add_row(*cells, style=styles.get(trial.state))
    return table


def trials_rows(trials: list[FrozenTrial], objectives: list[str]) -> list[dict[str, Any]]:
    """One row per trial, as trials.csv has them."""
    rows = []
    for trial in trials:
        row: dict[str, Any] = {"number": trial.number, "state": trial.state.name}
        values = list(trial.values) if trial.values else []
        for index, name in enumerate(objectives):
            row[name] = values[index] if index < len(values) else None
        row.update({f"param_{k}": v for k, v in trial.params.items()})
        for key in ("run_id", "status", "fid", "wall_time", "pruned_step", "steps", "error", SAME_AS_ATTR):
            if key in trial.user_attrs and key not in row:
                row[key] = trial.user_attrs[key]
        row["retry_of"] = trial.system_attrs.get("failed_trial")  # a FrozenTrial carries its system attrs publicly
        row["worker"] = str(trial.user_attrs.get(WORKER_ATTR, "")).split("|")[0]
        row["started"] = trial.datetime_start.isoformat(timespec="seconds") if trial.datetime_start else None
        row["completed"] = trial.datetime_complete.isoformat(timespec="seconds") if trial.datetime_complete else None
        rows.append(row)
    return rows


def write_trials_csv(path: Path, trials: list[FrozenTrial], objectives: list[str]) -> None:
    rows = trials_rows(trials, objectives)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    store.write_csv(path, rows, columns=columns or ["number", "state", *objectives])
