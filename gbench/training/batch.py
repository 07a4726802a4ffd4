"""Many runs at once, before any trains: their data loaded once, finished
runs kept, unfinished ones taken over, seeds grouped into populations.

The command line shows the progress; everything here happens before the first
progress bar, so a missing data set or a damaged checkpoint fails first, in one line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from gbench.config import RunConfig, resolve_params
from gbench.errors import GbenchError
from gbench.plugins.registry import Registry
from gbench.torchtools import resolve_device
from gbench.training import interrupted
from gbench.training.leftovers import Leftovers
from gbench.training.runner import DataCache, load_checkpoint, new_run_id

#: --population: "auto" trains seeds as one population where that is
#: the faster choice (population_choice), "on" always, "off" never.
POPULATION_MODES = ("auto", "on", "off")


def population_choice(mode: str, device: str | None, precision: str) -> tuple[bool, str]:
    """Whether a configuration's seeds train as one population, and why, in one line.

    "auto" follows what benchmarks/population_speed.py measures (docs/speed.md): on a
    2-core CPU in fp32 a population of 3 costs as much as its 3 runs one by one or more
    (3.0-3.7x one seed) and one of 8 gains 1.07-1.43x at best, less than the noise of a
    shared machine; in bf16 a population of 8 trains 1.18-1.24x as fast as its 8 bf16
    runs; and on a GPU a single small run leaves the device idle.
    """
    if mode not in POPULATION_MODES:
        raise GbenchError(f"--population {mode!r} must be one of {', '.join(POPULATION_MODES)}")
    if mode != "auto":
        return mode == "on", f"--population {mode}"
    kind = resolve_device(device or "auto").type
    if kind != "cpu":
        return (
            True,
            f"--population auto: seeds train as one population on {kind}, where one small run leaves the device idle",
        )
    if precision == "bf16":
        return (
            True,
            "--population auto: seeds train as one population on a CPU in bf16, "
            "1.2x as fast as one by one (docs/speed.md)",
        )
    return (
        False,
        "--population auto: seeds train one by one on a CPU in fp32, as fast as one "
        "population or faster (docs/speed.md); --population on batches them",
    )


def prepare_runs(
    configs: list[RunConfig],
    registry: Registry,
    out: Path,
    population: str = "auto",
    population_size: int | None = None,
    check: Callable[[list[RunConfig], Registry, DataCache], list[RunConfig]] | None = None,
    rerun: bool = False,
    notes: list[str] | None = None,
) -> tuple[DataCache, list[list[RunConfig]], str | None]:
    """The runs' data, loaded once; the configs in the groups that train together; and, when seeds could
    have shared a population, one line saying whether they do and why. ``check``: every option against
    the loaded data (gbench.training.preflight), before any folder is made, returning the configs to run. ``notes`` gets
    a line for runs already finished (kept unless ``rerun``) and one for each unfinished run restarted from step 0."""
    cache = DataCache()
    preload(configs, registry, cache)
    if check is not None:
        configs = check(configs, registry, cache)
    configs = check_resumable(configs, registry, out, rerun, notes)
    together, why = population_choice(
        population, configs[0].device if configs else None, configs[0].precision if configs else "fp32"
    )
    grouped = populations(configs, population_size)
    groups = grouped if together else [[config] for config in configs]
    return cache, groups, why if population == "auto" and any(len(group) > 1 for group in grouped) else None


def preload(configs: list[RunConfig], registry: Registry, cache: DataCache) -> None:
    """Load every dataset split the runs need before any progress bar shows: missing data fails first."""
    for config in configs:
        cache.split(registry, config.dataset, "train", config.data_root, config.train_limit)
        if config.eval.samples > 0:
            cache.split(registry, config.dataset, "test", config.data_root, None)


def populations(configs: list[RunConfig], size: int | None) -> list[list[RunConfig]]:
    """Configs that differ only in seed, grouped in order of first appearance, at most ``size`` per group."""
    groups: dict[str, list[RunConfig]] = {}
    for config in configs:
        shape = {**config.to_dict(), "seed": None, "run_id": None}
        groups.setdefault(repr(sorted(shape.items())), []).append(config)
    size = size or max(len(group) for group in groups.values())
    return [group[start : start + size] for group in groups.values() for start in range(0, len(group), size)]


def check_resumable(
    configs: list[RunConfig], registry: Registry, out: Path, rerun: bool = False, notes: list[str] | None = None
) -> list[RunConfig]:
    """The configs, each with its run id: a finished run's with the same config hash is
    kept (unless ``rerun``), an unfinished one's is taken over (its checkpoint checked),
    else a new one.
    ``notes`` gets the lines to say about them, before any training."""
    leftovers, kept, resolved_configs = Leftovers(out), 0, []
    for config in configs:
        if not config.run_id:
            # as execute() resolves them: the hash must match
            resolved = dataclasses.replace(config, params=resolve_params(registry, config))
            wanted = interrupted.config_hash(resolved)
            finished = None if rerun else leftovers.finished(wanted)
            run_id, note = (finished, None) if finished else leftovers.take_over(wanted)
            kept += finished is not None
            if note and notes is not None:
                notes.append(note)
            config = dataclasses.replace(resolved, run_id=run_id or new_run_id(resolved))
        run_dir = out / str(config.run_id)
        if (run_dir / "checkpoint.pt").exists() and not (run_dir / "summary.json").exists():
            try:
                load_checkpoint(run_dir)  # a damaged one fails here, in one line
            except GbenchError:
                interrupted.release(run_dir)
                raise
        resolved_configs.append(config)
    if kept and notes is not None:
        notes.insert(
            0, f"{kept} run{'s' if kept > 1 else ''} already finished in {out}, kept; --rerun trains them again"
        )
    return resolved_configs
