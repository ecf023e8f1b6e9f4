"""Whole-model expressions: covariance, noise and mean sections of a GPyTorch/BoTorch model."""

from __future__ import annotations

import torch
from gpytorch.kernels import Kernel
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood, GaussianLikelihood
from gpytorch.means import ConstantMean, LinearMean, Mean, MultitaskMean, ZeroMean
from gpytorch.mlls import MarginalLogLikelihood

from gpviz.errors import InputError
from gpviz.expr import Call, Const, Node, Param, Product, Section, Sum, Symbol, Vector, simplify
from gpviz.keys import join_path, make_key, param_info
from gpviz.walk import Expr, Walker, root_features

SPACE_STANDARDIZED = "standardized outputs"
SPACE_NORMALIZED = "normalized inputs"


def unwrap_model(obj) -> torch.nn.Module:
    """The model inside a marginal log likelihood, or the object itself."""
    if isinstance(obj, MarginalLogLikelihood):
        return obj.model
    return obj


def model_batch_shape(model: torch.nn.Module) -> torch.Size:
    """Batch members of a model: the covariance module's batch shape (folds, outputs, MCMC samples)."""
    covar = getattr(model, "covar_module", None)
    bs = getattr(covar, "batch_shape", None)
    return bs if isinstance(bs, torch.Size) else torch.Size()


def num_inputs(model: torch.nn.Module) -> int | None:
    """Input dimension from the model's training inputs (after input transforms)."""
    inputs = getattr(model, "train_inputs", None)
    if inputs:
        return int(inputs[0].shape[-1])
    return None


def output_space(model) -> str:
    """Where noise, outputscale and mean live: "standardized outputs" with a Standardize transform."""
    ot = getattr(model, "outcome_transform", None)
    if ot is not None and type(ot).__name__ in ("Standardize", "ChainedOutcomeTransform", "Log", "Power"):
        return SPACE_STANDARDIZED if type(ot).__name__ == "Standardize" else f"transformed outputs ({type(ot).__name__})"
    return "outputs"


def input_space(model) -> str:
    """Where lengthscales live: "normalized inputs" with a Normalize input transform."""
    it = getattr(model, "input_transform", None)
    if it is not None and type(it).__name__ == "Normalize":
        return SPACE_NORMALIZED
    if it is not None:
        return f"transformed inputs ({type(it).__name__})"
    return "inputs"


def _mean_tree(mean: Mean, path: str, walker: Walker, task_name: str | None) -> Node:
    if isinstance(mean, ConstantMean):
        (c,) = walker.params(mean, path, "constant", "mean")
        return c
    if isinstance(mean, ZeroMean):
        return Const(0.0)
    if isinstance(mean, LinearMean):
        ws = walker.params(mean, path, "weights", "weight")
        feats = walker.features_for(len(ws))
        terms = [Product((w, Symbol(f"x[{f.name!r}]"))) for w, f in zip(ws, feats)]
        if mean.bias is not None:
            terms.append(walker.params(mean, path, "bias", "mean")[0])
        return Sum(tuple(terms))
    if isinstance(mean, MultitaskMean):
        parts = tuple(_mean_tree(m, join_path(path, f"base_means.{i}"), walker, None)
                      for i, m in enumerate(mean.base_means))
        return Call("per_task", (Vector(parts), Symbol(f"x[{task_name!r}]" if task_name else "task")))
    leaves: list[Param] = []
    for raw_name, p in mean._parameters.items():
        if p is not None:
            leaves.extend(walker.params(mean, path, raw_name))
    return Call(type(mean).__name__, tuple(leaves))


def _noise_tree(likelihood, path: str, walker: Walker) -> Node:
    if isinstance(likelihood, FixedNoiseGaussianLikelihood):
        fixed = Symbol("train_Yvar[i]")
        second = getattr(likelihood, "second_noise_covar", None)
        if second is not None:
            (n,) = walker.params(second, join_path(path, "second_noise_covar"), "noise", "noise")
            return Sum((fixed, n))
        return fixed
    if isinstance(likelihood, GaussianLikelihood):
        noise_covar = likelihood.noise_covar
        try:
            leaves = walker.params(noise_covar, join_path(path, "noise_covar"), "noise", "noise")
        except Exception:  # heteroskedastic noise models have no raw_noise
            return Symbol(f"{type(noise_covar).__name__}(x)")
        return leaves[0] if len(leaves) == 1 else Vector(leaves)
    return Symbol(type(likelihood).__name__)


