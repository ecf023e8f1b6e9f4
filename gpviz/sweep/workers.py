"""Running a sweep's cells elsewhere: in worker processes of this machine, on any executor, on a Dask cluster.

Cells travel as ``(job bytes, seed, size, repeat)``; the job (factory, data, fit arguments)
is packed once with cloudpickle and unpacked once per worker. Results come back as
:class:`~gpviz.sweep.cells.Cell` records keyed by their cell, so nothing depends on which
worker ran what or in which order. Nothing here imports Dask: a ``dask.distributed.Client``
is recognised by its module and used through its own ``concurrent.futures`` executor.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import hashlib
import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Callable

from gpviz.errors import InputError
from gpviz.sweep.cells import STATUS_FAILED, Cell, CellJob, fit_cell

def pack_job(job: CellJob) -> bytes:
    """The job as bytes for worker processes (cloudpickle: lambdas and closures travel by value).

    Raises:
        InputError: naming the part of the job that cannot be sent, and what to do instead.
    """
    try:
        import cloudpickle as pickler
    except ImportError:  # plain pickle sends module-level functions and classes only
        pickler = pickle
    for name in ("make_model", "fit_kwargs", "mll_cls"):
        try:
            pickler.dumps(getattr(job, name))
        except Exception as exc:
            raise InputError(
                f"cv_sweep cannot send {name} ({getattr(job, name)!r}) to worker processes: it cannot be pickled "
                f"({type(exc).__name__}: {exc}). Make it refer only to picklable objects (e.g. build locks, open "
                f"files or clients inside the factory), define it at module level, or run with workers=1"
                + ("" if pickler.__name__ == "cloudpickle" else "; installing cloudpickle sends lambdas and "
                   "closures too (pip install 'gpviz[dask]')")) from exc
    return pickler.dumps(job)


_JOBS: dict[str, CellJob] = {}  # in a worker: the jobs it has unpacked, by digest (a sweep sends one)


def _worker_init() -> None:
    """Worker processes leave Ctrl-C to the caller, which cancels the sweep and stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def fit_cell_task(blob: bytes, digest: str, seed: int, i_config: int, size: int, i_repeat: int,
                  started: str | None = None) -> Cell:
    """The task a worker runs: unpacks the job (once per worker) and fits one cell.

    ``started`` is a folder where the task leaves a marker naming the cell and its
    process, so that the caller knows which cell a worker was fitting when it died.
    """
    job = _JOBS.get(digest)
    if job is None:
        job = pickle.loads(blob)  # cloudpickle's output loads with plain pickle where cloudpickle is installed
        _JOBS.clear()
        _JOBS[digest] = job
    if started is not None:
        Path(started, f"{i_config}-{i_repeat}-{os.getpid()}").touch()
    # the fit's warnings would end in the worker's log: they travel back and are shown by the caller
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        cell = fit_cell(job, seed, i_config, size, i_repeat)
    cell.warnings = [(w.category if _importable(w.category) else UserWarning, str(w.message)) for w in caught]
    cell.model = None  # the state dict travels back, not the model
    return cell


def _importable(cls) -> bool:
    """A warning class the caller can unpickle (by reference: not one defined in a worker's ``__main__``)."""
    return getattr(sys.modules.get(cls.__module__), cls.__qualname__, None) is cls and cls.__module__ != "__main__"


def _is_dask_client(obj) -> bool:
    return type(obj).__module__.split(".")[0] == "distributed" and hasattr(obj, "get_executor")


