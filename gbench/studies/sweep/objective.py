"""The objective of a sweep's trials: train the (variant, seed) runs they name, alone or as a population.

:class:`Sweeper` is called by the worker loop with one claimed trial
(:func:`gbench.studies.workers.work`, ``--population off``) or with the claimed trials
of one variant (:func:`gbench.studies.groups.work_groups`): the group trains as
one population (:func:`gbench.training.population.run.execute_population`), each member an
ordinary run into the sweep's folder, and each trial gets its run's record.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import Trial

from gbench.analysis import adaptive
from gbench.errors import GbenchError
from gbench.results import store
from gbench.results.records import RunRecord, typed_value
from gbench.studies import workers as studylib
from gbench.studies.sweep.plan import Plan
from gbench.studies.sweep.suite import Run
from gbench.torchtools import resolve_device
from gbench.training.population.run import execute_population
from gbench.training.runner import DataCache, RunHooks

#: A run checkpoints every CHECKPOINT_FRACTION of its steps, but not more often than every CHECKPOINT_MIN steps.
CHECKPOINT_FRACTION = 0.1
CHECKPOINT_MIN = 200
#: At most this many history rows go into a trial's user attrs (evaluation rows and the last are always kept).
HISTORY_LIMIT = 300


def compact_history(rows: list[dict[str, Any]], limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """metrics.csv rows, typed, rounded to 6 significant digits, thinned to about ``limit`` rows."""
    typed = [{k: typed_value(v) for k, v in row.items() if v not in (None, "")} for row in rows]
    for row in typed:
        for key, value in row.items():
            if isinstance(value, float) and math.isfinite(value):
                row[key] = float(f"{value:.6g}")
    if len(typed) <= limit:
        return typed
    keep = {0, len(typed) - 1} | {i for i, row in enumerate(typed) if row.get("fid") is not None}
    stride = max(1, math.ceil(len(typed) / max(1, limit - len(keep))))
    keep |= set(range(0, len(typed), stride))
    return [typed[i] for i in sorted(keep)]


@dataclass
class Sweeper:
    """The objective of a sweep's trials: train the (variant, seed) the trial names."""

    plan: Plan
    cache: DataCache = field(default_factory=DataCache)
    progress: dict[str, str] = field(default_factory=dict)  # key -> "step 40/200", this process's runs
    lock: threading.Lock = field(default_factory=threading.Lock)
    interrupt: threading.Event = field(
        default_factory=threading.Event
    )  # set on Ctrl-C: the running run gives itself back
    on_note: Callable[[str], None] | None = None  # a line for the user (the command prints it; the library never does)

    def run_for(self, key: str) -> Run:
        for run in self.plan.runs:
            if run.key == key:
                return run
        variant, _, seed = key.rpartition("|")
        names = [v.name for v in self.plan.suite.variants]
        if variant not in names:
            raise GbenchError(
                f"study {self.plan.study_name!r} holds a run of variant {variant!r}, which {self.plan.suite.where()} "
                "no longer has; restore it or use another --study-name"
            )
        return next(
            r
            for r in self.plan.suite.runs(self.plan.registry, self.plan.quick, [int(seed)], self.plan.overrides)
            if r.variant == variant
        )

    def __call__(self, trial: Trial) -> float:
        """Train the one run a trial names (``--population off``)."""
        return self.group([trial])[0]

    def group(self, trials: list[Trial]) -> list[float]:
        """Train the runs these trials name (seeds of one variant) as one population; each trial's FID, in order."""
        keys = [str(trial.user_attrs[studylib.KEY_ATTR]) for trial in trials]
        runs = [self.run_for(key) for key in keys]
        configs = []
        for trial, run in zip(trials, runs):
            config = run.config
            total = config.total_steps(
                len(self.cache.training_tensor(self.plan.registry, config, resolve_device(config.device)))
            )
            if config.checkpoint_every is None:
                config = dataclasses.replace(
                    config, checkpoint_every=max(CHECKPOINT_MIN, int(total * CHECKPOINT_FRACTION))
                )
            configs.append(config)
            trial.set_user_attr("run_id", config.run_id)

        def on_progress(done: int, steps: int) -> None:
            # Ctrl-C: give the runs back at this logged step (gbench.studies.workers.run_one, study_groups.run_group)
            if self.interrupt.is_set():
                raise studylib.Interrupted(f"runs {', '.join(keys)} interrupted at step {done}")
            with self.lock:
                for key in keys:
                    self.progress[key] = f"step {done}/{steps}"

        started = time.perf_counter()
        hooks = RunHooks(on_progress=on_progress)
        try:
            rows, reason = execute_population(
                configs, self.plan.registry, self.plan.out, hooks, self.cache, extra_columns=self.columns(runs[0])
            )
        finally:
            with self.lock:
                for key in keys:
                    self.progress.pop(key, None)
        if reason and self.on_note:
            seeds = ",".join(str(run.seed) for run in runs)
            self.on_note(f"{runs[0].variant} seeds {seeds} trained one by one, not as a population: {reason}")
        wall = round(time.perf_counter() - started, 3)
        return [self._record(trial, run, row, wall) for trial, run, row in zip(trials, runs, rows)]

    def columns(self, run: Run) -> dict[str, Any]:
        """The results columns a sweep adds to its runs' rows."""
        extra = {"suite": self.plan.suite.name, "variant": run.variant}
        if (
            self.plan.design is not None
        ):  # the report replays the design from the results alone (gbench.analysis.adaptive.design_of)
            extra[adaptive.COLUMN] = adaptive.design_text(self.plan.design)
        return extra

    def _record(self, trial: Trial, run: Run, row: dict[str, Any], wall: float) -> float:
        """Keep a finished run's record in its trial (the report needs no shared disk); its FID."""
        extra = self.columns(run)
        if any(row.get(k) != v for k, v in extra.items()):  # a folder finished by an older gbench: label it now
            row.update(extra)
            store.write_json(self.plan.out / str(run.config.run_id) / "summary.json", row)
            store.upsert_result(self.plan.out, row)
        history = compact_history(store.read_csv(self.plan.out / str(run.config.run_id) / "metrics.csv"))
        record = RunRecord(variant=run.variant, seed=run.seed, row=row, history=history)
        trial.set_user_attr("record", record.to_json())
        trial.set_user_attr("status", row.get("status"))
        trial.set_user_attr("fid", row.get("fid"))
        trial.set_user_attr("wall_time", wall)  # a population's members share its wall time
        fid = row.get("fid")
        return float(fid) if isinstance(fid, (int, float)) and math.isfinite(fid) else math.inf
