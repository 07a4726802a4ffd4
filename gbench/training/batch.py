"""Many runs at once, before any trains: their data loaded once, interrupted runs taken over, seeds grouped into populations.

The command line shows the progress; everything here happens before the first
progress bar, so a missing data set or a damaged checkpoint fails first, in one line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gbench.config import RunConfig, resolve_params
from gbench.errors import GbenchError
from gbench.plugins.registry import Registry
from gbench.training import interrupted
from gbench.training.runner import DataCache, load_checkpoint


def prepare_runs(
    configs: list[RunConfig], registry: Registry, out: Path, population: str = "auto", population_size: int | None = None
) -> tuple[DataCache, list[list[RunConfig]]]:
    """The runs' data, loaded once, and the configs in the groups that train together (one each with population "off")."""
    cache = DataCache()
    preload(configs, registry, cache)
    configs = check_resumable(configs, registry, out)
    groups = populations(configs, population_size) if population == "auto" else [[config] for config in configs]
    return cache, groups


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


def check_resumable(configs: list[RunConfig], registry: Registry, out: Path) -> list[RunConfig]:
    """The configs, each interrupted run with these arguments taken over (its run id) and its checkpoint checked."""
    claimed = []
    for config in configs:
        if not config.run_id:
            resolved = dataclasses.replace(config, params=resolve_params(registry, config))  # as execute() resolves them: the hash must match
            config = dataclasses.replace(resolved, run_id=interrupted.claim(out, resolved))
        run_dir = out / str(config.run_id)
        if config.run_id and (run_dir / "checkpoint.pt").exists() and not (run_dir / "summary.json").exists():
            try:
                load_checkpoint(run_dir)  # a damaged one fails here, in one line
            except GbenchError:
                interrupted.unclaim(run_dir)
                raise
        claimed.append(config)
    return claimed
