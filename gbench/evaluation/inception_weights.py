"""torch-fidelity's Inception (``inception-v3-compat``): its weights file, and how it reaches torch-fidelity safely.

The weights come from an explicit file (``--inception-weights``) or from
torch-fidelity's release URL, downloaded once into torch.hub's folder. gbench
always passes an explicit path, so the file hashed for the result's label is
the file used, and torch-fidelity never opens the user's file itself: it would
unpickle it with ``weights_only=False``.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch_fidelity

from gbench.env import flag
from gbench.errors import GbenchError
from gbench.evaluation.weights_files import verified_state_dict

INCEPTION = "inception-v3-compat"

#: torch-fidelity's own Inception weights; the file name carries torch.hub's SHA-256 prefix.
INCEPTION_URL = torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3

#: Seconds per 28x28 image on a 2-core CPU (resized to 299x299 inside the
#: extractor): benchmarks/eval_speed.py measured 0.17-0.26 on an idle machine,
#: more under load. Used to print an estimate before a long CPU run.
INCEPTION_CPU_SECONDS_PER_IMAGE = 0.3


def inception_hub_path() -> Path:
    """Where torch.hub keeps torch-fidelity's Inception weights once downloaded."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(INCEPTION_URL)


def resolve_inception_weights(path: str | os.PathLike | None) -> Path:
    """A local Inception weights file: the given one, or torch-fidelity's download.

    gbench always passes an explicit path to torch-fidelity, so the file that
    was hashed for the result's label is the file that was used.
    """
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise GbenchError(
                f"inception weights file {str(path)!r} not found; give the path of torch-fidelity's "
                f"{os.path.basename(INCEPTION_URL)}, or leave inception_weights unset on a networked machine"
            )
        return path
    hub = inception_hub_path()
    if hub.is_file():
        return hub
    if flag("GBENCH_OFFLINE"):
        raise GbenchError(
            f"Inception weights are not at {hub} and GBENCH_OFFLINE is set; give --inception-weights PATH"
        )
    hub.parent.mkdir(parents=True, exist_ok=True)
    print(f"gbench: downloading Inception weights to {hub}", file=sys.stderr)
    try:
        torch.hub.download_url_to_file(INCEPTION_URL, str(hub), progress=False)
    except OSError as error:  # URLError is an OSError
        raise GbenchError(
            f"could not download Inception weights from {INCEPTION_URL} ({error}); give --inception-weights PATH"
        ) from None
    return hub


_VERIFIED_WEIGHTS: set[tuple[str, int, int]] = set()


def check_inception_weights(path: str) -> None:
    """A given Inception weights file exists and holds only tensors; for the option checks, before anything trains.

    Memoised by (path, size, mtime): a suite's variants share one 95 MB file.
    """
    resolved = resolve_inception_weights(path)
    stat = resolved.stat()
    key = (str(resolved.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED_WEIGHTS:
        verified_state_dict(
            resolved, f"give torch-fidelity's {os.path.basename(INCEPTION_URL)} (a state dict of tensors)"
        )
        _VERIFIED_WEIGHTS.add(key)


def write_random_inception_weights(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write a randomly initialised inception-v3-compat state dict of the right shapes.

    For offline tests and timing only: random weights collapse the 2048-d
    features, so test on an early layer (``"64"`` or ``"192"``).
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class _Skeleton(FeatureExtractorInceptionV3):
        # Its __init__ always loads weights; skip that to keep the random init.
        def load_state_dict(self, *args, **kwargs):
            return None

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    empty = io.BytesIO()  # torch-fidelity insists on loading something; an empty dict, never a file
    torch.save({}, empty)
    empty.seek(0)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        skeleton = _Skeleton(INCEPTION, ["64"], feature_extractor_weights_path=empty)
        state = {k: v.clone() for k, v in skeleton.state_dict().items()}
    torch.save(state, path)
    return path


def weights_argument(extractor: Any) -> dict[str, Any]:
    """torch-fidelity's ``feature_extractor_weights_path`` keyword for building ``extractor``
    (empty when it finds its own).

    ``extractor`` is a :class:`gbench.evaluation.extractor_choice.Extractor`, which imports this module.

    torch-fidelity's Inception opens a weights path with ``torch.load(weights_only=False)``,
    which runs any code the file's pickle names. So it never gets the user's file: gbench
    loads the tensors itself, safely, and hands over a fresh in-memory ``torch.save`` of
    just those tensors (torch.load reads file objects too). The LeNet extractor is
    gbench's own class and loads its path safely itself.
    """
    if not extractor.pass_weights:
        return {}
    if extractor.name != INCEPTION:
        return {"feature_extractor_weights_path": str(extractor.weights)}
    fix = (
        f"give torch-fidelity's {os.path.basename(INCEPTION_URL)} (a state dict of tensors), "
        "or leave the Inception weights unset on a networked machine"
    )
    buffer = io.BytesIO()
    torch.save(verified_state_dict(extractor.weights, fix), buffer)
    buffer.seek(0)
    return {"feature_extractor_weights_path": buffer}
