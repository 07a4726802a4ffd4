"""How long each light command takes to start and finish, with its
imports lazy against the eager imports it had, as ratios in one run.

    python benchmarks/start_time.py [--repeats 5]

Before issue #35, ``gbench --help`` and ``gbench completion`` built every
command's parser, and so imported every command module at its top: ``run``'s
pulled in torch (through the population run module) and ``tune``'s and
``sweep``'s Optuna (through the study storage). "eager" here is the same
command with those modules imported first, which is what it cost then; "lazy"
is the command as it is now. ``gbench show`` and ``gbench export`` parsed only
their own arguments already, so their two figures should match.
``gbench plugins`` must import the plugin modules, which import torch: no
change there, listed for the README's figure.

Each figure is the best wall time of ``--repeats`` fresh processes (the machine
may be shared), with the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402  (the benchmarks are scripts side by side, not a package)

#: What the eager version imported before running each command (see the docstring).
RUN_MODULE, STORAGE = "gbench.training.population.run", "gbench.studies.storage"
COMMANDS: list[tuple[list[str], tuple[str, ...]]] = [
    (["--help"], (RUN_MODULE, STORAGE)),
    (["run", "--help"], (RUN_MODULE,)),
    (["tune", "--help"], (STORAGE,)),
    (["completion", "bash"], (RUN_MODULE, STORAGE)),
    (["show", "{out}"], ()),
    (["export", "{out}"], ()),
    (["plugins"], ()),
]

PROGRAM = """
import atexit, contextlib, importlib, io, resource, sys
atexit.register(lambda: sys.stderr.write(f"maxrss_kb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n"))
for name in sys.argv[1].split(",") if sys.argv[1] else []:
    importlib.import_module(name)
from gbench.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[2:])
sys.exit(code)
"""


def results_folder(out: Path) -> None:
    """Two finished runs' rows, as gbench writes them (no training)."""
    from gbench.results import schema, store

    out.mkdir(parents=True, exist_ok=True)
    for seed in (0, 1):
        row = schema.results_row(
            identity={
                "run_id": f"mlp-mnist-s{seed}",
                "architecture": "mlp",
                "loss": "non-saturating",
                "schedule": "k-steps",
                "dataset": "mnist",
                "seed": seed,
            },
            params={"batch_size": 100, "lr": 0.0002},
            metrics={"fid": 100.0 + seed, "d_loss": 1.0, "g_loss": 1.0},
            bookkeeping={"status": "ok", "steps": 1000},
        )
        store.upsert_result(out, row)


def measure(argv: list[str], preload: tuple[str, ...], repeats: int) -> tuple[float, int]:
    """Best wall seconds of ``repeats`` fresh processes, and the peak resident memory (MiB) of the fastest."""
    best, memory = float("inf"), 0
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", PROGRAM, ",".join(preload), *argv], capture_output=True, text=True, env=env
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"gbench {' '.join(argv)} failed: {done.stderr.strip().splitlines()[-1:]}")
        if seconds < best:
            best = seconds
            memory = (
                int(next(line.split()[1] for line in done.stderr.splitlines() if line.startswith("maxrss_kb"))) // 1024
            )
    return best, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {cpu_model()}")
    print(f"python {sys.version.split()[0]}; best of {args.repeats} processes each")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "runs"
        results_folder(out)
        print(f"{'command':<28} {'eager s':>8} {'lazy s':>8} {'ratio':>6} {'eager MiB':>10} {'lazy MiB':>9}")
        for template, preload in COMMANDS:
            argv = [word.format(out=out) for word in template]
            lazy, lazy_mib = measure(argv, (), args.repeats)
            eager, eager_mib = measure(argv, preload, args.repeats) if preload else (lazy, lazy_mib)
            shown = "gbench " + " ".join("OUT" if word == str(out) else word for word in argv)
            print(f"{shown:<28} {eager:>8.2f} {lazy:>8.2f} {eager / lazy:>5.1f}x {eager_mib:>10} {lazy_mib:>9}")


if __name__ == "__main__":
    main()
