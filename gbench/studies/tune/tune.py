"""``gbench tune`` as a library: search hyperparameters with Optuna, every trial an ordinary run.

The command (:mod:`gbench.commands.tune`) turns its options into a base
:class:`~gbench.config.RunConfig`, a :class:`~gbench.studies.tune.searchspace.SearchSpace`
and :class:`TuneOptions`; :func:`open_study` makes or resumes the study and
:func:`optimize` runs its workers. Each trial trains one run with
:func:`gbench.training.runner.execute` into OUT (so ``gbench show``/``export`` see it),
reports every evaluation to Optuna for pruning, and returns the final FID.
Workers, storage, counting and retries are :mod:`gbench.studies.workers`'s.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import Trial, TrialState

from gbench.config import RunConfig, device_for, resolve_params
from gbench.errors import GbenchError
from gbench.plugins.registry import Registry
from gbench.results import schema, store
from gbench.studies import opening
from gbench.studies import workers as studylib
from gbench.studies.shared_study import SharedStudy, retried_from
from gbench.studies.storage import DEFAULT_HEARTBEAT, open_storage
from gbench.studies.tune.searchspace import Combo, SearchSpace, check_compatible
from gbench.studies.tune.trials import SAME_AS_ATTR
from gbench.torchtools import resolve_device
from gbench.training.population.run import execute_population
from gbench.training.runner import DataCache, RunHooks

#: --objective name -> the results-row column it minimises ("wall_time": the trial's own clock)
OBJECTIVES = {"fid": "fid", "kid": "kid_mean", "wall_time": "wall_time"}
PRUNERS = ("median", "hyperband", "none")
RUN_KEY_ATTR = "run_key"  # a hash of everything that decides a trial's result (run_key())


@dataclass
class TuneOptions:
    """How one ``gbench tune`` searches; the runs' own settings are the base RunConfig."""

    trials: int = 50  # complete plus pruned trials to reach, across all workers
    objectives: list[str] = field(default_factory=lambda: ["fid"])
    pruner: str = "median"
    pruner_startup: int = 5
    pruner_warmup: int = 0  # no trial is pruned before this generator step
    sampler_seed: int | None = None
    n_jobs: int = 1  # worker threads in this process
    devices: list[str] = field(
        default_factory=list
    )  # worker i trains on devices[i % len]; empty: the base config's device
    storage: str | None = None  # None: sqlite:///OUT/tune.db
    study_name: str = "tune-mlp"
    heartbeat: int = DEFAULT_HEARTBEAT
    target: str = "mlp"  # recorded with the study
    seeds: list[int] = field(
        default_factory=list
    )  # --seeds 0,1,2: each trial trains these as one population, scored by the mean; empty: the base seed

    @property
    def pruning(self) -> bool:
        return len(self.objectives) == 1 and self.pruner != "none" and self.objectives[0] != "wall_time"

    def check(self, base: RunConfig) -> None:
        """Bad options fail in one line before any trial."""
        if self.trials < 1:
            raise GbenchError(f"--trials {self.trials} must be at least 1")
        if self.n_jobs < 1:
            raise GbenchError(f"--n-jobs {self.n_jobs} must be at least 1")
        if len(self.devices) > self.n_jobs:
            raise GbenchError(
                f"--devices names {len(self.devices)} devices for {self.n_jobs} worker(s); "
                f"give --n-jobs {len(self.devices)} so each device gets one"
            )
        if self.pruner not in PRUNERS:
            raise GbenchError(f"--pruner {self.pruner!r}: choose from {', '.join(PRUNERS)}")
        if any(OBJECTIVES[name] != "wall_time" for name in self.objectives) and base.eval.samples <= 0:
            raise GbenchError(
                "--eval-samples 0 turns evaluation off, but the objective needs FID; give --eval-samples N (e.g. 1000)"
            )


