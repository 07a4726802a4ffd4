"""Who runs a trial, and is that process still alive?

A worker records ``host|pid|start time|trial number`` on the trial it runs.
On the same host a dead worker is seen at once from /proc (its pid is gone,
a zombie, or reused by a process with another start time), so its trial is
retried without waiting for the heartbeat grace period that other hosts need.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from optuna.trial import FrozenTrial


def host() -> str:
    return os.environ.get("GBENCH_WORKER_HOST") or socket.gethostname()


def proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc, or None where there is no /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ("gone", "")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def worker_identity(number: int) -> str:
    stat = proc_stat(os.getpid())
    return f"{host()}|{os.getpid()}|{stat[1] if stat else ''}|{number}"


def dead_here(trial: FrozenTrial, attr: str) -> bool:
    """True when the trial's recorded process (user attr ``attr``, a :func:`worker_identity`) ran on this host and
    is gone."""
    parts = str(trial.user_attrs.get(attr, "")).split("|")
    if len(parts) != 4 or parts[0] != host() or parts[3] != str(trial.number):
        return False  # another host's worker (heartbeats decide), or an attr copied from a retried trial
    pid, start = int(parts[1]), parts[2]
    if pid == os.getpid():
        return False
    stat = proc_stat(pid)
    if stat is None:  # no /proc: ask the kernel whether the pid exists at all
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    state, started = stat
    return state in ("gone", "Z", "X") or (bool(start) and started != start)
