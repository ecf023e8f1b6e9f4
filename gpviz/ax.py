"""Ax: the BoTorch models an Ax experiment fits, named and scaled from its search space.

Every Ax-specific line of gpviz lives in this module, and Ax is imported only
inside its functions: ``import gpviz`` works without Ax. It reads (never
changes) the objects Ax keeps:

* ``Client`` -> its ``GenerationStrategy`` (read through the few private Ax
  names below, :func:`_client_strategy` and friends: the Client has no public
  accessor) ->
  ``.adapter`` (a ``TorchAdapter`` once a BoTorch node has fitted) ->
  ``.generator`` (``BoTorchGenerator``) -> ``.surrogate`` -> ``.model``;
* the adapter's ``parameters`` (the model's input columns, in order) and its
  ``transforms`` (``Log``, ``OneHot``, ``ChoiceToNumericChoice``, ``UnitX``,
  ``StandardizeY``...), which say what each column and each output is.

What comes out is plain gpviz data: the BoTorch model, feature names, metric
names and a :class:`gpviz.values.units.DataUnits` record for ``units="original"``; and,
for :func:`gpviz.cv_sweep`, a :class:`CVProblem` (``make_model``, ``X``, ``Y``).

It is one module of about 700 lines on purpose: every Ax-specific line in one
place, so that an Ax upgrade is checked by reading one file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd
import torch

from gpviz import display, hooks
from gpviz.errors import InputError, UnsupportedError
from gpviz.models.expr import model_expr
from gpviz.models.sources import ModelSource, register_source
from gpviz.values.parameters import parameters
from gpviz.values.units import DataUnits, InputUnit, OutputUnit, with_data_units

#: One-hot columns Ax adds are named ``<parameter>_OH_PARAM_<i>`` (ax.adapter.transforms.one_hot).
OH_INFIX = "_OH_PARAM_"
AX_OUTPUT_SPACE = "outputs standardized by Ax"
AX_INPUT_SPACE = "inputs as Ax transforms them"


# -- the private Ax names gpviz reads (Ax 1.3 has no public accessor for these) ----------

def _client_strategy(client):
    """``Client._maybe_generation_strategy`` (``Client._generation_strategy`` raises when unset)."""
    return getattr(client, "_maybe_generation_strategy", None)


def _client_experiment(client):
    """``Client._maybe_experiment``."""
    return getattr(client, "_maybe_experiment", None)


def _experiment_name(experiment) -> str | None:
    """``Experiment._name`` (``Experiment.name`` raises when the experiment is unnamed)."""
    return getattr(experiment, "_name", None)


def _adapter_experiment(adapter):
    """``Adapter._experiment``: the experiment whose trials the adapter fitted on."""
    return getattr(adapter, "_experiment", None)


def is_ax_object(obj) -> bool:
    """Whether ``obj`` is an Ax object (decided from its class's module: Ax is not imported)."""
    module = getattr(type(obj), "__module__", "") or ""
    return module == "ax" or module.startswith("ax.")


@dataclass(frozen=True)
class AxModel:
    """The surrogate an Ax object holds, with what the experiment says about it.

    Attributes:
        model: The surrogate's current BoTorch model (a ``SingleTaskGP``, a
            ``ModelListGP`` with one model per metric...), the object Ax uses.
        feature_names: One name per input column of the model, in column order
            (``log10(lr)`` for a log-scaled parameter, ``optimizer=adam`` for a
            one-hot column, ``size (ordinal)`` for an ordinal-encoded choice).
        outputs: Metric names, in the order of the model's outputs.
        units: Per-column and per-output conversions back to the experiment's units.
        source: What the model was read from, for titles
            (e.g. ``"Ax Client 'tune' · node MBM · SingleTaskGP"``).
        adapter: The ``TorchAdapter`` (``None`` when given a bare generator or surrogate).
        surrogate: The Ax ``Surrogate``.
    """

    model: torch.nn.Module
    feature_names: tuple[str, ...]
    outputs: tuple[str, ...]
    units: DataUnits
    source: str
    adapter: object = field(default=None, repr=False)
    surrogate: object = field(default=None, repr=False)


# --------------------------------------------------------------------------- #
# From an Ax object to its surrogate                                          #
# --------------------------------------------------------------------------- #

def _kind(obj) -> str:
    """"client", "strategy", "adapter", "generator", "surrogate" or "" (Ax is imported: ``obj`` is an Ax object)."""
    from ax.adapter.base import Adapter
    from ax.generation_strategy.generation_strategy import GenerationStrategy
    from ax.generators.torch.botorch_modular.generator import BoTorchGenerator
    from ax.generators.torch.botorch_modular.surrogate import Surrogate

    client_cls: type | None
    try:
        from ax.api.client import Client as client_cls
    except ImportError:  # an Ax without the new API
        client_cls = None
    if client_cls is not None and isinstance(obj, client_cls):
        return "client"
    if isinstance(obj, GenerationStrategy):
        return "strategy"
    if isinstance(obj, Adapter):
        return "adapter"
    if isinstance(obj, BoTorchGenerator):
        return "generator"
    if isinstance(obj, Surrogate):
        return "surrogate"
    return ""


def _remaining(strategy, experiment) -> str:
    """How many more trials the strategy needs before a model-based node fits, as words."""
    from ax.generation_strategy.center_generation_node import CenterGenerationNode
    from ax.generation_strategy.transition_criterion import TrialBasedCriterion

    nodes = strategy.nodes_by_name
    node = strategy.current_node
    total, seen = 0, set()
    while node is not None and node.name not in seen and not _is_model_node(node):
        seen.add(node.name)
        if isinstance(node, CenterGenerationNode):
            total += 0 if node.trials_from_node else 1
            node = nodes.get(node.next_node_name)
            continue
        counts = [max(0, int(c.num_till_threshold(experiment=experiment, trials_from_node=node.trials_from_node)))
                  for c in node.transition_criteria if isinstance(c, TrialBasedCriterion)]
        total += max(counts, default=0)
        targets = [c.transition_to for c in node.transition_criteria if getattr(c, "transition_to", None)]
        node = nodes.get(targets[0]) if targets else None
    if node is None or not _is_model_node(node):
        return "its generation strategy has no BoTorch step to reach"
    return (f"about {total} more completed trial(s) before its node {node.name!r} fits one"
            if total else f"its node {node.name!r} fits one on the next get_next_trials "
                          "(or generation_strategy.fit(experiment))")


def _is_model_node(node) -> bool:
    """Whether a generation node fits a BoTorch model (its generator is Ax's BoTorch generator)."""
    for spec in getattr(node, "generator_specs", ()):
        enum = getattr(spec, "generator_enum", None)
        if enum is not None and "botorch" in str(getattr(enum, "value", enum)).lower():
            return True
    return False


def _no_model(what: str, strategy, experiment) -> InputError:
    detail = _remaining(strategy, experiment) if strategy is not None and experiment is not None else ""
    return InputError(f"{what} has no fitted BoTorch model yet" + (f": {detail}" if detail else "")
                      + "; gpviz draws the surrogate once Ax has fitted it")


def _strategy_of_client(client):
    strategy = _client_strategy(client)
    if strategy is None:
        n = len(getattr(_client_experiment(client), "trials", {}) or {})
        raise InputError(f"this Ax Client has no generation strategy yet ({n} trial(s)): Ax chooses one and fits "
                         "its first model after the initialization trials; call get_next_trials first")
    return strategy


def _adapter_of_strategy(strategy, what: str):
    from ax.adapter.torch import TorchAdapter

    try:
        experiment = strategy.experiment
    except Exception:  # GenerationStrategy.experiment raises before the strategy has seen one
        experiment = None
    adapter = strategy.adapter
    if not isinstance(adapter, TorchAdapter):
        raise _no_model(f"{what} (at node {strategy.current_node_name!r})", strategy, experiment)
    return adapter


def resolve(obj) -> AxModel:
    """The surrogate of an Ax ``Client``, ``GenerationStrategy``, ``TorchAdapter``, ``BoTorchGenerator`` or ``Surrogate``.

    Raises:
        InputError: before Ax has fitted a BoTorch model (the message says how many
            trials remain), or for an Ax object that holds no surrogate.
    """
    kind = _kind(obj)
    if not kind:
        raise InputError(f"gpviz reads the model of an Ax Client, GenerationStrategy, TorchAdapter, BoTorchGenerator "
                         f"or Surrogate, got {type(obj).__module__}.{type(obj).__name__}")
    adapter = surrogate = None
    parts = []
    if kind == "client":
        strategy = _strategy_of_client(obj)
        name = _experiment_name(_client_experiment(obj))
        parts.append(f"Ax Client {name!r}" if name else "Ax Client")
        adapter = _adapter_of_strategy(strategy, "this Ax Client")
        parts.append(f"node {strategy.current_node_name}")
    elif kind == "strategy":
        try:
            name = _experiment_name(obj.experiment)
        except Exception:  # GenerationStrategy.experiment raises before the strategy has seen one
            name = None
        parts.append(f"GenerationStrategy {obj.name!r}" + (f" of experiment {name!r}" if name else ""))
        adapter = _adapter_of_strategy(obj, f"GenerationStrategy {obj.name!r}")
        parts.append(f"node {obj.current_node_name}")
    elif kind == "adapter":
        from ax.adapter.torch import TorchAdapter

        if not isinstance(obj, TorchAdapter):
            raise InputError(f"a {type(obj).__name__} fits no BoTorch model (it serves a step such as Sobol); "
                             "pass the TorchAdapter of a BoTorch step, or the Client")
        adapter = obj
        parts.append(type(obj).__name__)
    generator = adapter.generator if adapter is not None else (obj if kind == "generator" else None)
    if generator is not None:
        try:
            surrogate = generator.surrogate
        except Exception:  # BoTorchGenerator.surrogate raises ModelError before the first fit
            surrogate = None
        if surrogate is None:
            raise InputError(f"the {type(generator).__name__} has no surrogate yet: Ax builds it on the first fit")
        if kind == "generator":
            parts.append(type(generator).__name__)
    if kind == "surrogate":
        surrogate = obj
        parts.append("Ax Surrogate")
    if surrogate is None:  # every kind above sets it or raises
        raise InputError(f"the Ax {type(obj).__name__} holds no Surrogate")
    try:
        model = surrogate.model
    except Exception:  # Surrogate.model raises ModelError before the first fit
        model = None
    if model is None:
        raise InputError("the Ax Surrogate has not been fitted yet (its BoTorch model is built on fit)")
    parts.append(type(model).__name__)
    outputs = tuple(str(o) for o in (getattr(surrogate, "outcomes", None) or ()))
    names, units = describe(model, adapter, surrogate, outputs)
    return AxModel(model=model, feature_names=names, outputs=outputs, units=units, source=" \u00b7 ".join(parts),
                   adapter=adapter, surrogate=surrogate)


# --------------------------------------------------------------------------- #
# Names and units from the adapter's transforms                               #
# --------------------------------------------------------------------------- #

def _transforms(adapter) -> list:
    return list(getattr(adapter, "transforms", {}).values()) if adapter is not None else []


def _columns(adapter, surrogate) -> list[str]:
    """Ax's names of the model's input columns, in order."""
    names = list(getattr(adapter, "parameters", None) or ())
    if not names and surrogate is not None:
        try:
            names = list(surrogate.training_data[0].feature_names)
        except Exception:  # a surrogate without datasets: the model's own x0, x1...
            names = []
    return names


def describe(model, adapter, surrogate, outputs: tuple[str, ...]) -> tuple[tuple[str, ...], DataUnits]:
    """Feature names and unit conversions of an Ax model's columns and outputs.

    Walks the adapter's transforms in order: a column's original name, whether it is
    one-hot / ordinal / log10 / logit encoded, and the factor UnitX scaled it by.

    Returns:
        ``(feature_names, DataUnits)``; without an adapter (a bare generator or
        surrogate) the names are Ax's column names and nothing converts.
    """
    from ax.adapter.transforms.choice_encode import ChoiceToNumericChoice, OrderedChoiceToIntegerRange
    from ax.adapter.transforms.log import Log
    from ax.adapter.transforms.logit import Logit
    from ax.adapter.transforms.one_hot import OneHot
    from ax.adapter.transforms.unit_x import UnitX

    columns = _columns(adapter, surrogate)
    n_in = _num_inputs(model)
    if n_in is not None and len(columns) != n_in:
        columns = [f"x{i}" for i in range(n_in)]  # the adapter's list does not match: do not guess
    transforms = _transforms(adapter)
    encoded: dict[str, dict] = {}       # choice parameter -> {code: original value}
    one_hot: dict[str, tuple[str, object]] = {}   # column -> (parameter, value)
    ordinal: set[str] = set()
    logs: set[str] = set()
    logits: set[str] = set()
    unit_x: dict[str, float] = {}
    for t in transforms:
        if isinstance(t, OrderedChoiceToIntegerRange):
            ordinal.update(t.encoded_parameters)
        elif isinstance(t, ChoiceToNumericChoice):
            encoded.update({p: dict(inv) for p, inv in t.encoded_parameters_inverse.items()})
            ordinal.update(p for p in t.encoded_parameters)  # unless OneHot takes it over below
        elif isinstance(t, OneHot):
            for p, cols in t.encoded_parameters.items():
                ordinal.discard(p)
                values = t.encoded_values.get(p, [])
                for j, c in enumerate(cols):
                    code = values[j] if j < len(values) else j
                    one_hot[c] = (p, encoded.get(p, {}).get(code, code))
        elif isinstance(t, Log):
            logs.update(t.transform_parameters)
        elif isinstance(t, Logit):
            logits.update(getattr(t, "transform_parameters", ()))
        elif isinstance(t, UnitX):
            unit_x.update({p: float(u - lo) for p, (lo, u) in t.bounds.items()})
    names, inputs = [], []
    for c in columns:
        if c in one_hot:
            param, value = one_hot[c]
            names.append(f"{param}={value}")
            inputs.append(InputUnit(1.0))  # a 0/1 indicator: its length is already in its own units
        elif OH_INFIX in c:  # one-hot column with no OneHot transform at hand (bare surrogate)
            param, _, index = c.partition(OH_INFIX)
            names.append(f"{param}[one-hot {index}]")
            inputs.append(InputUnit(None, "", "a one-hot column"))
        elif c in logits:
            names.append(f"logit({c})")
            inputs.append(InputUnit(None, "", f"{c} is logit-transformed by Ax: no linear conversion"))
        elif c in logs:
            names.append(f"log10({c})")
            inputs.append(InputUnit(unit_x.get(c, 1.0), f"decades of {c}"))
        elif c in ordinal:
            names.append(f"{c} (ordinal)")
            inputs.append(InputUnit(unit_x.get(c, 1.0), f"steps between {c}'s ordered choices"))
        else:
            names.append(c)
            inputs.append(InputUnit(unit_x.get(c, 1.0) if adapter is not None else None, "",
                                    "" if adapter is not None else "no Ax adapter to read the transforms from"))
    return tuple(names), DataUnits(tuple(inputs), _output_units(transforms, outputs, adapter is not None),
                                   AX_INPUT_SPACE if adapter is not None else "",
                                   AX_OUTPUT_SPACE if _standardized(transforms) else "",
                                   "Ax")


def _standardized(transforms) -> bool:
    from ax.adapter.transforms.standardize_y import StandardizeY

    return any(isinstance(t, StandardizeY) for t in transforms)


def _output_units(transforms, outputs: tuple[str, ...], have_adapter: bool) -> tuple[OutputUnit, ...]:
    """Per metric: ``y = σ · y_model + μ`` through Ax's Y transforms, or why there is no exact inverse."""
    from ax.adapter.transforms.bilog_y import BilogY
    from ax.adapter.transforms.standardize_y import StandardizeY

    out = []
    for metric in outputs:
        sigma, mu, reason = 1.0, 0.0, "" if have_adapter else "no Ax adapter to read the Y transforms from"
        for t in transforms:
            if isinstance(t, StandardizeY) and metric in t.Ystd:
                # a later transform acts on the standardized values: compose y = σ·y' + μ
                mu, sigma = mu + sigma * float(t.Ymean[metric]), sigma * float(t.Ystd[metric])
            elif isinstance(t, BilogY) and metric in getattr(t, "metric_to_bound", {}):
                reason = f"{metric} is bilog-transformed by Ax (near its constraint bound): no linear inverse"
            elif type(t).__name__ in ("LogY", "PowerTransformY", "StratifiedStandardizeY") and metric in str(
                    getattr(t, "metric_signatures", getattr(t, "metric_names", ""))):
                reason = f"{metric} goes through Ax's {type(t).__name__}: no linear inverse"
        out.append(OutputUnit(metric, sigma if not reason else None, mu, reason))
    return tuple(out)


def _num_inputs(model) -> int | None:
    models = getattr(model, "models", None)
    if isinstance(models, torch.nn.ModuleList) and len(models):  # a model list: its train_inputs nest per model
        return _num_inputs(models[0])
    inputs = getattr(model, "train_inputs", None)
    if inputs and isinstance(inputs[0], torch.Tensor):
        return int(inputs[0].shape[-1])
    return None


# --------------------------------------------------------------------------- #
# Cross-validation sweeps over the experiment's trials                        #
# --------------------------------------------------------------------------- #

@dataclass(frozen=True)
class CVProblem:
    """What :func:`gpviz.cv_sweep` needs to refit an Ax client's surrogate on subsets of its trials.

    Attributes:
        make_model: ``(train_X, train_Y) -> model`` (``batch x n x d``, ``batch x n x 1``):
            the model class, kernel, likelihood and input transform Ax's surrogate
            specification builds, plus a ``Standardize`` outcome transform (Ax
            standardizes the outputs it fits on every time; here each fold does).
        X: ``N x d`` inputs as the model sees them (after Ax's transforms), one row
            per completed trial, in trial order.
        Y: ``N x 1`` observed means of the metric, in its own units.
        feature_names: Names of the columns of ``X``.
        trial_indices: Ax trial index of each row.
        metric: The metric modelled.
        mll_cls: The marginal log likelihood class of Ax's model configuration.
        source: What the model was read from (e.g. ``"Ax Client 'tune' · node MBM · SingleTaskGP"``),
            for the sweep page's note.
        data_units: What Ax's transforms did to the columns of ``X`` (:func:`sweep_units`: ``Log``,
            ``UnitX``...; ``Y`` is in the metric's own units), so a sweep shown in ``units="original"``
            converts through them as the single-model page does (decades for a log-scaled parameter).
    """

    make_model: object
    X: torch.Tensor
    Y: torch.Tensor
    feature_names: tuple[str, ...]
    trial_indices: tuple[int, ...]
    metric: str
    mll_cls: object
    source: str = ""
    data_units: DataUnits | None = None


@dataclass(frozen=True)
class SurrogateFactory:
    """``(train_X, train_Y) -> model`` the way an Ax surrogate builds its BoTorch model (picklable: it travels
    to sweep workers).

    Attributes:
        model_cls: The BoTorch model class of Ax's model configuration.
        config: The Ax ``ModelConfig`` (defaults filled in: kernel, likelihood, transforms, MLL).
        digest: The ``SearchSpaceDigest`` the surrogate was fitted with (Normalize's bounds...).
        feature_names: Ax's column names.
        metric: The metric modelled.
        data_units: What Ax's transforms did to the columns the factory is given (:func:`sweep_units`), or
            None; a sweep of this factory reads it (:attr:`gpviz.Sweep.data_units`).
    """

    model_cls: type
    config: object
    digest: object
    feature_names: tuple
    metric: str
    data_units: DataUnits | None = None

    def __call__(self, train_X: torch.Tensor, train_Y: torch.Tensor):
        """A model on ``batch x n x d`` inputs and ``batch x n x 1`` outputs (the batch: leave-one-out folds)."""
        from ax.generators.torch.botorch_modular.surrogate import Surrogate, submodel_input_constructor
        from botorch.models.transforms.outcome import Standardize
        from botorch.utils.datasets import SupervisedDataset

        # Ax builds each model from a dataset; the folds' batch dimension rides along in X and Y
        data = SupervisedDataset(X=train_X, Y=train_Y, feature_names=list(self.feature_names),
                                 outcome_names=[self.metric])
        inputs = submodel_input_constructor(self.model_cls, model_config=self.config, dataset=data,
                                            search_space_digest=self.digest, surrogate=Surrogate())
        if inputs.get("outcome_transform") is None:
            # Ax standardizes the outputs every time it fits; each fold does the same for its own points
            inputs["outcome_transform"] = Standardize(m=train_Y.shape[-1], batch_shape=train_X.shape[:-2])
        return self.model_cls(**inputs)


def cv_problem(obj, metric: str | None = None) -> CVProblem:
    """The experiment's completed trials and a factory for the client's own surrogate model.

    Args:
        obj: An Ax ``Client``, ``GenerationStrategy`` or ``TorchAdapter`` whose surrogate is fitted.
        metric: The metric to model (default: the first of the surrogate's outcomes,
            the objective for a single-objective experiment).

    Raises:
        InputError: no fitted model, an unknown metric, or fewer than 3 completed trials.
        UnsupportedError: a surrogate with several model configurations (model selection).
    """
    from ax.generators.torch.botorch_modular.utils import copy_model_config_with_default_values
    from botorch.utils.datasets import SupervisedDataset

    ax_model = resolve(obj)
    adapter: Any = ax_model.adapter
    surrogate: Any = ax_model.surrogate
    if adapter is None:
        raise InputError("cv_sweep needs an Ax Client, GenerationStrategy or TorchAdapter (it reads the "
                         "experiment's trials through the adapter's transforms), got a bare generator or surrogate")
    outcomes = list(ax_model.outputs)
    metric = outcomes[0] if metric is None else str(metric)
    if metric not in outcomes:
        raise InputError(f"metric {metric!r} is not modelled by the surrogate (its outcomes: {outcomes})")
    X, Y, trials = _trial_data(adapter, metric)
    if len(trials) < 3:
        raise InputError(f"cv_sweep needs at least 3 completed trials with data for {metric!r}, the experiment "
                         f"has {len(trials)}")
    spec = surrogate.surrogate_spec
    configs = surrogate.metric_to_best_model_config.get(metric) or (
        spec.metric_to_model_configs.get(metric, spec.model_configs) if spec is not None else None)
    if isinstance(configs, (list, tuple)):
        if len(configs) != 1:
            raise UnsupportedError(f"the surrogate selects among {len(configs)} model configurations for "
                                   f"{metric!r}; cv_sweep refits one")
        configs = configs[0]
    config: Any = configs
    digest = _search_space_digest(adapter)
    dataset = SupervisedDataset(X=X, Y=Y, feature_names=list(_columns(adapter, surrogate)), outcome_names=[metric])
    config = copy_model_config_with_default_values(model_config=config, dataset=dataset,
                                                    search_space_digest=digest)
    units = sweep_units(ax_model.units)
    make_model = SurrogateFactory(config.botorch_model_class, config, digest, tuple(dataset.feature_names), metric,
                                  units)
    return CVProblem(make_model=make_model, X=X, Y=Y, feature_names=ax_model.feature_names,
                     trial_indices=tuple(trials), metric=metric, mll_cls=config.mll_class, source=ax_model.source,
                     data_units=units)


def sweep_units(units: DataUnits) -> DataUnits:
    """The units of a sweep's data: Ax's input transforms (``Log``, ``UnitX``...) kept, no output transform.

    A sweep's ``X`` went through Ax's transforms (:func:`_trial_data`), but its ``Y`` is the metric's own
    values, standardized by each cell's own ``Standardize``: Ax's ``StandardizeY`` of the model it holds
    does not apply.
    """
    return DataUnits(units.inputs, (), units.input_space, "", units.source)


def _search_space_digest(adapter):
    """The search-space digest the surrogate was fitted with (bounds, categorical and task columns)."""
    return adapter.generator.search_space_digest


def _trial_data(adapter, metric: str) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """``X`` (after Ax's X transforms), raw ``Y`` and trial indices of the completed trials with data, in trial order."""
    from ax.core.observation import ObservationFeatures
    from ax.core.base_trial import TrialStatus

    experiment = _adapter_experiment(adapter)
    if experiment is None:
        raise InputError("the Ax adapter has no experiment to read trials from")
    df = experiment.lookup_data().df
    df = df[df["metric_name"] == metric]
    rows, ys, trials = [], [], []
    y_transforms = ("Derelativize", "Winsorize", "BilogY", "StandardizeY", "StratifiedStandardizeY",
                    "PowerTransformY", "LogY")
    x_transforms = [t for name, t in adapter.transforms.items() if name not in y_transforms]
    for index in sorted(experiment.trials):
        trial = experiment.trials[index]
        if trial.status != TrialStatus.COMPLETED:
            continue
        sub = df[df["trial_index"] == index]
        if sub.empty or getattr(trial, "arm", None) is None:
            continue
        obs = [ObservationFeatures(parameters=dict(trial.arm.parameters))]
        for t in x_transforms:
            obs = t.transform_observation_features(obs)
        params: dict[str, Any] = obs[0].parameters
        rows.append([float(params[p]) for p in adapter.parameters])
        ys.append([float(sub["mean"].mean())])
        trials.append(int(index))
    X = torch.tensor(rows, dtype=torch.float64).reshape(len(rows), len(adapter.parameters))
    Y = torch.tensor(ys, dtype=torch.float64).reshape(len(ys), 1)
    return X, Y, trials


# --------------------------------------------------------------------------- #
# The expression                                                              #
# --------------------------------------------------------------------------- #

def ax_model_expr(obj, feature_names=None, *, strict: bool = False, tasks=None, outputs=None):
    """The expression of an Ax object's surrogate: names from the search space, units from Ax's transforms.

    Args:
        obj: An Ax ``Client``, ``GenerationStrategy``, ``TorchAdapter``,
            ``BoTorchGenerator`` or ``Surrogate`` with a fitted model.
        feature_names: Override the names read from the experiment (one per model column).
        strict, tasks: As for :func:`gpviz.model_expr`.
        outputs: Names of a model list's outputs (default: the metrics).

    Returns:
        A :class:`gpviz.models.expr.ModelExpr` whose ``title`` says where the model came
        from and which metric(s) it models, and whose ``data_units`` convert back
        through Ax's transforms (``units="original"``).
    """
    found = resolve(obj)
    model: Any = found.model
    names = feature_names if feature_names is not None else found.feature_names
    is_list = isinstance(getattr(model, "models", None), torch.nn.ModuleList)
    if is_list and outputs is None and len(found.outputs) == len(model.models):
        outputs = found.outputs
    expr = model_expr(model, names, strict=strict, tasks=tasks, outputs=outputs if is_list else None)
    units = found.units
    if not is_list and len(found.outputs) > 1 and hooks.num_outputs(model) != len(found.outputs):
        units = DataUnits(units.inputs, (), units.input_space, "", units.source)  # members do not map to metrics
    metrics = ", ".join(found.outputs)
    named = {}
    if not is_list and len(found.outputs) > 1:  # a batched multi-output model: one member per metric
        named = dict(member_label="metrics", member_names=tuple(found.outputs))
    expr = with_data_units(expr, units).replace(
        title=found.source + (f" — {'metrics' if len(found.outputs) > 1 else 'metric'} {metrics}" if metrics else ""),
        metrics=tuple(found.outputs), **named)
    return expr


register_source(ModelSource(name="Ax", accepts=is_ax_object, expr=ax_model_expr, cv_problem=lambda obj, metric=None:
                            cv_problem(obj, metric)))

@dataclass(frozen=True)
class CardPage:
    """What a gpviz card shows: the body Ax's card draws, its text fallback and its data.

    Attributes:
        title: The card's title.
        subtitle: One sentence under the title: what the card shows.
        html: The card's body, a whole gpviz page (its scripts travel with it: a card may be
            shown apart from any notebook, saved, or in Ax's UI).
        text: What Ax shows where it asks for plain content (its papermill rendering).
        df: The card's data (``AnalysisCard.df``).
    """

    title: str
    subtitle: str
    html: str
    text: str
    df: pd.DataFrame = field(repr=False)


#: ``(experiment, generation_strategy, adapter) -> CardPage``: what a gpviz analysis computes.
PageMaker = Callable[[object, object, object], CardPage]


@functools.cache
def _analysis_classes() -> tuple[type, type]:
    """gpviz's Ax card and analysis classes, made on first use (Ax is imported only here, not by ``import gpviz``)."""
    from ax.analysis.analysis import Analysis
    from ax.core.analysis_card import AnalysisCard

    class GpvizCard(AnalysisCard):
        """An Ax card whose body is a gpviz page; ``text`` is what Ax shows where it asks for plain content."""

        def __init__(self, *, text: str, **card) -> None:
            super().__init__(**card)
            self.text = text

        def _body_html(self, depth: int) -> str:
            return f"<div class='content'>{self.blob}</div>"

        def _body_papermill(self) -> str:
            return self.text

    class GpvizAnalysis(Analysis):
        """Ax analysis whose ``compute`` returns a gpviz card of the page its ``make_page`` builds."""

        def __init__(self, name: str, make_page: PageMaker) -> None:
            self.name = name
            self.make_page = make_page

        def compute(self, experiment=None, generation_strategy=None, adapter=None) -> GpvizCard:
            page = self.make_page(experiment, generation_strategy, adapter)
            return GpvizCard(name=self.name, title=page.title, subtitle=page.subtitle, df=page.df, blob=page.html,
                             text=page.text)

    return GpvizCard, GpvizAnalysis


def analysis(name: str, make_page: PageMaker):
    """An Ax analysis (for ``client.compute_analyses([...])``) whose card is the page ``make_page`` builds.

    Args:
        name: The card's name in Ax (e.g. ``"ModelAnalysis"``).
        make_page: ``(experiment, generation_strategy, adapter) -> CardPage``, called by the
            analysis's ``compute`` with what Ax hands it; an error it raises becomes Ax's
            error card.

    Returns:
        An ``ax.analysis.analysis.Analysis`` whose ``compute`` returns a card of Ax's
        ``AnalysisCard`` class: its HTML body the page, its plain content the page's text.
    """
    return _analysis_classes()[1](name, make_page)


def model_source(generation_strategy, adapter, what: str):
    """The object an analysis reads the model from: the adapter Ax hands it, else the generation strategy.

    Raises:
        InputError: Ax handed neither (``what`` names the analysis).
    """
    source = adapter if adapter is not None else generation_strategy
    if source is None:
        raise InputError(f"{what} needs a generation strategy or an adapter with a fitted model "
                         "(Client.compute_analyses passes the client's generation strategy)")
    return source


def ModelAnalysis(feature_names: list[str] | None = None):  # noqa: N802 - named as Ax's analyses are
    """An Ax analysis for ``client.compute_analyses([gpviz.ax.ModelAnalysis()])``: the surrogate as a gpviz card.

    The card's HTML body is the gpviz model page (shown wherever Ax shows cards); where
    Ax asks for plain content (its papermill rendering) it gives the expression's text,
    and its ``df`` holds the parameters' values.

    Args:
        feature_names: Override the names read from the experiment (one per model column).

    Returns:
        An ``ax.analysis.analysis.Analysis`` whose ``compute`` returns the card.
    """
    def page(experiment, generation_strategy, adapter) -> CardPage:
        source = model_source(generation_strategy, adapter, "gpviz.ax.ModelAnalysis")
        expr = ax_model_expr(source, feature_names)
        return CardPage(title=f"gpviz: {expr.title or 'the surrogate model'}",
                        subtitle="every learned parameter of the model Ax fitted, drawn on its own axis",
                        html=display.render(expr).html(), text=expr.text(), df=parameters(expr))

    return analysis("ModelAnalysis", page)


__all__ = ["CardPage", "ModelAnalysis", "analysis", "model_source", "ax_model_expr", "is_ax_object", "resolve", "describe", "AxModel", "CVProblem", "cv_problem",
           "SurrogateFactory", "sweep_units"]
