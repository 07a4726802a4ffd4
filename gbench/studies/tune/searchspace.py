"""The search space of ``gbench tune``: what each trial may vary, checked before any trial.

The plugins' declarations (``Hyperparameter``: ``tunable``, ``search_range()``,
``log``, ``choices``) give the default ranges; ``--set`` fixes a value,
``--space`` narrows or replaces a range, and architecture, loss and schedule
may be searched too (:data:`AXES`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import Trial

from gbench.config import RunConfig, check_override_keys, hyperparameters_for, resolve_params
from gbench.errors import GbenchError
from gbench.names import suggestion
from gbench.plugins.registry import Hyperparameter, Registry, Value
from gbench.training import preflight
from gbench.training.runner import DataCache
from gbench.training.validate import validate_configs

#: The three plugin tables a trial may choose from, besides hyperparameters.
AXES = ("architecture", "loss", "schedule")
Combo = tuple[str, str, str]  # (architecture, loss, schedule)


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
            chosen = trial.suggest_categorical(self.name, list(self.choices))
            assert chosen is not None  # choices come from declarations and --space, never None
            return chosen
        low, high = self.bounds()
        if self.integer:
            return trial.suggest_int(self.name, int(low), int(high), log=self.log)
        return trial.suggest_float(self.name, low, high, log=self.log)

    def bounds(self) -> tuple[float, float]:
        """(low, high) of a numeric range; a list of choices has none."""
        if self.low is None or self.high is None:
            raise ValueError(f"dimension {self.name!r} is a list of choices, not a range")
        return float(self.low), float(self.high)

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution :meth:`suggest` samples from."""
        if self.choices is not None:
            return CategoricalDistribution(list(self.choices))
        low, high = self.bounds()
        if self.integer:
            return IntDistribution(int(low), int(high), log=self.log)
        return FloatDistribution(low, high, log=self.log)

    def typed(self) -> str:
        """As ``--space NAME=...`` takes it: ``low:high[:log]`` or ``a,b,c``."""
        if self.choices is not None:
            return ",".join(map(str, self.choices))
        low, high = self.bounds()
        return f"{low:g}:{high:g}" + (":log" if self.log else "")

    def largest(self) -> Value:
        """The largest value a trial can draw."""
        return max(self.choices) if self.choices is not None else self.bounds()[1]

    def describe(self) -> str:
        if self.choices is not None:
            return "{" + ", ".join(map(str, self.choices)) + "}"
        low, high = self.bounds()
        return f"{low:g}..{high:g}" + (" log" if self.log else "")


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
                f"--space {name}={spec!r}: {name} takes a list of values (one of {hp.describe_range()}), "
                f"not a range; write e.g. --space {name}=a,b"
            )
        if (
            len(parts) not in (2, 3)
            or (len(parts) == 3 and parts[2] not in ("log", "linear"))
            or not parts[0]
            or not parts[1]
        ):
            raise GbenchError(f"--space {name}={spec!r} is not low:high or low:high:log; for example {example}")
        low, high = hp.parse(parts[0]), hp.parse(parts[1])
        log = parts[2] == "log" if len(parts) == 3 else hp.log
        if not isinstance(low, (int, float)) or not isinstance(high, (int, float)) or not low < high:
            raise GbenchError(
                f"--space {name}={spec!r} is an empty or inverted range ({low} is not below {high}); "
                f"give low < high, or fix a value with --set {name}={low}"
            )
        if log and low <= 0:
            raise GbenchError(
                f"--space {name}={spec!r}: a log range needs a positive low end; drop ':log' or raise {low}"
            )
        return Dimension(name, float(low), float(high), log=log, integer=hp.type is int)
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

    def combos(self) -> list[Combo]:
        return [(a, l, s) for a in self.axes["architecture"] for l in self.axes["loss"] for s in self.axes["schedule"]]

    def known(self) -> dict[str, Hyperparameter]:
        known: dict[str, Hyperparameter] = {}
        for combo in self.combos():
            for name, hp in hyperparameters_for(self.registry, *combo).items():
                known.setdefault(name, hp)
        return known

    def dimensions(self, combo: Combo) -> list[Dimension]:
        dims = []
        for name, hp in hyperparameters_for(self.registry, *combo).items():
            if name in self.fixed:
                continue
            dim = self.narrowed.get(name) or (default_dimension(hp) if hp.tunable else None)
            if dim is not None and not (dim.choices is not None and len(dim.choices) == 1):
                dims.append(dim)
        return dims

    def fixed_for(self, combo: Combo) -> dict[str, Any]:
        names = hyperparameters_for(self.registry, *combo)
        values = {k: v for k, v in self.fixed.items() if k in names}
        for name, dim in self.narrowed.items():  # a one-value --space is a fixed value
            if name in names and dim.choices is not None and len(dim.choices) == 1:
                values[name] = dim.choices[0]
        return values

    def suggest(self, trial: Trial) -> tuple[Combo, dict[str, Any]]:
        """(architecture, loss, schedule) and the hyperparameters of one trial."""
        architecture, loss, schedule = (
            str(trial.suggest_categorical(axis, values)) if len(values) > 1 else values[0]
            for axis, values in self.axes.items()
        )
        combo = (architecture, loss, schedule)
        params = self.fixed_for(combo)
        for dim in self.dimensions(combo):
            params[dim.name] = dim.suggest(trial)
        return combo, params

    def describe(self) -> str:
        parts = [f"{axis}={{{', '.join(values)}}}" for axis, values in self.axes.items() if len(values) > 1]
        seen: dict[str, str] = {}
        for combo in self.combos():
            for dim in self.dimensions(combo):
                seen.setdefault(dim.name, dim.describe())
        parts += [f"{name}={text}" for name, text in seen.items()]
        return ", ".join(parts) or "(nothing: every value is fixed)"


