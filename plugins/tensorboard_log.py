"""``--log tensorboard``: stream each run to TensorBoard, in the run's own folder.

Built on the lifecycle hooks (gbench.plugins.hookspecs), like any observer plugin.
Event files go into the run folder itself, so ``tensorboard --logdir runs``
shows one TensorBoard run per gbench run, named by its run id. Written:
the training scalars (``train/d_loss``, ``train/g_loss``, ``train/D(x)``,
``train/D(G(z))`` and any objective metric), every evaluation metric as
``eval/NAME`` (``eval/fid``, ...), the sample grid as the image ``samples``
at each evaluation, and the hyperparameters in TensorBoard's HParams tab
(text masked by ``observers.hyperparameters``). A folder that breaks
mid-run (disk full, removed) warns once and the runs go on without
TensorBoard (``observers.guarded``), also when the write fails in
TensorBoard's own writer thread.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from gbench import hookimpl
from gbench.plugins import observers

#: Training columns shown under friendlier names (what GAN papers call them).
TRAIN_TAGS = {"d_loss": "train/d_loss", "g_loss": "train/g_loss", "d_real": "train/D(x)", "d_fake": "train/D(G(z))"}
#: Columns that are not curves (the step is the x axis) or that the evaluation logs itself.
NOT_TRAIN = ("step", "epoch", "images", "fid", "classes_covered", "collapsed")
#: Metrics the HParams tab lists next to each run's hyperparameters.
HPARAM_METRICS = ("eval/fid", "eval/kid_mean", "eval/precision", "eval/recall")

_writers: dict[str, Any] = {}  # run id -> SummaryWriter; tune's threads run several at once
_lock = threading.Lock()


def _forget() -> None:
    """After a failure: close and drop every writer (closing may fail too: the folder is broken)."""
    with _lock:
        writers = list(_writers.values())
        _writers.clear()
    for writer in writers:
        with contextlib.suppress(Exception):
            writer.close()


guarded = observers.guarded("tensorboard", _forget)

#: The module of TensorBoard's background thread that writes the event file (its _AsyncWriterThread).
WRITER_THREAD_MODULE = "tensorboard.summary.writer.event_file_writer"
_hook_lock = threading.Lock()


def _writer_thread_failures_warn_once() -> None:
    """A write that fails in TensorBoard's writer thread (disk full, file too large) ends that thread with the
    error, which Python prints as a traceback ("Exception in thread ..."), and the next call on the writer raises it
    again. Such a thread's error becomes the tracker's one warning instead (the raise on the next call is
    ``guarded``'s); any other thread's goes to the hook that was there before. Installed once, with the first writer."""
    with _hook_lock:
        previous = threading.excepthook
        if getattr(previous, "gbench_tensorboard", False):
            return

        def excepthook(args: threading.ExceptHookArgs) -> None:
            if type(args.thread).__module__ == WRITER_THREAD_MODULE and isinstance(args.exc_value, Exception):
                observers.tracker_failed("tensorboard", args.exc_value)
            else:
                previous(args)

        excepthook.gbench_tensorboard = True  # type: ignore[attr-defined]
        threading.excepthook = excepthook


@hookimpl
@guarded
def gbench_run_start(run_id: str, config: dict[str, Any], run_dir: Path) -> None:
    if not observers.enabled("tensorboard"):
        return
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    _writer_thread_failures_warn_once()
    writer = SummaryWriter(log_dir=str(run_dir))
    # The HParams summaries go into this same event file (add_hparams would make a sub-run),
    # so the hyperparameters sit beside the curves they belong to.
    experiment, session_start, _ = hparams(observers.hyperparameters(config), dict.fromkeys(HPARAM_METRICS, 0.0))
    file_writer = writer.file_writer
    assert file_writer is not None  # SummaryWriter opens it in __init__
    for summary in (experiment, session_start):
        file_writer.add_summary(summary)
    with _lock:
        _writers[run_id] = writer


@hookimpl
@guarded
def gbench_log_row(run_id: str, row: dict[str, Any]) -> None:
    writer = _writers.get(run_id)
    if writer is None:
        return
    step = int(row["step"])
    for key, value in observers.numbers(row, skip=NOT_TRAIN).items():
        writer.add_scalar(TRAIN_TAGS.get(key, f"train/{key}"), value, step)


@hookimpl
@guarded
def gbench_evaluation(run_id: str, step: int, metrics: dict[str, Any], samples: Any) -> None:
    writer = _writers.get(run_id)
    if writer is None:
        return
    for key, value in observers.numbers(metrics).items():
        writer.add_scalar(f"eval/{key}", value, step)
    writer.add_image("samples", observers.grid_image(samples), step, dataformats="HWC")
    writer.flush()


@hookimpl
@guarded
def gbench_run_end(run_id: str, row: dict[str, Any], run_dir: Path) -> None:
    with _lock:
        writer = _writers.pop(run_id, None)
    if writer is None:
        return
    from torch.utils.tensorboard.summary import hparams

    *_, session_end = hparams({}, {})
    if writer.file_writer is not None:
        writer.file_writer.add_summary(session_end)
    writer.close()
