"""Figures of a study, as PNG files written atomically (temp file + rename).

Every function takes plain data (names, histories, counts) and a path, draws
with matplotlib's object API (no pyplot state, no display needed) and
returns the path it wrote. :mod:`gbench.report.figures` decides which to draw.

- :func:`fid_heatmap`: mean FID over seeds of a two-axis grid, annotated.
- :func:`dynamics`: D(x) and D(G(z)) over training with the 0.5 equilibrium
  line, and both losses (study S3).
- :func:`fid_curves`: FID over generator steps and over training seconds
  (quality against cost).
- :func:`sample_grid`: each setting's ``samples.png`` tiled with its name
  (grayscale; 16 samples each past 16 settings).

Class histograms (study S5) are in :mod:`gbench.report.classplots`.
"""

from __future__ import annotations

import io
import math
import os
import re
import textwrap
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from gbench.errors import GbenchError
from gbench.results import store

DPI = 100


def new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save(fig, path: str | os.PathLike, grayscale: bool = False) -> Path:
    """Write a figure as PNG through a temp file and a rename.

    ``grayscale`` stores one 8-bit channel instead of matplotlib's four, for
    figures with no colour (tiled samples): a quarter of the bytes.
    """
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    if grayscale:
        from PIL import Image

        with Image.open(io.BytesIO(buffer.getvalue())) as image:
            buffer = io.BytesIO()
            image.convert("L").save(buffer, format="png", optimize=True)
    store.atomic_write_bytes(path, buffer.getvalue())
    return path


def colors(count: int) -> list:
    from matplotlib import colormaps

    if count <= 10:
        return [colormaps["tab10"](i) for i in range(count)]
    if (
        count <= 20
    ):  # tab20's dark shades first: the first ten settings get ten distinct hues, the rest their light pairs
        return [colormaps["tab20"](2 * i if i < 10 else 2 * (i - 10) + 1) for i in range(count)]
    return [colormaps["viridis"](i / max(1, count - 1)) for i in range(count)]


def _legend(ax, count: int) -> None:
    if count:
        ax.legend(fontsize=7 if count > 8 else 8, ncol=1 if count <= 12 else 2, loc="best", framealpha=0.8)


# ---------------------------------------------------------------------------
# Grids of settings
# ---------------------------------------------------------------------------


