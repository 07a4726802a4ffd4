"""What finding a command's earlier runs costs before any training, against reading results.csv (not a timed test).

    python benchmarks/leftovers_scan.py [--sizes 100 1000 10000] [--repeats 3]

Before a `gbench run` trains, it reads every run folder's config.json in --out
(``gbench.training.leftovers.Leftovers``) to keep finished runs and take
unfinished ones over; ``gbench show`` looks only at the folders without a
summary.json (``leftovers.unfinished``). For each size this builds a folder of
that many finished runs (a real RunConfig's config.json, a results row as
summary.json and in results.csv, as benchmarks/store_scaling.py makes them),
plus one killed folder (config.json only), and times each in one process,
best of --repeats, as a ratio to ``store.read_results`` of the same folder
(what `gbench show` reads anyway).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import best_seconds, cpu_model  # noqa: E402
from store_scaling import run_row  # noqa: E402

from gbench.config import RunConfig  # noqa: E402
from gbench.results import store  # noqa: E402
from gbench.training import leftovers  # noqa: E402


def build(out: Path, size: int) -> None:
    out.mkdir(parents=True)
    rows = [run_row(index, 5) for index in range(size)]
    for row in rows:
        folder = out / row["run_id"]
        folder.mkdir()
        config = RunConfig(
            architecture="mlp", seed=int(row["seed"]), params={"lr": row["lr"], "batch_size": 64}, run_id=row["run_id"]
        )
        (folder / "config.json").write_text(json.dumps(config.to_dict()))
        (folder / "summary.json").write_text(json.dumps(row))
    killed = out / "mlp-mnist-s999-killed"
    killed.mkdir()
    (killed / "config.json").write_text(
        json.dumps(RunConfig(architecture="mlp", seed=999, run_id=killed.name).to_dict())
    )
    store.write_csv(out / store.RESULTS, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}")
    print(
        f"{'runs':>6} {'read_results s':>15} {'run scan s':>11} {'run/read':>9} {'show scan s':>12} {'show/read':>10}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            out = Path(tmp) / f"out-{size}"
            build(out, size)
            read = best_seconds(partial(store.read_results, out), args.repeats)
            scan = best_seconds(partial(leftovers.Leftovers, out), args.repeats)
            show = best_seconds(partial(leftovers.unfinished, out), args.repeats)
            assert [folder.state for folder in leftovers.unfinished(out)] == [leftovers.KILLED]
            print(
                f"{size:>6} {read:>15.4f} {scan:>11.4f} {scan / read:>9.2f} {show:>12.4f} {show / read:>10.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
