"""``--seeds auto``: add seeds only where a comparison is still undecided,
without inflating false positives.

Running every setting with 10 seeds wastes most of them on comparisons that
3 seeds already decide; stopping each comparison as soon as p < 0.05 would
save them too, but testing again after every seed raises the false-positive
rate well above 5% (with 8 looks, to about 15-20%). A *group-sequential*
test keeps it at 5%: each look may reject only past a boundary stricter
than 1.96, chosen so that the chances of a first rejection at each look add
up to alpha over the whole sequence.

The procedure (named in every report as :data:`PROCEDURE`):

- looks at n = start, start + 1, ..., max_seeds seeds per setting; the
  baseline gets a seed with every look that still has an undecided setting,
  so an undecided setting and the baseline always have the same n;
- at a look the Welch t-test of the setting's FIDs against the baseline's
  gives p, mapped to z = Phi^-1(1 - p / 2);
- alpha spending by the Lan-DeMets Pocock-type function
  alpha(t) = alpha * ln(1 + (e - 1) t), t = n / max_seeds (Lan & DeMets 1983;
  Pocock-type rather than O'Brien-Fleming-type because it spends more of
  alpha early, which is the point of stopping at 3 seeds when a difference
  is large);
- the boundary c_k of look k solves
  P(|Z_1| < c_1, ..., |Z_k-1| < c_k-1, |Z_k| >= c_k) = alpha(t_k) - alpha(t_k-1)
  where (Z_1, ..., Z_k) is the null distribution of the z-statistics of
  nested samples: standard normal, corr(Z_i, Z_j) = sqrt(n_i / n_j);
- |z| >= c_k: "different" (decided); no crossing by max_seeds: "not
  distinguishable" with max_seeds seeds.

The seeds are taken in order (0, 1, 2, ...), so the looks can be replayed
from the results alone: :func:`replay` gives each setting's decision and
the look it stopped at, which is what a report prints.

A test simulates thousands of null comparisons and checks that the
false-positive rate stays at alpha within sampling error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import stats

from gbench.errors import GbenchError

PROCEDURE = "group-sequential Welch test, Lan-DeMets Pocock-type alpha spending"
DEFAULT_START = 3
DEFAULT_MAX = 10

DIFFERENT = "different"
UNDECIDED = "undecided"  # more seeds would be taken
NOT_DISTINGUISHABLE = "not distinguishable"


def spent_alpha(t: float, alpha: float) -> float:
    """Alpha spent by information fraction ``t`` (Pocock-type spending)."""
    t = min(max(t, 0.0), 1.0)
    return alpha * math.log(1 + (math.e - 1) * t)


#: Grid for the recursive integration of the null random walk (Armitage,
#: McPherson and Rowe 1969): points per unit of the walk's standard deviation.
_GRID_PER_SD = 32
_GRID_HALF_WIDTH = 9.0  # in standard deviations of the walk at the look: beyond, density < 1e-17


def _continuation(looks: tuple[int, ...], bounds: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, float]:
    """Grid and sub-density of the walk S_k = Z_k sqrt(n_k) at the last look over paths that
    stayed inside every earlier boundary; and the grid spacing.

    Under the null the z-statistics of nested samples behave as a Brownian motion
    at times n_1 < n_2 < ...: S has independent normal increments of variance
    n_k - n_k-1, so the density at each look is the previous (truncated)
    density convolved with a normal: one matrix-vector product per look.
    """
    n = np.asarray(looks, dtype=float)
    width = _GRID_HALF_WIDTH * math.sqrt(n[-1])
    step = 1.0 / _GRID_PER_SD
    grid = np.arange(-width, width + step / 2, step)
    density = stats.norm.pdf(grid, scale=math.sqrt(n[0]))
    for k in range(1, len(looks)):
        inside = np.abs(grid) < bounds[k - 1] * math.sqrt(n[k - 1])
        kernel = stats.norm.pdf(grid[:, None] - grid[None, inside], scale=math.sqrt(n[k] - n[k - 1]))
        density = kernel @ density[inside] * step
    return grid, density, step


def _stay_probability(looks: tuple[int, ...], bounds: tuple[float, ...]) -> float:
    """P(|Z_i| < c_i for every look) under the null."""
    if not looks:
        return 1.0
    grid, density, step = _continuation(looks, bounds[:-1])
    inside = np.abs(grid) < bounds[-1] * math.sqrt(looks[-1])
    return float(density[inside].sum() * step)


@lru_cache(maxsize=256)
def boundaries(looks: tuple[int, ...], max_seeds: int, alpha: float) -> tuple[float, ...]:
    """The z boundary of each look in ``looks`` (seed counts, increasing)."""
    if list(looks) != sorted(set(looks)) or not looks or looks[0] < 2 or looks[-1] > max_seeds:
        raise GbenchError(f"looks {list(looks)} must be increasing seed counts between 2 and max_seeds={max_seeds}")
    bounds: list[float] = []
    spent_before = 0.0
    for k, n in enumerate(looks):
        spend = spent_alpha(n / max_seeds, alpha) - spent_before
        stay_before = _stay_probability(looks[:k], tuple(bounds))
        target = stay_before - spend  # P(stay through look k) after spending

        if k == 0:  # a single look: the normal quantile itself
            bounds.append(float(stats.norm.isf(spend / 2)))
            spent_before += spend
            continue
        grid, density, step = _continuation(looks[: k + 1], tuple(bounds))
        # mass of the continuing paths beyond each |z|, from the outside in (the
        # walk is symmetric: fold onto the positive half); the boundary leaves
        # exactly `spend` of it outside, found by linear interpolation
        positive = grid >= 0
        # cumulative mass through a grid point belongs to the cell's inner edge
        z = (grid[positive][::-1] - step / 2) / math.sqrt(n)
        mass = density[positive][::-1] * step * np.where(grid[positive][::-1] == 0, 1.0, 2.0)
        beyond = np.cumsum(mass)
        bounds.append(float(np.interp(stay_before - target, beyond, z)))
        spent_before += spend
    return tuple(bounds)


def welch_z(a: Sequence[float], b: Sequence[float]) -> float:
    """|z| equivalent of the two-sided Welch t-test's p-value (0 when there is no spread)."""
    result = stats.ttest_ind(a, b, equal_var=False)
    p = float(result.pvalue)
    if not math.isfinite(p):
        return 0.0
    return float(stats.norm.isf(p / 2))


