"""``gbench tune``: search hyperparameters with Optuna, every trial an ordinary run.

The search space comes from the plugins' declarations (``Hyperparameter``:
``tunable``, ``search_range()``, ``log``, ``choices``); ``--set`` fixes a
value, ``--space`` narrows or replaces a range, and architecture, loss and
schedule may be searched too. Each trial trains one run with
:func:`gbench.runner.execute` into OUT (so ``gbench show``/``export`` see it),
reports every evaluation to Optuna for pruning, and returns the final FID.
Workers, storage, counting and retries are :mod:`gbench.study`'s.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from gbench import display, store
from gbench import study as studylib
from gbench.config import RunConfig, hyperparameters_for
from gbench.errors import GbenchError
from gbench.registry import Hyperparameter, Registry, Value
from gbench.runner import DataCache, RunHooks, execute

#: --objective name -> (results-row column or "wall_time", header)
OBJECTIVES = {"fid": "fid", "kid": "kid_mean", "wall_time": "wall_time"}
PRUNERS = ("median", "hyperband", "none")
AXES = ("architecture", "loss", "schedule")
RUN_KEY_ATTR = "run_key"  # a hash of everything that decides a trial's result (run_key())
SAME_AS_ATTR = "same_as"  # the earlier trial whose run this one reused


# ---------------------------------------------------------------------------
# The search space
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    """One searched knob: a numeric range or a list of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Value, ...] | None = None

    def suggest(self, trial: Trial) -> Value:
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def describe(self) -> str:
        if self.choices is not None:
            return "{" + ", ".join(map(str, self.choices)) + "}"
        return f"{self.low:g}..{self.high:g}" + (" log" if self.log else "")


def default_dimension(hp: Hyperparameter) -> Dimension | None:
    """What ``gbench tune`` searches for a tunable knob by default (None: nothing)."""
    if hp.choices is not None:
        return Dimension(hp.name, choices=tuple(hp.choices))
    if hp.type is bool:
        return Dimension(hp.name, choices=(False, True))
    if hp.type not in (int, float):
        return None
    span = hp.search_range()
    if span is None:
        return None
    low, high = span
    if hp.type is int:
        low, high = math.ceil(low), math.floor(high)
    return Dimension(hp.name, low, high, log=hp.log, integer=hp.type is int) if low < high else None


def parse_dimension(name: str, spec: str, hp: Hyperparameter) -> Dimension:
    """``low:high[:log]`` or ``a,b,c`` for one hyperparameter, checked against its declaration."""
    example = (
        f"--space {name}={hp.describe_range().replace('..', ':').replace(' (log)', ':log')}"
        if hp.choices is None and hp.low is not None and hp.high is not None
        else f"--space {name}=a,b,c"
    )
    numeric = hp.type in (int, float) and hp.choices is None
    if ":" in spec and "," not in spec:
        parts = [part.strip() for part in spec.split(":")]
        if not numeric:
            raise GbenchError(
                f"--space {name}={spec!r}: {name} takes a list of values (one of {hp.describe_range()}), not a range; write e.g. --space {name}=a,b"
            )
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("log", "linear")) or not parts[0] or not parts[1]:
            raise GbenchError(f"--space {name}={spec!r} is not low:high or low:high:log; for example {example}")
        low, high = hp.parse(parts[0]), hp.parse(parts[1])
        log = parts[2] == "log" if len(parts) == 3 else hp.log
        if not low < high:
            raise GbenchError(
                f"--space {name}={spec!r} is an empty or inverted range ({low} is not below {high}); give low < high, or fix a value with --set {name}={low}"
            )
        if log and low <= 0:
            raise GbenchError(f"--space {name}={spec!r}: a log range needs a positive low end; drop ':log' or raise {low}")
        return Dimension(name, low, high, log=log, integer=hp.type is int)
    items = [item.strip() for item in spec.split(",")]
    if not spec.strip() or any(not item for item in items):
        raise GbenchError(f"--space {name}={spec!r} has an empty value; give low:high or a,b,c, for example {example}")
    values: list[Value] = []
    for item in items:
        value = hp.parse(item)
        if value not in values:
            values.append(value)
    return Dimension(name, choices=tuple(values))


