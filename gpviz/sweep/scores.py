"""Scores across sweeps: the metric per dataset size for each sweep, side by side with the ratio to the first."""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from gpviz.charts import score_bands


def score_table(sweeps: Mapping, metric: str = "mse") -> pd.DataFrame:
    """Per dataset size and sweep: the centre and 10th/90th percentile of ``metric``, and the ratio of centres.

    Returns:
        One row per (size, label): ``size``, ``label``, ``low``, ``center``, ``high``,
        ``n_ok``, and ``ratio_to_first`` (this sweep's centre over the first sweep's at
        that size; < 1 means smaller than the first).
    """
    frames = [score_bands(sweep.scores, metric).assign(label=label, order=i)
              for i, (label, sweep) in enumerate(sweeps.items())]
    table = pd.concat(frames, ignore_index=True).sort_values(["size", "order"], kind="stable")
    first = table[table["order"] == 0].set_index("size")["center"]
    table["ratio_to_first"] = table["center"] / table["size"].map(first)
    return table[["size", "label", "low", "center", "high", "n_ok", "ratio_to_first"]].reset_index(drop=True)
