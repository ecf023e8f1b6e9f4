"""Model families: one record per kind of GP model, saying where its parts and members live.

Each :class:`ModelFamily` says how to recognize a model of its family, which
module holds its covariance and mean (``owner``), which kernel's batch shape
counts its members, what a member is called, and whether its members are MAP
fits (``prior_pull`` applies) or MCMC samples. Adding a family is one record in
:data:`FAMILIES` (checked in order, most specific first). Everything else in gpviz
asks :func:`family_of` instead of testing class names.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable

import torch
from botorch.models.transforms.input import Normalize
from botorch.models.transforms.outcome import Standardize
from gpytorch.kernels import Kernel
from gpytorch.mlls import MarginalLogLikelihood

from gpviz import hooks
from gpviz.errors import UnsupportedError

SPACE_STANDARDIZED = "standardized outputs"
SPACE_NORMALIZED = "normalized inputs"


def unwrap_model(obj) -> torch.nn.Module:
    """The model inside a marginal log likelihood, or the object itself."""
    if isinstance(obj, MarginalLogLikelihood):
        return obj.model
    return obj


def _loaded_instance(obj, module: str, *names: str) -> bool:
    """``isinstance(obj, module.name)`` for any of ``names``, without importing ``module``.

    BoTorch's fully Bayesian models import JAX when their module is imported; an
    object can only be an instance of a class whose module is already loaded, so
    an unloaded module answers False at no cost.
    """
    mod = sys.modules.get(module)
    return mod is not None and any(isinstance(obj, getattr(mod, n)) for n in names if hasattr(mod, n))


def _self(model: torch.nn.Module) -> torch.nn.Module:
    return model


# GPyTorch/BoTorch models' submodules are read as Any: mypy reads ``Module.__getattr__`` as
# ``Tensor | Module`` and cannot tell a submodule from a tensor.
def _inner_model(model: Any) -> torch.nn.Module:
    """An approximate GP's inner GPyTorch model (BoTorch's ``ApproximateGPyTorchModel.model``)."""
    return model.model


def _models_of(model: Any) -> torch.nn.ModuleList:
    """A model list's models (``ModelListGP.models``)."""
    return model.models


def _first_covar(model: Any) -> Kernel:
    """A higher-order GP's first kernel (``HigherOrderGP.covar_modules[0]``)."""
    return model.covar_modules[0]


def _covar_x(model: Any) -> Kernel:
    """A latent Kronecker GP's kernel over the inputs (``LatentKroneckerGP.covar_module_X``)."""
    return model.covar_module_X


def _has_kernel(model) -> bool:
    return isinstance(getattr(model, "covar_module", None), Kernel)


def _is_model_list(model) -> bool:
    models = getattr(model, "models", None)
    return isinstance(models, torch.nn.ModuleList) and len(models) > 0 and not _has_kernel(model)


def _is_approximate(model) -> bool:
    inner = getattr(model, "model", None)
    return (isinstance(inner, torch.nn.Module) and _has_kernel(inner) and hasattr(inner, "variational_strategy")
            and not _has_kernel(model))


def _is_higher_order(model) -> bool:
    mods = getattr(model, "covar_modules", None)
    return isinstance(mods, torch.nn.ModuleList) and len(mods) > 0 and isinstance(mods[0], Kernel)


def _is_latent_kronecker(model) -> bool:
    """BoTorch's LatentKroneckerGP: ``covar_module_X(x) ⊗ covar_module_T(t)`` over the n x t grid, no ``covar_module``."""
    return (not _has_kernel(model) and isinstance(getattr(model, "covar_module_X", None), Kernel)
            and isinstance(getattr(model, "covar_module_T", None), Kernel))


def _holds_mcmc_samples(model) -> bool:
    return (_loaded_instance(model, "botorch.models.fully_bayesian", "AbstractFullyBayesianSingleTaskGP")
            or _loaded_instance(model, "botorch.models.fully_bayesian_multitask", "SaasFullyBayesianMultiTaskGP"))