@dataclass
class SearchSpace:
    """Architecture/loss/schedule choices, fixed values and searched dimensions."""

    axes: dict[str, list[str]]  # "architecture" -> candidates (one: fixed)
    fixed: dict[str, Any]  # --set (and --config params), applied where a combination knows the name
    narrowed: dict[str, Dimension]  # --space
    registry: Registry

    def combos(self) -> list[tuple[str, str, str]]:
        return [(a, l, s) for a in self.axes["architecture"] for l in self.axes["loss"] for s in self.axes["schedule"]]

    def known(self) -> dict[str, Hyperparameter]:
        known: dict[str, Hyperparameter] = {}
        for combo in self.combos():
            for name, hp in hyperparameters_for(self.registry, *combo).items():
                known.setdefault(name, hp)
        return known

    def dimensions(self, combo: tuple[str, str, str]) -> list[Dimension]:
        dims = []
        for name, hp in hyperparameters_for(self.registry, *combo).items():
            if name in self.fixed:
                continue
            dim = self.narrowed.get(name) or (default_dimension(hp) if hp.tunable else None)
            if dim is not None and not (dim.choices is not None and len(dim.choices) == 1):
                dims.append(dim)
        return dims

    def fixed_for(self, combo: tuple[str, str, str]) -> dict[str, Any]:
        names = hyperparameters_for(self.registry, *combo)
        values = {k: v for k, v in self.fixed.items() if k in names}
        for name, dim in self.narrowed.items():  # a one-value --space is a fixed value
            if name in names and dim.choices is not None and len(dim.choices) == 1:
                values[name] = dim.choices[0]
        return values

    def suggest(self, trial: Trial) -> tuple[tuple[str, str, str], dict[str, Any]]:
        """(architecture, loss, schedule) and the hyperparameters of one trial."""
        combo = tuple(trial.suggest_categorical(axis, values) if len(values) > 1 else values[0] for axis, values in self.axes.items())
        params = self.fixed_for(combo)  # type: ignore[arg-type]
        for dim in self.dimensions(combo):  # type: ignore[arg-type]
            params[dim.name] = dim.suggest(trial)
        return combo, params  # type: ignore[return-value]

    def describe(self) -> str:
        parts = [f"{axis}={{{', '.join(values)}}}" for axis, values in self.axes.items() if len(values) > 1]
        seen: dict[str, str] = {}
        for combo in self.combos():
            for dim in self.dimensions(combo):
                seen.setdefault(dim.name, dim.describe())
        parts += [f"{name}={text}" for name, text in seen.items()]
        return ", ".join(parts) or "(nothing: every value is fixed)"


def _kind(distribution: Any) -> str:
    return {"CategoricalDistribution": "a list of choices", "IntDistribution": "an integer range", "FloatDistribution": "a float range"}.get(
        type(distribution).__name__, type(distribution).__name__
    )


