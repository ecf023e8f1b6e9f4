"""The one table of pseudocode functions (gpviz.tree.notation.FUNCTIONS) is the one the code and the priors use."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch

from gpviz.priors.derivatives import _radial
from gpviz.tree.notation import FUNCTIONS, NOTATION

GPVIZ = Path(__file__).resolve().parents[2] / "gpviz"


def test_every_function_a_tree_calls_by_name_is_in_the_table():
    called = set()
    for path in GPVIZ.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Call"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                called.add(node.args[0].value)
    assert called and called <= set(FUNCTIONS), sorted(called - set(FUNCTIONS))


def test_the_notation_key_is_the_tables_lines():
    assert NOTATION == {name: f.line for name, f in FUNCTIONS.items()}
    for name, f in FUNCTIONS.items():
        assert f.line.startswith(name) or name == "* s", name


@pytest.mark.parametrize("kind, name", [("rbf", "rbf"), (0.5, "matern_05"), (1.5, "matern_15"), (2.5, "matern_25")])
def test_the_closed_form_priors_kernel_values_are_the_tables(kind, name):
    r = torch.linspace(0.0, 4.0, 41, dtype=torch.float64)
    rho = r**2 if kind == "rbf" else r  # the closed form takes the RBF's squared distance
    k0 = _radial(kind, rho)[0]
    torch.testing.assert_close(k0, FUNCTIONS[name].apply(r), rtol=1e-12, atol=1e-15)
    assert math.isclose(float(FUNCTIONS[name].apply(torch.tensor(0.0))), 1.0)
