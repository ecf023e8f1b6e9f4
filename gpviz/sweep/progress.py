"""The sweep's progress bar: cells done of all, wherever they run, with an ETA weighted by each cell's expected cost."""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np

from gpviz.sweep.cells import STATUS_OK, Cell

def expected_cost(sizes: Sequence[int], done: Sequence[tuple[int, float]], default_power: float = 3.0) -> np.ndarray:
    """Relative cost of a cell per dataset size: ``size ** p``, ``p`` fitted to the cells done so far.

    A LOO cell of ``n`` points fits ``n`` batched models of ``n - 1`` points, so its cost grows
    steeply with ``n``; counting cells alike made the ETA several times too short.

    Args:
        sizes: Sizes to price.
        done: ``(size, seconds)`` of finished (not cached) cells.
        default_power: ``p`` until two sizes have finished.

    Returns:
        A float64 array of costs, one per entry of ``sizes``, in the units of ``done``'s seconds
        when ``done`` is given (else relative).
    """
    sizes_arr = np.asarray(sizes, dtype=np.float64)
    if not done:
        return sizes_arr ** default_power
    n = np.array([d[0] for d in done], dtype=np.float64)
    t = np.maximum(np.array([d[1] for d in done], dtype=np.float64), 1e-6)
    power = default_power
    if len(np.unique(n)) >= 2:
        power = float(np.clip(np.polyfit(np.log(n), np.log(t), 1)[0], 1.0, 4.0))
    scale = float(np.exp(np.mean(np.log(t) - power * np.log(n))))
    return scale * sizes_arr ** power


class SweepProgress:
    """One bar over every cell of a sweep, wherever they run: done/total, rate, a cost-weighted ETA."""

    def __init__(self, total: int, enabled: bool, workers: int):
        try:  # tqdm.auto's notebook bar needs ipywidgets and warns without it
            import ipywidgets  # noqa: F401
            from tqdm.auto import tqdm
        except ImportError:
            from tqdm import tqdm
        self.bar = tqdm(total=total, desc="cv_sweep", unit="cell", disable=not enabled, leave=True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} cells "
                                   "[{elapsed}, {rate_fmt}{postfix}]")
        self.workers = max(1, workers)
        self.fitted: list[tuple[int, float]] = []
        self.pending: list[int] = []
        self.t0 = time.perf_counter()

    def start(self, pending_sizes: list[int]) -> None:
        self.pending = list(pending_sizes)
        self.t0 = time.perf_counter()

    def done(self, cell: Cell) -> None:
        if not cell.cached:
            if cell.size in self.pending:
                self.pending.remove(cell.size)
            if math.isfinite(cell.fit_seconds) and cell.status == STATUS_OK:
                self.fitted.append((cell.size, cell.fit_seconds))
        eta = self.eta()
        self.bar.set_postfix_str(f"ETA {_fmt_seconds(eta)} (weighted by size)" if eta is not None else "",
                                 refresh=False)
        self.bar.update(1)

    def eta(self) -> float | None:
        """Seconds left: the remaining cells' expected cost over the throughput seen so far.

        None (no ETA shown) until it means something: at least two cells fitted, at
        least one per worker (a pool's first cells carry its start-up), and the cost of
        every size still to run known, i.e. two sizes fitted (the cost's power is then
        measured, not assumed) or only sizes already fitted left. A first small cell,
        mostly overhead, priced at ``size ** 3`` made a 20-second sweep say 7 minutes.
        """
        if not self.pending:
            return 0.0
        seen = {size for size, _ in self.fitted}
        if len(self.fitted) < max(2, self.workers):
            return None
        if len(seen) < 2 and not set(self.pending) <= seen:
            return None
        elapsed = time.perf_counter() - self.t0
        done_cost = float(expected_cost([s for s, _ in self.fitted], self.fitted).sum())
        left_cost = float(expected_cost(self.pending, self.fitted).sum())
        return left_cost * elapsed / max(done_cost, 1e-9)

    def close(self) -> None:
        self.bar.close()


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
