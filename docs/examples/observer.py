"""A gbench observer plugin: each run's life as JSON lines in RUN_DIR/events.jsonl."""

import json

from gbench import hookimpl

_files = {}  # run id -> its events file; tune's threads may run several runs at once


def _write(run_id, event, **fields):
    with _files[run_id].open("a") as out:
        out.write(json.dumps({"event": event, **fields}) + "\n")


@hookimpl
def gbench_run_start(run_id, config, run_dir):
    _files[run_id] = run_dir / "events.jsonl"
    _write(run_id, "start", architecture=config["architecture"], lr=config["params"]["lr"])


@hookimpl
def gbench_log_row(run_id, row):
    _write(run_id, "row", step=row["step"], d_loss=row["d_loss"], d_real=row["d_real"])


@hookimpl
def gbench_evaluation(run_id, step, metrics, samples):
    _write(run_id, "evaluation", step=step, fid=metrics["fid"], samples=list(samples.shape))


@hookimpl
def gbench_run_end(run_id, row, run_dir):
    _write(run_id, "end", status=row["status"], fid=row.get("fid"))
    del _files[run_id]
