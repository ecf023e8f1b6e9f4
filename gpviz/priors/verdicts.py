"""The verdict vocabulary and the rules that turn per-member verdicts into one per key (what every view tints by)."""

from __future__ import annotations

from typing import Mapping

import pandas as pd

HELD = "held by prior"
AT_BOUND = "at bound"
FREE = "free"
VERDICTS = (HELD, AT_BOUND, FREE)

#: A parameter is tinted when prior_pull holds it in at least this share of the members (of some group).
HELD_MAJORITY = 0.5


def key_verdicts(pull: pd.DataFrame, by: str | None = None) -> dict[str, str]:
    """One verdict per key from :func:`gpviz.prior_pull` rows: the rule every view tints by.

    A key is ``held by prior`` when at least :data:`HELD_MAJORITY` (half) of its rows
    are held, within some group of ``by`` (e.g. ``"size"`` for a sweep: half the
    folds of one dataset size suffice) or over all rows when ``by`` is None (the
    members of a batch); otherwise ``at bound`` if any row sits on a bound, else
    ``free``.

    Args:
        pull: Rows with ``key`` and ``verdict`` (and ``by``).
        by: Column grouping the rows, or None.

    Returns:
        key -> verdict, for every key in ``pull``.
    """
    if pull is None or len(pull) == 0 or "key" not in pull.columns or "verdict" not in pull.columns:
        return {}
    held = pull["verdict"].astype(str).eq(HELD)
    groups = [pull["key"].astype(str)] + ([pull[by]] if by is not None and by in pull.columns else [])
    share = held.groupby(groups, sort=False).mean()
    if share.index.nlevels > 1:
        share = share.groupby(level=0, sort=False).max()
    bound = pull["verdict"].astype(str).eq(AT_BOUND).groupby(pull["key"].astype(str), sort=False).any()
    return {k: HELD if share[k] >= HELD_MAJORITY else (AT_BOUND if bound.get(k, False) else FREE)
            for k in share.index}


def with_verdicts(info: pd.DataFrame, verdicts: Mapping[str, str]) -> pd.DataFrame:
    """``info`` (a long frame with ``key``) with a ``verdict`` column from :func:`key_verdicts` (keys missing: "")."""
    info = info.copy()
    info["verdict"] = [verdicts.get(str(k), "") for k in info["key"]]
    return info


def held_fractions(pull: pd.DataFrame) -> pd.DataFrame:
    """Share of folds judged ``held by prior`` per key (rows) and dataset size (columns)."""
    return (pull.assign(held=pull["verdict"].eq(HELD))
            .pivot_table(index="key", columns="size", values="held", aggfunc="mean", sort=False))