def check_compatible(study: optuna.Study, space: SearchSpace) -> None:
    """Optuna keeps a parameter's kind (list, integer or float range) for a whole study: say so before any trial."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    seen: dict[str, Any] = {}
    for trial in study.get_trials(deepcopy=False):
        for name, distribution in trial.distributions.items():
            seen.setdefault(name, distribution)
    wanted: dict[str, Any] = {axis: CategoricalDistribution(values) for axis, values in space.axes.items() if len(values) > 1}
    for combo in space.combos():
        for dim in space.dimensions(combo):
            if dim.choices is not None:
                wanted.setdefault(dim.name, CategoricalDistribution(list(dim.choices)))
            elif dim.integer:
                wanted.setdefault(dim.name, IntDistribution(int(dim.low), int(dim.high), log=dim.log))
            else:
                wanted.setdefault(dim.name, FloatDistribution(float(dim.low), float(dim.high), log=dim.log))
    for name, distribution in wanted.items():
        old = seen.get(name)
        if old is None:
            continue
        if type(old) is not type(distribution):
            problem = f"as {_kind(old)}, and Optuna cannot change it to {_kind(distribution)}"
        elif isinstance(old, CategoricalDistribution) and tuple(old.choices) != tuple(distribution.choices):
            problem = f"among {{{', '.join(map(str, old.choices))}}}, and Optuna cannot change a list of choices"
        elif not isinstance(old, CategoricalDistribution) and old.log != distribution.log:
            problem = f"on a {'log' if old.log else 'linear'} scale, and Optuna cannot change the scale"
        else:
            continue
        raise GbenchError(
            f"study {study.study_name!r} searched {name!r} {problem} within one study; keep that in --space {name}=..., or start a new study with --study-name"
        )


def build_space(registry: Registry, combos: list[tuple[str, str, str]], fixed: dict[str, Any], space_items: list[str] | None) -> SearchSpace:
    axes: dict[str, list[str]] = {axis: [] for axis in AXES}
    for combo in combos:
        for axis, value in zip(AXES, combo):
            if value not in axes[axis]:
                axes[axis].append(value)
    raw: dict[str, str] = {}
    for item in space_items or []:
        name, sep, spec = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise GbenchError(f"--space {item!r} is not of the form key=low:high[:log] or key=a,b,c; for example --space lr=1e-4:1e-3:log")
        if name in raw:
            raise GbenchError(f"--space names {name!r} twice; give one range or list per hyperparameter")
        raw[name] = spec.strip()
    for axis in AXES:
        if axis in raw:
            names = [n.strip() for n in raw.pop(axis).split(",")]
            if not names or any(not n for n in names):
                raise GbenchError(f"--space {axis}= needs a comma-separated list of {axis} names, for example --space architecture=mlp,mlp-batchnorm")
            for name in names:
                registry.get(axis, name)  # unknown: one line listing the known ones
            axes[axis] = list(dict.fromkeys(names))
    space = SearchSpace(axes=axes, fixed=dict(fixed), narrowed={}, registry=registry)
    known = space.known()
    for name in list(space.fixed):
        if name not in known:
            from gbench.config import check_override_keys

            check_override_keys([name], known, " in --set")
    for name, spec in raw.items():
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, list(known) + list(AXES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise GbenchError(f"--space names unknown hyperparameter {name!r}{hint}; searchable: {', '.join([*AXES, *sorted(known)])}")
        if name in space.fixed:
            raise GbenchError(f"{name!r} is both fixed (--set {name}=...) and searched (--space {name}=...); give only one of them")
        space.narrowed[name] = parse_dimension(name, spec, known[name])
    return space


# ---------------------------------------------------------------------------
# One trial
# ---------------------------------------------------------------------------


def run_key(config: RunConfig) -> str:
    """A hash of what decides a run's result: not its name, data folder or logging."""
    settings = {k: v for k, v in config.to_dict().items() if k not in ("run_id", "data_root", "log_every", "checkpoint_every")}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "study"