def fid_heatmap(
    cells: dict[tuple[Any, Any], tuple[float, float | None, int]],
    x_name: str,
    y_name: str,
    path: str | os.PathLike,
    title: str = "",
    value_label: str = "mean FID",
) -> Path:
    """A heatmap of a two-axis grid.

    :param cells: (x value, y value) -> (mean, sd or None, n seeds); a missing
        cell (no FID) is left blank.
    """
    xs, ys, grid = heatmap_matrix(cells)
    width = max(4.0, 1.1 * len(xs) + 2.2)
    fig = new_figure(width, max(3.0, 0.8 * len(ys) + 1.6))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis_r", origin="lower", aspect="auto")
    fig.colorbar(image, ax=ax, label=f"{value_label} (lower is better)", shrink=0.9)
    ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set_yticks(range(len(ys)), [str(y) for y in ys])
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    finite = grid[np.isfinite(grid)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0
    small = len(xs) * len(ys) > 16
    for (x, y), (value, sd, n) in cells.items():
        text = (
            f"{value:.1f}"
            + (f"\n±{sd:.1f}" if sd is not None and not small else "")
            + (f"\nn={n}" if not small else "")
        )
        ax.text(
            xs.index(x),
            ys.index(y),
            text,
            ha="center",
            va="center",
            fontsize=7 if small else 9,
            color="white" if value > middle else "black",
        )
    ax.set_title(fit_title(title, width), fontsize=10)
    return save(fig, path)


def fit_title(title: str, width_inches: float, fontsize: float = 10, at_hyphens: bool = False) -> str:
    """``title`` broken into lines that fit a figure this wide (a 2 x 2 grid's heatmap clipped it); about 9
    characters an inch at font size 10. ``at_hyphens``: also between the parts of a hyphenated name."""
    width = max(12, int(width_inches * 9 * 10 / fontsize))
    return textwrap.fill(title, width, break_on_hyphens=at_hyphens)


def tile_title(name: str, shown: int) -> tuple[str, int]:
    """A sample grid tile's title and font size: broken at its commas when the tiles are small, and wherever it
    is wider than its tile (S8's "cdcgan-proj-ema-fashion (seed 0)" ran into its neighbours)."""
    tile, size = _sample_tile(shown)
    parts = name.replace(",", ",\n").split("\n") if shown < 64 else [name]
    # "(seed 0)" stays on one line: its space is held by a stand-in while the lines are broken
    held = [re.sub(r"\([^)]*\)", lambda found: found.group(0).replace(" ", "\0"), part) for part in parts]
    return "\n".join(fit_title(part, tile, size, at_hyphens=True) for part in held).replace("\0", " "), size


def _sample_tile(shown: int) -> tuple[float, int]:
    """A sample grid tile's width in inches (about 1:1 with its 242 or 122 pixels of samples) and title size."""
    return (2.6, 8) if shown == 64 else (1.5, 7)


def heatmap_matrix(cells: dict[tuple[Any, Any], tuple[float, float | None, int]]) -> tuple[list, list, np.ndarray]:
    """(x values, y values, matrix[y, x] of means; NaN where a cell has none), values sorted."""
    if not cells:
        raise GbenchError("no grid cell has an FID; a heatmap needs evaluated runs (--eval-samples > 0)")
    xs = sorted({x for x, _ in cells}, key=_sort_key)
    ys = sorted({y for _, y in cells}, key=_sort_key)
    grid = np.full((len(ys), len(xs)), np.nan)
    for (x, y), (value, _, _) in cells.items():
        grid[ys.index(y), xs.index(x)] = value
    return xs, ys, grid


def _sort_key(value: Any):
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


# ---------------------------------------------------------------------------
# Curves over training
# ---------------------------------------------------------------------------


def _series(
    histories: Sequence[Sequence[dict[str, Any]]], key: str, x_key: str = "step"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max of ``key`` over runs at each step (x = mean of ``x_key`` there)."""
    by_step: dict[Any, list[tuple[float, float]]] = {}
    for history in histories:
        for row in history:
            value, step, x = row.get(key), row.get("step"), row.get(x_key)
            if is_finite_number(value) and is_finite_number(step) and is_finite_number(x):
                by_step.setdefault(float(step), []).append((float(x), float(value)))
    steps = sorted(by_step)
    xs = np.array([np.mean([x for x, _ in by_step[s]]) for s in steps])
    values = [[v for _, v in by_step[s]] for s in steps]
    return (
        xs,
        np.array([np.mean(v) for v in values]),
        np.array([min(v) for v in values]),
        np.array([max(v) for v in values]),
    )


def is_finite_number(value: Any) -> TypeGuard[int | float]:
    """Whether a history value is a finite int or float (not a bool, None, text or NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def has_series(histories: Iterable[Sequence[dict[str, Any]]], key: str) -> bool:
    return any(is_finite_number(row.get(key)) for history in histories for row in history)


def _plot_series(ax, histories, key, color, label, style="-", x_key="step", band=True) -> bool:
    xs, mean, low, high = _series(histories, key, x_key)
    if not len(xs):
        return False
    ax.plot(
        xs, mean, style, color=color, label=label, linewidth=1.4, marker="o" if len(xs) <= 3 else None, markersize=3
    )
    if band and len(histories) > 1:
        ax.fill_between(xs, low, high, color=color, alpha=0.15, linewidth=0)
    return True


def dynamics(
    groups: Mapping[str, Sequence[Sequence[dict[str, Any]]]],
    path: str | os.PathLike,
    probabilities: bool = True,
    title: str = "",
) -> Path:
    """D(x), D(G(z)) and both losses over training, per setting (mean over seeds, band = min..max).

    :param groups: setting name -> the metrics.csv rows of each of its runs.
    :param probabilities: the scores are BCE probabilities, so draw the
        equilibrium D = 1/2; critic scores (LSGAN, WGAN-GP, hinge) have none.
    """
    fig = new_figure(11 if len(groups) <= 8 else 13, 4.2)
    left, right = fig.subplots(1, 2)
    palette = colors(len(groups))
    for color, (name, histories) in zip(palette, groups.items()):
        _plot_series(left, histories, "d_real", color, name)
        _plot_series(left, histories, "d_fake", color, None, style="--")
        _plot_series(right, histories, "d_loss", color, None)
        _plot_series(right, histories, "g_loss", color, None, style="--")
    if probabilities:
        left.axhline(0.5, color="black", linewidth=1, linestyle=":", label="equilibrium D = 1/2")
        left.set_ylim(-0.02, 1.02)
    left.set_title("D(x) solid, D(G(z)) dashed" + ("" if probabilities else " (critic outputs)"), fontsize=10)
    left.set_xlabel("generator step")
    left.set_ylabel("mean discriminator output")
    right.set_title("d_loss solid, g_loss dashed", fontsize=10)
    right.set_xlabel("generator step")
    right.set_ylabel("loss")
    if len(groups) > 8:  # many settings: one legend beside both panels
        fig.legend(
            *left.get_legend_handles_labels(), loc="outside right upper", fontsize=7, ncol=1 if len(groups) <= 24 else 2
        )
    else:
        _legend(left, len(groups) + probabilities)
    if title:
        fig.suptitle(title, fontsize=11)
    return save(fig, path)


def fid_curves(
    groups: Mapping[str, Sequence[Sequence[dict[str, Any]]]], path: str | os.PathLike, extractor: str, title: str = ""
) -> Path:
    """FID over generator steps and over training seconds, per setting (quality against cost)."""
    fig = new_figure(11 if len(groups) <= 8 else 13, 4.2)
    by_step, by_time = fig.subplots(1, 2)
    palette = colors(len(groups))
    drawn = 0
    for color, (name, histories) in zip(palette, groups.items()):
        drawn += _plot_series(by_step, histories, "fid", color, name)
        _plot_series(by_time, histories, "fid", color, name, x_key="seconds")
    if not drawn:
        raise GbenchError("no run has FID in its history; evaluate during training with --eval-every N")
    for ax, label in ((by_step, "generator step"), (by_time, "training seconds (wall clock, evaluation excluded)")):
        ax.set_xlabel(label)
        ax.set_ylabel(f"FID ({extractor})")
    by_step.set_title("FID over steps", fontsize=10)
    by_time.set_title("FID over training time: quality against cost", fontsize=10)
    if len(groups) > 8:
        fig.legend(
            *by_step.get_legend_handles_labels(),
            loc="outside right upper",
            fontsize=7,
            ncol=1 if len(groups) <= 24 else 2,
        )
    else:
        _legend(by_step, len(groups))
    if title:
        fig.suptitle(title, fontsize=11)
    return save(fig, path)


# ---------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------


def _columns(count: int) -> int:
    return min(count, max(1, math.ceil(math.sqrt(count))), 6)


SAMPLE_GRID_FULL = 16  # settings shown with all 64 samples; more settings show 16 each, to keep the page light


def samples_per_setting(settings: int) -> int:
    """How many of each setting's 64 samples :func:`sample_grid` shows."""
    return 64 if settings <= SAMPLE_GRID_FULL else 16


def _crop_samples(array: np.ndarray, shown: int) -> np.ndarray:
    """The top-left ``sqrt(shown)`` x ``sqrt(shown)`` images of an 8 x 8 samples grid (2 pixels of padding)."""
    side = math.isqrt(shown)
    height, width = array.shape[:2]
    if side >= 8 or (width - 2) % 8 or (height - 2) % 8:
        return array  # not gbench's 8 x 8 layout: show it whole
    return array[: 2 + side * (height - 2) // 8, : 2 + side * (width - 2) // 8]


def sample_grid(
    items: Sequence[tuple[str, str | os.PathLike]],
    path: str | os.PathLike,
    title: str = "",
    whole: Collection[str] = (),
) -> Path:
    """Tile each setting's samples.png, titled with the setting's name; the items named in ``whole`` (conditional
    runs: one row per class) are never cropped, so that every class keeps its row.

    Up to :data:`SAMPLE_GRID_FULL` settings show all 64 samples; more show the
    first 16 of each (:func:`samples_per_setting`), in smaller tiles with the
    name broken at its commas, so that a 6 x 6 grid stays a readable page of
    well under a megabyte. The PNG is grayscale, drawn pixel for pixel
    (nearest neighbour), which also keeps it small.
    """
    from PIL import Image

    if not items:
        raise GbenchError("no run folder holds a samples.png; sample grids need local runs")
    shown = samples_per_setting(len(items))
    columns = _columns(len(items))
    rows = math.ceil(len(items) / columns)
    tile, _ = _sample_tile(shown)
    titles = [tile_title(name, shown) for name, _ in items]
    lines = max(text.count("\n") + 1 for text, _ in titles)
    fig = new_figure(tile * columns, (tile + 0.2 + 0.13 * lines) * rows + (0.3 if title else 0))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, (name, png), (text, size) in zip(axes, items, titles):
        with Image.open(png) as image:
            pixels = np.asarray(image.convert("L"))
        pixels = pixels if name in whole else _crop_samples(pixels, shown)
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(text, fontsize=size)
    if title:
        fig.suptitle(title, fontsize=11)
    return save(fig, path, grayscale=True)
