"""What a sweep's study holds, per (variant, seed): the trial that stands for it, the live table of them,
and the finished runs' records."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState
from rich.table import Table

from gbench.errors import GbenchError
from gbench.names import suggestion
from gbench.results.records import RunRecord, load_local
from gbench.studies import opening
from gbench.studies import workers as studylib
from gbench.studies.storage import open_storage, shown_url
from gbench.studies.sweep.plan import Plan, trial_per_key


def progress_table(plan: Plan, study: optuna.Study, progress: dict[str, str] | None = None, limit: int = 30) -> Table:
    """Every planned (variant, seed) with its state, FID, wall time and worker; running ones first."""
    chosen = trial_per_key(study)
    keys = plan.keys(study)
    keys += [k for k in chosen if k not in keys]
    done = sum(1 for k in keys if k in chosen and chosen[k].state == TrialState.COMPLETE)
    running = [k for k in keys if k in chosen and chosen[k].state == TrialState.RUNNING]
    table = Table(
        title=f"gbench sweep {plan.study_name}: {done}/{len(keys)} runs done, {len(running)} running",
        header_style="bold",
    )
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
        style = {"complete": "green", "fail": "red"}.get(state) or (
            "cyan" if state.startswith("step") or state == "running" else None
        )
        table.add_row(
            variant,
            seed,
            state,
            "-" if fid is None else f"{fid:.2f}",
            "-" if wall is None else f"{wall:.1f}",
            worker,
            style=style,
        )
    if len(order) > limit:
        table.caption = f"... and {len(order) - limit} more"
    return table


def sweep_records(sweep_plan: Plan, study: optuna.Study, out: Path) -> list[RunRecord]:
    """The planned runs that finished, in plan order: from the local results folder where they ran here, else from
    the study.

    The study may hold more finished runs than this plan has: another sweep of
    the same study with other ``--seeds``, or a variant since removed from the
    suite. Those are not this sweep's and stay out of its report.
    """
    planned = sweep_plan.keys(study)
    finished = {k: t for k, t in trial_per_key(study).items() if t.state == TrialState.COMPLETE and k in planned}
    try:
        local = {f"{r.variant}|{r.seed}": r for r in load_local(out, suite=sweep_plan.suite.name)}
    except GbenchError:
        local = {}  # no results.csv here: every run ran on another machine
    records = []
    for key in sorted(finished, key=planned.index):
        if key in local:
            records.append(local[key])
        elif "record" in finished[key].user_attrs:
            records.append(RunRecord.from_json(finished[key].user_attrs["record"]))
    return records


def load_records_from_storage(url: str, study_name: str) -> list[RunRecord]:
    """Every finished run of a sweep, from its Optuna storage alone (no shared disk needed)."""
    storage = open_storage(url, Path("sweep.db"), create=False)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise GbenchError(
            f"no study named {study_name!r} in {shown_url(url)}{suggestion(study_name, names)}; studies there: "
            f"{', '.join(names) or 'none'}"
        ) from None
    opening.check_made_by_gbench(study, study_name)
    records = []
    for trial in trial_per_key(study).values():
        if trial.state == TrialState.COMPLETE and "record" in trial.user_attrs:
            records.append(RunRecord.from_json(trial.user_attrs["record"]))
    return records
