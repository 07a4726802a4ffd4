"""Your own images as a dataset: the ``folder:PATH`` and ``npz:PATH`` names and the options that shape them.

This module only declares (the names, and :class:`DataOptions`, where the options
``--image-size``, ``--channels`` and ``--holdout`` of :data:`gbench.options.OPTIONS` land), so
that :mod:`gbench.config` can hold them in a run's config.json; reading the
files is :mod:`gbench.imagefiles`, turning them into a dataset :mod:`gbench.owndata`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gbench.errors import GbenchError
from gbench.options import DATA, OPTIONS, default

#: ``--dataset PREFIX:PATH``: a folder of PNG/JPEG/WebP files, or a .npz of uint8 arrays.
PREFIXES = ("folder:", "npz:")


def is_own_data(dataset: str) -> bool:
    """Whether ``dataset`` names files (``folder:PATH``, ``npz:PATH``) rather than a registered dataset."""
    return dataset.startswith(PREFIXES)


@dataclass(frozen=True)
class DataOptions:
    """How own data is shaped, and which data it was: a run's config.json holds all four.

    The first three are the run options that land here (``--image-size``, ``--channels``,
    ``--holdout``: gbench.options.OPTIONS, lands=DATA). None means "from the data": its own
    size, its own channels, :data:`gbench.options.DEFAULT_HOLDOUT` where it has no test split.
    ``content_hash`` is not an option: :func:`gbench.owndata.resolve` fills it from the files,
    so that it is part of the run's identity (two folders with the same name are two data sets).
    """

    image_size: int | None = default("image_size")
    channels: int | None = default("channels")
    holdout: float | None = default("holdout")
    content_hash: str | None = None

    def check_for(self, dataset: str) -> None:
        """The options shape own data only: on a registered dataset they would be silently ignored."""
        given = [o.flag for o in OPTIONS if o.lands == DATA and getattr(self, o.field) is not None]
        if given and not is_own_data(dataset):
            raise GbenchError(
                f"{' and '.join(given)} shape{'s' if len(given) == 1 else ''} your own "
                "images (--dataset folder:PATH or npz:PATH); "
                f"dataset {dataset!r} has its fixed shape: leave {' and '.join(given)} out"
            )