def _mp_context():
    """fork where it is safe and fast (Linux): a spawned worker re-imports torch and BoTorch (~5-30 s here)."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


Plan = tuple  # (i_config, size, i_repeat)


class CellRunner:
    """Runs cells on an executor and hands each finished one to ``on_done`` in this process."""

    def __init__(self, job: CellJob, seed: int, on_done: Callable[[Cell], None], workers: int, executor):
        self.job, self.seed, self.on_done = job, seed, on_done
        self.workers, self.executor = workers, executor
        self.blob = pack_job(job) if (workers > 1 or executor is not None) else None
        self.digest = hashlib.sha256(self.blob).hexdigest() if self.blob is not None else ""
        self.pids: set[int] = set()

    def run(self, plan: list[Plan]) -> None:
        if self.blob is None:
            for i_config, size, i_repeat in plan:
                self.on_done(fit_cell(self.job, self.seed, i_config, size, i_repeat))
        elif self.executor is None:
            self._run_own_pools(plan)
        else:
            ex = self.executor.get_executor(pure=False) if _is_dask_client(self.executor) else self.executor
            self._run_on(ex, plan, started=None, own=False)

    def _submit(self, ex, cell: Plan, started):
        i_config, size, i_repeat = cell
        return ex.submit(fit_cell_task, self.blob, self.digest, self.seed, i_config, size, i_repeat, started)

    def _run_on(self, ex, plan: list[Plan], started, own: bool) -> list[Plan]:
        """Submits every cell and waits; returns the cells lost to a broken pool (own pools only)."""
        futures = {self._submit(ex, cell, started): cell for cell in plan}
        finished: set[Plan] = set()
        try:
            for fut in concurrent.futures.as_completed(futures):
                cell = futures[fut]
                try:
                    result = fut.result()
                except concurrent.futures.process.BrokenProcessPool:
                    if own:
                        return [c for c in plan if c not in finished]
                    result = self._failed(cell, "the executor's worker processes broke (one died while fitting "
                                                "a cell, e.g. killed or out of memory)")
                except Exception as exc:  # a lost worker on a cluster (Dask's KilledWorker), an unpicklable result
                    result = self._failed(cell, f"{type(exc).__name__}: {exc}")
                finished.add(cell)
                self.on_done(result)
        except BaseException:  # Ctrl-C or an error in the caller: cancel what has not started
            for fut in futures:
                fut.cancel()
            raise
        return []

    def _failed(self, cell: Plan, why: str) -> Cell:
        i_config, size, i_repeat = cell
        return Cell(i_config, size, i_repeat, status=STATUS_FAILED, error=why)

    def _run_own_pools(self, plan: list[Plan]) -> None:
        """Runs cells in our own process pools; a worker that dies costs only the cell it was fitting.

        A dead worker breaks the whole pool (every unfinished future fails), and the pool
        does not say which cell killed it: each task leaves a marker when it starts, so the
        cells that were running are known. They are rerun one at a time in a fresh pool,
        the others go on together; a cell that kills its worker when running alone is failed.
        """
        queue, suspects = list(plan), []
        with tempfile.TemporaryDirectory(prefix="gpviz-sweep-") as started:
            while queue or suspects:
                alone = not queue
                batch = queue if queue else [suspects.pop(0)]
                queue = []
                width = 1 if alone else min(self.workers, len(batch))
                ex = concurrent.futures.ProcessPoolExecutor(width, mp_context=_mp_context(),
                                                            initializer=_worker_init)
                try:
                    lost = self._run_on(ex, batch, started, own=True)
                except BaseException:
                    ex.shutdown(wait=False, cancel_futures=True)
                    self._stop_workers(started)
                    raise
                ex.shutdown(wait=True)
                running = self._started(started, lost)
                for name in os.listdir(started):
                    os.unlink(os.path.join(started, name))
                if not lost:
                    continue
                if alone or not running:
                    for cell in lost if not running else running:
                        self.on_done(self._failed(cell, "its worker process died while fitting it (killed, out "
                                                        "of memory or crashed), also when run alone"
                                                  if alone else "the worker processes died before it started"))
                    queue = [c for c in lost if c not in running] if running else []
                else:
                    suspects.extend(running)
                    queue = [c for c in lost if c not in running]

    def _started(self, folder: str, lost: list[Plan]) -> list[Plan]:
        marks = set()
        for name in os.listdir(folder):
            i_config, i_repeat, _pid = (int(v) for v in name.split("-"))
            marks.add((i_config, i_repeat))
        return [c for c in lost if (c[0], c[2]) in marks]

    def _stop_workers(self, folder: str) -> None:
        """Ends our workers still fitting (an interrupted sweep keeps only the finished cells)."""
        for name in os.listdir(folder):
            pid = int(name.split("-")[2])
            try:
                os.kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
