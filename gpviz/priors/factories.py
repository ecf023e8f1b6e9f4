"""Model factories with other priors: two sweeps that differ in their priors and nothing else."""

from __future__ import annotations

import copy
import copyreg
import inspect
from typing import Any

import torch
from gpytorch.kernels import Kernel, ScaleKernel
from gpytorch.priors import Prior

from gpviz import hooks
from gpviz.errors import InputError, UnsupportedError
from gpviz.models.sources import source_of
from gpviz.values.prior_info import prior_params


def _check_prior(role: str, prior) -> None:
    if prior is not None and not isinstance(prior, Prior):
        raise InputError(f"with_priors({role}=...) expects a gpytorch.priors.Prior (e.g. GammaPrior(3.0, 6.0)) or "
                         f"None, got {type(prior).__module__}.{type(prior).__name__}: {prior!r}")


def _kernels(kernel: Kernel):
    """The kernel and all its descendant kernels, each once."""
    seen = set()
    for m in kernel.modules():
        if isinstance(m, Kernel) and id(m) not in seen:
            seen.add(id(m))
            yield m


def _install(module: Any, name: str, prior: Prior, closure, setting, where: str) -> None:
    """Registers a copy of ``prior`` (in the parameter's dtype) on ``module`` and checks it can score the value."""
    raw = getattr(module, f"raw_{name}")
    p = copy.deepcopy(prior).to(device=raw.device, dtype=raw.dtype)
    try:
        with torch.no_grad():
            lp = p.log_prob(closure(module))
    except Exception as exc:
        raise InputError(f"the {name} prior {type(prior).__name__}({prior_params(prior)}) cannot score {where}."
                         f"{name} of shape {list(closure(module).shape)}: {type(exc).__name__}: {exc}") from exc
    if lp.dim() > closure(module).dim() or not torch.isfinite(lp).any():
        raise InputError(f"the {name} prior {type(prior).__name__}({prior_params(prior)}) gives log-probability "
                         f"{lp.reshape(-1)[:4].tolist()} at {where}.{name} = "
                         f"{closure(module).reshape(-1)[:4].tolist()}: expected a prior over positive values "
                         f"with batch shape broadcastable to the parameter's")
    module.register_prior(f"{name}_prior", p, closure, setting)


def _lengthscale_closure(m):
    return m.lengthscale


def _lengthscale_setting(m, v):
    hooks.set_lengthscale(m, v)


def _outputscale_closure(m):
    return m.outputscale


def _outputscale_setting(m, v):
    hooks.set_outputscale(m, v)


def _noise_closure(m):
    return m.noise


def _noise_setting(m, v):
    hooks.set_noise(m, v)


def apply_priors(model, lengthscale: Prior | None = None, outputscale: Prior | None = None,
                 noise: Prior | None = None):
    """Replaces the named priors of ``model`` in place and returns it.

    Args:
        model: A BoTorch/GPyTorch GP with a ``covar_module``.
        lengthscale: Prior for every kernel lengthscale in ``covar_module``.
        outputscale: Prior for every ``ScaleKernel`` outputscale in ``covar_module``.
        noise: Prior for the likelihood's learned noise.

    Raises:
        InputError: for a prior that is not a GPyTorch prior or cannot score the parameter.
        UnsupportedError: if the model has no parameter of that kind (names the model's kernel).
    """
    for role, p in (("lengthscale", lengthscale), ("outputscale", outputscale), ("noise", noise)):
        _check_prior(role, p)
    covar = getattr(model, "covar_module", None)
    if not isinstance(covar, Kernel):
        raise UnsupportedError(f"with_priors needs a model with a gpytorch covar_module, got {type(model).__name__}")
    names = {id(m): n for n, m in model.named_modules()}
    if lengthscale is not None:
        targets = [k for k in _kernels(covar) if getattr(k, "has_lengthscale", False)
                   and getattr(k, "raw_lengthscale", None) is not None]
        if not targets:
            raise UnsupportedError(f"with_priors(lengthscale=...): {type(covar).__name__} in {type(model).__name__} "
                                   f"has no kernel with a lengthscale")
        for k in targets:
            _install(k, "lengthscale", lengthscale, _lengthscale_closure, _lengthscale_setting, names.get(id(k), "?"))
    if outputscale is not None:
        targets = [k for k in _kernels(covar) if isinstance(k, ScaleKernel)]
        if not targets:
            raise UnsupportedError(
                f"with_priors(outputscale=...): the covar_module of {type(model).__name__} is a "
                f"{type(covar).__name__} with no ScaleKernel, so there is no outputscale to put a prior on "
                f"(BoTorch's default SingleTaskGP has none); pass covar_module=ScaleKernel(...) to the model")
        for k in targets:
            _install(k, "outputscale", outputscale, _outputscale_closure, _outputscale_setting, names.get(id(k), "?"))
    if noise is not None:
        noise_covar = getattr(getattr(model, "likelihood", None), "noise_covar", None)
        if noise_covar is None or getattr(noise_covar, "raw_noise", None) is None:
            raise UnsupportedError(
                f"with_priors(noise=...): the likelihood of {type(model).__name__} "
                f"({type(getattr(model, 'likelihood', None)).__name__}) has no learned noise (fixed noise?)")
        _install(noise_covar, "noise", noise, _noise_closure, _noise_setting, names.get(id(noise_covar), "?"))
    return model