@dataclass(frozen=True)
class Design:
    """When to add seeds and when to stop; ``start`` and ``max_seeds`` per setting."""

    start: int = DEFAULT_START
    max_seeds: int = DEFAULT_MAX
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if not isinstance(self.start, int) or isinstance(self.start, bool) or self.start < 2:
            raise GbenchError(
                f"seeds auto: start={self.start!r} must be an integer >= 2 (a t-test needs two seeds per setting)"
            )
        if not isinstance(self.max_seeds, int) or isinstance(self.max_seeds, bool) or self.max_seeds < self.start:
            raise GbenchError(
                f"seeds auto:{self.max_seeds!r}: the maximum must be an integer >= {self.start}; write auto or auto:10"
            )
        if not 0 < self.alpha < 1:
            raise GbenchError(f"alpha={self.alpha!r} must lie between 0 and 1")

    def looks(self, upto: int) -> tuple[int, ...]:
        return tuple(range(self.start, min(upto, self.max_seeds) + 1))


@dataclass
class Outcome:
    """One comparison's course: its decision, the seeds it used, the z at each look."""

    decision: str
    seeds: int
    z: list[float] = field(default_factory=list)
    bounds: list[float] = field(default_factory=list)

    @property
    def why(self) -> str:
        if self.decision == DIFFERENT:
            return f"stopped at {self.seeds} seeds: |z| {self.z[-1]:.2f} crossed the boundary {self.bounds[-1]:.2f}"
        if self.decision == NOT_DISTINGUISHABLE:
            return f"stopped at the maximum, {self.seeds} seeds, without crossing a boundary"
        return f"{self.seeds} seeds so far, no boundary crossed: more seeds needed"


def replay(design: Design, setting: Sequence[float], baseline: Sequence[float]) -> Outcome:
    """The sequential test over seeds taken in order: the first ``n`` of each at look n.

    Values are FIDs by seed order (NaN for a diverged run is dropped from that look's test).
    """
    available = min(len(setting), len(baseline))
    outcome = Outcome(UNDECIDED, available)
    looks = design.looks(available)
    if not looks:
        return outcome
    bounds = boundaries(looks, design.max_seeds, design.alpha)
    for n, bound in zip(looks, bounds):
        a = [v for v in setting[:n] if math.isfinite(v)]
        b = [v for v in baseline[:n] if math.isfinite(v)]
        z = welch_z(a, b) if len(a) >= 2 and len(b) >= 2 else 0.0
        outcome.z.append(z)
        outcome.bounds.append(bound)
        outcome.seeds = n
        if z >= bound:
            outcome.decision = DIFFERENT
            return outcome
    if outcome.seeds >= design.max_seeds:
        outcome.decision = NOT_DISTINGUISHABLE
    return outcome


def parse_auto(text: str) -> Design | None:
    """``auto`` or ``auto:MAX`` as a Design; None for anything else (a seed list)."""
    text = str(text).strip()
    if text == "auto":
        return Design()
    if text.startswith("auto:"):
        value = text[len("auto:") :]
        try:
            maximum = int(value)
        except ValueError:
            raise GbenchError(f"seeds {text!r}: the maximum after 'auto:' must be an integer, e.g. auto:10") from None
        return Design(max_seeds=maximum)
    return None
