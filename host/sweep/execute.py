"""Running a sweep on Dask distributed: an embedded LocalCluster or an existing scheduler.

Every run is one Dask task (:func:`bioloop.host.sweep.rundir.execute_run`).
Dask does the scheduling, the retries after a lost worker and the
bookkeeping; bioloop only decides what is left to run (runs whose directory
verifies are skipped, so a sweep resumes after a crash or Ctrl-C), records
failures and shows progress. A task that raises is recorded in
``<out>/failed/<run_id>.json`` with its error, and the others go on.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from bioloop.host.output_files import replacing

from .plan import Run, Sweep
from .rundir import RunDirError, execute_run, run_dir, verify_run_dir

__all__ = ["SweepOutcome", "run_sweep", "pending_runs"]


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did.

    Members
    -------
    skipped : list of run ids already complete before this call
    done : list of run ids completed by this call
    failed : dict run id -> one-line error
    wall_s : float
    """

    skipped: list = field(default_factory=list)
    done: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    wall_s: float = 0.0


def pending_runs(sweep: Sweep, out) -> tuple[list[Run], list[Run]]:
    """Split the sweep's runs into (complete, to run). A directory that fails to verify is removed."""
    complete, todo = [], []
    for run in sweep.runs:
        path = run_dir(out, run)
        if path.exists():
            try:
                verify_run_dir(path, run)
                complete.append(run)
                continue
            except RunDirError:
                shutil.rmtree(path)
        todo.append(run)
    return complete, todo


def _record_failure(out: Path, run: Run, exc: BaseException, tb: str) -> str:
    line = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    folder = out / "failed"
    folder.mkdir(exist_ok=True)
    with replacing(folder / f"{run.run_id}.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps({"run_id": run.run_id, "index": run.index, "error": line,
                                   "traceback": tb}, indent=1) + "\n")
    return line


def _client(scheduler: str | None, workers: int | None):
    from dask.distributed import Client, LocalCluster
    if scheduler:
        return Client(scheduler, timeout="10s"), None
    n = workers or max(1, os.cpu_count() or 1)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=40)
    return Client(cluster), cluster


def run_sweep(sweep: Sweep, out, *, scheduler: str | None = None, workers: int | None = None,
              progress=None, poll_s: float = 0.25) -> SweepOutcome:
    """Run every run of ``sweep`` that has no verified directory under ``out``.

    Parameters
    ----------
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``); without
        it an embedded ``LocalCluster`` with ``workers`` single-threaded
        worker processes (default: one per CPU) runs the sweep.
    progress : callable(done, running, failed, total, eta_s), optional
        Called whenever a count changes (and every ``poll_s``).
    """
    from dask.distributed import wait
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    complete, todo = pending_runs(sweep, out)
    outcome = SweepOutcome(skipped=[r.run_id for r in complete])
    for run in todo:                       # a retried failure gets a fresh record
        (out / "failed" / f"{run.run_id}.json").unlink(missing_ok=True)
    total = len(sweep.runs)
    if not todo:
        if progress:
            progress(total, 0, 0, total, 0.0)
        outcome.wall_s = time.perf_counter() - t0
        return outcome
    client, cluster = _client(scheduler, workers)
    try:
        futures = {client.submit(execute_run, run, str(out.resolve()), key=f"bioloop-run-{run.run_id}",
                                 pure=False): run for run in todo}
        pending = set(futures)
        ours = {f.key for f in futures}
        started = time.perf_counter()
        while pending:
            try:
                finished, pending = wait(pending, timeout=poll_s, return_when="FIRST_COMPLETED")
            except TimeoutError:
                finished = set()
            for fut in finished:
                run = futures[fut]
                if fut.status == "finished":
                    outcome.done.append(run.run_id)
                else:
                    exc = fut.exception()
                    tb = "".join(traceback.format_exception(type(exc), exc, fut.traceback()))
                    outcome.failed[run.run_id] = _record_failure(out, run, exc, tb)
            if progress:
                try:
                    running = sum(1 for keys in client.processing().values() for k in keys if k in ours)
                except Exception:          # the scheduler can be briefly unreachable
                    running = 0
                n_done = len(outcome.skipped) + len(outcome.done)
                finished_now = len(outcome.done) + len(outcome.failed)
                elapsed = time.perf_counter() - started
                eta = (elapsed / finished_now * (len(todo) - finished_now)) if finished_now else None
                progress(n_done, min(running, len(pending)), len(outcome.failed), total, eta)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    for stale in (out / "runs").glob(".*.tmp"):   # left by attempts on a worker that was lost
        shutil.rmtree(stale, ignore_errors=True)
    outcome.wall_s = time.perf_counter() - t0
    return outcome
