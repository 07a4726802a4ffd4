"""Run one configuration end to end: config -> plugins build the nets, loss and schedule ->
trainer -> evaluator -> results store. ``gbench run``, ``sweep`` and ``tune`` call :func:`execute`
(seeds as one population: :mod:`gbench.training.population.run`); nothing here prints, the caller
shows progress. Evaluation while training is :mod:`gbench.training.evaluating`'s; the sample grid
:mod:`gbench.training.samples`'; a conditional run's labels :mod:`gbench.training.conditioning`'s."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gbench import owndata, torchtools
from gbench.config import RunConfig, resolve_params
from gbench.data import load_split, to_training_tensor
from gbench.errors import GbenchError
from gbench.plugins.observers import Observers
from gbench.plugins.registry import Nets, Registry
from gbench.results import flags, provenance, schema, store
from gbench.training import failed, interrupted, leftovers, metrics_log, signals
from gbench.training.conditioning import Conditioning
from gbench.training.evaluating import CURVE_COLUMNS, CollapseWatch, Evaluator
from gbench.training.nets import build
from gbench.training.samples import COLUMNS, sample_grid
from gbench.training.state import TrainState
from gbench.training.trainer import Callbacks, TrainResult, TrainSettings, train


def new_run_id(config: RunConfig) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    data = owndata.run_name(config.dataset, config.data)
    return f"{config.architecture}-{data}-s{config.seed}-{stamp}-{secrets.token_hex(3)}"


@dataclass
class DataCache:
    """Datasets loaded once per process and kept on their device."""

    tensors: dict[tuple, Any] = field(default_factory=dict)

    def split(
        self, registry: Registry, dataset: str, split: str, data_root: str | None, limit: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        key = (dataset, split, data_root, os.environ.get("GBENCH_DATA"), limit)
        if key not in self.tensors:
            self.tensors[key] = load_split(registry.dataset(dataset), split, data_root, limit)
        return self.tensors[key]

    def training_tensor(self, registry: Registry, config: RunConfig, device: torch.device) -> torch.Tensor:
        return self._training_split(
            "float", registry, config, device, lambda images, _: to_training_tensor(images, device)
        )

    def training_labels(self, registry: Registry, config: RunConfig, device: torch.device) -> torch.Tensor:
        """The training images' int64 labels on the device, in the images' order (a conditional run's)."""
        return self._training_split(
            "labels", registry, config, device, lambda _, labels: labels.to(device=device, dtype=torch.int64)
        )

    def _training_split(
        self,
        kind: str,
        registry: Registry,
        config: RunConfig,
        device: torch.device,
        convert: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """The training split's images or labels as ``convert`` puts them on ``device``, made once per device."""
        key = (kind, config.dataset, config.data_root, os.environ.get("GBENCH_DATA"), config.train_limit, str(device))
        if key not in self.tensors:
            self.tensors[key] = convert(
                *self.split(registry, config.dataset, "train", config.data_root, config.train_limit)
            )
        return self.tensors[key]


@dataclass
class RunHooks:
    """What a caller can hear from a run in flight."""

    on_progress: Callable[[int, int], None] | None = None  # (steps done, total steps)
    on_eval: Callable[[int, dict[str, Any]], None] | None = None  # (step, metrics); may raise to stop (tune's pruning)
    on_resume: Callable[[str, int, int], None] | None = None  # (run id, step resumed from, total steps)
    on_log_row: Callable[[str, dict[str, Any]], None] | None = None  # (run id, the log row just added to metrics.csv)


@dataclass
class PreparedRun:
    """One run between building and storing: a solo run, or one member of a population."""

    config: RunConfig
    run_dir: Path
    out: Path
    nets: Nets
    loss: Any
    schedule: Any
    data: torch.Tensor
    settings: TrainSettings
    callbacks: Callbacks
    collapse: CollapseWatch
    evaluator: Evaluator | None
    hooks: RunHooks
    score_kind: str
    resume: TrainState | None
    observers: Observers
    steps: int  # the run's total steps
    saved: dict[str, Any]  # {"step": the step of the last checkpoint written or resumed from, or None}
    # whose plugins built it: a plugin that raises is named (gbench/training/failed.py)
    registry: Registry | None = None
    conditioning: Conditioning | None = None  # a conditional run's labels (gbench.training.conditioning)


def execute(
    config: RunConfig,
    registry: Registry,
    out: str | os.PathLike,
    hooks: RunHooks | None = None,
    cache: DataCache | None = None,
    extra_columns: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train, evaluate and store one run; return its results row.

    A run folder holding a checkpoint resumes from it; one whose summary says
    it finished is returned as it is. ``extra_columns`` (e.g. a sweep's
    ``suite`` and ``variant``) go into the results row and summary.json.
    """
    run = prepare_run(config, registry, Path(out), hooks or RunHooks(), cache or DataCache())
    if isinstance(run, dict):
        return run
    (result,) = train_guarded([run], functools.partial(train_solo, run))
    return finish_run(run, result, extra_columns, population=1)


def train_solo(run: PreparedRun) -> list[TrainResult]:
    """Train one run alone (the solo loop), as a one-item list for :func:`train_guarded`."""
    return [
        train(
            run.nets,
            run.loss,
            run.schedule,
            run.data,
            run.settings,
            run.callbacks,
            resume=run.resume,
            conditioning=run.conditioning,
        )
    ]


def train_guarded(
    runs: list[PreparedRun], train_them: Callable[[], list[TrainResult]], training: int | None = None
) -> list[TrainResult]:
    """Train ``runs`` (one solo run, or a population's members) with signals deferred to a step boundary.

    Stopped (tune's pruning, SIGTERM/Ctrl-C, a failure): each run that a signal
    stopped is marked interrupted at its last saved step, and every run's
    observers close it with status "stopped", before the error goes on. A
    plugin's exception marks the first ``training`` runs (default: all) failed
    and goes on as one GbenchError line naming the plugin (gbench/training/failed.py).
    """
    try:
        with signals.deferring():  # a signal stops the trainer at a step boundary, with every run's state saved
            return train_them()
    except BaseException as stop:  # pruned by tune, interrupted, or failed: observers still close their run
        plugin_error = failed.handle(stop, runs, len(runs) if training is None else training)
        for run in runs:
            run_id = str(run.config.run_id)
            if isinstance(stop, KeyboardInterrupt):
                signal_name = "SIGTERM" if isinstance(stop, signals.Terminated) else "SIGINT"
                interrupted.mark(run.run_dir, run.config, run.saved["step"], run.steps, signal_name)
            run.observers.run_end(run_id, {"run_id": run_id, "status": "stopped"}, run.run_dir)
        if plugin_error is not None:
            raise plugin_error from None
        raise


def prepare_run(
    config: RunConfig, registry: Registry, out: Path, hooks: RunHooks, cache: DataCache
) -> PreparedRun | dict[str, Any]:
    """Build one run and its callbacks (or return its row when it finished before)."""
    config = dataclasses.replace(config, params=resolve_params(registry, config))
    config = dataclasses.replace(
        config, run_id=config.run_id or leftovers.take_over(out, config) or new_run_id(config)
    )  # an unfinished run's folder
    run_dir = out / str(config.run_id)
    if (run_dir / "summary.json").exists():
        finished = store.read_json(run_dir / "summary.json")
        store.ensure_result(out, finished)
        return finished
    interrupted.hold(run_dir)  # while it trains: show and clean leave it alone, and nobody else takes it over
    device = torchtools.resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)

    data = cache.training_tensor(registry, config, device)
    batch_size = int(config.params["batch_size"])
    if batch_size > len(data):
        raise GbenchError(f"batch_size={batch_size} is larger than the {len(data)} training images; lower --batch-size")
    steps = config.total_steps(len(data))
    nets, loss, schedule = build(registry, config, device)
    store.write_json(run_dir / "config.json", config.to_dict())
    observers, run_id = (
        Observers(registry.hook),
        str(config.run_id),
    )  # the lifecycle hooks: trackers and other observer plugins
    observers.run_start(run_id, config.to_dict(), run_dir)

    evaluator = Evaluator(config, registry, cache, device, nets) if config.eval.samples > 0 else None
    collapse = CollapseWatch()

    def on_eval(step: int) -> dict[str, Any]:
        assert evaluator is not None
        metrics = evaluator(seed=step, final=False)
        collapsed = collapse.see(step, metrics)
        if observers.listening:
            observers.evaluation(run_id, step, metrics, sample_grid(nets, device))
        if hooks.on_eval:
            hooks.on_eval(step, metrics)
        return {**{k: metrics[k] for k in CURVE_COLUMNS if k in metrics}, "collapsed": int(collapsed)}

    saved: dict[str, Any] = {"step": None}

    def on_checkpoint(state: TrainState) -> None:
        state.extra["collapse_low_since"] = collapse.low_since
        state.save(run_dir / "checkpoint.pt")
        saved["step"] = state.step

    resume = None
    if (run_dir / "checkpoint.pt").exists():
        resume = load_checkpoint(run_dir, device)
        collapse.low_since = resume.extra.get("collapse_low_since")
        saved["step"] = resume.step
        if hooks.on_resume:
            hooks.on_resume(run_id, int(resume.step), steps)
    log = metrics_log.MetricsLog(
        run_dir, resume.history if resume else [], expected=(*CURVE_COLUMNS, "collapsed") if evaluator else ()
    )

    settings = TrainSettings.from_params(
        config.params,
        steps,
        log_every=config.log_every,
        eval_every=config.eval.every if evaluator else None,
        checkpoint_every=config.checkpoint_every,
        seed=config.seed,
        precision=config.precision,
        ema=config.ema,
    )

    def on_log(row: dict[str, Any]) -> None:
        log.append(row)  # on disk first: whoever hears of the row can read it there
        if hooks.on_log_row:
            hooks.on_log_row(run_id, row)
        if hooks.on_progress:
            hooks.on_progress(row["step"], steps)
        observers.log_row(run_id, row)

    callbacks = Callbacks(on_log=on_log, on_eval=on_eval if evaluator else None, on_checkpoint=on_checkpoint)
    score_kind = registry.loss(config.loss).score
    labels = conditioning(registry, config, cache, device) if nets.num_classes else None
    built = (nets, loss, schedule, data, settings, callbacks, collapse, evaluator, hooks, score_kind)  # field order
    return PreparedRun(config, run_dir, out, *built, resume, observers, steps, saved, registry, labels)


def conditioning(registry: Registry, config: RunConfig, cache: DataCache, device: torch.device) -> Conditioning:
    """A conditional run's labels: the training labels, and whether the loss takes them itself."""
    return Conditioning(
        cache.training_labels(registry, config, device),
        registry.dataset(config.dataset).num_classes,
        registry.loss(config.loss).needs_labels,
    )


def finish_run(
    run: PreparedRun, result: TrainResult, extra_columns: dict[str, Any] | None, population: int
) -> dict[str, Any]:
    """Evaluate the trained generator and store the run: pictures, weights, tables; return its row."""
    config, nets, collapse, evaluator, hooks, device = (
        run.config,
        run.nets,
        run.collapse,
        run.evaluator,
        run.hooks,
        run.data.device,
    )
    observers, run_id = run.observers, str(run.config.run_id)
    # --- evaluate the finished generator (a diverged one has nothing worth measuring)
    final_metrics: dict[str, Any] = {}
    if evaluator and result.status == "ok":
        final_metrics = evaluator(seed=config.seed, final=True)
        collapsed = collapse.see(result.steps, final_metrics)
        if observers.listening:
            observers.evaluation(run_id, result.steps, final_metrics, sample_grid(nets, device))
        if hooks.on_eval:
            hooks.on_eval(result.steps, final_metrics)
        if result.history:
            result.history[-1].update(
                {**{k: final_metrics[k] for k in CURVE_COLUMNS if k in final_metrics}, "collapsed": int(collapsed)}
            )
    collapsed_step = collapse.low_since if final_metrics else None

    run_dir, batch_size = run.run_dir, run.settings.batch_size  # --- store: pictures and weights, then the tables
    store.save_image_grid(run_dir / "samples.png", sample_grid(nets, device), nrow=COLUMNS)
    store.save_tensor_file(run_dir / "generator.pt", {k: v.cpu() for k, v in nets.generator.state_dict().items()})
    metrics_log.write(run_dir, result.history)
    last = result.history[-1] if result.history else {}
    status = result.status if result.status != "ok" else ("collapsed" if collapsed_step is not None else "ok")
    loss = config.loss if nets.discriminator is not None else "elbo"
    scores = {name: last.get(name) for name in ("d_loss", "g_loss", "d_real", "d_fake")}
    speed = round(result.images / result.seconds, 1) if result.seconds > 0 else None
    epoch_images = len(run.data) // batch_size * batch_size
    row = schema.results_row(
        identity={
            **{"run_id": config.run_id, "architecture": config.architecture, "loss": loss},
            **{"schedule": config.schedule, "dataset": config.dataset, "seed": config.seed},
        },
        params=config.params,
        metrics={
            **scores,
            # a member's share of the population's time; the whole
            "train_seconds": round(result.seconds / population, 3),
            "population_seconds": round(result.seconds, 3),
            "images_per_second": speed,
            **{k: v for k, v in final_metrics.items() if k != "seconds"},
        },
        bookkeeping={
            **{"status": status, "steps": result.steps, "epochs": round(result.images / epoch_images, 4)},
            **{"score": run.score_kind, "device": str(device), **provenance.columns(device)},
            **{"population": population, "train_precision": run.settings.precision, "ema": run.settings.ema},
            "discriminator_wins": flags.discriminator_wins(last.get("d_real"), last.get("d_loss"), run.score_kind),
            **{"diverged_step": result.diverged_step, "collapsed_step": collapsed_step},
            "created": _dt.datetime.now().isoformat(timespec="seconds"),
            **owndata.result_columns(config.data, run.data.shape),
            **(extra_columns or {}),
        },
    )
    store.write_json(run_dir / "summary.json", row)
    store.upsert_result(run.out, row)
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    interrupted.clear(run_dir)
    observers.run_end(run_id, row, run_dir)
    return row


def load_checkpoint(run_dir: Path, device: torch.device | str = "cpu") -> TrainState:
    """A run's checkpoint.pt (weights_only, like every file gbench loads), checked: damage is one GbenchError line."""
    return TrainState.load(
        run_dir / "checkpoint.pt", device, fix=f"delete it to start run {run_dir.name} over, or restore it"
    )


def load_run(run_dir: str | os.PathLike, registry: Registry, device: str = "cpu") -> tuple[RunConfig, Nets]:
    """A finished run's config and nets with the saved generator weights (eval mode).

    ``registry`` is the caller's (``load_plugins().registry`` at a command's edge):
    loading plugins here could pick a different set than the command did.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / "generator.pt").is_file():
        raise GbenchError(
            f"{str(run_dir)!r} is not a finished gbench run folder (it needs config.json and generator.pt); "
            "give a folder under your --out"
        )
    config = RunConfig.from_dict(store.read_json(run_dir / "config.json"))
    nets, _, _ = build(registry, config, torch.device(device))
    weights = store.load_tensor_file(
        run_dir / "generator.pt", device, fix=f"run {run_dir.name} again to rebuild it, or restore the file"
    )
    try:
        nets.generator.load_state_dict(weights)
    except (RuntimeError, TypeError, AttributeError) as error:  # another architecture's weights, or not a state dict
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise GbenchError(
            f"{str(run_dir / 'generator.pt')!r} does not fit the run's {config.architecture!r} generator ({reason}); "
            "restore the file or run it again"
        ) from None
    nets.generator.eval()
    return config, nets
