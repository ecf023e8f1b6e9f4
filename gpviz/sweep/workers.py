"""Running a sweep's cells elsewhere: in worker processes of this machine, on any executor, on a Dask cluster.

Cells travel as ``(job bytes, seed, size, repeat)``; the job (factory, data, fit arguments)
is packed once with cloudpickle and unpacked once per worker. A ``folds="separate"`` cell
(each fold its own model) travels in pieces of a few folds each, spread over the workers
like cells (:func:`pieces`), and is put back together here (:func:`merge_parts`): each fold
fits under its own seed, so the pieces give the in-process cell bit for bit. Results come back as
:class:`~gpviz.sweep.cells.Cell` records keyed by their cell, so nothing depends on which
worker ran what or in which order. Nothing here imports Dask: a ``dask.distributed.Client``
is recognised by its module and used through its own ``concurrent.futures`` executor.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import hashlib
import math
import multiprocessing
import os
import pickle
import signal
import socket
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, cast

import cloudpickle
import pandas as pd
import torch

from gpviz.errors import InputError
from gpviz.sweep.cells import SEPARATE, STATUS_FAILED, STATUS_OK, Cell, CellJob, fit_cell
from gpviz.sweep.checks import check_int


class TaskExecutor(Protocol):
    """What ``executor=`` takes: a ``concurrent.futures.Executor`` or a ``dask.distributed.Client``, both of which
    submit a function (Dask is optional, so it is named by what it does; :func:`check_parallel` refuses others)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any: ...


def pack(obj: object, parts: Mapping[str, object], caller: str) -> bytes:
    """``obj`` as bytes for worker processes (cloudpickle: lambdas and closures travel by value).

    Args:
        obj: What every worker needs (a :class:`~gpviz.sweep.cells.CellJob`, a judging job).
        parts: The user-given parts of ``obj`` by name, tried one by one so that the
            error names the one that cannot travel.
        caller: The gpviz function sending it, for the error message.

    Raises:
        InputError: naming the part that cannot be sent, and what to do instead.
    """
    for name, part in parts.items():
        try:
            cloudpickle.dumps(part)
        except Exception as exc:
            raise InputError(
                f"{caller} cannot send {name} ({part!r}) to worker processes: it cannot be pickled "
                f"({type(exc).__name__}: {exc}). Make it refer only to picklable objects (e.g. build locks, open "
                f"files or clients inside the factory), or run with workers=1") from exc
    return cloudpickle.dumps(obj)


def pack_job(job: CellJob) -> bytes:
    """A sweep's job as bytes for worker processes (see :func:`pack`)."""
    return pack(job, {name: getattr(job, name) for name in ("make_model", "fit_kwargs", "mll_cls")}, "cv_sweep")


_JOBS: dict[str, object] = {}  # in a worker: the jobs it has unpacked, by digest (a sweep sends one)


def _unpack(blob: bytes, digest: str):
    """The job of ``blob``, unpacked once per worker and kept while the same job's tasks arrive."""
    job = _JOBS.get(digest)
    if job is None:
        job = pickle.loads(blob)  # cloudpickle's output loads with plain pickle (cloudpickle installed)
        _JOBS.clear()
        _JOBS[digest] = job
    return job


