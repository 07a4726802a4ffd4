"""Claims about a run's curves (its metrics.csv), reduced to one number per run so that seeds can test them.

Two shapes a hand-made report reads off a curve, each measured rather than seen:

- **still falling** (``falls_over_last = K``): the least-squares slope of the
  metric (FID by default) against the step over the run's last ``K`` rows that
  hold a value (its last K evaluations), in metric units per 1,000 steps. A
  generator that has reached its plateau has slope 0 give or take evaluation
  noise; one that underfits its budget still has a negative slope at the end.
- **oscillates** (``oscillates = true``): the lag-1 autocorrelation of the
  logged series about its centred moving average of :data:`TREND_ROWS` rows.
  The moving average takes out the slow trend (a loss settling); what is left
  is the batch-to-batch noise and any swing faster than the trend. Batch noise
  alone is uncorrelated from one logged row to the next; about its own moving
  average of W rows its lag-1 autocorrelation is -(W + 1) / (W (W - 1))
  (:data:`NOISE_AUTOCORRELATION`, -0.052 for W = 21), the reference. An
  autocorrelation above it beyond seed noise says the series swings up and
  down over several rows: it oscillates, rather than settling with noise on top.

:mod:`gbench.analysis.claims` tests the per-run numbers over seeds with the
one-sample t-test against the reference (0 for a slope), like any claim
against a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gbench.errors import GbenchError
from gbench.results.flags import finite_number

#: The width, in logged rows, of the moving average an oscillation is measured about (1,050 steps at log_every 50).
TREND_ROWS = 21
#: Lag-1 autocorrelation of white noise about its centred moving average of TREND_ROWS rows:
#: an oscillation claim's reference.
NOISE_AUTOCORRELATION = -(TREND_ROWS + 1) / (TREND_ROWS * (TREND_ROWS - 1))
#: A slope needs at least this many evaluations.
MIN_EVALUATIONS = 3
#: Columns metrics.csv logs at every log row: the only ones whose oscillation a run records.
LOGGED = ("d_loss", "g_loss", "d_real", "d_fake")


def curve(history: Sequence[dict[str, Any]], metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of the rows of a run's metrics.csv that hold a finite value of ``metric``, in step order."""
    points = sorted(
        (step, value)
        for row in history
        if (step := finite_number(row.get("step"))) is not None
        and (value := finite_number(row.get(metric))) is not None
    )
    return np.array([p[0] for p in points], dtype=float), np.array([p[1] for p in points], dtype=float)


def reference(relation: str) -> float:
    """What a curve claim's per-run numbers are tested against: no trend (slope 0), or noise without swings."""
    return NOISE_AUTOCORRELATION if relation == "oscillates" else 0.0


def final_slope(history: Sequence[dict[str, Any]], metric: str, last: int) -> float | None:
    """Least-squares slope of ``metric`` over its last ``last`` values, per 1,000 steps; None with fewer values."""
    steps, values = curve(history, metric)
    if len(values) < max(last, MIN_EVALUATIONS):
        return None
    steps, values = steps[-last:], values[-last:]
    return float(np.polyfit(steps / 1000.0, values, 1)[0])


def oscillation(history: Sequence[dict[str, Any]], metric: str) -> float | None:
    """Lag-1 autocorrelation of ``metric`` about its centred moving average of TREND_ROWS rows; None when too short or
    constant."""
    values = curve(history, metric)[1]
    if len(values) < TREND_ROWS + 2:
        return None
    trend = np.convolve(values, np.ones(TREND_ROWS) / TREND_ROWS, mode="valid")
    half = TREND_ROWS // 2
    residual = values[half : len(values) - half] - trend
    residual = residual - residual.mean()
    scale = float(residual @ residual)
    if scale == 0:
        return None
    return float(residual[:-1] @ residual[1:]) / scale


def curve_claim_value(relation: str, value: Any, metric: str, at: str) -> float:
    """A suite's ``falls_over_last = K`` (K, whole, >= MIN_EVALUATIONS) or ``oscillates = true`` (1.0, on a LOGGED
    metric), checked."""
    if relation == "falls_over_last":
        if isinstance(value, bool) or not isinstance(value, int) or value < MIN_EVALUATIONS:
            raise GbenchError(
                f"{at}: falls_over_last = {value!r} must be a whole number of evaluations, at least {MIN_EVALUATIONS}, "
                "e.g. falls_over_last = 5"
            )
        return float(value)
    if value is not True:
        raise GbenchError(
            f"{at}: oscillates = {value!r}: write oscillates = true (a claim that a curve does not oscillate is its "
            "contradiction)"
        )
    if metric not in LOGGED:
        raise GbenchError(
            f"{at}: oscillates needs a metric logged at every log row, one of {', '.join(LOGGED)} (got {metric!r}), "
            'e.g. metric = "d_loss"'
        )
    return 1.0


def run_value(history: Sequence[dict[str, Any]], relation: str, metric: str, value: float | str) -> float | None:
    """The one number a curve claim reads from a run's history: its final slope, or its oscillation."""
    return (
        final_slope(history, metric, int(float(value)))
        if relation == "falls_over_last"
        else oscillation(history, metric)
    )
