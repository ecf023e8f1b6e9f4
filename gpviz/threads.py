"""Threads for gpviz's long-running calls (cross-validation sweeps and their verdicts, fit-mode comparisons, the demo).

GP fits of tens to hundreds of points multiply small matrices: with several
threads torch spends more time synchronizing than computing. Measured on a
shared 2-core machine under load, small fits ran about 3x faster with one torch
thread than with torch's default. gpviz's long-running calls therefore run with
one thread by default and restore the caller's setting afterwards; ``threads=None``
keeps the process's own setting.

The limit covers NumPy's BLAS as well as torch: SciPy's L-BFGS-B calls BLAS on
every step and BLAS's idle threads busy-wait, which one process barely notices but
two processes on two cores do (each fitted 3-4x slower than alone, so
``cv_sweep(workers=2)`` was slower than one process).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import threadpoolctl
import torch

from gpviz.errors import InputError

#: gpviz's default for its long-running calls.
DEFAULT_THREADS = 1


def check_threads(threads) -> int | None:
    """``threads`` as a positive int, or None (keep torch's setting).

    Raises:
        InputError: for anything else.
    """
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"threads must be a positive integer or None (torch's own setting), got {threads!r}")
    return threads


def blas_threads() -> int:
    """The BLAS threads NumPy uses now (what :func:`torch_threads` limits besides torch's)."""
    return max((p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"), default=1)


@contextlib.contextmanager
def torch_threads(threads: int | None = DEFAULT_THREADS) -> Iterator[None]:
    """Runs the block with ``threads`` torch and BLAS threads (None: unchanged), then restores the caller's setting.

    Raises:
        InputError: if ``threads`` is not a positive integer or None.
    """
    threads = check_threads(threads)
    if threads is None:
        yield
        return
    old = torch.get_num_threads()
    try:
        if threads != old:
            torch.set_num_threads(threads)
        with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
            yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


__all__ = ["DEFAULT_THREADS", "blas_threads", "check_threads", "torch_threads"]


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype | None) -> Iterator[None]:
    """Torch's default dtype set to ``dtype`` for the block (None: left as it is), the caller's restored afterwards.

    Work sent to a worker runs under the dtype its caller had (factories build priors and
    constants in it): a worker started with another default gives the same numbers.
    """
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype if dtype is not None else old)
    try:
        yield
    finally:
        torch.set_default_dtype(old)