def _is_ensemble(model) -> bool:
    return _has_kernel(model) and _loaded_instance(model, "botorch.models.ensemble", "EnsembleModel")


def _outputs_or_members(model) -> str:
    return "outputs" if hooks.num_outputs(model) > 1 else "members"


@dataclass(frozen=True)
class ModelFamily:
    """How gpviz finds the parts of one family of models.

    Attributes:
        name: Short name (``"exact"``, ``"model list"``, ...).
        matches: Whether a model belongs to the family.
        owner: The module that holds ``covar_module`` and ``mean_module``
            (the inner model of an approximate GP).
        covar_path: Path of that module from the model (``""`` or ``"model"``).
        members: What a batch member of such a model is, plural ("MCMC samples").
        fully_bayesian: Members are MCMC samples, not MAP fits: no prior pull
            (and BoTorch's ``.train()`` drops the samples of such a model).
        exact: An exact GP with training data: ``prior_pull`` can judge it.
        holds_models: Its members are whole models (``model.models``), each of its own family.
        batch_covar: The kernel whose batch shape counts the members, where it is not the owner's
            ``covar_module`` (a higher-order GP's first ``covar_modules``, a latent Kronecker GP's ``covar_module_X``).
        pull_refusal: Why ``prior_pull`` cannot judge such a model (``""``: it can, as far as the family goes).
    """

    name: str
    matches: Callable[[torch.nn.Module], bool]
    owner: Callable[[torch.nn.Module], torch.nn.Module] = _self
    covar_path: str = ""
    members: Callable[[torch.nn.Module], str] = _outputs_or_members
    fully_bayesian: bool = False
    exact: bool = True
    holds_models: bool = False
    batch_covar: Callable[[torch.nn.Module], Kernel] | None = None
    pull_refusal: str = ""

    def batch_kernel(self, model) -> Kernel | None:
        """The kernel whose batch shape counts the members."""
        if self.batch_covar is not None:
            return self.batch_covar(model)
        covar = getattr(self.owner(model), "covar_module", None)
        return covar if isinstance(covar, Kernel) else None


MODEL_LIST = ModelFamily("model list", _is_model_list, members=lambda m: "members", exact=True, holds_models=True)
APPROXIMATE = ModelFamily("approximate", _is_approximate, owner=_inner_model, covar_path="model", exact=False)
HIGHER_ORDER = ModelFamily("higher-order", _is_higher_order, batch_covar=_first_covar)
# its likelihood runs on the Kronecker-structured grid with missing entries: the first derivatives
# agree with finite differences, the curvature did not (-0.33 vs 0.15 per datum)
LATENT_KRONECKER = ModelFamily(
    "latent Kronecker", _is_latent_kronecker, exact=False, batch_covar=_covar_x,
    pull_refusal="the curvature of its Kronecker-structured likelihood is not computed exactly")
FULLY_BAYESIAN = ModelFamily("fully Bayesian", lambda m: _has_kernel(m) and _holds_mcmc_samples(m),
                             members=lambda m: "MCMC samples", fully_bayesian=True, exact=False)
ENSEMBLE = ModelFamily("ensemble", _is_ensemble, members=lambda m: "ensemble members")
EXACT = ModelFamily("exact", _has_kernel)

#: Checked in order: the first family whose ``matches`` is true describes the model.
FAMILIES: tuple[ModelFamily, ...] = (MODEL_LIST, APPROXIMATE, HIGHER_ORDER, LATENT_KRONECKER, FULLY_BAYESIAN,
                                      ENSEMBLE, EXACT)


def family_of(model) -> ModelFamily | None:
    """The family of ``model`` (an MLL is unwrapped), or None for anything that is not a GP gpviz knows."""
    model = unwrap_model(model)
    if not isinstance(model, torch.nn.Module) or isinstance(model, Kernel):
        return None
    for fam in FAMILIES:
        if fam.matches(model):
            if fam.holds_models and not all(family_of(m) is not None for m in _models_of(model)):
                return None
            return fam
    return None


