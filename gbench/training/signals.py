"""SIGTERM handled like Ctrl-C, and both stop training at a step boundary.

SLURM, Kubernetes and ``timeout`` send SIGTERM before they kill; Python's
default for it is to die on the spot, leaving a run folder with nothing but
config.json. :func:`install` makes SIGTERM raise :class:`Terminated` (a
``KeyboardInterrupt``, so every ``except KeyboardInterrupt`` that already
keeps finished rows keeps working) and the CLI exits 143 for it, 130 for
SIGINT.

A signal that arrives while a trainer runs (inside :func:`deferring`) does
not raise at once: it is recorded, and the trainer, at the end of the step
it is in, saves its whole state and calls :func:`raise_if_stopping`. Raising
mid-step would leave D updated and G not, a state no checkpoint should hold.
A second signal while one is pending raises at once (an impatient Ctrl-C).
Signal handlers run in the main thread, but the flag is process-wide, so a
trainer in a worker thread (``gbench sweep``'s) sees it too.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: Exit codes of the shell convention: 128 + the signal's number.
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Terminated(KeyboardInterrupt):
    """The process got SIGTERM: stop as Ctrl-C stops, but exit 143."""


_lock = threading.Lock()
_training = 0  # trainers running now, in any thread
_pending: int | None = None  # the signal recorded while a trainer ran


def _error_for(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _handle(signum: int, frame: FrameType | None) -> None:
    global _pending
    with _lock:
        if _training and _pending is None:
            _pending = signum  # the trainer stops at its next step boundary
            return
    raise _error_for(signum)


def install() -> None:
    """SIGINT and SIGTERM both go through :func:`_handle` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)


def exit_code(error: BaseException) -> int:
    return 143 if isinstance(error, Terminated) else 130


def stop_requested() -> bool:
    """True once a signal has arrived during training: save the state and stop."""
    return _pending is not None


def raise_if_stopping() -> None:
    """Raise the pending signal's error (after the caller saved its state)."""
    signum = _pending
    if signum is not None:
        raise _error_for(signum)


@contextlib.contextmanager
def deferring() -> Iterator[None]:
    """While inside, a signal waits for the trainer's next step boundary."""
    global _training
    with _lock:
        _training += 1
    try:
        yield
    finally:
        with _lock:
            _training -= 1
            late = _pending is not None and _training == 0
    if late:  # arrived after the trainer's last check: stop now rather than never
        raise_if_stopping()


def reset() -> None:
    """Forget a pending signal (after it was handled; for tests in one process)."""
    global _pending
    with _lock:
        _pending = None
