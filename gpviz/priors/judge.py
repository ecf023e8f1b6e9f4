"""When gpviz judges priors on its own: the cost rule, and verdicts for a model or a whole sweep.

Pages show verdicts by default when computing them is cheap; these functions
decide that and run the analysis, never raising (a page stands without verdicts).
The page layer receives their results; it never runs an analysis itself.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gpviz.errors import CacheWarning, VerdictWarning
from gpviz.models.families import is_fully_bayesian, training_points
from gpviz.priors.pull import expression_pull
from gpviz.priors.sweep_pull import sweep_prior_pull
from gpviz.priors.stories import break_free_sentences, key_features, key_stories
from gpviz.priors.verdicts import key_verdicts, size_bands, verdict_table
from gpviz.values.columns import SIZE

#: Verdicts are computed by default only below these sizes (prior_pull's curvature costs a backward pass per
#: element through the Cholesky: ~1 s at 200 points x 8 elements, ~13 s at 1000 x 12); above, none are drawn.
PULL_MAX_POINTS = 500
PULL_MAX_ELEMENTS = 400  # parameter elements x batch members


def pull_cost(expr) -> tuple[int, int] | None:
    """(training points, parameter elements x members) of a model expression, or None if prior_pull cannot judge it.

    Fully Bayesian models are never judged: their MCMC samples are not MAP fits, and
    BoTorch's ``.train()`` on them DROPS the samples (covar_module becomes None),
    which prior_pull's train()/eval() round trip would trigger.
    """
    model = expr.module
    if is_fully_bayesian(model):
        return None
    points = training_points(model)
    if points is None:
        return None
    members = int(expr.batch_shape.numel())
    return points, len(expr.keys) * members


class ModelVerdicts(dict):
    """key -> verdict (a plain dict to read), and ``note``: why there are none when the analysis failed.

    Attributes:
        note: One line for the page ("" when verdicts were computed, or not asked for).
    """

    def __init__(self, verdicts=(), note: str = ""):
        super().__init__(verdicts)
        self.note = note


def model_verdicts(expr, force: bool = False) -> ModelVerdicts:
    """:func:`key_verdicts` of ``prior_pull`` on the model behind ``expr``, or none.

    Never raises. A model prior_pull does not apply to (a kernel alone, no training
    data, a fully Bayesian model) gets no verdicts, and so does a model above
    :data:`PULL_MAX_POINTS` / :data:`PULL_MAX_ELEMENTS` unless ``force``. When
    ``prior_pull`` fails on a model it should judge, the result is empty with a ``note``
    saying why (the page shows it) and a :class:`~gpviz.errors.VerdictWarning`: never a
    silent omission.
    """
    cost = pull_cost(expr)
    if cost is None or (not force and (cost[0] > PULL_MAX_POINTS or cost[1] > PULL_MAX_ELEMENTS)):
        return ModelVerdicts()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ModelVerdicts(key_verdicts(expression_pull(expr)))  # the page's expression: no second walk
    except Exception as exc:  # noqa: BLE001 - verdicts are an extra: the figure is drawn without them, and says so
        why = f"{type(exc).__name__}: {exc}"
    warnings.warn(f"gpviz: prior_pull failed on {type(expr.module).__name__} ({why}); the page shows no verdicts",
                  VerdictWarning, stacklevel=2)
    return ModelVerdicts(note=f"Verdicts not computed: prior_pull failed ({why}).")


@dataclass(frozen=True, eq=False)
class SweepJudgement:
    """The verdicts of a whole sweep, ready for its pages.

    Attributes:
        pull: :func:`sweep_prior_pull` rows (every fold of the repeats judged), or None.
        table: :func:`~gpviz.priors.verdicts.verdict_table` of the pull, or None.
        bands: key -> one :class:`~gpviz.priors.verdicts.BandCount` per size (the tints).
        sentences: parameter group -> its break-free sentence.
        verdicts: key -> one verdict (:func:`key_verdicts` by size).
        repeats: Repeats judged per size (0 when not judged).
        note: One line for the page: what was judged, or why nothing was.
    """

    pull: pd.DataFrame | None
    table: pd.DataFrame | None
    bands: dict = field(default_factory=dict)
    sentences: dict = field(default_factory=dict)
    verdicts: dict = field(default_factory=dict)
    repeats: int = 0
    note: str = ""

    @property
    def judged(self) -> bool:
        """Whether verdicts were computed."""
        return self.pull is not None


#: The verdict rule's version: kept verdicts of another version are computed again.
VERDICT_RULE = 3  # 2: full-Hessian precision share in log θ and the escape probe (issue 24); 3: "never moved"


def pull_name(sweep, repeats: int) -> str:
    """The name a sweep's judged verdicts are kept under in its cache: what was judged, by content.

    The cache's namespace already fixes the data, the model and the fit; this adds the cells
    (seed, sizes, order, mode, every fitted value), the repeats judged and :data:`VERDICT_RULE`.
    """
    h = hashlib.sha256(json.dumps([VERDICT_RULE, int(repeats), int(sweep.seed), [int(z) for z in sweep.sizes],
                                   sweep.order, sweep.mode, [str(c) for c in sweep.parameters.columns]]).encode())
    h.update(np.ascontiguousarray(sweep.parameters.to_numpy(dtype=np.float64)).tobytes())
    return f"r{int(repeats)}-{h.hexdigest()[:16]}"


def kept_pull(sweep, repeats: int) -> pd.DataFrame | None:
    """The prior_pull rows of ``repeats`` repeats judged before: on the sweep, else in its cache (then kept on it)."""
    pull = sweep.pulls.get(repeats)
    if pull is None and sweep.cache is not None:
        pull = sweep.cache.load_pull(pull_name(sweep, repeats))
        if pull is not None:
            sweep.pulls[repeats] = pull
    return pull


def keep_pull(sweep, repeats: int, pull: pd.DataFrame) -> None:
    """Keeps judged rows on the sweep and, when it ran with a cache, beside its cells (a failed write: a warning)."""
    sweep.pulls[repeats] = pull
    if sweep.cache is not None:
        try:
            sweep.cache.store_pull(pull_name(sweep, repeats), pull)
        except OSError as exc:
            warnings.warn(f"gpviz: the sweep's verdicts could not be kept in its cache ({exc})", CacheWarning,
                          stacklevel=3)


def sweep_verdicts(sweep, expr, verdicts: bool | None = None, repeats: int | None = None, *, workers: int = 1,
                   executor=None) -> SweepJudgement:
    """Verdicts of every fold of every repeat of a sweep (by default), for its pages.

    Judged once per sweep and repeats: the rows are kept on the sweep (``Sweep.pulls``) and, for a sweep
    run with ``cache_dir``, beside its cells, so later renders and comparisons, and the same sweep read
    back from its cache, reuse them. Computed by default: judging every fold costs about 1-2% of the sweep's fit time
    on small models and under 20% on a 24-input model at n = 80 (``scripts/bench_priors.py``
    prints the ratio). Never raises: a failing analysis gives a judgement without
    verdicts whose note says why (and a :class:`~gpviz.errors.VerdictWarning`).

    Args:
        sweep: A :class:`~gpviz.sweep.result.Sweep`.
        expr: Its expression (the feature names the sentences use).
        verdicts: ``None`` or ``True``: judge; ``False``: skip (the note says so).
        repeats: Repeats per size to judge (``None``: all).
        workers: Worker processes that judge (1: this process).
        executor: A ``concurrent.futures.Executor`` or ``dask.distributed.Client`` that judges
            (instead of ``workers``).
    """
    if verdicts is False:
        return SweepJudgement(None, None, note="Verdicts not computed: render(verdicts=False) was asked for.")
    n_rep = sweep.repeats if repeats is None else min(int(repeats), sweep.repeats)
    if n_rep <= 0:
        return SweepJudgement(None, None, note="Verdicts not computed: 0 repeats were asked for.")
    try:
        pull = kept_pull(sweep, n_rep)
        if pull is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pull = sweep_prior_pull(sweep, repeats=n_rep, workers=workers, executor=executor)
            keep_pull(sweep, n_rep, pull)
    except Exception as exc:  # noqa: BLE001 - the page stands without verdicts
        warnings.warn(f"gpviz: prior_pull failed on the sweep ({type(exc).__name__}: {exc}); the page shows no "
                      f"verdicts", VerdictWarning, stacklevel=3)
        return SweepJudgement(None, None, note=f"Verdicts not computed: prior_pull failed "
                                               f"({type(exc).__name__}: {exc}).")
    table = verdict_table(pull)
    stories = key_stories(table, key_features(expr))
    every = "every repeat" if n_rep == sweep.repeats else f"the first {n_rep} of {sweep.repeats} repeats"
    note = (f"gpviz.prior_pull judged every fold of {every} at each size ({len(pull)} parameter elements x folds): "
            f"a size band is tinted by the share of its folds held at the prior's mode; hover a band label for "
            f"the counts.")
    return SweepJudgement(pull, table, size_bands(table, sweep.sizes), break_free_sentences(stories),
                          key_verdicts(pull, by=SIZE), n_rep, note)
