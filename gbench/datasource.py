"""Your own images as a dataset: the ``folder:PATH`` and ``npz:PATH`` names and the options that shape them.

This module only declares (the names, :class:`DataOptions` and their checks), so
that :mod:`gbench.config` can hold them in a run's config.json; reading the
files is :mod:`gbench.imagefiles`, turning them into a dataset :mod:`gbench.owndata`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gbench.errors import GbenchError
from gbench.plugins.registry import Hyperparameter

#: ``--dataset PREFIX:PATH``: a folder of PNG/JPEG/WebP files, or a .npz of uint8 arrays.
PREFIXES = ("folder:", "npz:")
#: The fraction of a data set without a test split held out as its test split.
DEFAULT_HOLDOUT = 0.1

#: The options, each checked by :meth:`Hyperparameter.coerce` like every run option (the defaults only give the type).
DATA_OPTIONS = {
    hp.name: hp
    for hp in (
        Hyperparameter("image_size", 32, low=1, high=4096, help="resize the shorter side to N pixels and centre-crop to NxN"),
        Hyperparameter("channels", 3, choices=(1, 3), help="convert every image to 1 (grey) or 3 (RGB) channels"),
        # a test split needs 2 images at least, a training split most of the data: 0.001..0.9
        Hyperparameter("holdout", DEFAULT_HOLDOUT, low=0.001, high=0.9, help="fraction held out as the test split when the data has none"),
    )
}


def is_own_data(dataset: str) -> bool:
    """Whether ``dataset`` names files (``folder:PATH``, ``npz:PATH``) rather than a registered dataset."""
    return dataset.startswith(PREFIXES)


@dataclass
class DataOptions:
    """How own data is shaped, and which data it was: a run's config.json holds all four.

    None means "from the data": its own size, its own channels, :data:`DEFAULT_HOLDOUT`
    where it has no test split. ``content_hash`` is not an option: :func:`gbench.owndata.resolve`
    fills it from the files, so that it is part of the run's identity (two folders with
    the same name are two data sets).
    """

    image_size: int | None = None
    channels: int | None = None
    holdout: float | None = None
    content_hash: str | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> DataOptions:
        """From checked run options (``--image-size``, a config file's ``image_size`` ...)."""
        return cls(**{name: options[name] for name in DATA_OPTIONS if options.get(name) is not None})

    def check_for(self, dataset: str) -> None:
        """The options shape own data only: on a registered dataset they would be silently ignored."""
        given = [f"--{name.replace('_', '-')}" for name in DATA_OPTIONS if getattr(self, name) is not None]
        if given and not is_own_data(dataset):
            raise GbenchError(
                f"{' and '.join(given)} shape{'s' if len(given) == 1 else ''} your own images (--dataset folder:PATH or npz:PATH); "
                f"dataset {dataset!r} has its fixed shape: leave {' and '.join(given)} out"
            )
