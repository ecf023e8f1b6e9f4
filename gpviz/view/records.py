"""Typed view data: what each chart of a page shows, made once by the view layer and read by the HTML layer.

A page is drawn from one :class:`ViewData`: the expression's sections, the
validated frame (:class:`FrameData`), the shared axes (:class:`AxisView`) and one
:class:`ParamView` per parameter key (its role, axis, prior mode, bounds, verdict
tint and flags). Records hold data only: text as plain strings (:class:`Note`), a
sweep's scaling curve as its scores (:class:`CurveData`); the page layer escapes,
styles and draws them. Analyses say what they know about a parameter besides its values
in a :class:`ParamFacts` (bounds and prior from the model, the verdict from
``prior_pull``); nothing downstream reads meaning from column names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import enum
from enum import Enum
from typing import Mapping

import numpy as np
import pandas as pd

from gpviz.priors.verdicts import HELD, NEVER_MOVED
from gpviz.tree.nodes import Node, Role
from gpviz.values.relevance import Relevance



@dataclass(frozen=True)
class ParamFacts:
    """What gpviz knows about one parameter key besides its values.

    Attributes:
        role: What the parameter is (picks its axis and scale).
        lower: Its constraint's lower bound, or None.
        upper: Its constraint's upper bound, or None.
        prior_mode: The mode of its prior in the shown units, or None.
        verdict: ``prior_pull``'s verdict for the key ("" when not judged).
        bands: One :class:`~gpviz.priors.verdicts.BandCount` (or None) per configuration: the
            share of its members held at the prior's mode tints that band (sweeps).
    """

    role: Role = Role.value
    lower: float | None = None
    upper: float | None = None
    prior_mode: float | None = None
    verdict: str = ""
    bands: tuple | None = None

    @property
    def held(self) -> bool:
        """Whether the verdict says the prior holds the parameter (the page tints it)."""
        return self.verdict == HELD


class FrameMode(enum.StrEnum):
    """What a frame's rows are, and so how its charts are drawn.

    Members compare equal to their strings (``FrameMode.TIMELINE == "timeline"``), the word a page's spec carries.
    """

    SNAPSHOT = "snapshot"  # one row: a value per chart
    BATCH = "batch"        # a row per batch member: a dot per member
    CONFIGS = "configs"    # rows per configuration (a sweep's sizes): a labelled band per configuration
    TIMELINE = "timeline"  # rows per timestep (a fit trace): a time control


class AxisKind(enum.StrEnum):
    """How an axis maps values to positions. Members compare equal to their strings (``AxisKind.LOG == "log"``)."""

    LOG = "log"
    LINEAR = "linear"


@dataclass(frozen=True, eq=False)
class FrameData:
    """A validated frame: mode, sorted float columns per key, index columns, step offsets.

    Attributes:
        mode: What the rows are (:class:`FrameMode`).
        values: key -> float64 values in row order (sorted by step, config, member).
        n_rows: Rows.
        members: Members per step / configuration.
        i_config: Configuration of each row, or None.
        config_labels: One label per configuration.
        steps: The distinct timesteps (timeline), in order.
        step_starts: Row offset of each step, then ``n_rows``.
        row_members: The member of each row (not for a timeline), or None.
    """

    mode: FrameMode
    values: dict[str, np.ndarray]
    n_rows: int
    members: int
    i_config: np.ndarray | None
    config_labels: tuple[str, ...]
    steps: list[int]
    step_starts: list[int]
    row_members: list[int] | None = None


@dataclass(frozen=True)
class AxisView:
    """One axis shared by every key of the same kind of quantity.

    Attributes:
        kind: Log or linear (:class:`AxisKind`).
        lo: Its low end.
        hi: Its high end.
        role: The role of its keys (its label).
        bounded: Its ends are the keys' constraint bounds (an ``Interval``).
    """

    kind: AxisKind
    lo: float
    hi: float
    role: str
    bounded: bool


#: How far below its peak (log units) a profile curve is drawn, top to bottom of its band (gpviz.js's PROFILE_DROP).
PROFILE_DROP = 8.0


@dataclass(frozen=True, eq=False)
class ProfileCurves:
    """A parameter's "why here?" profiles along its axis (:mod:`gpviz.priors.profiles`), for its chart.

    Attributes:
        x: ``(g,)`` grid values on the chart's axis, increasing.
        log_likelihood: ``(members, g)`` the exact log marginal likelihood (summed over points).
        log_prior: ``(members, g)`` the sum of every prior's log density.
    """

    x: np.ndarray
    log_likelihood: np.ndarray
    log_prior: np.ndarray


@dataclass(frozen=True)
class Sensitivity:
    """A parameter's power-scaling diagnosis (:func:`gpviz.prior_sensitivity`), the largest over its members.

    Attributes:
        prior: Sensitivity of its posterior to the prior's power.
        likelihood: Sensitivity to the likelihood's power.
        diagnosis: "prior-data conflict", "strong prior / weak likelihood", or "" (both below the threshold).
        pareto_k: The importance weights' k-hat (below 0.7 the numbers can be trusted).
        threshold: The sensitivity from which a component counts (0.05, ArviZ's and priorsense's).
    """

    prior: float
    likelihood: float
    diagnosis: str
    pareto_k: float
    threshold: float


@dataclass(frozen=True)
class ParamView:
    """What one parameter's chart shows.

    Attributes:
        key: The parameter key (the frame column).
        role: What it is.
        axis: Index into :attr:`ViewData.axes`.
        prior: Prior mode drawn on the chart, or None.
        lower: Constraint lower bound, or None.
        upper: Constraint upper bound, or None.
        mark_lower: Some value sits on the lower bound (the bound is drawn, those values red).
        mark_upper: Likewise for the upper bound.
        held: Tinted as a whole "held at prior mode" (a model; a sweep tints each band instead).
        flags: What is wrong with its values ("1 NaN, 2 inf"), or "".
        bands: Per configuration, its :class:`~gpviz.priors.verdicts.BandCount` (or None), or None.
        profile: Its "why here?" profiles (:class:`ProfileCurves`), or None.
        verdict: ``prior_pull``'s verdict for the key ("" when not judged): the legend counts them.
        sensitivity: Its power-scaling diagnosis (:class:`Sensitivity`), or None.
    """

    key: str
    role: str
    axis: int
    prior: float | None
    lower: float | None
    upper: float | None
    mark_lower: bool
    mark_upper: bool
    held: bool
    flags: str = ""
    bands: tuple | None = None
    profile: ProfileCurves | None = None
    verdict: str = ""
    sensitivity: Sensitivity | None = None

    @property
    def never_moved(self) -> bool:
        """Whether the verdict says the data carries no information about it (the page tints it, neutral)."""
        return self.verdict == NEVER_MOVED


@dataclass(frozen=True, eq=False)
class LossData:
    """Every member's loss at every recorded step of a fit, for the page's loss chart.

    Attributes:
        t: Timestep per point, sorted by member then timestep.
        v: Loss (negative MLL) per point.
        m: Member per point.
        members: Number of members.
        converged: Per member, the timestep it converged at (None: never).
        retries: Timesteps where a retry attempt starts.
    """

    t: np.ndarray
    v: np.ndarray
    m: np.ndarray
    members: int
    converged: tuple
    retries: tuple


@dataclass(frozen=True)
class PrintedSection:
    """One titled part of the expression as the page prints it (from a tree :class:`~gpviz.tree.nodes.Section`)."""

    title: str
    note: str
    tree: Node


@dataclass(frozen=True)
class VerdictSummary:
    """What a sweep page says in words about its verdicts.

    Attributes:
        note: One line: how the verdicts were judged, or why there are none.
        sentences: One sentence per parameter group (where each element leaves its prior's mode).
        sizes: The dataset sizes (the table's columns).
        rows: ``(key, per-size BandCount or None)`` for the keys held at the prior's mode somewhere.
    """

    note: str
    sentences: tuple[str, ...] = ()
    sizes: tuple[int, ...] = ()
    rows: tuple = ()


class NoteKind(str, Enum):
    """What a :class:`Note` says (the page layer gives each kind its look)."""

    fit_summary = "fit summary"  # a fit's convergence and waste in one line
    not_drawn = "not drawn"  # cells of a sweep the page does not draw, and why
    about = "about"  # what a page's bands or curves are (an Ax model history's trials; a model's profiles)
    fit_mode = "fit mode"  # how a sweep's cells were fitted: folds batched, one by one, or in closed form


@dataclass(frozen=True)
class Note:
    """A line of plain text shown below the expression.

    Attributes:
        kind: What it says.
        text: The line (escaped where the page writes it).
    """

    kind: NoteKind
    text: str


@dataclass(frozen=True, eq=False)
class CurveData:
    """A sweep's scaling curve, as numbers: the page layer draws it beside the expression.

    Attributes:
        scores: ``Sweep.scores``.
        reference: ``Sweep.reference_scores`` (the dashed line), or None.
        metric: The metric drawn.
    """

    scores: pd.DataFrame
    reference: pd.DataFrame | None
    metric: str


@dataclass(frozen=True)
class InfluenceRow:
    """One held-out point that moved a parameter: its fold's value against the cell's full-data fit.

    Attributes:
        key: The parameter key.
        size: The cell's dataset size.
        repeat: The cell's repeat.
        index: The point's row of the sweep's data.
        point: ``(feature name, value)`` of the point's row.
        full: The full-data fit's value.
        fold: The value fitted without the point.
        rel_shift: ``(fold - full) / |full|``.
    """

    key: str
    size: int
    repeat: int
    index: int
    point: tuple[tuple[str, float], ...]
    full: float
    fold: float
    rel_shift: float


@dataclass(frozen=True)
class InfluenceTable:
    """A sweep's most influential points per parameter (:meth:`gpviz.Sweep.influence`), drawn below the charts.

    Attributes:
        rows: The points, grouped by key in the expression's order, largest shift first.
        per_key: How many points each key lists at most.
    """

    rows: tuple[InfluenceRow, ...]
    per_key: int


@dataclass(frozen=True, eq=False)
class ViewData:
    """Everything a page of one expression needs, made once.

    Attributes:
        sections: The expression's parts, in print order.
        frame: The validated values.
        axes: Shared axes.
        params: key -> its chart, in the expression's key order.
        member: What one dot is, singular ("leave-one-out fold").
        members: The same, plural.
        title: Figure title, or None.
        judged: Verdicts were computed (the legend says so even when none is held).
        notes: Lines of text below the expression (:class:`Note`), in order.
        curve: A sweep's scaling curve to draw beside the expression (:class:`CurveData`), or None.
        summary: The verdicts in words (a sweep), or None.
        labels: key -> readable label (``lengthscale[log_lr]``), for hover text and tables.
        notation: ``(name, line)`` for each pseudocode function the expression uses.
        loss: A fit's loss series for the page's loss chart (:class:`LossData`), or None.
        member_names: Names of the members when they are named outputs, or None.
        influence: A sweep's most influential points per parameter (:class:`InfluenceTable`), or None.
        warnings: Lines the page shows as warnings above its legend (a prior whose mode lies outside its bounds).
        relevance: A model's inputs ranked by lengthscale over training range
            (:class:`~gpviz.values.relevance.Relevance`, most relevant first), or ().
    """

    sections: tuple[PrintedSection, ...]
    frame: FrameData
    axes: tuple[AxisView, ...]
    params: Mapping[str, ParamView]
    member: str
    members: str
    title: str | None = None
    judged: bool = False
    notes: tuple[Note, ...] = ()
    curve: CurveData | None = None
    summary: VerdictSummary | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    notation: tuple = ()
    loss: "LossData | None" = None
    member_names: tuple[str, ...] | None = None
    influence: InfluenceTable | None = None
    warnings: tuple[str, ...] = ()
    relevance: tuple[Relevance, ...] = ()

    @property
    def flagged(self) -> dict[str, str]:
        """key -> flags, for the keys whose values are flagged."""
        out = {k: p.flags for k, p in self.params.items() if p.flags}
        if self.frame.n_rows == 0:
            out = {k: "no values" for k in self.params}
        return out
