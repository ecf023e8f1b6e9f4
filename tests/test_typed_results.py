"""Expressions and sweeps are typed, complete results: every field declared on its class and set when built.

No gpviz module completes another's object after construction (an attribute write onto an
expression or a sweep outside its class), and no reader probes one with ``getattr`` /
``hasattr``: a reader uses the declared field.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest
import torch
from botorch.models import ModelListGP, SingleTaskGP
from botorch.models.transforms import Normalize, Standardize
from gpytorch.kernels import RBFKernel, ScaleKernel

import gpviz
from gpviz.models.expr import KroneckerModelExpr, ModelExpr, ModelListExpr
from gpviz.sweep.result import Sweep
from gpviz.values.units import DataUnits, InputUnit, OutputUnit, in_units, relabel, with_data_units
from gpviz.walk.expr import Expr, KernelExpr

PACKAGE = Path(gpviz.__file__).parent
CLASSES = (Expr, KernelExpr, ModelExpr, KroneckerModelExpr, ModelListExpr, Sweep)
#: Caches a class keeps on its instances (functools.cached_property), and a sweep's private state.
PRIVATE_OK = {"_walk", "_labels", "_states", "_model"}
#: Variable names gpviz binds to expressions and sweeps (the readers' and builders' names).
BOUND_NAMES = {"expr", "sweep", "part", "new", "whole", "cell_expr", "copy", "other", "model_units"}


def _declared(cls) -> set[str]:
    return {name for klass in cls.__mro__ for name in vars(klass).get("__annotations__", {})}


def _undeclared(obj) -> list[str]:
    return sorted(k for k in vars(obj) if k not in _declared(type(obj)) and k not in PRIVATE_OK)


def _model(n=8, d=2, m=1):
    X = torch.rand(n, d, dtype=torch.float64)
    Y = X.sum(-1, keepdim=True).repeat(1, m)
    return SingleTaskGP(X, Y, input_transform=Normalize(d), outcome_transform=Standardize(m))


def test_every_field_of_an_expression_is_declared_on_its_class():
    kernel = gpviz.kernel_expr(ScaleKernel(RBFKernel(ard_num_dims=2)), ["a", "b"])
    single = gpviz.model_expr(_model(), ["a", "b"])
    batched = gpviz.model_expr(_model(m=2), ["a", "b"], outputs=["y1", "y2"])
    listed = gpviz.model_expr(ModelListGP(_model(), _model()), ["a", "b"])
    data = DataUnits((InputUnit(2.0), InputUnit(3.0)), (OutputUnit("y", 2.0, 1.0),), "", "", "Ax")
    copies = [in_units(single, "original"), relabel(single, {}), with_data_units(single, data),
              in_units(with_data_units(listed, DataUnits(data.inputs, data.outputs * 2, "", "", "Ax")), "original")]
    for expr in [kernel, single, batched, listed, *copies]:
        _ = expr.keys, expr.labels, str(expr)  # the caches are filled
        assert _undeclared(expr) == [], type(expr).__name__
        assert set(type(expr).field_names()) <= set(vars(expr)), "a declared field is not set by the constructor"
    assert batched.member_names == ("y1", "y2") and batched.member_label == "outputs"
    assert kernel.sections == () and kernel.title is None and kernel.member_names is None


def test_every_field_of_a_sweep_is_declared_and_set_by_its_constructor():
    empty = pd.DataFrame()
    sweep = Sweep(scores=empty, parameters=empty, predictions=empty, subsets={}, sizes=(4,), repeats=1, seed=0,
                  metrics=("mse",), make_model=None, X=torch.zeros(4, 1), Y=torch.zeros(4, 1),
                  feature_names=["a"], order="trials", trial_indices=(0, 1, 2, 3), reference_scores=empty)
    assert _undeclared(sweep) == []
    assert _declared(Sweep) <= set(vars(sweep))
    assert (sweep.feature_names, sweep.order, sweep.trial_indices) == (["a"], "trials", (0, 1, 2, 3))


def test_a_copy_is_made_by_the_class_and_keeps_its_own_model_units():
    expr = gpviz.model_expr(_model(), ["a", "b"])
    titled = expr.replace(title="from somewhere")
    assert titled.title == "from somewhere" and expr.title is None
    assert titled.model_units is titled and expr.model_units is expr
    original = in_units(titled, "original")
    assert original.model_units is titled and original.units == "original" and original.title == "from somewhere"
    with pytest.raises(gpviz.GpvizError, match="not fields"):
        expr.replace(colour="red")


def test_a_copy_with_new_trees_computes_its_own_labels_and_one_with_the_same_trees_keeps_them():
    expr = gpviz.model_expr(_model(), ["lr", "wd"])
    other = gpviz.model_expr(_model(), ["a", "b"])
    assert expr.labels["covar_module.lengthscale[0]"] == "lengthscale[lr]"
    assert expr.replace(sections=other.sections).labels["covar_module.lengthscale[0]"] == "lengthscale[a]"
    relabelled = relabel(expr, {s.title: "elsewhere" for s in expr.sections})
    assert relabelled._labels is expr._labels and relabelled.sections[0].note == "elsewhere"


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def _fields() -> set[str]:
    return set().union(*(_declared(c) for c in CLASSES)) | {"metrics", "data_units"}


def _inside_classes(tree: ast.AST) -> set[int]:
    """Line numbers of the bodies of the expression and sweep classes (their own methods may build copies)."""
    names = {c.__name__ for c in CLASSES}
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name in names:
            lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def test_no_module_writes_fields_onto_an_expression_or_a_sweep_from_outside_its_class():
    fields = _fields()
    found = []
    for path, tree in _sources():
        inside = _inside_classes(tree)
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                    if (isinstance(t, ast.Attribute) and t.attr in fields and isinstance(t.value, ast.Name)
                            and t.value.id in BOUND_NAMES and node.lineno not in inside):
                        found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {t.value.id}.{t.attr}")
    assert found == []


def test_no_reader_probes_an_expression_or_a_sweep_with_getattr_or_hasattr():
    found = []
    for path, tree in _sources():
        inside = _inside_classes(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr", "setattr") and node.args
                    and isinstance(node.args[0], ast.Name)):
                continue
            name = node.args[0].id
            if name in BOUND_NAMES or (name == "self" and node.lineno in inside):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.func.id}({name}, ...)")
    assert found == []
