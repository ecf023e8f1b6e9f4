"""When gpviz judges priors on its own: the cost rule, and verdicts for a model or a whole sweep.

Pages show verdicts by default when computing them is cheap; these functions
decide that and run the analysis, never raising (a page stands without verdicts).
The page layer receives their results; it never runs an analysis itself.
"""

from __future__ import annotations

import warnings

from gpviz.errors import GpvizWarning
from gpviz.models.families import is_fully_bayesian, training_points
from gpviz.priors.pull import prior_pull, sweep_prior_pull
from gpviz.priors.verdicts import key_verdicts
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
    model = getattr(expr, "module", None)
    if model is None or is_fully_bayesian(model):
        return None
    points = training_points(model)
    if points is None:
        return None
    members = int(expr.batch_shape.numel()) if len(getattr(expr, "batch_shape", ())) else 1
    return points, len(expr.keys) * members


def model_verdicts(expr, force: bool = False) -> dict[str, str]:
    """:func:`key_verdicts` of ``prior_pull`` on the model behind ``expr``, or ``{}``.

    Never raises: a model prior_pull cannot analyse (a kernel alone, no training
    data, an approximate GP, any error) gets no verdicts, and so does a model above
    :data:`PULL_MAX_POINTS` / :data:`PULL_MAX_ELEMENTS` unless ``force``.
    """
    cost = pull_cost(expr)
    if cost is None or (not force and (cost[0] > PULL_MAX_POINTS or cost[1] > PULL_MAX_ELEMENTS)):
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return key_verdicts(prior_pull(expr.module))
    except Exception:  # noqa: BLE001 - verdicts are an extra: the figure is drawn without them
        return {}


def sweep_verdicts(sweep, expr, verdicts: bool | None = None, repeats: int | None = 1) -> dict[str, str]:
    """One verdict per key of a sweep, from prior_pull of the first ``repeats`` repeats at every size.

    A key is held when its prior holds it in at least half the folds of some size
    (:func:`key_verdicts` with ``by="size"``).

    Returns ``{}`` when ``verdicts`` is False, the sweep is too big for the automatic
    analysis (``verdicts=None``), or the analysis fails (with a GpvizWarning).
    """
    biggest = max(sweep.sizes) if sweep.sizes else 0
    # one LOO batch per size: `biggest` members of `biggest - 1` points (0.06 s for 14 x 5 elements here)
    small = biggest <= PULL_MAX_POINTS and biggest * len(expr.keys) <= 5 * PULL_MAX_ELEMENTS
    if verdicts is False or (verdicts is None and not small):
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pull = sweep_prior_pull(sweep, repeats=repeats)
    except Exception as exc:  # the page stands without verdicts
        warnings.warn(f"gpviz: prior_pull failed on the sweep ({type(exc).__name__}: {exc}); the page shows no "
                      f"held-by-prior verdicts", GpvizWarning, stacklevel=3)
        return {}
    return key_verdicts(pull, by=SIZE)
