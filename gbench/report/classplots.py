"""Figures of the classes a classifier puts generated samples in (study S5), and what they are drawn from.

- :func:`class_histograms`: predicted-class shares against the real class
  distribution, one panel per setting;
- :func:`parse_counts` reads results.csv's ``class_counts``, :func:`real_class_distribution`
  the data set's own test split.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gbench.errors import GbenchError
from gbench.report.plots import new_figure, save
from gbench.results.flags import covered_classes, present_classes

if TYPE_CHECKING:
    from gbench.plugins.registry import Registry


def class_histograms(
    items: Sequence[tuple[str, Sequence[float]]],
    path: str | os.PathLike,
    real: Sequence[float] | None = None,
    class_names: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """Per setting, the share of generated samples the classifier puts in each class.

    :param items: setting name -> class counts (summed over its seeds).
    :param real: the real class distribution (shares summing to 1), drawn as
        black ticks; None draws the uniform distribution.
    """
    if not items:
        raise GbenchError("no run has class_counts; class histograms need evaluated runs")
    classes = max(len(counts) for _, counts in items)
    real_label = "uniform" if real is None else "real test split"
    expected = np.full(classes, 1 / classes) if real is None else np.asarray(real, dtype=float)
    names = list(class_names or [str(i) for i in range(classes)])[:classes]
    columns = min(len(items), 4)
    rows = math.ceil(len(items) / columns)
    fig = new_figure(3.4 * columns, 2.8 * rows + 0.3)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False, sharey=True)).ravel()
    for ax in axes[len(items) :]:
        ax.axis("off")
    positions = np.arange(classes)
    for ax, (name, given) in zip(axes, items):
        counts = np.asarray(given, dtype=float)
        share = counts / counts.sum() if counts.sum() > 0 else counts
        ax.bar(positions[: len(share)], share, color="tab:blue", alpha=0.8, label="generated")
        ax.scatter(
            positions[: len(expected)],
            expected,
            marker="_",
            s=200,
            color="black",
            linewidths=2,
            label=real_label,
            zorder=3,
        )
        ax.set_title(histogram_title(name, counts.tolist(), expected.tolist()), fontsize=8)
        ax.set_xticks(positions, names, fontsize=7, rotation=45 if max(len(n) for n in names) > 2 else 0)
        ax.set_ylabel("share of samples", fontsize=8)
    axes[0].legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=11)
    return save(fig, path)


def histogram_title(name: str, counts: Sequence[float], expected: Sequence[float]) -> str:
    """A class histogram panel's title: the setting, its classes covered and classes present (the glossary's two
    counts), its samples."""
    classes = len(expected)
    covered, present = covered_classes(counts, expected), present_classes(counts)
    return f"{name}\n{covered}/{classes} covered, {present}/{classes} present, {int(sum(counts)):,} samples"


def parse_counts(value: Any) -> list[int] | None:
    """``"15 7 6 ..."`` (results.csv's class_counts) -> ``[15, 7, 6, ...]``; None when absent or malformed."""
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = str(value).replace(",", " ").split()
    try:
        return [int(float(part)) for part in parts]
    except ValueError:
        return None


def real_class_distribution(dataset: str, registry: Registry, data_root: str | None = None) -> list[float] | None:
    """Class shares of the dataset's test split; None when the labels cannot be loaded."""
    from gbench.data import load_split

    try:
        _, labels = load_split(registry.dataset(dataset), "test", data_root, None)
    except GbenchError:
        return None
    counts = np.bincount(labels.numpy(), minlength=registry.dataset(dataset).num_classes)
    return (counts / counts.sum()).tolist()
