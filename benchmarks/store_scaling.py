"""How `gbench show`, `export`, `report` and adding a row grow with the runs in a folder (not a timed test).

    GBENCH_DATA=/work/shared/data python benchmarks/store_scaling.py
    [--sizes 100 1000 10000] [--settings 5] [--keep DIR]

For each size it builds a results folder of that many finished runs: rows made
by ``gbench.results.schema.results_row`` and written by ``gbench.results.store`` (results.csv),
and the per-run files ``gbench report`` reads (config.json, summary.json,
metrics.csv with a short history, samples.png), spread over ``--settings``
settings (learning rates), so that each setting has size / settings seeds.
Then it times, each in its own process as a user runs it, ``gbench show``,
``gbench show --all`` (every row drawn, as show did before), ``gbench export
--format csv`` and ``gbench report``; and, in one process, the median of 5
``store.upsert_result`` calls of a new run (an append) and of 5 of an existing
run (a replace, which rewrites the table: the path every new row took before
appends). Peak memory is the process's maximum resident set size from
/usr/bin/time. The table ends with the growth per 10x more runs (time at
10x / time at x); 10 is linear, 100 quadratic.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gbench.results import schema, store

LEARNING_RATES = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)
HISTORY_STEPS = (100, 200, 300, 400, 500)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402  (the benchmarks are scripts side by side, not a package)

ACTIONS = ("show", "show-all", "export", "report", "append", "replace")


def run_row(index: int, settings: int) -> dict:
    """A finished run's results row as gbench writes it, FID depending on the setting and the seed."""
    setting, seed = index % settings, index // settings
    fid = 30.0 + 4.0 * setting + ((seed * 7919 + setting * 104729) % 1000) / 100.0
    return schema.results_row(
        {
            "run_id": f"mlp-mnist-s{seed}-lr{setting}-{index:06d}",
            "architecture": "mlp",
            "loss": "bce",
            "schedule": "constant",
            "dataset": "mnist",
            "seed": seed,
        },
        {"batch_size": 64, "lr": LEARNING_RATES[setting % len(LEARNING_RATES)], "latent_dim": 64, "hidden_dim": 256},
        {
            "d_loss": 1.2,
            "g_loss": 0.9,
            "d_real": 0.55,
            "d_fake": 0.45,
            "fid": round(fid, 3),
            "fid_extractor": "lenet-mnist@1a2b3c4d",
            "fid_samples": 2000,
            "train_seconds": 12.5,
            "eval_seconds": 1.5,
            "images_per_second": 25000.0,
        },
        {
            "status": "ok",
            "steps": HISTORY_STEPS[-1],
            "score": "probability",
            "device": "cpu",
            "population": 1,
            "train_precision": "fp32",
            "created": "2026-12-06T07:00:00",
        },
    )


def samples_png() -> bytes:
    """An 8x8 grid of 28x28 grey images with 2-pixel padding, the size of a run's samples.png."""
    from PIL import Image

    image = Image.new("L", (8 * 30 + 2, 8 * 30 + 2), 255)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def build(out: Path, size: int, settings: int) -> list[dict]:
    """A results folder of ``size`` finished runs. Per-run files are written plainly (no fsync): they are fixtures."""
    out.mkdir(parents=True)
    rows = [run_row(index, settings) for index in range(size)]
    png = samples_png()
    history = [
        {
            "step": s,
            "epoch": s / 1000,
            "images": 64 * s,
            "seconds": s / 40,
            "d_loss": 1.2,
            "g_loss": 0.9,
            "d_real": 0.55,
            "d_fake": 0.45,
        }
        for s in HISTORY_STEPS
    ]
    for row in rows:
        folder = out / row["run_id"]
        folder.mkdir()
        (folder / "config.json").write_text(
            json.dumps({key: row[key] for key in ("architecture", "loss", "dataset", "seed", "lr", "batch_size")})
        )
        (folder / "summary.json").write_text(json.dumps(row))
        (folder / "metrics.csv").write_text(
            store.csv_text(
                [{**line, "fid": row["fid"] if line["step"] == HISTORY_STEPS[-1] else None} for line in history]
            )
        )
        (folder / "samples.png").write_bytes(png)
    store.write_csv(out / store.RESULTS, rows)
    return rows


UPSERT = """
import json, statistics, sys, time
from gbench.results import store
seconds = []
for row in json.loads(sys.argv[2]):
    start = time.perf_counter()
    store.upsert_result(sys.argv[1], row)
    seconds.append(time.perf_counter() - start)
print(statistics.median(seconds))
"""
#: Upserts timed per size; the median is printed (a lone fsync on a shared disk varies by several times).
UPSERTS = 5


def measure(command: list[str], env: dict) -> tuple[float, float, str]:
    """(seconds, peak MiB, stdout) of one process; /usr/bin/time reports its maximum resident set size."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        start = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *command], capture_output=True, text=True, env=env
        )
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
        return seconds, int(rss.read().split()[-1]) / 1024, result.stdout


def measure_size(folder: Path, size: int, settings: int, env: dict) -> dict[str, tuple[float, float]]:
    gbench = [sys.executable, "-m", "gbench"]
    figures: dict[str, tuple[float, float]] = {}
    figures["show"] = measure([*gbench, "show", str(folder)], env)[:2]
    # every row drawn: what show did before
    figures["show-all"] = measure([*gbench, "show", str(folder), "--all"], env)[:2]
    figures["export"] = measure(
        [*gbench, "export", str(folder), "--format", "csv", "-o", str(folder.parent / f"export-{size}.csv")], env
    )[:2]
    figures["report"] = measure([*gbench, "report", str(folder), "-o", str(folder.parent / f"report-{size}")], env)[:2]
    # the upsert itself, timed inside its process (Python's start-up
    # is not the store's); its peak memory is the process's
    for action, first in (("append", size), ("replace", 0)):
        rows = [run_row(index, settings) for index in range(first, first + UPSERTS)]
        _, peak, stdout = measure([sys.executable, "-c", UPSERT, str(folder), json.dumps(rows)], env)
        figures[action] = (float(stdout.split()[-1]), peak)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument(
        "--settings", type=int, default=5, help="settings the runs are spread over (seeds per setting: size / settings)"
    )
    parser.add_argument(
        "--keep", type=Path, help="build the folders here and keep them (default: a temporary folder, removed)"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="store-scaling-")) if args.keep is None else args.keep
    repository = Path(__file__).resolve().parents[1]  # the gbench measured is this checkout's
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repository), os.environ.get("PYTHONPATH", "")])),
    }
    print(
        f"CPU: {cpu_model()}; Python {platform.python_version()}; {args.settings} "
        "settings; times in seconds, peak memory in MiB (max RSS)"
    )
    print(f"{'runs':>7} " + " ".join(f"{action + ' s':>10} {action + ' MiB':>11}" for action in ACTIONS))
    results: dict[int, dict[str, tuple[float, float]]] = {}
    try:
        for size in args.sizes:
            folder = root / f"runs-{size}"
            build(folder, size, args.settings)
            results[size] = measure_size(folder, size, args.settings, env)
            print(
                f"{size:>7} " + " ".join(f"{results[size][a][0]:>10.4g} {results[size][a][1]:>11.0f}" for a in ACTIONS),
                flush=True,
            )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    sizes = sorted(results)
    for small, large in zip(sizes, sizes[1:], strict=False):
        print(
            f"growth {small} -> {large} runs ({large / small:g}x): "
            + ", ".join(f"{a} {results[large][a][0] / results[small][a][0]:.1f}x" for a in ACTIONS)
        )


if __name__ == "__main__":
    main()
