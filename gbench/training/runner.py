"""Run one configuration end to end: config -> plugins build the nets, loss and schedule ->
trainer -> evaluator -> results store. ``gbench run``, ``sweep`` and ``tune`` call :func:`execute`
(seeds as one population: :mod:`gbench.training.population.run`); nothing here prints, the caller shows progress."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import math
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from gbench import owndata, torchtools
from gbench.config import RunConfig, resolve_params
from gbench.data import load_split, to_training_tensor
from gbench.errors import GbenchError
from gbench.plugins.observers import Observers
from gbench.plugins.registry import Nets, Registry
from gbench.results import flags, provenance, schema, store
from gbench.training import failed, interrupted, leftovers, metrics_log, signals
from gbench.training.state import TrainState
from gbench.training.trainer import Callbacks, TrainResult, TrainSettings, train

#: A run whose evaluations cover this many classes or fewer, to the end, is flagged collapsed.
COLLAPSE_CLASSES = 2
#: Evaluation metrics that also go into metrics.csv, as curves over training.
CURVE_COLUMNS = ("fid", "classes_covered")
SAMPLE_GRID_SEED = 1234  # fixed noise for samples.png, independent of the run's seed


def new_run_id(config: RunConfig) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{config.architecture}-{owndata.run_name(config.dataset, config.data)}-s{config.seed}-{stamp}-{secrets.token_hex(3)}"


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
        key = (
            "float",
            config.dataset,
            config.data_root,
            os.environ.get("GBENCH_DATA"),
            config.train_limit,
            str(device),
        )
        if key not in self.tensors:
            images, _ = self.split(registry, config.dataset, "train", config.data_root, config.train_limit)
            self.tensors[key] = to_training_tensor(images, device)
        return self.tensors[key]


def build(registry: Registry, config: RunConfig, device: torch.device) -> tuple[Nets, Any, Any]:
    """Build the nets (checked against the dataset's shape), loss and schedule."""
    params = config.params
    image_shape = cast(
        tuple[int, int, int], tuple(owndata.dataset_for(registry, config).image_shape)
    )  # a finished run's own data: scanned again
    owner = registry.owners[("architecture", config.architecture)]
    torch.manual_seed(config.seed)
    try:
        nets = registry.architecture(config.architecture).build(params, image_shape)
    except Exception as error:
        raise GbenchError(
            f"plugin {owner!r}, architecture {config.architecture!r}: build failed: {type(error).__name__}: {error}"
        ) from None
    check_nets(nets, image_shape, f"plugin {owner!r}, architecture {config.architecture!r}")
    nets.generator.to(device)
    if nets.discriminator is not None:
        nets.discriminator.to(device)
    loss = registry.loss(config.loss).build(params)
    schedule = registry.schedule(config.schedule).build(params)
    torch.manual_seed(config.seed)  # the shape check drew noise: start training from the seed itself
    return nets, loss, schedule


def check_nets(nets: Nets, image_shape: tuple[int, ...], who: str) -> None:
    """Generator gives a batch of the dataset's images; discriminator one logit per image."""
    if not isinstance(nets, Nets):
        raise GbenchError(f"{who}: build returned {type(nets).__name__}, expected gbench.plugins.registry.Nets")
    if nets.discriminator is None and nets.objective is None:
        raise GbenchError(f"{who}: Nets has neither a discriminator nor an objective; give one of them")
    try:
        with torch.no_grad(), torchtools.eval_mode(nets.generator, nets.discriminator):
            images = nets.generator(torch.randn(2, nets.latent_dim))
            if not isinstance(images, torch.Tensor) or tuple(images.shape) != (2, *image_shape):
                shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
                raise GbenchError(
                    f"{who}: generator output has shape {shape} for 2 noise vectors; expected (2, {', '.join(map(str, image_shape))})"
                )
            # Far-out noise shows a missing final Tanh at once: an untrained linear-ReLU stack keeps
            # N(0, 1) noise inside [-1, 1] (max ~0.5) but not noise ten times larger (max ~4).
            check_image_range(
                nets.generator(10 * torch.randn(16, nets.latent_dim)),
                who,
                "for noise vectors of norm ~10x a typical one",
            )
            if nets.discriminator is not None:
                logits = nets.discriminator(images)
                if not isinstance(logits, torch.Tensor) or logits.numel() != 2 or logits.shape[0] != 2:
                    shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                    raise GbenchError(
                        f"{who}: discriminator output has shape {shape} for 2 images; expected one logit per image, (2,) or (2, 1)"
                    )
    except GbenchError:
        raise
    except Exception as error:
        raise GbenchError(f"{who}: running the nets on a test batch failed: {type(error).__name__}: {error}") from None


def check_image_range(images: torch.Tensor, who: str, when: str) -> None:
    """Generated images must lie in [-1, 1], the range of the real ones (the evaluator assumes it)."""
    if not torch.isfinite(images).all() or images.abs().max() > 1 + 1e-4:
        raise GbenchError(
            f"{who}: the generator's images span {float(images.min()):.3g}..{float(images.max()):.3g} {when}; keep them in [-1, 1] (end with nn.Tanh())"
        )


def fixed_noise(latent_dim: int, count: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(SAMPLE_GRID_SEED)
    return torch.randn(count, latent_dim, generator=generator).to(device)


@torch.no_grad()
def sample_images(nets: Nets, noise: torch.Tensor) -> torch.Tensor:
    with torchtools.eval_mode(nets.generator):
        return nets.generator(noise)


@dataclass
class CollapseWatch:
    """Mode collapse: classes covered at or below COLLAPSE_CLASSES from some
    evaluation to the end of the run. Early in training every sample is the
    same blob and one class gets them all, so low coverage counts only when
    it lasts to the final evaluation; ``low_since`` is where that stretch began."""

    low_since: int | None = None

    def see(self, step: int, metrics: dict[str, Any]) -> bool:
        collapsed = (
            metrics.get("classes_covered", math.inf) <= COLLAPSE_CLASSES
        )  # NaN (no classifier) is never collapsed
        if not collapsed:
            self.low_since = None
        elif self.low_since is None:
            self.low_since = step
        return collapsed


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
    evaluator: _Evaluator | None
    hooks: RunHooks
    score_kind: str
    resume: TrainState | None
    observers: Observers
    steps: int  # the run's total steps
    saved: dict[str, Any]  # {"step": the step of the last checkpoint written or resumed from, or None}
    registry: Registry | None = (
        None  # whose plugins built it: a plugin that raises is named (gbench/training/failed.py)
    )


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
    return [train(run.nets, run.loss, run.schedule, run.data, run.settings, run.callbacks, resume=run.resume)]


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

    evaluator = _Evaluator(config, registry, cache, device, nets) if config.eval.samples > 0 else None
    collapse = CollapseWatch()

    def on_eval(step: int) -> dict[str, Any]:
        assert evaluator is not None
        metrics = evaluator(seed=step, final=False)
        collapsed = collapse.see(step, metrics)
        if observers.listening:
            observers.evaluation(run_id, step, metrics, sample_images(nets, fixed_noise(nets.latent_dim, 64, device)))
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

    settings = TrainSettings(
        steps=steps, batch_size=batch_size, lr=float(config.params["lr"]), beta1=float(config.params["beta1"]), beta2=float(config.params["beta2"]),
        log_every=config.log_every, eval_every=config.eval.every if evaluator else None, checkpoint_every=config.checkpoint_every,
        seed=config.seed, precision=config.precision, ema=config.ema,
    )  # fmt: skip

    def on_log(row: dict[str, Any]) -> None:
        log.append(row)  # on disk first: whoever hears of the row can read it there
        if hooks.on_log_row:
            hooks.on_log_row(run_id, row)
        if hooks.on_progress:
            hooks.on_progress(row["step"], steps)
        observers.log_row(run_id, row)

    callbacks = Callbacks(on_log=on_log, on_eval=on_eval if evaluator else None, on_checkpoint=on_checkpoint)
    score_kind = registry.loss(config.loss).score
    return PreparedRun(
        config,
        run_dir,
        out,
        nets,
        loss,
        schedule,
        data,
        settings,
        callbacks,
        collapse,
        evaluator,
        hooks,
        score_kind,
        resume,
        observers,
        steps,
        saved,
        registry,
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
            observers.evaluation(
                run_id, result.steps, final_metrics, sample_images(nets, fixed_noise(nets.latent_dim, 64, device))
            )
        if hooks.on_eval:
            hooks.on_eval(result.steps, final_metrics)
        if result.history:
            result.history[-1].update(
                {**{k: final_metrics[k] for k in CURVE_COLUMNS if k in final_metrics}, "collapsed": int(collapsed)}
            )
    collapsed_step = collapse.low_since if final_metrics else None

    run_dir, batch_size = run.run_dir, run.settings.batch_size  # --- store: pictures and weights, then the tables
    store.save_image_grid(run_dir / "samples.png", sample_images(nets, fixed_noise(nets.latent_dim, 64, device)))
    store.save_tensor_file(run_dir / "generator.pt", {k: v.cpu() for k, v in nets.generator.state_dict().items()})
    metrics_log.write(run_dir, result.history)
    last = result.history[-1] if result.history else {}
    status = result.status if result.status != "ok" else ("collapsed" if collapsed_step is not None else "ok")
    row = schema.results_row(
        identity={"run_id": config.run_id, "architecture": config.architecture, "loss": config.loss if nets.discriminator is not None else "elbo",
                  "schedule": config.schedule, "dataset": config.dataset, "seed": config.seed},
        params=config.params,
        metrics={"d_loss": last.get("d_loss"), "g_loss": last.get("g_loss"), "d_real": last.get("d_real"), "d_fake": last.get("d_fake"),
                 "train_seconds": round(result.seconds / population, 3), "population_seconds": round(result.seconds, 3),  # a member's share; the whole
                 "images_per_second": round(result.images / result.seconds, 1) if result.seconds > 0 else None, **{k: v for k, v in final_metrics.items() if k != "seconds"}},
        bookkeeping={"status": status, "steps": result.steps, "epochs": round(result.images / (len(run.data) // batch_size * batch_size), 4),
                     "score": run.score_kind, "device": str(device), **provenance.columns(device), "population": population, "train_precision": run.settings.precision, "ema": run.settings.ema,
                     "discriminator_wins": flags.discriminator_wins(last.get("d_real"), last.get("d_loss"), run.score_kind), "diverged_step": result.diverged_step,
                     "collapsed_step": collapsed_step, "created": _dt.datetime.now().isoformat(timespec="seconds"), **owndata.result_columns(config.data, run.data.shape),
                     **(extra_columns or {})},
    )  # fmt: skip
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


class _Evaluator:
    """Evaluate the run's generator with gbench.evaluation.evaluate (imported only when used).

    Evaluations during training compute FID and the class metrics only: KID
    and precision/recall cost ~10 s per call on a 2-core CPU (torch-fidelity's
    numpy KID kernel, a 10k x 10k nearest-neighbour search), against under one
    second without them. The final evaluation computes everything.
    """

    def __init__(self, config: RunConfig, registry: Registry, cache: DataCache, device: torch.device, nets: Nets):
        from gbench.evaluation.evaluate import EvalSettings

        self.config, self.registry, self.cache, self.device, self.nets = config, registry, cache, device, nets
        self.final = EvalSettings(
            num_samples=config.eval.samples,
            extractor=config.eval.extractor,
            inception_weights=config.eval.inception_weights,
        )
        self.during = dataclasses.replace(self.final, kid_subsets=0, precision_recall=False)

    def __call__(self, seed: int, final: bool) -> dict[str, Any]:
        from gbench.evaluation.evaluate import evaluate_generator

        real, labels = self.cache.split(self.registry, self.config.dataset, "test", self.config.data_root, None)
        dataset = self.registry.dataset(self.config.dataset)
        settings = self.final if final else self.during
        result = evaluate_generator(
            self.nets.generator,
            self.nets.latent_dim,
            dataset,
            real,
            settings,
            self.device,
            seed,
            labels,
            self.registry.metrics(),
        )
        return result.as_row()


def load_run(run_dir: str | os.PathLike, registry: Registry, device: str = "cpu") -> tuple[RunConfig, Nets]:
    """A finished run's config and nets with the saved generator weights (eval mode).

    ``registry`` is the caller's (``load_plugins().registry`` at a command's edge):
    loading plugins here could pick a different set than the command did.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / "generator.pt").is_file():
        raise GbenchError(
            f"{str(run_dir)!r} is not a finished gbench run folder (it needs config.json and generator.pt); give a folder under your --out"
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
            f"{str(run_dir / 'generator.pt')!r} does not fit the run's {config.architecture!r} generator ({reason}); restore the file or run it again"
        ) from None
    nets.generator.eval()
    return config, nets
