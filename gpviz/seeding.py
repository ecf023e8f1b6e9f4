"""Seeding torch for a block and leaving every device's random state as the caller had it.

gpviz seeds torch wherever a result must not depend on what ran before: a sweep's cell
(BoTorch's retries redraw parameters from their priors), a cell's model rebuilt by
``Sweep.models``, each fit of ``compare_fit_modes``, the draws behind a prior's spread.
``torch.manual_seed`` inside ``torch.random.fork_rng(devices=[])`` restores only the CPU
generator: it also reseeds every CUDA generator (queued until CUDA starts, if it has not)
and never gives them back, so a user's CUDA draws after a gpviz call would repeat
gpviz's. :func:`seeded` seeds the CPU generator and the generator of every CUDA device
that is initialized (where CUDA tensors live, so where a fit draws), and restores all of
them afterwards; a CUDA that is not initialized is not touched (nothing queued).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from gpviz.errors import InputError


def cuda_devices() -> list[int]:
    """The CUDA devices whose generators a seeded block seeds and restores: all of them once CUDA is initialized.

    Returns:
        ``[]`` when CUDA is not available or not initialized (asking nothing of it, so
        that a CPU-only caller never starts CUDA), else ``range(torch.cuda.device_count())``.
    """
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return []
    return list(range(torch.cuda.device_count()))


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Runs the block with torch's generators seeded with ``seed``, then restores every one of them.

    The CPU generator and each initialized CUDA device's generator are seeded with
    ``seed`` (as ``torch.manual_seed`` seeds them) and restored to the caller's state on
    exit, also when the block raises.

    Args:
        seed: A non-negative integer below ``2**64``.

    Raises:
        InputError: if ``seed`` is not such an integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 64:
        raise InputError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    devices = cuda_devices()
    # device_type="cuda": without it fork_rng asks which accelerator is current, which may be another kind
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.default_generator.manual_seed(seed)
        if devices:
            torch.cuda.manual_seed_all(seed)  # CUDA is initialized: this seeds at once, nothing is queued
        yield


__all__ = ["cuda_devices", "seeded"]