def _kind(distribution: BaseDistribution) -> str:
    return {
        "CategoricalDistribution": "a list of choices",
        "IntDistribution": "an integer range",
        "FloatDistribution": "a float range",
    }.get(type(distribution).__name__, type(distribution).__name__)


def check_compatible(study: optuna.Study, space: SearchSpace) -> None:
    """Optuna keeps a parameter's kind (list, integer or float range) for a whole study: say so before any trial."""
    seen: dict[str, BaseDistribution] = {}
    for trial in study.get_trials(deepcopy=False):
        for name, distribution in trial.distributions.items():
            seen.setdefault(name, distribution)
    searched: dict[str, BaseDistribution] = {
        axis: CategoricalDistribution(values) for axis, values in space.axes.items() if len(values) > 1
    }
    for combo in space.combos():
        for dim in space.dimensions(combo):
            searched.setdefault(dim.name, dim.distribution())
    for name, distribution in searched.items():
        old = seen.get(name)
        if old is None:
            continue
        if type(old) is not type(distribution):
            problem = f"as {_kind(old)}, and Optuna cannot change it to {_kind(distribution)}"
        elif (
            isinstance(old, CategoricalDistribution)
            and isinstance(distribution, CategoricalDistribution)
            and tuple(old.choices) != tuple(distribution.choices)
        ):
            problem = f"among {{{', '.join(map(str, old.choices))}}}, and Optuna cannot change a list of choices"
        elif (
            isinstance(old, (IntDistribution, FloatDistribution))
            and isinstance(distribution, (IntDistribution, FloatDistribution))
            and old.log != distribution.log
        ):
            problem = f"on a {'log' if old.log else 'linear'} scale, and Optuna cannot change the scale"
        else:
            continue
        raise GbenchError(
            f"study {study.study_name!r} searched {name!r} {problem} within one study; "
            f"keep that in --space {name}=..., or start a new study with --study-name"
        )


def build_space(
    registry: Registry, combos: list[Combo], fixed: dict[str, Any], space_items: list[str] | None
) -> SearchSpace:
    """The space of one ``gbench tune``: the target's combinations, ``--set`` values and ``--space`` items,
    all checked."""
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
            raise GbenchError(
                f"--space {item!r} is not of the form key=low:high[:log] or key=a,b,c; "
                "for example --space lr=1e-4:1e-3:log"
            )
        if name in raw:
            raise GbenchError(f"--space names {name!r} twice; give one range or list per hyperparameter")
        raw[name] = spec.strip()
    for axis in AXES:
        if axis in raw:
            names = [n.strip() for n in raw.pop(axis).split(",")]
            if not names or any(not n for n in names):
                raise GbenchError(
                    f"--space {axis}= needs a comma-separated list of {axis} names, "
                    "for example --space architecture=mlp,mlp-batchnorm"
                )
            for name in names:
                registry.get(axis, name)  # unknown: one line listing the known ones
            axes[axis] = list(dict.fromkeys(names))
    space = SearchSpace(axes=axes, fixed=dict(fixed), narrowed={}, registry=registry)
    known = space.known()
    check_override_keys([name for name in space.fixed if name not in known], known, " in --set")
    for name, spec in raw.items():
        if name not in known:
            hint = suggestion(name, [*known, *AXES])
            raise GbenchError(
                f"--space names unknown hyperparameter {name!r}{hint}; searchable: {', '.join([*AXES, *sorted(known)])}"
            )
        if name in space.fixed:
            raise GbenchError(
                f"{name!r} is both fixed (--set {name}=...) and searched (--space {name}=...); give only one of them"
            )
        space.narrowed[name] = parse_dimension(name, spec, known[name])
    return space


def check_reachable(space: SearchSpace, base: RunConfig, cache: DataCache) -> None:
    """Every combination a trial can draw built against the data (its fixed values, as `gbench run` builds its own:
    :func:`gbench.training.validate.validate_configs`), and at the largest batch size the space reaches against the
    training images (:func:`gbench.training.preflight.check_batch_size`): one line before the study or OUT is made,
    not a failed trial.
    The evaluation options are the same for every trial: the command checks them on ``base``."""
    for combo in space.combos():
        params = space.fixed_for(combo)
        searched = next((dim for dim in space.dimensions(combo) if dim.name == "batch_size"), None)
        if searched is not None:
            params["batch_size"] = searched.largest()
        architecture, loss, schedule = combo
        config = dataclasses.replace(base, architecture=architecture, loss=loss, schedule=schedule, params=params)
        config = dataclasses.replace(config, params=resolve_params(space.registry, config))
        validate_configs(space.registry, [config])  # its nets built against the data on the CPU, as run does
        preflight.check_batch_size(config, space.registry, cache, searched=searched.typed() if searched else None)