def is_gp_model(obj) -> bool:
    """Whether :func:`gpviz.model_expr` can describe ``obj`` (a GP model of a known family, or an MLL of one)."""
    return family_of(obj) is not None


def sub_models(model) -> list[torch.nn.Module]:
    """The models a model list holds, or ``[model]``."""
    model = unwrap_model(model)
    fam = family_of(model)
    return list(_models_of(model)) if fam is not None and fam.holds_models else [model]


def is_fully_bayesian(model) -> bool:
    """Whether any part of ``model`` holds MCMC samples instead of a MAP fit."""
    return any(getattr(family_of(m), "fully_bayesian", False) for m in sub_models(model))


def model_batch_shape(model: torch.nn.Module) -> torch.Size:
    """Batch members of a model: the covariance module's batch shape (folds, outputs, MCMC samples).

    For a model list, the broadcast of its sub-models' batch shapes.

    Raises:
        UnsupportedError: if the sub-models of a list have batch shapes that do not broadcast.
    """
    model = unwrap_model(model)
    fam = family_of(model)
    if fam is not None and fam.holds_models:
        shapes = [model_batch_shape(m) for m in _models_of(model)]
        try:
            return torch.broadcast_shapes(*shapes)
        except RuntimeError:
            raise UnsupportedError(
                f"the sub-models of {type(model).__name__} have batch shapes {[list(s) for s in shapes]}, "
                "which do not broadcast to one set of members") from None
    covar = fam.batch_kernel(model) if fam is not None else None
    bs = getattr(covar, "batch_shape", None)
    return bs if isinstance(bs, torch.Size) else torch.Size()


def num_inputs(model: torch.nn.Module) -> int | None:
    """Input dimension from the model's training inputs (after input transforms)."""
    inputs = getattr(model, "train_inputs", None)
    if inputs:
        return int(inputs[0].shape[-1])
    if family_of(model) is APPROXIMATE:
        strategy = getattr(_inner_model(model), "variational_strategy", None)
        points = getattr(strategy, "inducing_points", None)
        if points is None:  # multi-output: IndependentMultitaskVariationalStrategy wraps the one with points
            base = getattr(strategy, "base_variational_strategy", None)
            points = getattr(base, "inducing_points", None)
        if isinstance(points, torch.Tensor):
            return int(points.shape[-1])
    return None


def output_space(model) -> str:
    """Where noise, outputscale and mean live: "standardized outputs" with a Standardize transform."""
    ot = getattr(model, "outcome_transform", None)
    if ot is None:
        return "outputs"
    if type(ot) is Standardize:
        return SPACE_STANDARDIZED
    if isinstance(ot, Standardize):  # StratifiedStandardize and other subclasses
        return f"{SPACE_STANDARDIZED} ({type(ot).__name__})"
    return f"transformed outputs ({type(ot).__name__})"


def input_space(model) -> str:
    """Where lengthscales live: "normalized inputs" with a Normalize input transform."""
    it = getattr(model, "input_transform", None)
    if isinstance(it, Normalize):
        return SPACE_NORMALIZED
    if it is not None:
        return f"transformed inputs ({type(it).__name__})"
    return "inputs"


def member_label(model) -> str:
    """What the batch members of a model are: "MCMC samples", "outputs", "ensemble members" or "members"."""
    model = unwrap_model(model)
    fam = family_of(model)
    return fam.members(model) if fam is not None else "members"


def training_points(model) -> int | None:
    """The most training points of any exact (sub-)model, or None if some part has none or is not exact."""
    points = 0
    for sub in sub_models(model):
        fam = family_of(sub)
        inputs = getattr(sub, "train_inputs", None)
        if fam is None or not fam.exact or not inputs:
            return None
        points = max(points, int(inputs[0].shape[-2]))
    return points