def _call_factory(make_model, args: tuple, kwargs: dict):
    """Calls ``make_model``; ``train_X=`` / ``train_Y=`` keywords (how BoTorch's
    ``batch_cross_validation`` calls ``model_cls``) go in positionally when it does not name them so."""
    if not args and "train_X" in kwargs and "train_Y" in kwargs:
        try:
            inspect.signature(make_model).bind(**kwargs)
        except TypeError:  # e.g. `lambda X, Y: ...`
            rest = {k: v for k, v in kwargs.items() if k not in ("train_X", "train_Y")}
            return make_model(kwargs["train_X"], kwargs["train_Y"], **rest)
        except ValueError:  # no signature to read (a builtin): call as given
            pass
    return make_model(*args, **kwargs)


class PriorFactory(type):
    """The type of :func:`with_priors` factories: a factory is a class, and calling it builds a model.

    Being a class, a factory is accepted wherever BoTorch wants a model class, e.g.
    ``batch_cross_validation(model_cls=factory, ...)`` (which checks
    ``issubclass(model_cls, MultiTaskGP)`` and calls ``model_cls(train_X=..., train_Y=...)``);
    the call returns ``make_model``'s model (not an instance of the factory) with
    the factory's priors installed. A factory pickles (with ``pickle`` and
    ``cloudpickle``) whenever ``make_model`` does, so it travels to sweep workers.

    Attributes (of each factory):
        make_model: The wrapped factory.
        priors: role -> the prior that replaces the model's own (``lengthscale``, ``outputscale``, ``noise``).
        problem: For a factory made from a model source (an Ax ``Client``), the source's
            ``CVProblem`` (its completed trials ``X``, ``Y``, their trial indices, metric and MLL class),
            so that ``cv_sweep(factory)`` reads the experiment's data as ``cv_sweep(client)`` does;
            ``None`` for a factory made from a callable.
    """

    # set per factory by _make_factory (declared for type checkers)
    make_model: Any
    priors: dict
    problem: Any
    label: str

    def __call__(cls, *args, **kwargs):
        return apply_priors(_call_factory(cls.make_model, args, kwargs), **cls.priors)

    def describe(cls) -> str:
        """E.g. ``lengthscale ~ GammaPrior(concentration=1.125, rate=0.375)``."""
        return "; ".join(f"{role} ~ {type(p).__name__}({prior_params(p)})" for role, p in cls.priors.items())

    def __repr__(cls) -> str:
        return f"with_priors({cls.label}, {cls.describe()})"


def _make_factory(make_model, priors: dict, problem=None, label: str | None = None) -> PriorFactory:
    base = getattr(make_model, "__qualname__", type(make_model).__name__)
    name = getattr(make_model, "__name__", type(make_model).__name__)
    attrs = {"make_model": staticmethod(make_model), "priors": {k: v for k, v in priors.items() if v is not None},
             "problem": problem, "label": label or name,
             "__doc__": getattr(make_model, "__doc__", None), "__module__": __name__, "__wrapped__": make_model}
    cls = PriorFactory(f"with_priors[{name}]", (), attrs)
    # cv_sweep's cache tells sweeps apart by the factory's __qualname__: two factories
    # with different priors must not share cached cells
    cls.__qualname__ = f"{base}[with_priors: {cls.describe()}]"
    return cls


def _reduce_factory(cls):
    """Pickles a factory as the call that makes it (a class made at run time has no importable name)."""
    return _make_factory, (cls.make_model, dict(cls.priors), cls.problem, cls.label)


copyreg.pickle(PriorFactory, _reduce_factory)