@dataclass
class Tuner:
    """What every trial of one ``gbench tune`` shares, and the objective itself."""

    registry: Registry
    settings: dict[str, Any]
    space: SearchSpace
    study_name: str
    objectives: list[str]
    out: Path
    pruning: bool
    cache: DataCache = field(default_factory=DataCache)
    progress: dict[int, str] = field(default_factory=dict)  # trial number -> "step 40/200", this process's trials
    lock: threading.Lock = field(default_factory=threading.Lock)

    def config(self, combo: tuple[str, str, str], params: dict[str, Any], run_id: str | None = None) -> RunConfig:
        s = self.settings
        config = RunConfig(
            architecture=combo[0], loss=combo[1], schedule=combo[2], dataset=s["dataset"], seed=s["seeds"][0],
            epochs=s["epochs"], steps=s["steps"], device=s["device"], threads=s["threads"], data_root=s["data_root"],
            train_limit=s["train_limit"], log_every=s["log_every"], checkpoint_every=s["checkpoint_every"], eval=s["eval"],
            params=dict(params), run_id=run_id,
        )  # fmt: skip
        from gbench.config import resolve_params

        config.params = resolve_params(self.registry, config)
        return config

    def preload(self) -> None:
        """Check the fixed values of every combination and load the data once for every thread (bad input fails before any trial)."""
        for combo in self.space.combos():
            config = self.config(combo, self.space.fixed_for(combo))
        from gbench.runner import resolve_device

        self.cache.training_tensor(self.registry, config, resolve_device(config.device))
        if config.eval.samples > 0:
            self.cache.split(self.registry, config.dataset, "test", config.data_root, None)

    def run_id(self, trial: Trial) -> str:
        system_attrs = trial.study._storage.get_trial(trial._trial_id).system_attrs
        original = system_attrs.get("failed_trial", trial.number)  # a retried trial reuses its original's run folder
        return safe_name(f"{self.study_name}-t{int(original):04d}")

    def __call__(self, trial: Trial) -> list[float]:
        combo, params = self.space.suggest(trial)
        config = self.config(combo, params, run_id=self.run_id(trial))
        key = run_key(config)
        trial.set_user_attr(RUN_KEY_ATTR, key)
        earlier = self.earlier_result(trial, key)
        if earlier is not None:
            return earlier
        trial.set_user_attr("run_id", config.run_id)
        from gbench.runner import resolve_device

        total = config.total_steps(len(self.cache.training_tensor(self.registry, config, resolve_device(config.device))))
        trial.set_user_attr("total_steps", total)
        last: dict[str, Any] = {}

        def on_progress(done: int, steps: int) -> None:
            with self.lock:
                self.progress[trial.number] = f"step {done}/{steps}"

        def on_eval(step: int, metrics: dict[str, Any]) -> None:
            value = metrics.get(OBJECTIVES[self.objectives[0]])
            last.update(step=step, fid=metrics.get("fid"))
            with self.lock:
                self.progress[trial.number] = f"step {step}/{total} FID {metrics.get('fid', float('nan')):.1f}"
            if not self.pruning or value is None or not math.isfinite(float(value)):
                return
            trial.report(float(value), step)
            if step < total and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step}")

        started = time.perf_counter()
        extra = {"study": self.study_name, "trial": trial.number}
        try:
            row = execute(config, self.registry, self.out, RunHooks(on_progress=on_progress, on_eval=on_eval), self.cache, extra_columns=extra)
        except optuna.TrialPruned:
            wall = time.perf_counter() - started
            trial.set_user_attr("pruned_step", last.get("step"))
            trial.set_user_attr("wall_time", round(wall, 3))
            trial.set_user_attr("fid", last.get("fid"))
            self._store_pruned(config, last, wall, extra)
            raise
        finally:
            with self.lock:
                self.progress.pop(trial.number, None)
        wall = time.perf_counter() - started
        trial.set_user_attr("status", row.get("status"))
        trial.set_user_attr("fid", row.get("fid"))
        trial.set_user_attr("wall_time", round(wall, 3))
        trial.set_user_attr("steps", row.get("steps"))
        values = []
        for name in self.objectives:
            value = wall if name == "wall_time" else row.get(OBJECTIVES[name])
            values.append(float(value) if value is not None and math.isfinite(float(value)) else math.inf)  # diverged: worst
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

    def _store_pruned(self, config: RunConfig, last: dict[str, Any], wall: float, extra: dict[str, Any]) -> None:
        """A pruned trial is still a run in the results store, with status 'pruned'."""
        import datetime as dt

        row = {
            "run_id": config.run_id, "status": "pruned", "architecture": config.architecture, "loss": config.loss,
            "schedule": config.schedule, "dataset": config.dataset, "seed": config.seed, "steps": last.get("step"),
            **config.params, "fid": last.get("fid"), "train_seconds": round(wall, 3),
            "created": dt.datetime.now().isoformat(timespec="seconds"), **extra,
        }  # fmt: skip
        row = store._clean(row)
        store.write_json(self.out / str(config.run_id) / "summary.json", row)
        store.upsert_result(self.out, row)


# ---------------------------------------------------------------------------
# Tables and files
# ---------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.4g}"
    return str(value)


def _param_names(trials: list[FrozenTrial]) -> list[str]:
    names: list[str] = []
    for trial in trials:
        for name in trial.params:
            if name not in names:
                names.append(name)
    return [n for n in AXES if n in names] + sorted(n for n in names if n not in AXES)


def trial_table(trials: list[FrozenTrial], objectives: list[str], title: str, progress: dict[int, str] | None = None, limit: int | None = 25):
    from rich.table import Table

    shown = trials[-limit:] if limit else trials
    names = _param_names(shown)
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
        cells = [str(trial.number), state, *(_fmt(trial.params.get(n)) for n in names)]
        for index, name in enumerate(objectives):
            if trial.state == TrialState.COMPLETE and index < len(values):
                cells.append(_fmt(values[index]))
            else:
                cells.append(_fmt(trial.user_attrs.get("fid" if name == "fid" else name)))
        if "wall_time" not in objectives:
            cells.append(_fmt(trial.user_attrs.get("wall_time")))
        cells.append(note)
        table.add_row(*cells, style=styles.get(trial.state))
    return table


