"""A sweep's worker processes: what each --jobs process runs, the checks every process makes of the plan before
any folder or study exists, and the thread guard the parent's worker thread runs under."""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch

from gbench.config import device_for
from gbench.errors import GbenchError
from gbench.results.display import note
from gbench.secrets import mask
from gbench.studies import workers as studylib
from gbench.studies.storage import connection_kept
from gbench.studies.sweep import search
from gbench.studies.sweep.objective import Sweeper
from gbench.studies.sweep.plan import Plan, plan
from gbench.studies.sweep.suite import Run
from gbench.studies.sweep.sweep import open_study, run_worker
from gbench.training import preflight
from gbench.training.runner import DataCache
from gbench.training.validate import validate_configs


def _worker_process(spec: dict[str, Any]) -> None:
    """Entry point of a --jobs worker process (spawned): load the study and pull runs."""
    import sys

    from gbench.memory import keep_freed_memory

    keep_freed_memory()  # as the parent's cli.main did: a spawned process starts with glibc's defaults
    torch.set_num_threads(spec["threads"])
    from gbench.training import signals

    signals.install()  # a worker stopped by SIGTERM saves its run's state and releases its trial, as Ctrl-C does
    try:
        cache = DataCache()
        worker_plan = checked(plan(**spec["plan"]), cache)  # the parent's runs: no extractor fits, no evaluation
        with connection_kept(spec["plan"]["storage"]):  # the server gone: one line here too, not a traceback
            if worker_plan.suite.search is not None:  # a search suite: this phase's searches, or the retrain of bests
                searches = search.open_searches(worker_plan, cache)
                if spec.get("phase") == "search":
                    search.work_searches(searches)
                    return
                worker_plan = search.retrain_plan(worker_plan, searches)
            shared, _ = open_study(worker_plan)
            run_worker(worker_plan, shared, Sweeper(worker_plan, cache=cache, on_note=note))
    except GbenchError as error:
        sys.stderr.write(f"gbench sweep worker: error: {mask(str(error))}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:  # a bug: its traceback, masked as cli.main masks the parent's (the plan holds the --storage URL)
        import traceback

        sys.stderr.write(mask(traceback.format_exc()))
        sys.exit(1)


def checked(sweep_plan: Plan, cache: DataCache) -> Plan:
    """The plan whose every (variant, seed) passed `gbench run`'s checks: its nets built against the data
    (:func:`gbench.training.validate.validate_configs`), its options against the data and the extractor
    (:func:`gbench.training.preflight.check_runs`), before any folder or study is made; a bad value is one line naming
    the variant and its key as the suite file spells it. Runs that no extractor fits train without evaluation
    (``sweep_plan.notes`` gets the line saying so)."""
    variant_of = {run.config.run_id: run.variant for run in sweep_plan.runs}
    first_of_variant: dict[str, Run] = {}  # a variant's seeds build alike: its first run stands for them
    for run in sweep_plan.runs:
        first_of_variant.setdefault(run.variant, run)
    for run in first_of_variant.values():  # build each variant's nets on the CPU, as `gbench run` does
        try:
            validate_configs(sweep_plan.registry, [run.config])
        except GbenchError as error:
            raise GbenchError(f"{sweep_plan.suite.where()}: variant {run.variant!r}: {error}") from None
    configs = preflight.check_runs(
        [run.config for run in sweep_plan.runs],
        sweep_plan.registry,
        cache,
        sweep_plan.notes,
        spelled=preflight.as_key,
        where=lambda config: f"{sweep_plan.suite.where()}: variant {variant_of[config.run_id]!r}: ",
    )
    runs = [dataclasses.replace(run, config=config) for run, config in zip(sweep_plan.runs, configs)]
    return dataclasses.replace(sweep_plan, runs=runs)


def start_workers(
    sweep_plan: Plan, url: str, jobs: int, threads: int, devices: Sequence[str], phase: str
) -> list[multiprocessing.process.BaseProcess]:
    """The --jobs N sweep's N-1 worker processes (this one is worker 0), started on ``phase``: "search" or "retrain"."""
    spec_plan = {
        "suite_path": str(sweep_plan.suite.path),
        "out": str(sweep_plan.out),
        "quick": sweep_plan.quick,
        "seeds": sweep_plan.seeds,
        "auto": sweep_plan.design,
        "storage": url,
        "study_name": sweep_plan.study_name,
        "heartbeat": sweep_plan.heartbeat,
        "data_root": sweep_plan.overrides.get("data_root"),
        "threads": threads,
        "population": sweep_plan.population,
        "population_size": sweep_plan.population_size,
        "plugins": sweep_plan.plugins,
    }

    def device_of(worker: int) -> str | None:  # --devices: a GPU per worker; this process is worker 0
        return device_for(worker, devices, sweep_plan.overrides.get("device"))

    context = multiprocessing.get_context("spawn")
    workers: list[multiprocessing.process.BaseProcess] = [
        context.Process(
            target=_worker_process,
            args=({"plan": {**spec_plan, "device": device_of(i + 1)}, "threads": threads, "phase": phase},),
            name=f"gbench-sweep-{i}",
        )
        for i in range(jobs - 1)
    ]
    for worker in workers:
        worker.start()
    return workers


def supervise(
    workers: list[Any],
    ended: threading.Event,
    tick: Callable[[], None],
    give_back: Callable[[], None],
    jobs: int,
    kind: str,
) -> list[BaseException]:
    """Wait for this process's worker thread (``ended``) and the ``--jobs`` worker processes, calling ``tick`` about
    once a second (the live table, plain lines). Ctrl-C, SIGTERM or an error here calls ``give_back`` (this process's
    run or trial is handed back), passes SIGTERM or the error on to the workers (Ctrl-C reached them already), waits
    for them and raises: no thread may be left training when the process exits. Returns the error for workers that
    failed, if any."""
    try:
        # not Thread.is_alive: see gbench.commands.tuning.run_workers (a Ctrl-C inside join() breaks it)
        while not ended.is_set() or any(w.is_alive() for w in workers):
            ended.wait(timeout=1)
            for worker in workers:
                worker.join(timeout=0.5)
            tick()
    except BaseException as stop:
        give_back()
        from gbench.training import signals

        if not isinstance(stop, KeyboardInterrupt) or isinstance(stop, signals.Terminated):
            for worker in workers:  # SIGTERM may reach only this process, an error only this one: pass it on
                worker.terminate()
        ended.wait(timeout=60)
        for worker in workers:
            worker.join(timeout=30)
        raise
    failed = [w.exitcode for w in workers if w.exitcode not in (0, None)]
    if not failed:
        return []
    return [
        GbenchError(
            f"{len(failed)} of {jobs} {kind} workers failed (exit codes {failed}); see the lines above, fix, "
            "and run the same command again to resume"
        )
    ]


def guard(errors: list[BaseException], ended: threading.Event, fn: Any, *args: Any) -> None:
    """Run ``fn`` in a thread: its exception goes to ``errors``, and ``ended`` is set however it ends."""
    try:
        fn(*args)
    except studylib.Interrupted:
        pass  # Ctrl-C: the main thread is raising KeyboardInterrupt already
    except BaseException as error:
        errors.append(error)
    finally:
        ended.set()