def _worker_init() -> None:
    """Worker processes leave Ctrl-C to the caller, which cancels the sweep and stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def fit_cell_task(blob: bytes, digest: str, seed: int, piece: tuple[int, int, int, int, int],
                  started: str | None = None) -> Cell:
    """The task a worker runs: unpacks the job (once per worker) and fits one cell, or a piece of one.

    ``piece`` is ``(i_config, size, i_repeat, lo, hi)``: the whole cell when ``hi`` is 0, else a
    ``"separate"`` cell's folds ``lo <= i < hi``. ``started`` is a folder where the task leaves
    a marker naming the piece and its process, so that the caller knows which piece a worker
    was fitting when it died.
    """
    i_config, size, i_repeat, lo, hi = piece
    job = _unpack(blob, digest)
    if started is not None:
        Path(started, f"{i_config}-{i_repeat}-{lo}-{os.getpid()}").touch()
    # the fit's warnings would end in the worker's log: they travel back and are shown by the caller
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        cell = fit_cell(job, seed, i_config, size, i_repeat, (lo, hi) if hi else None)
    cell.warnings = [(w.category if _importable(w.category) else UserWarning, str(w.message)) for w in caught]
    cell.model = None  # the state dict travels back, not the model
    return cell


def _importable(cls) -> bool:
    """A warning class the caller can unpickle (by reference: not one defined in a worker's ``__main__``)."""
    return getattr(sys.modules.get(cls.__module__), cls.__qualname__, None) is cls and cls.__module__ != "__main__"


def _is_dask_client(obj) -> bool:
    return type(obj).__module__.split(".")[0] == "distributed" and hasattr(obj, "get_executor")


def _dask_client_of(executor):
    """The Dask client behind ``executor``: the client itself, or the one a ``client.get_executor()`` submits to."""
    if _is_dask_client(executor):
        return executor
    if type(executor).__module__.split(".")[0] == "distributed":
        # distributed's ClientExecutor keeps its client in ``_client`` and offers no public accessor
        client = getattr(executor, "_client", None)
        return client if _is_dask_client(client) else None
    return None


def _where() -> tuple[str, int]:
    """The machine and process a task runs in (a Dask worker in this process answers this process's)."""
    return socket.gethostname(), os.getpid()


#: What a caller can pass instead of an executor that runs tasks in threads.
_INSTEAD = ("Pass workers=N (N worker processes of this machine), a concurrent.futures.ProcessPoolExecutor, or a "
            "Dask client whose workers are processes with one thread each, e.g. "
            "Client(LocalCluster(n_workers=4, threads_per_worker=1, processes=True)) or `dask worker --nthreads 1`")
_WHY = ("each task sets torch's default dtype, thread count and random generator and the warning filters, which "
        "every thread of a process shares, so tasks running side by side change each other's results")


def check_executor(executor: TaskExecutor) -> None:
    """Refuses an executor that would run gpviz's tasks in threads sharing one process.

    A cell (and a verdict job) sets process-wide state for its fit: torch's default
    dtype, torch's and BLAS's thread counts, torch's random generators, the warning
    filters. Threads of one process share all of it, so cells run side by side there
    give other results than in process (a 2-size, 2-repeat sweep on a thread pool gave
    other MSEs). Refused: a ``ThreadPoolExecutor`` (or a subclass), and a Dask client (or
    its ``get_executor()``) whose workers run more than one thread
    (``client.nthreads()``) or run in this process (``LocalCluster(processes=False)``).

    Raises:
        InputError: saying why and what to pass instead.
    """
    if isinstance(executor, concurrent.futures.ThreadPoolExecutor):
        raise InputError(f"executor={type(executor).__module__}.{type(executor).__name__} (a ThreadPoolExecutor) runs "
                         f"its tasks in threads of this process: {_WHY}. {_INSTEAD}")
    client = _dask_client_of(executor)
    if client is None:
        return
    nthreads = dict(client.nthreads())
    if any(n > 1 for n in nthreads.values()):
        raise InputError(f"the Dask client's workers run more than one thread (client.nthreads(): {nthreads}): "
                         f"{_WHY}. Start them with threads_per_worker=1. {_INSTEAD}")
    here = _where()
    inside = sorted(addr for addr, where in client.run(_where).items() if tuple(where) == here)
    if inside:
        raise InputError(f"the Dask client's workers run in this process (a LocalCluster with processes=False; "
                         f"workers {inside}): {_WHY}, this process's included. Start the cluster with "
                         f"processes=True. {_INSTEAD}")


def check_parallel(workers: int, executor: TaskExecutor | None,
                   threads: int | None) -> tuple[int, TaskExecutor | None, int | None]:
    """The checked ``(workers, executor, threads)`` of a call that runs work in worker processes.

    Raises:
        InputError: if ``workers`` or ``threads`` is not an integer >= 1 (``threads`` may be
            None), both ``workers > 1`` and an executor are given, ``executor`` is neither a
            ``concurrent.futures.Executor`` nor a ``dask.distributed.Client``, or it runs tasks
            in threads sharing one process (:func:`check_executor`).
    """
    workers = check_int("workers", workers, 1)
    if threads is not None:
        threads = check_int("threads", threads, 1)
    if executor is not None:
        if workers != 1:
            raise InputError(f"pass workers= or executor=, not both (got workers={workers} and "
                             f"executor={type(executor).__name__})")
        if not (isinstance(executor, concurrent.futures.Executor) or _is_dask_client(executor)):
            raise InputError(f"executor must be a concurrent.futures.Executor or a dask.distributed.Client, got "
                             f"{type(executor).__module__}.{type(executor).__name__}")
        check_executor(executor)
    return workers, executor, threads


def cuda_in_use(job: object) -> bool:
    """Whether this process has started CUDA, or ``job`` (a cell or judging job) holds CUDA tensors.

    A forked child of a process that has started CUDA cannot use CUDA (every cell would
    fail with "Cannot re-initialize CUDA in forked subprocess"). Making a CUDA tensor
    starts CUDA, so the first test decides; the job's tensors are asked too, cheaply.
    """
    if torch.cuda.is_initialized():
        return True
    return any(isinstance(v, torch.Tensor) and v.is_cuda for v in getattr(job, "__dict__", {}).values())


def _mp_context(job):
    """How our worker processes start: fork where it is safe and fast, spawn once CUDA is in use.

    On Linux a forked worker starts in a fraction of a second, a spawned one re-imports
    torch and BoTorch (5-30 s on a loaded machine); but a fork of a process that has
    started CUDA cannot use CUDA, so :func:`cuda_in_use` decides spawn (a fresh
    interpreter starts CUDA itself when it unpacks the job's CUDA tensors).
    """
    if cuda_in_use(job):
        return multiprocessing.get_context("spawn")
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


Plan = tuple  # (i_config, size, i_repeat)
Piece = tuple  # (i_config, size, i_repeat, lo, hi): a whole cell (hi = 0), or a "separate" cell's folds lo..hi-1


def pieces(plan: list[Plan], mode: str, width: int) -> list[Piece]:
    """The tasks of ``plan``: each cell whole, or in ``mode`` ``"separate"`` about ``2 * width`` pieces of folds.

    Folds fitted one by one are independent models: a cell's folds are spread over the
    ``width`` workers as cells are, so that a sweep of a few large cells keeps every
    worker busy (two pieces per worker: the last pieces to finish are short).
    """
    out: list[Piece] = []
    for i_config, size, i_repeat in plan:
        if mode != SEPARATE or width <= 1:
            out.append((i_config, size, i_repeat, 0, 0))
            continue
        chunk = max(1, math.ceil(size / (2 * width)))
        out.extend((i_config, size, i_repeat, lo, min(size, lo + chunk)) for lo in range(0, size, chunk))
    return out


def merge_parts(parts: list[Cell]) -> Cell:
    """One ``"separate"`` cell from its pieces, in fold order: the cell fitted whole in one process.

    Its predictions, parameters and fold states are the pieces' in order; its fit time and
    evaluations their sums; a failed piece fails the cell (with that piece's error).
    """
    first = parts[0]
    cell = Cell(first.i_config, first.size, first.i_repeat, fit_seconds=sum(p.fit_seconds for p in parts),
                evaluations=sum(p.evaluations for p in parts), warnings=[w for p in parts for w in p.warnings])
    failed = [p for p in parts if p.status != STATUS_OK]
    if failed:
        cell.status, cell.error = STATUS_FAILED, failed[0].error
        return cell
    cell.predictions = pd.concat([p.predictions for p in parts], ignore_index=True)
    # an OK "separate" piece's state is a list, one per fold (fit_cell)
    cell.state = cast("list[dict]", [s for p in parts for s in (p.state if isinstance(p.state, list) else [p.state])])
    unread = [p.error for p in parts if p.parameters is None]
    if unread:  # a piece's parameters could not be read: the cell's scores stand, its folds are not drawn
        cell.error = unread[0]
    else:
        cell.parameters = pd.concat([p.parameters for p in parts], ignore_index=True)
    return cell


class CellRunner:
    """Runs cells on an executor and hands each finished one to ``on_done`` in this process."""

    def __init__(self, job: CellJob, seed: int, on_done: Callable[[Cell], None], workers: int, executor):
        self.job, self.seed, self.on_done = job, seed, on_done
        self.workers, self.executor = workers, executor
        self.blob = pack_job(job) if (workers > 1 or executor is not None) else None
        self.digest = hashlib.sha256(self.blob).hexdigest() if self.blob is not None else ""
        self.pids: set[int] = set()
        # a "separate" cell's finished pieces (by first fold) and how many it has, until the last arrives
        self.parts: dict[tuple[int, int], dict[int, Cell]] = {}
        self.expected: dict[tuple[int, int], int] = {}

    def run(self, plan: list[Plan]) -> None:
        if self.blob is None:
            for i_config, size, i_repeat in plan:
                self.on_done(fit_cell(self.job, self.seed, i_config, size, i_repeat))
            return
        tasks = pieces(plan, self.job.mode, self._width())
        for piece in tasks:
            key = (piece[0], piece[2])
            self.expected[key] = self.expected.get(key, 0) + 1
        if self.executor is None:
            self._run_own_pools(tasks)
        else:
            self._run_on(executor_of(self.executor), tasks, started=None, own=False)

    def _width(self) -> int:
        """How many tasks run at once: the workers asked for, a Dask cluster's workers, else the CPUs."""
        if self.executor is None:
            return self.workers
        client = _dask_client_of(self.executor)
        return len(client.nthreads()) if client is not None else (os.cpu_count() or 2)

    def _done(self, piece: Piece, result: Cell) -> None:
        """Hands a finished cell on; a piece waits for its cell's other pieces, then the merged cell goes on."""
        if not piece[4]:
            self.on_done(result)
            return
        key = (piece[0], piece[2])
        got = self.parts.setdefault(key, {})
        got[piece[3]] = result
        if len(got) == self.expected[key]:
            del self.parts[key]
            self.on_done(merge_parts([got[lo] for lo in sorted(got)]))

    def _submit(self, ex, piece: Piece, started):
        return ex.submit(fit_cell_task, self.blob, self.digest, self.seed, tuple(piece), started)

    def _run_on(self, ex, plan: list[Piece], started, own: bool) -> list[Piece]:
        """Submits every piece and waits; returns the pieces lost to a broken pool (own pools only)."""
        futures = {self._submit(ex, cell, started): cell for cell in plan}
        finished: set[Piece] = set()
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
                self._done(cell, result)
        except BaseException:  # Ctrl-C or an error in the caller: cancel what has not started
            for fut in futures:
                fut.cancel()
            raise
        return []

    def _failed(self, piece: Piece, why: str) -> Cell:
        i_config, size, i_repeat = piece[:3]
        return Cell(i_config, size, i_repeat, status=STATUS_FAILED, error=why)

    def _run_own_pools(self, plan: list[Piece]) -> None:
        """Runs cells in our own process pools; a worker that dies costs only the cell it was fitting.

        A dead worker breaks the whole pool (every unfinished future fails), and the pool
        does not say which cell killed it: each task leaves a marker when it starts, so the
        cells that were running are known. They are rerun one at a time in a fresh pool,
        the others go on together; a cell that kills its worker when running alone is failed.
        """
        queue: list[Piece] = list(plan)
        suspects: list[Piece] = []
        with tempfile.TemporaryDirectory(prefix="gpviz-sweep-") as started:
            while queue or suspects:
                alone = not queue
                batch = queue if queue else [suspects.pop(0)]
                queue = []
                width = 1 if alone else min(self.workers, len(batch))
                ex = concurrent.futures.ProcessPoolExecutor(width, mp_context=_mp_context(self.job),
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
                        self._done(cell, self._failed(cell, "its worker process died while fitting it (killed, out "
                                                        "of memory or crashed), also when run alone"
                                                  if alone else "the worker processes died before it started"))
                    queue = [c for c in lost if c not in running] if running else []
                else:
                    suspects.extend(running)
                    queue = [c for c in lost if c not in running]

    def _started(self, folder: str, lost: list[Piece]) -> list[Piece]:
        marks = set()
        for name in os.listdir(folder):
            i_config, i_repeat, lo, _pid = (int(v) for v in name.split("-"))
            marks.add((i_config, i_repeat, lo))
        return [c for c in lost if (c[0], c[2], c[3]) in marks]

    def _stop_workers(self, folder: str) -> None:
        """Ends our workers still fitting (an interrupted sweep keeps only the finished cells)."""
        for name in os.listdir(folder):
            pid = int(name.split("-")[3])
            try:
                os.kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass


def _run_task(fn: Callable, blob: bytes, digest: str, args: tuple):
    return fn(_unpack(blob, digest), *args)


def executor_of(executor):
    """The ``concurrent.futures`` executor to submit to: ``executor`` itself, or a Dask client's own.

    Every user-given executor passes here before a task is submitted to it.

    Raises:
        InputError: if it runs tasks in threads sharing one process (:func:`check_executor`).
    """
    check_executor(executor)
    return executor.get_executor(pure=False) if _is_dask_client(executor) else executor


def map_tasks(fn: Callable, job: object, tasks: Sequence[tuple], *, parts: Mapping[str, object], caller: str,
              workers: int = 1, executor: TaskExecutor | None = None) -> list:
    """``[fn(job, *task) for task in tasks]``, run in ``workers`` processes of this machine or on ``executor``.

    ``job`` is packed once (:func:`pack`) and unpacked once per worker; ``fn`` must be a
    module-level function (it travels by reference). With ``workers=1`` and no executor
    the tasks run here, in order. Results come back in task order whatever ran first.

    Raises:
        InputError: if a part of ``job`` cannot be sent to worker processes.
        Exception: the first task's error, after the unstarted tasks are cancelled.
    """
    if workers <= 1 and executor is None:
        return [fn(job, *task) for task in tasks]
    blob = pack(job, parts, caller)
    digest = hashlib.sha256(blob).hexdigest()
    own = executor is None
    ex = (concurrent.futures.ProcessPoolExecutor(min(workers, max(1, len(tasks))), mp_context=_mp_context(job),
                                                 initializer=_worker_init) if own else executor_of(executor))
    futures = [ex.submit(_run_task, fn, blob, digest, tuple(task)) for task in tasks]
    try:
        results = [f.result() for f in futures]
    except BaseException:  # a task's error, Ctrl-C: what has not started does not run
        for f in futures:
            f.cancel()
        if own:
            ex.shutdown(wait=False, cancel_futures=True)
        raise
    if own:
        ex.shutdown(wait=True)
    return results
