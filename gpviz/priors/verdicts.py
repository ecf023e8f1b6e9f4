"""The verdict vocabulary, the rule that turns a prior pull's numbers into a verdict, and the counts per key and
dataset size that views tint by (see :mod:`gpviz.priors.stories` for the sentences)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from gpviz.values.columns import I_REPEAT, SIZE


class Verdict(enum.StrEnum):
    """What a prior pull says of one parameter value, in the order pages list them.

    Members compare and hash equal to their strings (``Verdict.HELD == "held at prior mode"``), the words
    frames and pages carry.
    """

    FREE = "free"
    NEVER_MOVED = "never moved"
    HELD = "held at prior mode"
    SET = "set by prior"
    AT_BOUND = "at bound"


FREE, NEVER_MOVED, HELD, SET, AT_BOUND = Verdict.FREE, Verdict.NEVER_MOVED, Verdict.HELD, Verdict.SET, Verdict.AT_BOUND
#: Every verdict :func:`prior_pull` gives, in the order pages list them.
VERDICTS = tuple(Verdict)

#: A positive parameter is "near the mode" within this distance in log space (a factor of 2).
NEAR_LOG = math.log(2.0)
#: A real-valued parameter is "near the mode" within this many prior standard deviations.
NEAR_STD = 1.0
#: The prior dominates a parameter when it supplies more than this share of the local curvature.
HELD_SHARE = 0.5
#: ... or when the data's evidence for the fitted value over one 100x away (the likelihood alone's direction,
#: :func:`gpviz.priors.escape.escape_gain`) is below this many nats: less than "strong" evidence on Kass &
#: Raftery's (1995) scale (2 ln B < 6).
ESCAPE_NATS = 3.0
#: The data carries no information about an element when, in the coordinate the verdict is judged in (``log θ``
#: for a positive parameter), its likelihood's curvature is below this share of its prior's curvature (the data
#: would supply under a millionth of the precision) AND its likelihood's gradient is below this many prior
#: standard deviations' worth (``|g_lik| <= NEVER_MOVED_TOL * sqrt(curv_prior)``: a Newton step of the data's
#: gradient against the prior's curvature, ``g_lik / curv_prior``, moves the value under a millionth of the
#: prior's sd). Both are exactly 0 for the lengthscale of an input that is constant in the training data;
#: 1e-6 sits far above float64 round-off of the closed-form derivatives (~1e-12 relative) and far below any
#: data that says something (a share of 1e-6 is 6 decimal orders under :data:`HELD_SHARE`). The prior's own
#: gradient is no scale: at its mode, where such an element sits, it is 0.
NEVER_MOVED_TOL = 1e-6


def uninformed(grad_lik, curv_lik, curv_prior, tol: float = NEVER_MOVED_TOL) -> np.ndarray:
    """Whether the data carries no information about an element (see :data:`NEVER_MOVED_TOL`).

    Args:
        grad_lik: The log likelihood's gradient in the judged coordinate.
        curv_lik: The log likelihood's curvature there (``-d²/du²``; its sign is not used).
        curv_prior: The log prior's curvature there (``-d²/du²``); not > 0: never uninformed (no scale).
        tol: The relative tolerance.

    Returns:
        A bool array (NaN inputs: False).
    """
    g, cl, cp = (np.asarray(a, dtype=float) for a in np.broadcast_arrays(grad_lik, curv_lik, curv_prior))
    with np.errstate(invalid="ignore"):
        return (cp > 0) & (np.abs(g) <= tol * np.sqrt(np.where(cp > 0, cp, 0.0))) & (np.abs(cl) <= tol * cp)


def classify(value, lower, upper, has_prior, distance, near, prior_share, escape_gain=np.nan,
             no_information=False) -> np.ndarray:
    """The verdict of each parameter element from the numbers behind it (vectorized, no model needed).

    In this order:

    * ``at bound`` when the value sits on a finite constraint bound
      (within a relative 1e-4 of it, as :func:`gpviz.values.bounds.at_bound`);
    * else ``never moved`` when the parameter has a prior and the data carries no information
      about it (``no_information``: :func:`uninformed`, the likelihood's gradient and curvature ~0
      against the prior's): BoTorch starts the optimizer at the prior's mode, and nothing moves it
      (e.g. the lengthscale of an input column constant in the training data). Checked before the
      rule below, which would call it ``held at prior mode`` as if the prior held it against the data;
    * else, when the parameter has a prior and the prior dominates it, which is either of:

      - ``prior_share > HELD_SHARE``: the prior supplies most of the posterior precision
        that holds the value in place. :func:`gpviz.prior_pull` passes its full-Hessian
        ``precision_share`` (correlations included, in ``log θ`` for a positive parameter;
        see :mod:`gpviz.priors.hessian`), or the diagonal share in the same coordinates
        where the full one is undefined (the posterior precision not positive definite);
      - ``escape_gain > -ESCAPE_NATS``: the data alone would take the value a factor 100
        further in the direction it pushes (its log likelihood there, the others
        re-adjusted, is less than :data:`ESCAPE_NATS` below the MAP's;
        :func:`gpviz.priors.escape.escape_gain`): a lengthscale of an input the data does
        not use, which only its prior keeps finite, is never ``free``, whatever the
        curvature at the MAP says;

      ``held at prior mode`` if ``near`` (within :data:`NEAR_LOG` of the mode in log space
      for a positive parameter, :data:`NEAR_STD` prior standard deviations otherwise),
      ``set by prior`` if not (e.g. an outputscale of 0.30 under a Gamma(2, 0.15) prior whose
      mode is 6.67, where the data alone would take it 100x lower);
    * else ``free``: the data supplies most of the precision and would keep the value near.

    How this maps onto power-scaling sensitivity (Kallioinen, Paananen, Bürkner & Vehtari 2024; ArviZ's
    ``psense``, :func:`gpviz.prior_sensitivity`): in the Laplace approximation, raising the prior to the
    power α moves the marginal of ``u`` by ``dmap_dalpha_sd`` posterior standard deviations and its log
    standard deviation by ``-precision_share / 2`` per unit α. ArviZ's prior sensitivity of such a
    Gaussian marginal (its CJS distance on 4,000 normal draws, α = 0.99 / 1.01) is about
    ``0.086 x precision_share`` when the centre stays and ``0.15 x |dmap_dalpha_sd|`` when the spread
    stays (0.043 / 0.065 / 0.107 at share 0.5 and a centre moving 0, 0.2, 0.5 sd): the 0.05 threshold of
    "strong prior / weak likelihood" is a share of about 0.58 alone, or a centre moving a third of a
    posterior sd per unit α. So ``held`` / ``set`` (share > 0.5) sit at that threshold, slightly below it
    for a prior that only narrows the marginal. "Prior-data conflict" (both sensitivities >= 0.05) has
    no MAP counterpart of its own; here it shows as a dominated value far from the prior's mode in
    posterior standard deviations (``distance_post_sd``), i.e. ``set by prior``. The escape probe has
    no local counterpart: a prior that alone keeps a lengthscale finite can have a small local share
    (the data's curvature at the MAP is the prior's doing), which is why a MAP verdict needs it.

    Args:
        value, lower, upper: Constrained value and constraint bounds (arrays of one shape).
        has_prior: Whether the element has a prior.
        distance: Distance to the prior's mode (only its finiteness is used here).
        near: Whether the value is near the mode (see above).
        prior_share: The prior's share of the precision (NaN: not known).
        escape_gain: The data's log likelihood 100x away minus at the value, in nats (NaN: not probed).
        no_information: Whether the data carries no information about the element (:func:`uninformed`).

    Returns:
        An object array of verdict strings (one of :data:`VERDICTS`).
    """
    value, lower, upper = (np.asarray(a, dtype=float) for a in np.broadcast_arrays(value, lower, upper))
    has_prior = np.broadcast_to(np.asarray(has_prior, dtype=bool), value.shape)
    near = np.broadcast_to(np.asarray(near, dtype=bool), value.shape)
    share = np.broadcast_to(np.asarray(prior_share, dtype=float), value.shape)
    del distance  # documented for the reader: `near` already says how far
    bound = np.zeros(value.shape, dtype=bool)
    for b in (lower, upper):
        with np.errstate(invalid="ignore"):
            bound |= np.isfinite(b) & (np.abs(value - b) <= 1e-4 * np.maximum(np.abs(b), 1e-8))
    gain = np.broadcast_to(np.asarray(escape_gain, dtype=float), value.shape)
    with np.errstate(invalid="ignore"):
        dominated = has_prior & ((np.isfinite(share) & (share > HELD_SHARE)) | (np.isfinite(gain) & (gain > -ESCAPE_NATS)))
    silent = has_prior & np.broadcast_to(np.asarray(no_information, dtype=bool), value.shape)
    out = np.full(value.shape, FREE, dtype=object)
    out[dominated & ~near] = SET
    out[dominated & near] = HELD
    out[silent] = NEVER_MOVED
    out[bound] = AT_BOUND
    return out


#: A parameter is tinted when prior_pull holds it in at least this share of the members (of some group).
HELD_MAJORITY = 0.5


def key_verdicts(pull: pd.DataFrame, by: str | None = None) -> dict[str, str]:
    """One verdict per key from :func:`gpviz.prior_pull` rows: the rule every view tints by.

    A key is ``never moved`` when at least :data:`HELD_MAJORITY` of its rows are (in some group,
    as below: the data says nothing about it); otherwise ``held at prior mode`` when at least :data:`HELD_MAJORITY` (half) of its rows
    are held, within some group of ``by`` (e.g. ``"size"`` for a sweep: half the
    folds of one dataset size suffice) or over all rows when ``by`` is None (the
    members of a batch); otherwise ``set by prior`` when half of its rows are, in some
    group; otherwise ``at bound`` if any row sits on a bound, else ``free``.

    Args:
        pull: Rows with ``key`` and ``verdict`` (and ``by``).
        by: Column grouping the rows, or None.

    Returns:
        key -> verdict, for every key in ``pull``.
    """
    if pull is None or len(pull) == 0 or "key" not in pull.columns or "verdict" not in pull.columns:
        return {}
    groups = [pull["key"].astype(str)] + ([pull[by]] if by is not None and by in pull.columns else [])

    def most(verdict: str) -> pd.Series:
        share = pull["verdict"].astype(str).eq(verdict).groupby(groups, sort=False).mean()
        return share.groupby(level=0, sort=False).max() if share.index.nlevels > 1 else share

    never, held, set_ = most(NEVER_MOVED), most(HELD), most(SET)
    bound = pull["verdict"].astype(str).eq(AT_BOUND).groupby(pull["key"].astype(str), sort=False).any()
    return {k: NEVER_MOVED if never[k] >= HELD_MAJORITY else HELD if held[k] >= HELD_MAJORITY
            else SET if set_[k] >= HELD_MAJORITY
            else (AT_BOUND if bound.get(k, False) else FREE) for k in held.index}


def with_verdicts(info: pd.DataFrame, verdicts: Mapping[str, str]) -> pd.DataFrame:
    """``info`` (a long frame with ``key``) with a ``verdict`` column from :func:`key_verdicts` (keys missing: "")."""
    info = info.copy()
    info["verdict"] = [verdicts.get(str(k), "") for k in info["key"]]
    return info


#: Columns of :func:`verdict_table`.
TABLE_COLUMNS = ["key", SIZE, "prior", "members", "free", "never_moved", "held", "set", "at_bound", "held_share",
                 "set_share", "repeats", "repeats_held", "label", "at_lower", "lower", "upper"]


def verdict_table(pull: pd.DataFrame) -> pd.DataFrame:
    """Per key and dataset size: how many members got each verdict, over every repeat.

    A repeat counts as held at a size when at least half of its folds are ``held at
    prior mode`` (the dots of that repeat sit on the mode).

    Args:
        pull: Rows of :func:`sweep_prior_pull` (``key``, ``size``, ``i_repeat``, ``verdict``).

    Returns:
        One row per key (in first-seen order) and size (ascending): ``members``
        (folds judged), ``free``, ``never_moved``, ``held``, ``set``, ``at_bound`` (counts per verdict),
        ``held_share`` (``held / members``), ``set_share`` (``set / members``),
        ``repeats`` and ``repeats_held``; ``prior`` is the prior's class name ("none"); ``label`` (what
        people read, the key where the pull has none), ``at_lower`` (of ``at_bound``, the folds on the
        lower bound), ``lower`` and ``upper`` (the constraint's bounds; NaN where the pull has none).
    """
    if pull is None or len(pull) == 0:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    v = pull["verdict"].astype(str)
    flags = pd.DataFrame({"key": pull["key"].astype(str), SIZE: pull[SIZE].astype(int),
                          I_REPEAT: pull[I_REPEAT].astype(int) if I_REPEAT in pull else 0,
                          "free": v.eq(FREE), "never_moved": v.eq(NEVER_MOVED), "held": v.eq(HELD), "set": v.eq(SET), "at_bound": v.eq(AT_BOUND)})
    order = {k: i for i, k in enumerate(dict.fromkeys(flags["key"]))}
    per_repeat = flags.groupby(["key", SIZE, I_REPEAT], sort=False)["held"].mean().ge(0.5)
    repeats = per_repeat.groupby(level=[0, 1], sort=False).agg(["count", "sum"])
    counts = flags.groupby(["key", SIZE], sort=False)[["free", "never_moved", "held", "set", "at_bound"]].sum()
    counts["members"] = flags.groupby(["key", SIZE], sort=False).size()
    prior = pull["prior"].astype(str) if "prior" in pull else pd.Series("none", index=pull.index)
    counts["prior"] = prior.groupby([flags["key"], flags[SIZE]], sort=False).first()
    counts["repeats"] = repeats["count"]
    counts["repeats_held"] = repeats["sum"]
    label = pull["label"].astype(str) if "label" in pull else flags["key"]
    counts["label"] = label.groupby([flags["key"], flags[SIZE]], sort=False).first()
    nan = pd.Series(np.nan, index=pull.index)
    lower = pull["lower"].astype(float) if "lower" in pull else nan
    upper = pull["upper"].astype(float) if "upper" in pull else nan
    value = pull["value"].astype(float) if "value" in pull else nan
    with np.errstate(invalid="ignore"):
        nearer_lower = ((value - lower).abs() <= (value - upper).abs()) | upper.isna() | ~np.isfinite(upper)
    counts["at_lower"] = (flags["at_bound"] & nearer_lower & np.isfinite(lower)).groupby(
        [flags["key"], flags[SIZE]], sort=False).sum()
    counts["lower"] = lower.groupby([flags["key"], flags[SIZE]], sort=False).first()
    counts["upper"] = upper.groupby([flags["key"], flags[SIZE]], sort=False).first()
    out = counts.reset_index()
    for c in ("members", "free", "never_moved", "held", "set", "at_bound", "repeats", "repeats_held", "at_lower"):
        out[c] = out[c].astype(np.int64)
    out["held_share"] = out["held"] / out["members"]
    out["set_share"] = out["set"] / out["members"]
    out = out.iloc[np.lexsort((out[SIZE].to_numpy(), out["key"].map(order).to_numpy()))]
    return out[TABLE_COLUMNS].reset_index(drop=True)


def band_text(row) -> str:
    """What one size band of a parameter says on hover: its share held and every count behind it.

    E.g. ``"n = 80: held at the prior's mode in 163 of 320 folds (51%), in 2 of 4 repeats;
    set by prior 0, free 157, at bound 0"``.
    """
    return (f"n = {int(row[SIZE])}: held at the prior's mode in {int(row['held'])} of {int(row['members'])} folds "
            f"({row['held_share']:.0%}), in {int(row['repeats_held'])} of {int(row['repeats'])} repeats; "
            f"set by prior {int(row['set'])}, free {int(row['free'])}, at bound {int(row['at_bound'])}"
            + (f", never moved {int(row['never_moved'])}" if int(row.get("never_moved", 0)) else ""))


@dataclass(frozen=True)
class BandCount:
    """The verdicts of one parameter element at one dataset size, over every fold of every repeat.

    Attributes:
        size: The dataset size.
        share: Share of the folds held at the prior's mode (the band's tint).
        held: Folds held at the prior's mode.
        members: Folds judged.
        repeats_held: Repeats in which at least half the folds are held.
        repeats: Repeats judged.
        text: The hover text (:func:`band_text`).
    """

    size: int
    share: float
    held: int
    members: int
    repeats_held: int
    repeats: int
    text: str


def size_bands(table: pd.DataFrame, sizes) -> dict[str, tuple]:
    """key -> one :class:`BandCount` per size of ``sizes`` (None for a size not judged).

    The tint of each size band of a parameter's chart (see :func:`verdict_table`).
    """
    out: dict[str, tuple] = {}
    for key, rows in table.groupby("key", sort=False):
        by = {int(r[SIZE]): BandCount(int(r[SIZE]), float(r["held_share"]), int(r["held"]), int(r["members"]),
                                        int(r["repeats_held"]), int(r["repeats"]), band_text(r))
              for _, r in rows.iterrows()}
        out[str(key)] = tuple(by.get(int(s)) for s in sizes)
    return out