def parse_objectives(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not names or any(n not in OBJECTIVES for n in names) or len(set(names)) != len(names):
        bad = next((n for n in names if n not in OBJECTIVES), text)
        raise GbenchError(
            f"--objective {text!r}: unknown or repeated objective {bad!r}; choose from {', '.join(OBJECTIVES)}, "
            "e.g. --objective fid,wall_time"
        )
    return names


def make_pruner(
    name: str, startup: int, eval_every: int | None, objectives: list[str], warmup: int = 0
) -> optuna.pruners.BasePruner:
    """The study's pruner; no trial is pruned before step ``warmup``.

    A warmup matters: in the S6 benchmark the median pruner stopped, at the
    first evaluation (step 600 of 3,000), the very configuration that ended
    best when run to the end (FID 53.6 there, the median ~50; 17.2 at the end).
    """
    if len(objectives) > 1 or name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup, interval_steps=1)
    # Hyperband's first rung is its warmup: nothing is pruned before min_resource steps.
    return optuna.pruners.HyperbandPruner(
        min_resource=max(eval_every or 1, warmup), max_resource="auto", reduction_factor=3
    )


# ---------------------------------------------------------------------------
# One trial
# ---------------------------------------------------------------------------


def run_key(config: RunConfig) -> str:
    """A hash of what decides a run's result: not its name, data folder or logging."""
    settings = {
        k: v for k, v in config.to_dict().items() if k not in ("run_id", "data_root", "log_every", "checkpoint_every")
    }
    settings["device"] = str(settings.get("device", "")).split(":")[
        0
    ]  # cuda:0 and cuda:1 (tune --devices) give the same run
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "study"