def with_priors(make_model: Any, lengthscale: Prior | None = None, outputscale: Prior | None = None,
                noise: Prior | None = None, *, metric: str | None = None) -> PriorFactory:
    """A model factory whose models are ``make_model``'s, except for the named priors.

    Each built model gets its own copy of each prior (in the parameter's dtype);
    priors not named stay as ``make_model`` made them. Parameter values are not
    touched.

    Example::

        loose = gpviz.with_priors(lambda X, Y: SingleTaskGP(X, Y, covar_module=ScaleKernel(MaternKernel(
            ard_num_dims=X.shape[-1]))), lengthscale=GammaPrior(1.125, 0.375))
        model = loose(train_X, train_Y)

    ``make_model`` may also be an Ax ``Client`` (or ``GenerationStrategy`` / ``TorchAdapter``)
    with a fitted surrogate: the factory then builds the client's own model specification
    (the model class, kernel, likelihood and input transform Ax's surrogate specification
    builds, a ``Standardize`` outcome transform, as :func:`gpviz.ax.cv_problem`'s factory)
    with the named priors, and carries the experiment's completed trials, so that
    ``gpviz.cv_sweep(factory, sizes=..., order="trials")`` refits it on them as
    ``cv_sweep(client, ...)`` refits Ax's own priors::

        loose = gpviz.with_priors(client, lengthscale=GammaPrior(1.125, 0.375))
        sweeps = {"Ax's priors": gpviz.cv_sweep(client, sizes=[8, 12], order="trials"),
                  "loose": gpviz.cv_sweep(loose, sizes=[8, 12], order="trials")}
        gpviz.compare(sweeps)
        problem = loose.problem  # X, Y (after Ax's transforms), trial_indices, metric, mll_cls

    Args:
        make_model: A callable returning a GP model (``make_model(X, Y)`` for sweeps), or
            an Ax object with a fitted surrogate (see above).
        lengthscale: Prior for every lengthscale in the covariance module.
        outputscale: Prior for every ``ScaleKernel`` outputscale (an error on a model
            without one, e.g. BoTorch's default ``SingleTaskGP``).
        noise: Prior for the learned likelihood noise.
        metric: For an Ax object, the metric whose model is rebuilt (default: the
            surrogate's first); an error with a callable.

    Returns:
        A factory (a class of type :class:`PriorFactory`), callable like ``make_model``
        and accepted by BoTorch as a model class::

            from botorch.cross_validation import batch_cross_validation, gen_loo_cv_folds
            cv = batch_cross_validation(model_cls=loose, mll_cls=ExactMarginalLogLikelihood,
                                        cv_folds=gen_loo_cv_folds(train_X, train_Y))

    Raises:
        InputError: at once if a prior is not a ``gpytorch.priors.Prior``, ``make_model``
            is neither callable nor an object of a model source (an Ax Client), the Ax
            object has no fitted model or does not model ``metric``, or ``metric`` is given
            with a callable; when a model is built, if a prior cannot score its parameter.
        UnsupportedError: when a model is built without a parameter of the named kind.
    """
    for role, p in (("lengthscale", lengthscale), ("outputscale", outputscale), ("noise", noise)):
        _check_prior(role, p)
    if lengthscale is None and outputscale is None and noise is None:
        raise InputError("with_priors needs at least one of lengthscale=, outputscale=, noise= (got none)")
    priors = {"lengthscale": lengthscale, "outputscale": outputscale, "noise": noise}
    source = source_of(make_model)
    if source is not None:
        if source.cv_problem is None:
            raise InputError(f"with_priors cannot rebuild the model of a {source.name} object: its source gives "
                             f"no model factory")
        problem = source.cv_problem(make_model, metric)  # the client's own model specification and trials
        made = _make_factory(problem.make_model, priors, problem,
                             f"{source.name} surrogate of {problem.metric!r}")
        _first_model_check(made, problem)
        return made
    if metric is not None:
        raise InputError(f"with_priors(metric=...) names the metric of an Ax experiment, got metric={metric!r} "
                         f"with {type(make_model).__name__}")
    if not callable(make_model):
        raise InputError(f"with_priors expects a model factory (a callable returning a model) or an Ax Client "
                         f"with a fitted surrogate, got {type(make_model).__name__}")
    return _make_factory(make_model, priors)


def _first_model_check(factory: PriorFactory, problem) -> None:
    """Builds the factory's model once on all the trials, so a prior the model has no place for is said now."""
    factory(problem.X, problem.Y)
