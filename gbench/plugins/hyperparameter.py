"""A typed knob of a plugin: :class:`Hyperparameter`, its default, range and the range ``gbench tune`` searches.

Every architecture, loss and schedule declares its knobs with it; :mod:`gbench.plugins.registry`
re-exports it (the public path, docs/api.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

from gbench.errors import GbenchError
from gbench.names import with_article

Value = int | float | bool | str


@dataclass(frozen=True)
class Hyperparameter:
    """A typed knob with a default and the range it may take (and be tuned in).

    The type is the default's type. Numbers take ``low``/``high`` (inclusive
    bounds of a valid value; ``log`` for a log-uniform search); strings and
    bools take ``choices``. ``search`` narrows the range ``gbench tune``
    searches by default when the valid range is wider (a learning rate may be
    anything positive, but is searched in 1e-5..1e-2). ``tunable=False`` keeps
    it out of the default search space.
    """

    name: str
    default: Value
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Value, ...] | None = None
    tunable: bool = True
    help: str = ""
    search: tuple[float, float] | None = None

    @property
    def type(self) -> type:
        return type(self.default)

    def search_range(self) -> tuple[float, float] | None:
        """The (low, high) ``gbench tune`` searches, or None for choices / unbounded ranges."""
        low, high = self.search if self.search is not None else (self.low, self.high)
        return None if low is None or high is None else (low, high)

    def problem(self) -> str | None:
        """Why this declaration is unusable, or None when it is fine."""
        if self.default is None:
            return f"hyperparameter {self.name!r} has no default"
        if not isinstance(self.default, (int, float, bool, str)):
            return f"hyperparameter {self.name!r} has a default of unsupported type {type(self.default).__name__}"
        if self._integral_float_with_int_bounds():
            return (
                f"hyperparameter {self.name!r} has the float default {self.default!r} "
                f"but int bounds {self.describe_range()}; write the default as {int(self.default)} "
                "for an int hyperparameter, or the bounds as floats for a float one"
            )
        try:
            self.check(self.default)
        except GbenchError as error:
            return f"default of hyperparameter {self.name!r} is invalid: {error}"
        if self.log and self.low is not None and self.low <= 0:
            return f"hyperparameter {self.name!r} is log-scaled but its low end {self.low} is not positive"
        if self.search is not None:
            low, high = self.search
            if (
                not low < high
                or (self.low is not None and low < self.low)
                or (self.high is not None and high > self.high)
            ):
                return (
                    f"hyperparameter {self.name!r} has a search range {self.search} "
                    f"that is empty or outside its range {self.describe_range()}"
                )
        return None

    def _integral_float_with_int_bounds(self) -> bool:
        """``default=2.0, low=1, high=8``: an int knob whose default was written as a float
        (its type would be float)."""
        bounds = (self.low, self.high)
        return (
            isinstance(self.default, float)
            and self.default.is_integer()
            and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
        )

    def describe_range(self) -> str:
        if self.choices is not None:
            return "{" + ", ".join(map(str, self.choices)) + "}"
        if self.low is None and self.high is None:
            return "any"
        return f"{self.low if self.low is not None else '-inf'}..{self.high if self.high is not None else 'inf'}" + (
            " (log)" if self.log else ""
        )

    def parse(self, text: str) -> Value:
        """Turn command-line text into a checked value of this type."""
        kind = self.type
        if kind not in (bool, str) and text.strip().lower() in ("true", "false"):
            # "--set depth=True" and "depth = true" in a TOML file are the same mistake: give the same message
            return self.check(text.strip().lower() == "true")
        try:
            if kind is bool:
                lowered = text.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value: Value = lowered in ("true", "1", "yes")
            elif kind is int:
                number = float(text)
                if not number.is_integer():
                    raise ValueError
                value = int(number)
            elif kind is float:
                value = float(text)
            else:
                value = text
        except ValueError:
            raise GbenchError(
                f"{self.name}={text!r} is not a valid {kind.__name__}; give {with_article(kind.__name__)} "
                f"in {self.describe_range()}, for example {self.name}={self.default}"
            ) from None
        return self.check(value)

    def coerce(self, value: Any) -> Value:
        """A checked value from either source: ``--set`` text is parsed, typed values are checked."""
        return self.parse(value) if isinstance(value, str) and self.type is not str else self.check(value)

    def check(self, value: Any) -> Value:
        """Check a value already typed (from TOML, JSON or Optuna)."""
        kind = self.type
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            where = "" if self.describe_range() == "any" else f" in {self.describe_range()}"
            raise GbenchError(
                f"{self.name}={value!r} has type {type(value).__name__}, expected {with_article(kind.__name__)}{where}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise GbenchError(f"{self.name}={value!r} is not a finite number")
        if self.choices is not None and value not in self.choices:
            raise GbenchError(f"{self.name}={value!r} is not one of {self.describe_range()}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise GbenchError(f"{self.name}={value!r} is outside its range {self.describe_range()}")
        return cast(Value, value)