def finite_or_none(value: Any) -> float | None:
    """A metric as a results row keeps it: a diverged run's NaN or inf FID becomes None."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


@dataclass
class Tuner:
    """What every trial of one ``gbench tune`` shares, and the objective itself."""

    registry: Registry
    base: RunConfig  # every trial's settings but architecture, loss, schedule and params
    space: SearchSpace
    study_name: str
    objectives: list[str]
    out: Path
    pruning: bool
    cache: DataCache = field(default_factory=DataCache)
    progress: dict[int, str] = field(default_factory=dict)  # trial number -> "step 40/200", this process's trials
    lock: threading.Lock = field(default_factory=threading.Lock)
    interrupt: threading.Event = field(
        default_factory=threading.Event
    )  # set on Ctrl-C: running trials give themselves back
    devices: list[str] = field(default_factory=list)  # worker i trains on devices[i % len]
    worker: threading.local = field(
        default_factory=threading.local
    )  # this thread's worker number (run_workers sets it)
    seeds: list[int] = field(default_factory=lambda: [0])  # a trial's runs: one per seed, trained as one population
    on_note: Callable[[str], None] | None = None  # a line for the user (the command prints it; the library never does)

    def device(self) -> str:
        """The calling worker thread's device: its own GPU with --devices, else the base config's."""
        return device_for(getattr(self.worker, "index", 0), self.devices, self.base.device)

    def config(self, combo: Combo, params: dict[str, Any], run_id: str | None = None) -> RunConfig:
        architecture, loss, schedule = combo
        config = dataclasses.replace(
            self.base,
            architecture=architecture,
            loss=loss,
            schedule=schedule,
            params=dict(params),
            run_id=run_id,
            device=self.device(),
        )
        return dataclasses.replace(config, params=resolve_params(self.registry, config))

    def preload(self) -> None:
        """Check the fixed values of every combination and load the data once for every thread (bad input fails
        before any trial)."""
        for combo in self.space.combos():
            config = self.config(combo, self.space.fixed_for(combo))
            self.cache.training_tensor(self.registry, config, resolve_device(config.device))
            if config.eval.samples > 0:
                self.cache.split(self.registry, config.dataset, "test", config.data_root, None)

    def run_id(self, trial: Trial) -> str:
        [frozen] = [t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number]
        original = retried_from(frozen)  # a retried trial reuses its original's run folder
        return safe_name(f"{self.study_name}-t{trial.number if original is None else int(original):04d}")

    def __call__(self, trial: Trial) -> list[float]:
        combo, params = self.space.suggest(trial)
        config = self.config(combo, params, run_id=self.run_id(trial))
        key = run_key(config) if len(self.seeds) == 1 else f"{run_key(config)}-seeds-{','.join(map(str, self.seeds))}"
        trial.set_user_attr(RUN_KEY_ATTR, key)
        earlier = self.earlier_result(trial, key)
        if earlier is not None:
            return earlier
        # several seeds: one run per seed (run id ...-tNNNN-sS), trained together, the trial scored by their mean
        configs = (
            [config]
            if len(self.seeds) == 1
            else [dataclasses.replace(config, seed=s, run_id=f"{config.run_id}-s{s}") for s in self.seeds]
        )
        trial.set_user_attr("run_id", ",".join(str(c.run_id) for c in configs))
        total = config.total_steps(
            len(self.cache.training_tensor(self.registry, config, resolve_device(config.device)))
        )
        trial.set_user_attr("total_steps", total)
        last: dict[str, Any] = {}
        reported: dict[int, dict[int, tuple[float, Any]]] = {}  # step -> member -> (objective value, FID) there

        def on_progress(done: int, steps: int) -> None:
            if (
                self.interrupt.is_set()
            ):  # Ctrl-C: give the trial back at this logged step (gbench.studies.workers.run_one)
                raise studylib.Interrupted(f"trial {trial.number} interrupted at step {done}")
            with self.lock:
                self.progress[trial.number] = f"step {done}/{steps}"

        def on_eval(member: int, step: int, metrics: dict[str, Any]) -> None:
            value = metrics.get(OBJECTIVES[self.objectives[0]])
            seen = reported.setdefault(step, {})
            if len(seen) == len(configs):
                return  # this step is scored already (the final evaluation repeats the last in-training step)
            seen[member] = (float(value) if value is not None else math.nan, metrics.get("fid"))
            if len(seen) < len(configs):
                return  # the other members evaluate at this step next
            mean = float(
                np.mean([v for v, _ in seen.values()])
            )  # a diverged member's NaN or inf makes the mean so: no report
            mean_fid = float(np.mean([f if f is not None else math.nan for _, f in seen.values()]))
            last.update(step=step, fid=finite_or_none(mean_fid), member_fids={i: f for i, (_, f) in seen.items()})
            with self.lock:
                self.progress[trial.number] = f"step {step}/{total} FID {mean_fid:.1f}"
            if not self.pruning or not math.isfinite(mean):
                return
            trial.report(mean, step)
            if step < total and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step}")

        hooks = [RunHooks(on_progress=on_progress, on_eval=functools.partial(on_eval, i)) for i in range(len(configs))]
        started = time.perf_counter()
        extra = {"study": self.study_name, "trial": trial.number}
        try:
            rows, reason = execute_population(configs, self.registry, self.out, hooks, self.cache, extra_columns=extra)
        except optuna.TrialPruned:
            wall = time.perf_counter() - started
            trial.set_user_attr("pruned_step", last.get("step"))
            trial.set_user_attr("wall_time", round(wall, 3))
            trial.set_user_attr("fid", last.get("fid"))
            for index, member in enumerate(configs):
                self.store_pruned(member, {**last, "fid": last.get("member_fids", {}).get(index)}, wall, extra)
            raise
        finally:
            with self.lock:
                self.progress.pop(trial.number, None)
        wall = time.perf_counter() - started
        if reason and self.on_note:
            self.on_note(f"trial {trial.number}: its seeds trained one by one, not as a population: {reason}")
        statuses = sorted({str(row.get("status")) for row in rows})
        trial.set_user_attr("status", ",".join(statuses))
        fids = [finite_or_none(row.get("fid")) for row in rows]
        trial.set_user_attr("fid", None if None in fids else float(np.mean([f for f in fids if f is not None])))
        if len(rows) > 1:
            trial.set_user_attr("fid_seeds", fids)
        trial.set_user_attr("wall_time", round(wall, 3))
        trial.set_user_attr("steps", rows[0].get("steps"))
        values = []
        for name in self.objectives:
            column = [wall] if name == "wall_time" else [row.get(OBJECTIVES[name]) for row in rows]
            finite = [float(v) for v in column if v is not None and math.isfinite(float(v))]
            values.append(
                float(np.mean(finite)) if len(finite) == len(column) else math.inf
            )  # a diverged member: the trial is worst
        return values

    def earlier_result(self, trial: Trial, key: str) -> list[float] | None:
        """An earlier complete trial's values when it trained exactly this run, else None.

        TPE proposes the same point again and again once a discrete space
        narrows (7 of the 50 trials of the unpruned S6 benchmark), and the same
        config and seed on the same device give the same result, so training
        it again only costs time. As in Optuna's FAQ, the trial takes the
        earlier one's values and points to its run.
        """
        for other in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if other.user_attrs.get(RUN_KEY_ATTR) == key and other.values:  # this trial is RUNNING, never in the list
                for name in ("run_id", "status", "fid", "steps"):
                    if name in other.user_attrs:
                        trial.set_user_attr(name, other.user_attrs[name])
                trial.set_user_attr(SAME_AS_ATTR, other.number)
                trial.set_user_attr("wall_time", 0.0)  # this trial's own cost; the wall_time objective keeps the run's
                return list(other.values)
        return None

    def store_pruned(self, config: RunConfig, last: dict[str, Any], wall: float, extra: dict[str, Any]) -> None:
        """A pruned trial is still a run in the results store, with status 'pruned'."""
        identity = {
            **{"run_id": config.run_id, "architecture": config.architecture, "loss": config.loss},
            **{"schedule": config.schedule, "dataset": config.dataset, "seed": config.seed},
        }
        bookkeeping = {
            "status": "pruned",
            "steps": last.get("step"),
            "created": dt.datetime.now().isoformat(timespec="seconds"),
            **extra,
        }
        # the same builder as every finished run's row: a column the schema does not know is refused here,
        # not in a table later
        row = schema.results_row(
            identity,
            config.params,
            {"fid": finite_or_none(last.get("fid")), "train_seconds": round(wall, 3)},
            bookkeeping,
        )
        store.write_json(self.out / str(config.run_id) / "summary.json", row)
        store.upsert_result(self.out, row)


# ---------------------------------------------------------------------------
# The study and its workers
# ---------------------------------------------------------------------------


@dataclass
class TuneStudy:
    """An opened (created or resumed) tune study and the objective its trials run."""

    shared: SharedStudy  # the study and the storage it was opened on
    tuner: Tuner
    storage_url: str
    created: bool

    @property
    def study(self) -> optuna.Study:
        return self.shared.study


def open_study(
    registry: Registry,
    base: RunConfig,
    space: SearchSpace,
    options: TuneOptions,
    out: Path,
    cache: DataCache | None = None,
) -> TuneStudy:
    """Check everything, load the data (into ``cache``, when the checks loaded it already), and create or resume the
    study; no trial runs yet."""
    options.check(base)
    tuner = Tuner(
        registry,
        base,
        space,
        options.study_name,
        options.objectives,
        out,
        options.pruning,
        cache=cache or DataCache(),
        devices=list(options.devices),
        seeds=list(options.seeds) or [base.seed],
    )
    tuner.preload()
    storage = open_storage(options.storage, out / "tune.db", heartbeat=options.heartbeat)
    sampler = optuna.samplers.TPESampler(seed=options.sampler_seed, constant_liar=True)
    pruner = make_pruner(
        options.pruner, options.pruner_startup, base.eval.every, options.objectives, options.pruner_warmup
    )
    directions = ["minimize"] * len(options.objectives)
    shared, created = opening.create_or_load(
        storage, options.study_name, directions, "tune", sampler=sampler, pruner=pruner
    )
    if created:
        shared.study.set_user_attr("objectives", options.objectives)
        shared.study.set_user_attr("target", options.target)
    check_compatible(shared.study, space)
    return TuneStudy(shared, tuner, storage.url, created)