class ModelExpr(Expr):
    """The expression of a whole model: covariance, noise and mean sections.

    Attributes:
        sections: ``Section`` nodes in print order (covariance, noise, mean).
        output_space: Units of noise, outputscale and mean.
        input_space: Units the lengthscales are measured in.
    """

    def __init__(self, model, sections: tuple[Section, ...], batch_shape: torch.Size, modules: dict,
                 features, covar_path: str):
        self.module = model
        self.sections = sections
        self.tree = Vector(sections)
        self.batch_shape = batch_shape
        self.modules = modules
        self.features = features
        self.output_space = output_space(model)
        self.input_space = input_space(model)
        self._covar_path = covar_path

    def covariance_tree(self) -> Node:
        return self.sections[0].body

    def text(self, member: int = 0, width: int = 88) -> str:
        from gpviz.expr import fmt_number, to_text

        vals = self.values(member) if self.keys else {}
        n = int(torch.Size(self.batch_shape).numel())
        head = f"{type(self.module).__name__}: Gaussian process"
        if n > 1:
            head += f" (batch of {n} members; values of member {member})"
        lines = [head]
        for sec in self.sections:
            lines.append(f"{sec.title}{' (' + sec.note + ')' if sec.note else ''}:")
            body = to_text(sec.body, lambda p: fmt_number(vals[p.key]), width - 4)
            lines.extend("    " + line for line in body.splitlines())
        return "\n".join(lines)


def model_expr(model, feature_names=None, *, strict: bool = False, tasks=None) -> ModelExpr:
    """Builds the expression of a GP model: covariance kernel, noise and mean.

    Args:
        model: A BoTorch model or GPyTorch ``ExactGP`` (or an MLL wrapping one).
        feature_names: Names of the input columns (list or a DataFrame).
        strict: Re-raise kernel handler errors.
        tasks: Display names of tasks (multi-task models).

    Returns:
        A :class:`ModelExpr`; ``.evaluate(x1, x2)`` computes the covariance.

    Raises:
        InputError: if ``model`` has no ``covar_module`` or names have the wrong length.
    """
    model = unwrap_model(model)
    if isinstance(model, Kernel) or not isinstance(model, torch.nn.Module) or not isinstance(
            getattr(model, "covar_module", None), Kernel):
        raise InputError(
            f"model_expr expects a GP model with a covar_module (e.g. botorch SingleTaskGP), got "
            f"{type(model).__module__}.{type(model).__name__}; for a kernel use gpviz.kernel_expr")
    features = root_features(feature_names, num_inputs(model), type(model).__name__)
    batch = model_batch_shape(model)
    task_feature = getattr(model, "_task_feature", None)
    task_name = None
    if task_feature is not None and features is not None:
        task_name = features[int(task_feature)].name
    walker = Walker(features, batch, strict=strict, tasks=tuple(tasks or ()))
    covar = simplify(walker(model.covar_module, "covar_module"))
    sections = [Section("Covariance kernel", covar, input_space(model))]
    likelihood = getattr(model, "likelihood", None)
    if likelihood is not None:
        sections.append(Section("When comparing a point to itself, add noise",
                                simplify(_noise_tree(likelihood, "likelihood", walker)), output_space(model)))
    mean = getattr(model, "mean_module", None)
    if isinstance(mean, Mean):
        sections.append(Section("Mean", simplify(_mean_tree(mean, "mean_module", walker, task_name)),
                                output_space(model)))
    return ModelExpr(model, tuple(sections), batch, walker.modules, features, "covar_module")


__all__ = ["model_expr", "ModelExpr", "unwrap_model", "model_batch_shape", "param_info", "make_key"]
