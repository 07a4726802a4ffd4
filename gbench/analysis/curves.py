"""Claims about a run's curves (its metrics.csv), reduced to one number per run so that seeds can test them.

Two shapes a hand-made report reads off a curve, each measured rather than seen:

- **still falling** (``falls_over_last = K``): the least-squares slope of the
  metric (FID by default) against the step over the run's last ``K`` rows that
  hold a value (its last K evaluations), in metric units per 1,000 steps. A
  generator that has reached its plateau has slope 0 give or take evaluation
  noise; one that underfits its budget still has a negative slope at the end.
  The K evaluations must be at most the second half of the run's: a window
  that reaches back to the first evaluations measures the early fall every
  GAN makes, not whether FID still falls at the end, so a run with fewer than
  2 K evaluations gives no slope (the report says why: evaluate more often).
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
#: A run needs this many times the claim's K evaluations, so that its last K are the end of the run, not all of it.
ENDS_WITHIN = 2
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
    """Least-squares slope of ``metric`` over its last ``last`` values, per 1,000 steps; None unless they are at most
    the second half of the run's values (fewer than ``2 * last``: the window would reach its early fall)."""
    steps, values = curve(history, metric)
    if len(values) < max(ENDS_WITHIN * last, MIN_EVALUATIONS):
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


def evaluations(total_steps: int, every: int | None) -> int:
    """How many evaluations a run of ``total_steps`` makes evaluating every ``every`` steps: each multiple of it
    before the last step, and the final one (gbench.training.trainer)."""
    return 1 + ((total_steps - 1) // every if every else 0)


def window_note(claim_text: str, variant: str, last: int, total_steps: int, every: int | None) -> str | None:
    """The line said before training when a ``falls_over_last = K`` claim's variant evaluates fewer than 2 K times
    (the report would leave it untested); None when it evaluates often enough."""
    made, needed = evaluations(total_steps, every), ENDS_WITHIN * last
    if made >= needed:
        return None
    enough = max(1, (total_steps - 1) // (needed - 1))  # every such step count gives needed - 1 plus the final one
    return (
        f"claim {claim_text!r}: variant {variant!r} evaluates {made} times in {total_steps:,} steps "
        f"(eval_every {every or 'none'}), and falls_over_last = {last} needs {needed} so that its last {last} are the "
        f"end of the run; the report will leave the claim untested. Give eval_every = {enough} or less"
    )


def too_short(relation: str, value: float | str) -> str:
    """Why a curve claim found fewer than two runs to test."""
    if relation == "falls_over_last":
        last = int(float(value))
        return (
            f"fewer than two runs with at least {ENDS_WITHIN * last} evaluations, so that the last {last} are the end "
            "of the run, at most its second half, not all of it; give a smaller eval_every"
        )
    return f"fewer than two runs with at least {TREND_ROWS + 2} logged rows"


def run_value(history: Sequence[dict[str, Any]], relation: str, metric: str, value: float | str) -> float | None:
    """The one number a curve claim reads from a run's history: its final slope, or its oscillation."""
    return (
        final_slope(history, metric, int(float(value)))
        if relation == "falls_over_last"
        else oscillation(history, metric)
    )
