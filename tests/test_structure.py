"""The house rules, checked on the source: one-way imports, internals behind one door, one numpy door, small modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gpviz"

#: Private names of BoTorch, GPyTorch, scipy (and CPython's frame API) that only gpviz/hooks.py may use.
FOREIGN_INTERNALS = (
    "_fit_fallback", "_getframe", "fmin_l_bfgs_b_batched", "_wrap_callback", "_set_lengthscale",
    "_set_outputscale", "_set_noise", "_minimize_lbfgsb", "_fit_gpytorch_mll_scipy_independent",
    "minimize_with_timeout", "torch_minimize", "_trailing_sizes", "_num_outputs", "_task_feature",
    "_output_tasks", "f_locals", "f_back", "get_loss_closure", "_is_fully_bayesian",
)
HOOKS_MODULE = "gpviz.hooks"
NUMPY_DOOR = "gpviz.values.tensors"
#: Modules longer than this must say why at their top (a docstring line mentioning their length).
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The gpviz module an imported name refers to (``gpviz.x.y`` or its nearest module prefix)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path):
    """(target module, line, at module level) for every import of a gpviz module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    top_level = {id(n) for n in tree.body}
    # imports inside `if TYPE_CHECKING:` / try at module level still count as module level
    for node in tree.body:
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Import, ast.ImportFrom)) and not isinstance(node, (ast.FunctionDef,
                                                                                       ast.AsyncFunctionDef,
                                                                                       ast.ClassDef)):
                top_level.add(id(sub))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports: resolve against the package
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if path.name == "__init__.py"
                                                                                   else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{a.name}" if _resolve(f"{prefix}.{a.name}") == f"{prefix}.{a.name}" else prefix
                     for a in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                yield target, node.lineno, id(node) in top_level


def _graph() -> dict[str, set[str]]:
    """Module -> the gpviz modules it imports (the package's public face, gpviz/__init__, is left out)."""
    graph = {}
    for module, path in MODULES.items():
        if module == "gpviz":
            continue
        graph[module] = {t for t, _, _ in _imports(module, path) if t != "gpviz"}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        color[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if color.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if color.get(t) is None:
                found = visit(t)
                if found:
                    return found
        stack.pop()
        color[m] = 2
        return None

    for m in sorted(graph):
        if color.get(m) is None:
            found = visit(m)
            if found:
                return found
    return None


def test_the_checker_sees_every_module_and_finds_a_planted_cycle():
    assert {"gpviz.hooks", "gpviz.render", "gpviz.trace.tracer", "gpviz.tree.nodes"} <= set(MODULES)
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    graph = _graph()
    assert "gpviz.tree.nodes" in graph["gpviz.walk.walker"]  # `from gpviz.tree.nodes import ...` is an edge
    assert "gpviz.hooks" in graph["gpviz.trace.tracer"]      # `from gpviz import hooks` is an edge to the module


def test_no_import_cycle_among_gpviz_modules():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_function_local_import_of_a_gpviz_module():
    local = [f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} imports {t}"
             for m, path in MODULES.items() for t, line, top in _imports(m, path) if not top]
    assert not local, "function-local imports of gpviz modules:\n" + "\n".join(local)


def test_private_botorch_gpytorch_scipy_names_only_in_the_hooks_module():
    found = []
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, FOREIGN_INTERNALS)) + r")\b")
    for module, path in MODULES.items():
        if module == HOOKS_MODULE:
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for m in pattern.finditer(code):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{i}: {m.group(1)}")
    assert not found, "foreign internals outside gpviz/hooks.py:\n" + "\n".join(found)


def _numpy_calls(path: Path) -> list[int]:
    """Lines of every ``<expr>.numpy()`` call in a module (docstrings and comments do not count)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr == "numpy" and not n.args and not n.keywords]


def test_every_tensor_to_numpy_goes_through_one_helper():
    found = [f"{path.relative_to(PACKAGE.parent)}:{line}" for module, path in MODULES.items()
             if module != NUMPY_DOOR for line in _numpy_calls(path)]
    assert not found, "bare .numpy() outside gpviz/values/tensors.py (use to_numpy):\n" + "\n".join(found)
    assert len(_numpy_calls(MODULES[NUMPY_DOOR])) == 1  # the door itself


def test_only_one_module_imports_rows2prose():
    importers = [m for m, path in MODULES.items()
                 if re.search(r"^\s*(import|from) rows2prose", path.read_text(encoding="utf-8"), re.M)]
    assert importers == ["gpviz.html.assets"]


def test_long_modules_say_why_at_their_top():
    long = []
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        n = text.count("\n")
        if n <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not re.search(r"\b(longer|lines)\b", doc):
            long.append(f"{module}: {n} lines, no reason in its docstring")
    assert not long, "\n".join(long)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_opens_with_a_line_on_its_responsibility(module):
    doc = ast.get_docstring(ast.parse(MODULES[module].read_text(encoding="utf-8")))
    assert doc and doc.strip().splitlines()[0].strip(), f"{module} has no module docstring"


def _docstring_only_functions(tree: ast.AST) -> list[str]:
    """Functions whose whole body is a docstring (a body lost in a move returns ``None`` silently).

    Abstract methods and ``Protocol`` members say so with a decorator or an ellipsis and are
    not listed; an intentional no-op says ``pass`` or ``return None``.
    """
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        only_doc = (len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str))
        abstract = any(getattr(d, "id", getattr(d, "attr", "")) in ("abstractmethod", "overload")
                       for d in node.decorator_list)
        if only_doc and not abstract:
            found.append(f"{node.name} (line {node.lineno})")
    return found


def test_the_docstring_only_check_finds_a_planted_body_lost():
    planted = ast.parse('class S:\n    def label(self):\n        """What a dot is."""\n\n'
                        '    @abc.abstractmethod\n    def todo(self):\n        """Subclasses say."""\n\n'
                        '    def fine(self):\n        """Nothing to do."""\n        pass\n')
    assert _docstring_only_functions(planted) == ["label (line 2)"]


def test_no_function_is_only_a_docstring():
    bad = [f"{module}: {name}" for module, path in MODULES.items()
           for name in _docstring_only_functions(ast.parse(path.read_text(encoding="utf-8")))]
    assert not bad, "functions whose body is only a docstring (a lost body?):\n" + "\n".join(bad)
