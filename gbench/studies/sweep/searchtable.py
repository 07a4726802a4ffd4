"""A suite's ``[search]`` table: tune every candidate on one budget, then retrain each best over the seeds.

The candidates are the suite's ``[[variants]]`` (a loss, an architecture, a
data set, fixed params); ``[search]`` says how each is tuned (see docs/sweeps.md).
A candidate may set its own ``dataset``: the report compares candidates within
a data set only, each with the candidate of that data set that trains as the
suite's ``baseline`` does (:func:`comparison_groups`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gbench.errors import GbenchError
from gbench.names import suggestion
from gbench.options import default

SEARCH_KEYS = (
    "trials",
    "space",
    "sampler",
    "sampler_seed",
    "pruner",
    "pruner_startup",
    "pruner_warmup",
    "seed",
    "objective",
    "quick_trials",
)
SAMPLERS = ("random", "tpe")
PRUNERS = ("median", "hyperband", "none")  # gbench.studies.tune.tune.PRUNERS: the tune library's pruners
#: The search trials' seed by default: far from the retrain seeds, so that a retrained best is a fresh draw, not the
#: lucky draw that won the search (Lucic et al. retrain the best settings on new seeds for the same reason).
SEARCH_SEED = 1000
#: Trials per candidate under --quick when [search] gives no quick_trials.
QUICK_TRIALS = 3


@dataclass(frozen=True)
class SearchSpec:
    """How each candidate is tuned before its best is retrained over the suite's seeds."""

    trials: int  # complete plus pruned trials per candidate
    space: tuple[str, ...]  # items as `gbench tune --space` takes them, the same for every candidate
    sampler: str = "random"  # random: the trials are exchangeable draws, which the expected-best curve assumes
    sampler_seed: int = 0
    pruner: str = "median"
    pruner_startup: int = 5
    pruner_warmup: int = 0
    seed: int = SEARCH_SEED  # the seed every search trial trains with
    quick_trials: int = QUICK_TRIALS

    def trials_for(self, quick: bool) -> int:
        return min(self.trials, self.quick_trials) if quick else self.trials

    def space_names(self) -> list[str]:
        return [item.partition("=")[0].strip() for item in self.space]


def _integer(table: dict[str, Any], key: str, default: int, low: int, where: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise GbenchError(
            f"{where} [search] {key} = {value!r} must be an integer of at least {low}, e.g. {key} = {max(low, default)}"
        )
    return value


def _choice(table: dict[str, Any], key: str, default: str, choices: tuple[str, ...], where: str) -> str:
    value = table.get(key, default)
    if value not in choices:
        raise GbenchError(f"{where} [search] {key} = {value!r}: choose from {', '.join(choices)}")
    return str(value)


def parse_search(raw: Any, where: str, seeds: list[int], max_seeds: int | None) -> SearchSpec | None:
    """The checked [search] table (None when the suite has none); ``seeds`` / ``max_seeds``: the retrain seeds."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise GbenchError(f"{where}: [search] must be a table, e.g. [search] on a line of its own, then trials = 50")
    for key in raw:
        if key not in SEARCH_KEYS:
            raise GbenchError(
                f"{where} [search]: unknown key {key!r}{suggestion(key, SEARCH_KEYS)}; valid keys: "
                f"{', '.join(SEARCH_KEYS)}"
            )
    if "trials" not in raw:
        raise GbenchError(f"{where} [search]: trials is missing; give the trials per candidate, e.g. trials = 50")
    space = raw.get("space")
    if not isinstance(space, list) or not space or not all(isinstance(item, str) and "=" in item for item in space):
        raise GbenchError(
            f"{where} [search] space = {space!r} must be a non-empty list of KEY=LOW:HIGH[:log] or KEY=A,B,C items, "
            'as gbench tune --space takes them, e.g. space = ["lr=1e-5:1e-2:log", "beta1=0.1,0.5,0.9"]'
        )
    objective = raw.get("objective", "fid")
    if objective != "fid":
        raise GbenchError(
            f'{where} [search] objective = {objective!r}: a search study minimises FID; write objective = "fid" or '
            "leave it out"
        )
    spec = SearchSpec(
        trials=_integer(raw, "trials", 50, 1, where),
        space=tuple(space),
        sampler=_choice(raw, "sampler", "random", SAMPLERS, where),
        sampler_seed=_integer(raw, "sampler_seed", 0, 0, where),
        pruner=_choice(raw, "pruner", "median", PRUNERS, where),
        pruner_startup=_integer(raw, "pruner_startup", 5, 0, where),
        pruner_warmup=_integer(raw, "pruner_warmup", 0, 0, where),
        seed=_integer(raw, "seed", SEARCH_SEED, 0, where),
        quick_trials=_integer(raw, "quick_trials", QUICK_TRIALS, 1, where),
    )
    names = spec.space_names()
    if len(set(names)) != len(names):
        raise GbenchError(
            f"{where} [search] space names a hyperparameter twice ({', '.join(names)}); give one item each"
        )
    retrain = range(max_seeds) if max_seeds is not None else seeds
    if spec.seed in retrain:
        raise GbenchError(
            f"{where} [search] seed = {spec.seed} is also a retrain seed; give a seed outside them (default "
            f"{SEARCH_SEED}), "
            "so that a retrained best is not the very run that won its search"
        )
    return spec


def comparison_groups(
    settings: dict[str, dict[str, Any]], baseline: str | None, where: str
) -> dict[str, tuple[list[str], str | None]]:
    """Data set -> (its candidates, the one it compares them with): the candidate that trains as the baseline does
    (same architecture, loss, schedule) on that data set. ``settings``: each candidate's merged suite settings."""

    def combo(name: str) -> tuple[Any, ...]:
        merged = settings[name]
        loss, schedule = merged.get("loss", default("loss")), merged.get("schedule", default("schedule"))
        return merged.get("architecture"), loss, schedule

    groups: dict[str, tuple[list[str], str | None]] = {}
    for name, merged in settings.items():
        dataset = str(merged.get("dataset", "mnist"))
        groups.setdefault(dataset, ([], None))[0].append(name)
    for dataset, (names, _) in groups.items():
        reference = None
        if baseline is not None:
            matches = [name for name in names if combo(name) == combo(baseline)]
            if not matches:
                raise GbenchError(
                    f"{where}: no candidate on {dataset!r} trains as the baseline {baseline!r} does "
                    f"({'/'.join(map(str, combo(baseline)))}); "
                    "add one, so that the report compares within each data set"
                )
            reference = matches[0]
        groups[dataset] = (names, reference)
    return groups
