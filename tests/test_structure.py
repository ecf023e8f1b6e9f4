"""The house rules, checked on the source: one-way imports, internals behind one door, one numpy door, small modules."""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
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


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` (scripts/house_figures.py measures another checkout)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = modules()


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The gpviz module an imported name refers to (``gpviz.x.y`` or its nearest module prefix)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(module: str, path: Path, known: dict[str, Path] = MODULES):
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
            names = [f"{prefix}.{a.name}" if _resolve(f"{prefix}.{a.name}", known) == f"{prefix}.{a.name}"
                     else prefix for a in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name, known)
            if target is not None and target != module:
                yield target, node.lineno, id(node) in top_level


def graph(known: dict[str, Path] = MODULES) -> dict[str, set[str]]:
    """Module -> the gpviz modules it imports (the package's public face, gpviz/__init__, is left out)."""
    out = {}
    for module, path in known.items():
        if module == "gpviz":
            continue
        out[module] = {t for t, _, _ in imports(module, path, known) if t != "gpviz"}
    return out


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """The first import cycle found (``[a, b, ..., a]``), or ``None``."""
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        color[m] = 1
        stack.append(m)
        for t in sorted(edges.get(m, ())):
            if color.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if color.get(t) is None:
                found = visit(t)
                if found:
                    return found
        stack.pop()
        color[m] = 2
        return None

    for m in sorted(edges):
        if color.get(m) is None:
            found = visit(m)
            if found:
                return found
    return None


def test_the_checker_sees_every_module_and_finds_a_planted_cycle():
    assert {"gpviz.hooks", "gpviz.rendering", "gpviz.trace.tracer", "gpviz.tree.nodes"} <= set(MODULES)
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
    edges = graph()
    assert "gpviz.tree.nodes" in edges["gpviz.walk.walker"]  # `from gpviz.tree.nodes import ...` is an edge
    assert "gpviz.display" in edges["gpviz.walk.expr"]  # `from gpviz import display` is an edge to the module


def test_no_import_cycle_among_gpviz_modules():
    found = cycle(graph())
    assert found is None, "import cycle: " + " -> ".join(found)


def test_no_function_local_import_of_a_gpviz_module():
    local = [f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} imports {t}"
             for m, path in MODULES.items() for t, line, top in imports(m, path) if not top]
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


# --- Stage order: imports run from later stages to earlier ones (docs/architecture.md's pipeline) ---

#: Module prefix -> stage, in docs/architecture.md's order; a module takes its longest prefix's stage.
#: A module may import modules of its own or an earlier stage only. A new module without a prefix
#: here fails `test_every_module_has_a_stage`: give it the stage of the pipeline row the doc names it in.
STAGES = {
    # base: errors, the renderer registry, every foreign internal, small helpers
    "gpviz.errors": 0, "gpviz.display": 0, "gpviz.hooks": 0, "gpviz._factory": 0, "gpviz.words": 0,
    "gpviz.threads": 0, "gpviz.seeding": 0, "gpviz.markup": 0,
    # values, base: tensors, column names, key grammar, bounds, prior facts
    "gpviz.values": 1,
    # tree, and the one option set
    "gpviz.tree": 2, "gpviz.options": 2,
    # walk: handlers -> walker -> KernelExpr; gpviz.handlers, the public names a handler's author imports
    "gpviz.walk": 3, "gpviz.handlers": 3,
    # models: families, sources, ModelExpr
    "gpviz.models": 4,
    # values, frames: parameters() and units, read off a ModelExpr
    "gpviz.values.parameters": 5, "gpviz.values.units": 5, "gpviz.values.relevance": 5,
    # Ax
    "gpviz.ax": 6,
    # analyses: fit tracer, CV sweeps, prior pull, an Ax experiment's model history (its traced fits)
    "gpviz.trace": 7, "gpviz.sweep": 7, "gpviz.priors": 7, "gpviz.ax_history": 7,
    # view data
    "gpviz.view": 8,
    # HTML and charts
    "gpviz.html": 9, "gpviz.charts": 9,
    # entry points, the demo's data and the helpers shipped for users' tests
    "gpviz.rendering": 10, "gpviz.comparing": 10, "gpviz.cli": 10, "gpviz.__main__": 10, "gpviz.datasets": 10,
    "gpviz.testing": 10, "gpviz.explorer": 10,
}

#: Edges against the stage order that are tolerated, each one (importer, imported): none since issue 23
#: (analyses and views import no page module; their pictures are drawn through ``display.plot``). The list
#: may only shrink: an entry whose edge is gone fails the test until deleted.
ALLOWED_AGAINST_STAGES: set[tuple[str, str]] = set()


def stage(module: str) -> int | None:
    """The stage of ``module``: its longest prefix's in :data:`STAGES` (``None`` when it has none)."""
    name = module
    while name:
        if name in STAGES:
            return STAGES[name]
        name = name.rpartition(".")[0]
    return None


def against_stages(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Every (importer, imported) edge of ``edges`` that runs from an earlier stage to a later one."""
    return {(m, t) for m, targets in edges.items() for t in targets
            if stage(m) is not None and stage(t) is not None and stage(t) > stage(m)}


def test_the_stage_check_finds_a_planted_edge_against_the_order():
    planted = {"gpviz.tree.nodes": {"gpviz.errors", "gpviz.rendering"}, "gpviz.rendering": {"gpviz.tree.nodes"},
               "gpviz.values.units": {"gpviz.models.expr"}, "gpviz.models.expr": {"gpviz.values.keys"}}
    assert against_stages(planted) == {("gpviz.tree.nodes", "gpviz.rendering")}
    assert stage("gpviz.values.units") == 5 and stage("gpviz.values.keys") == 1 and stage("gpviz.view.x") == 8


def test_every_module_has_a_stage():
    missing = [m for m in MODULES if m != "gpviz" and stage(m) is None]  # the public face imports every stage
    assert not missing, "modules without a stage (add their prefix to STAGES): " + ", ".join(missing)


def test_imports_follow_the_stage_order():
    found = against_stages(graph())
    new = sorted(found - ALLOWED_AGAINST_STAGES)
    gone = sorted(ALLOWED_AGAINST_STAGES - found)
    assert not new, "imports against the stage order (a later stage imported by an earlier one):\n" + "\n".join(
        f"{m} (stage {stage(m)}) imports {t} (stage {stage(t)})" for m, t in new)
    assert not gone, "edges gone: delete them from ALLOWED_AGAINST_STAGES:\n" + "\n".join(f"{m} -> {t}" for m, t in gone)


# --- No stale reference: every name a docstring or the architecture doc points to exists ---

REPO = PACKAGE.parent
ARCHITECTURE = REPO / "docs" / "architecture.md"
#: ``gpviz.x.y`` names and Sphinx roles (``:func:`x```) in docstrings and the architecture doc.
DOTTED = re.compile(r"(?<![\w./-])gpviz(?:\.[A-Za-z_]\w*)+")
ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc):`~?([\w.]+)(?:\(\))?`")
#: Files named ``gpviz.<ext>`` (the page assets) are not modules.
ASSET_SUFFIXES = {"js", "css"}


def references(text: str) -> list[str]:
    """The names ``text`` points to: every ``gpviz.x.y`` and every Sphinx role's target."""
    roles = [m.group(1) for m in ROLE.finditer(text)]
    dotted = [m.group(0) for m in DOTTED.finditer(ROLE.sub("", text))
              if m.group(0).rpartition(".")[2] not in ASSET_SUFFIXES]
    return list(dict.fromkeys(dotted + roles))


def _has(obj, name: str) -> bool:
    """Whether ``obj.name`` exists, counting a class's declared fields and the attributes its methods set."""
    if hasattr(obj, name):
        return True
    if not isinstance(obj, type):
        return False
    for cls in obj.__mro__:
        if name in getattr(cls, "__annotations__", {}) or name in getattr(cls, "__dataclass_fields__", {}):
            return True
        if cls.__module__.startswith("gpviz") and re.search(rf"\bself\.{re.escape(name)}\s*(:[^=]*)?=",
                                                              _source(cls)):
            return True
    return False


@functools.cache
def _source(cls: type) -> str:
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        return ""


@functools.cache  # the same names recur in many docstrings; a miss costs a search of sys.path
def resolves(dotted: str) -> bool:
    """Whether an absolute dotted name names something: its longest importable module, then attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        try:
            obj = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is not None and not name.startswith(e.name):
                raise  # the module exists and one of its own imports is missing: not a reference's fault
            continue
        for attr in parts[i:]:
            if not _has(obj, attr):
                return False
            obj = getattr(obj, attr, None)
        return True
    return False


def resolves_from(target: str, module: str, classes: tuple[str, ...] = ()) -> bool:
    """Whether a role's target names something seen from ``module`` (inside ``classes``), or absolutely."""
    scopes = [".".join((module,) + classes[:i]) for i in range(len(classes), -1, -1)]
    candidates = ([target] if target.split(".")[0] in ("gpviz",) else
                  [f"{s}.{target}" for s in scopes] + [f"{module.rpartition('.')[0]}.{target}", f"gpviz.{target}",
                                                        target])
    return any(resolves(c) for c in candidates if c and not c.startswith("."))


def _docstrings(tree: ast.AST, classes: tuple[str, ...] = ()):
    """(docstring, enclosing class names, line) for a module and every class and function in it."""
    doc = ast.get_docstring(tree, clean=False) if isinstance(tree, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                                                    ast.AsyncFunctionDef)) else None
    inner = classes + (tree.name,) if isinstance(tree, ast.ClassDef) else classes
    if doc:
        yield doc, inner, getattr(tree, "lineno", 1)  # a class's docstring sees the class's own names
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from _docstrings(node, inner)


#: A path, a dotted name or an import-shaped span inside backticks in the architecture doc.
DOC_PATH = re.compile(r"`((?:[\w]+/)*\w+\.py)`")
DOC_SPAN = re.compile(r"`([A-Za-z_][\w.]*)(?:\([^`]*\))?`")


def stale_references(package: Path = PACKAGE, known: dict[str, Path] = MODULES) -> list[str]:
    """Every reference in gpviz's docstrings and docs/architecture.md that names nothing.

    Docstrings: ``gpviz.x.y`` names and Sphinx roles, a role resolved from where it is written.
    The doc also names modules by path (```walk/handlers.py```) and names by their
    ``subpackage.module.name`` (```tree.labels.expression_labels```); each must exist.
    """
    stale = []
    for module, path in known.items():
        rel = path.relative_to(package.parent)
        for doc, classes, line in _docstrings(ast.parse(path.read_text(encoding="utf-8"))):
            for ref in references(doc):
                if not resolves_from(ref, module, classes):
                    stale.append(f"{rel}:{line}: {ref}")
    arch = package.parent / "docs" / "architecture.md"
    if arch.exists():
        text = arch.read_text(encoding="utf-8")
        tops = {m.split(".")[1] for m in known if m.count(".") >= 1}
        for ref in references(text):
            if not resolves(ref):
                stale.append(f"docs/architecture.md: {ref}")
        files = [str(f) for site in USE_SITES for f in (package.parent / site).rglob("*.py")]
        for m in DOC_PATH.finditer(text):
            p = m.group(1)
            # a path is written from the package (`walk/handlers.py`) or from its subpackage (`store.py`)
            if not any(f.endswith("/" + p) for f in files):
                stale.append(f"docs/architecture.md: {p}")
        for m in DOC_SPAN.finditer(text):
            span = m.group(1)
            if "." in span and span.split(".")[0] in tops and not span.endswith(".py") and not resolves(f"gpviz.{span}"):
                stale.append(f"docs/architecture.md: {span}")
    return stale


# --- No dead code: every module-level function and class of gpviz is used somewhere ---

#: Where a use counts: the package, its tests, scripts and notebooks (and the entry points in pyproject.toml).
USE_SITES = ("gpviz", "tests", "scripts", "notebooks")
WORD = re.compile(r"[A-Za-z_]\w*")


def _names_used(node: ast.AST) -> set[str]:
    """Every name ``node`` mentions: names, attributes, imported names, identifier-like strings (``getattr``)."""
    used = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            used.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            used.add(sub.attr)
        elif isinstance(sub, ast.alias):
            used.update(sub.name.split("."))
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and len(sub.value) < 200:
            used.update(WORD.findall(sub.value))
    return used


def _registered(node: ast.AST) -> bool:
    """A definition a decorator registers (``@register_kernel(...)``) is used by its registry."""
    return any("register" in ast.unparse(d) for d in getattr(node, "decorator_list", ()))


def dead_items(repo: Path = REPO) -> list[str]:
    """Module-level functions and classes of ``repo/gpviz`` that nothing in :data:`USE_SITES` mentions.

    A simple name scan: a use anywhere of the same name counts (also a method's of that name), a
    definition's mentions of itself do not, and a decorated registration counts as a use.
    """
    used: dict[str, int] = {}
    defined = []
    for site in USE_SITES:
        for path in sorted((repo / site).rglob("*")):
            if path.suffix == ".py":
                tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
                for node in tree.body:
                    own = getattr(node, "name", None)
                    if site == "gpviz" and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        defined.append((path.relative_to(repo), node))
                    for name in _names_used(node) - {own}:
                        used[name] = used.get(name, 0) + 1
            elif path.suffix == ".ipynb":
                cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
                for cell in cells:
                    if cell.get("cell_type") == "code":
                        for name in WORD.findall("".join(cell.get("source", ""))):
                            used[name] = used.get(name, 0) + 1
    pyproject = repo / "pyproject.toml"
    for name in WORD.findall(pyproject.read_text(encoding="utf-8") if pyproject.exists() else ""):
        used[name] = used.get(name, 0) + 1
    return [f"{rel}:{node.lineno} {node.name}" for rel, node in defined
            if node.name not in used and not node.name.startswith("__") and not _registered(node)]


def test_the_reference_check_finds_a_planted_stale_name():
    doc = ("Reads :func:`register_width` and :class:`~gpviz.model.KroneckerModelExpr`; see gpviz.walk.walker."
           " The page carries gpviz.js.")
    assert references(doc) == ["gpviz.walk.walker", "register_width", "gpviz.model.KroneckerModelExpr"]
    assert resolves("gpviz.walk.registry.register_width") and resolves("gpviz.walk.walker.Walker")
    assert not resolves("gpviz.model.KroneckerModelExpr") and not resolves("gpviz.walk.registry.nothing_here")
    assert resolves_from("register_width", "gpviz.walk.registry")
    assert not resolves_from("register_width", "gpviz.tree.nodes")  # a name of another module is written in full


def test_no_docstring_or_the_architecture_doc_names_something_that_is_gone():
    stale = stale_references()
    assert not stale, "stale references (write the name's present home in full):\n" + "\n".join(stale)


def test_the_dead_code_check_finds_a_planted_unused_function(tmp_path):
    (tmp_path / "gpviz").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "gpviz" / "a.py").write_text(
        '"""A."""\n\ndef used():\n    return 1\n\n\ndef unused():\n    """Used by nothing."""\n    return 2\n\n\n'
        'def itself(n):\n    return itself(n - 1) if n else 0\n\n\n@register_kernel(int)\ndef handled():\n'
        '    return 3\n\n\nclass Named:\n    pass\n\n\nNAMES = {"Named": 1}\n')
    (tmp_path / "tests" / "test_a.py").write_text("from gpviz.a import used\n\nused()\n")
    assert dead_items(tmp_path) == ["gpviz/a.py:7 unused", "gpviz/a.py:12 itself"]


def test_every_module_level_function_and_class_is_used_somewhere():
    dead = dead_items()
    assert not dead, "defined and never used (delete them):\n" + "\n".join(dead)


def _class_names(trees: dict[str, ast.AST]) -> dict[str, list[str]]:
    """Class name -> the modules defining a class of that name."""
    out: dict[str, list[str]] = {}
    for module, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                out.setdefault(node.name, []).append(module)
    return out


def test_the_class_name_check_finds_a_planted_twin():
    planted = {"gpviz.a": ast.parse("class Section:\n    pass\n"), "gpviz.b": ast.parse("class Section:\n    pass\n")}
    assert _class_names(planted) == {"Section": ["gpviz.a", "gpviz.b"]}


def test_no_two_classes_share_a_name():
    """One name, one concept: two classes called the same (the tree's and the view's ``Section``) mislead a reader."""
    trees = {m: ast.parse(p.read_text(encoding="utf-8")) for m, p in MODULES.items()}
    twins = {name: mods for name, mods in _class_names(trees).items() if len(mods) > 1}
    assert not twins, twins