def trials_rows(trials: list[FrozenTrial], objectives: list[str]) -> list[dict[str, Any]]:
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
        row["retry_of"] = trial.system_attrs.get("failed_trial")
        row["worker"] = str(trial.user_attrs.get(studylib.WORKER_ATTR, "")).split("|")[0]
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


def run_command(trial: FrozenTrial, tuner: Tuner) -> tuple[str, dict[str, Any] | None]:
    """A ready-to-paste ``gbench run`` line for a trial, and a config file it needs (if any)."""
    registry, settings = tuner.registry, tuner.settings
    combo = tuple(trial.params.get(axis, tuner.space.axes[axis][0]) for axis in AXES)
    owner = registry.owners[("architecture", combo[0])]
    params = {**tuner.space.fixed_for(combo), **{k: v for k, v in trial.params.items() if k not in AXES}}  # type: ignore[arg-type]
    parts = ["gbench", "run", owner]
    config_file = None
    if len(registry.owned_by("architecture", owner)) > 1:
        config_file = {"architecture": combo[0]}
        parts += ["--config", str(tuner.out / "best.toml")]
    if combo[1] != "non-saturating":
        parts += ["--loss", combo[1]]
    if combo[2] != "k-steps":
        parts += ["--schedule", combo[2]]
    if settings["dataset"] != "mnist":
        parts += ["--dataset", settings["dataset"]]
    for option, key in (("--steps", "steps"), ("--epochs", "epochs"), ("--train-limit", "train_limit")):
        if settings.get(key) is not None:
            parts += [option, _fmt(settings[key]) if key == "epochs" else str(settings[key])]
    for name, value in params.items():
        parts += ["--set", f"{name}={value!r}" if isinstance(value, float) else f"{name}={value}"]
    return " ".join(shlex.quote(p) for p in parts), config_file


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------


def make_pruner(name: str, startup: int, eval_every: int | None, objectives: list[str], warmup: int = 0) -> optuna.pruners.BasePruner:
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
    return optuna.pruners.HyperbandPruner(min_resource=max(eval_every or 1, warmup), max_resource="auto", reduction_factor=3)


def parse_objectives(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not names or any(n not in OBJECTIVES for n in names) or len(set(names)) != len(names):
        bad = next((n for n in names if n not in OBJECTIVES), text)
        raise GbenchError(f"--objective {text!r}: unknown or repeated objective {bad!r}; choose from {', '.join(OBJECTIVES)}, e.g. --objective fid,wall_time")
    return names


def tune(args: Any) -> int:
    from gbench.commands._options import settings_from_args
    from gbench.commands.run import combos_for_target, warn_broken
    from gbench.plugins import resolve_target

    if args.trials < 1:
        raise GbenchError(f"--trials {args.trials} must be at least 1")
    objectives = parse_objectives(args.objective)
    settings = settings_from_args(args)
    if len(settings["seeds"]) > 1:
        raise GbenchError(f"gbench tune trains one run per trial; give one seed, e.g. --seeds {settings['seeds'][0]}")
    needs_eval = any(OBJECTIVES[n] != "wall_time" for n in objectives)
    if needs_eval and settings["eval"].samples <= 0:
        raise GbenchError("--eval-samples 0 turns evaluation off, but the objective needs FID; give --eval-samples N (e.g. 1000)")
    if args.n_jobs < 1:
        raise GbenchError(f"--n-jobs {args.n_jobs} must be at least 1")
    plugins, owner = resolve_target(args.target)
    warn_broken(plugins)
    registry = plugins.registry
    registry.dataset(settings["dataset"])
    combos = combos_for_target(registry, owner, settings)
    space = build_space(registry, combos, settings["overrides"], args.space)
    out = store.ensure_writable(settings["out"])
    study_name = args.study_name or safe_name(f"tune-{args.target}")
    pruning = len(objectives) == 1 and args.pruner != "none" and objectives[0] != "wall_time"
    tuner = Tuner(registry, settings, space, study_name, objectives, out, pruning)
    tuner.preload()
    storage = studylib.open_storage(args.storage, out / "tune.db", heartbeat=args.heartbeat)

    console = display.console
    if len(objectives) > 1 and args.pruner != "none":
        console.print("note: Optuna cannot prune multi-objective trials; running without pruning", highlight=False, soft_wrap=True)
    elif pruning and not settings["eval"].every:
        console.print("note: pruning needs evaluations during training; give --eval-every N, or no trial can be pruned", highlight=False, soft_wrap=True)

    sampler = optuna.samplers.TPESampler(seed=args.sampler_seed, constant_liar=True)
    pruner = make_pruner(args.pruner, args.pruner_startup, settings["eval"].every, objectives, args.pruner_warmup)
    directions = ["minimize"] * len(objectives)
    study, created = studylib.create_or_load(storage, study_name, directions, "tune", sampler=sampler, pruner=pruner)
    if created:
        study.set_user_attr("objectives", objectives)
        study.set_user_attr("target", args.target)
    check_compatible(study, space)

    before = studylib.count(studylib.counted_trials(study))
    console.print(
        f"study {study_name!r} in {studylib.shown_url(storage.url)}: {before.done} of {args.trials} trials done"
        f"{'' if created else ' (resumed)'}; searching {space.describe()}",
        highlight=False,
        soft_wrap=True,
    )
    try:
        ran = run_workers(study, tuner, args.trials, args.n_jobs)
    finally:
        trials = studylib.counted_trials(study)
        write_trials_csv(out / "trials.csv", trials, objectives)
    report(study, tuner, trials, storage.url, ran)
    return 0


def run_workers(study: optuna.Study, tuner: Tuner, target: int, n_jobs: int) -> int:
    """n_jobs worker threads on one study, under a live table of its trials."""
    stop = threading.Event()
    errors: list[BaseException] = []
    ran = [0] * n_jobs
    csv_path = tuner.out / "trials.csv"

    def on_change() -> None:
        with tuner.lock:
            trials = studylib.counted_trials(study)
            write_trials_csv(csv_path, trials, tuner.objectives)

    def worker(index: int) -> None:
        try:
            ran[index] = studylib.work(study, tuner, target=target, stop=stop, on_change=on_change)
        except BaseException as error:  # reported by the main thread
            errors.append(error)
            stop.set()

    def render():
        trials = studylib.counted_trials(study)
        counts = studylib.count(trials)
        title = f"gbench tune: {counts.done}/{target} done ({counts.pruned} pruned), {counts.running} running"
        with tuner.lock:
            progress = dict(tuner.progress)
        return trial_table(trials, tuner.objectives, title, progress)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True, name=f"tune-worker-{i}") for i in range(n_jobs)]
    with display.live(render()) as live:
        for thread in threads:
            thread.start()
        last = 0.0
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=0.5)
            if time.monotonic() - last > 2:
                live.update(render())
                last = time.monotonic()
        live.update(render())
    if errors:
        raise errors[0]
    return sum(ran)


def report(study: optuna.Study, tuner: Tuner, trials: list[FrozenTrial], storage_url: str, ran: int) -> None:
    out, objectives = tuner.out, tuner.objectives
    counts = studylib.count(trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    stdout = display.stdout
    if len(objectives) > 1:
        front = sorted(study.best_trials, key=lambda t: tuple(t.values)) if complete else []
        stdout.print(trial_table(front, objectives, f"Pareto front ({len(front)} of {len(complete)} complete trials): {', '.join(objectives)}", limit=None))
        best = front[0] if front else None
    else:
        top = sorted(complete, key=lambda t: t.value)[:5]
        stdout.print(trial_table(top, objectives, f"top {len(top)} of {len(complete)} complete trials (lowest {objectives[0].upper()} first)", limit=None))
        best = top[0] if top else None
    stdout.print(
        f"{counts.done} trials counted ({counts.complete} complete, {counts.pruned} pruned; {counts.failed} failed, not counted); this process ran {ran}",
        highlight=False,
    )
    if best is not None:
        line, config_file = run_command(best, tuner)
        if config_file:
            store.atomic_write_text(out / "best.toml", "".join(f'{k} = "{v}"\n' for k, v in config_file.items()))
        stdout.print(f"best trial #{best.number} ({', '.join(f'{n}={_fmt(v)}' for n, v in zip(objectives, best.values))}); run it with:", highlight=False)
        stdout.print(line, highlight=False, soft_wrap=True, markup=False)
    stdout.print(
        f"trials: {out / 'trials.csv'}  runs: {out / store.RESULTS}  dashboard: optuna-dashboard {shlex.quote(studylib.shown_url(storage_url))}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
