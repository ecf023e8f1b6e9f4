"""Measures the house (modules, import edges, the rules of tests/test_structure.py) and writes the figures into docs/architecture.md.

Each figure sits between ``<!-- n:NAME -->`` and ``<!-- /n -->`` markers in
docs/architecture.md (as scripts/readme_numbers.py does for the README). The
measurements are the structure test's own walkers (tests/test_structure.py of this
checkout), applied to the checkout at ROOT, so a figure and the rule it counts
cannot disagree:

    .venv/bin/python scripts/house_figures.py              # print this checkout's figures
    .venv/bin/python scripts/house_figures.py /tmp/old     # another checkout's (a "before" column)
    .venv/bin/python scripts/house_figures.py --write      # rewrite docs/architecture.md's figures
    .venv/bin/python scripts/house_figures.py --check      # exit 1 if they are stale (a test runs this)

Figures: modules, lines of Python in gpviz/, import edges between gpviz modules,
import cycles, function-local gpviz imports, modules over 500 lines, the largest
count of private attributes (``self._x`` names) of one class, ``getattr``/``hasattr``
probes, import edges against the stage order, stale docstring references, dead items.
Stale references are resolved by importing ROOT's gpviz.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = Path("docs") / "architecture.md"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def house_rules():
    """tests/test_structure.py of this checkout, loaded as a module: its walkers and its stage table."""
    return _load("gpviz_house_rules", REPO / "tests" / "test_structure.py")


# the README's markers and their rewriting: one grammar for every document whose figures a script writes
_NUMBERS = _load("gpviz_readme_numbers", REPO / "scripts" / "readme_numbers.py")
MARK = _NUMBERS.MARK
apply = _NUMBERS.apply


def private_attributes(tree: ast.AST) -> dict[str, set[str]]:
    """Class name -> the private attributes (``self._x = ...``, not dunders) its methods set: its private state."""
    out = {}
    for cls in ast.walk(tree):
        if isinstance(cls, ast.ClassDef):
            out[cls.name] = {n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute)
                             and isinstance(n.ctx, ast.Store) and isinstance(n.value, ast.Name)
                             and n.value.id == "self" and n.attr.startswith("_") and not n.attr.startswith("__")}
    return out


def probes(tree: ast.AST) -> int:
    """Calls of ``getattr`` and ``hasattr`` (a reader asking an object which fields it has)."""
    return sum(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("getattr", "hasattr")
               for n in ast.walk(tree))


def _short(module: str) -> str:
    return module.removeprefix("gpviz.")


def figures(root: Path) -> dict[str, str]:
    """Every figure of the checkout at ``root``, as the text the doc shows."""
    rules = house_rules()
    package = root / "gpviz"
    known = rules.modules(package)
    edges = rules.graph(known)
    trees = {m: ast.parse(p.read_text(encoding="utf-8")) for m, p in known.items()}
    texts = {m: p.read_text(encoding="utf-8") for m, p in known.items()}
    empty = sum(len(t.body) == 1 and isinstance(t.body[0], ast.Expr) for t in trees.values())
    found = rules.cycle(edges)
    local = sum(not top for m, p in known.items() for _, _, top in rules.imports(m, p, known))
    long = sorted(((texts[m].count("\n"), m) for m in known if texts[m].count("\n") > rules.MAX_LINES), reverse=True)
    classes = sorted(((len(names), f"{_short(m)}.{c}") for m, t in trees.items()
                      for c, names in private_attributes(t).items()), reverse=True)
    against = sorted(rules.against_stages(edges))

    sys.path.insert(0, str(root))  # resolve references against root's gpviz, not the installed one
    stale = rules.stale_references(package, known)
    dead = rules.dead_items(root)
    return {
        "modules": f"{len(known)} ({empty} of them docstring-only package `__init__`s)",
        "lines": f"{sum(t.count(chr(10)) for t in texts.values()):,}",
        "import_edges": str(sum(len(t) for t in edges.values())),
        "cycles": "0" if found is None else "1 (" + " → ".join(map(_short, found)) + ")",
        "local_imports": str(local),
        "long_modules": f"{len(long)}" + (" (" + "; ".join(f"{_short(m)} {n:,}" for n, m in long) + ")" if long else ""),
        "private_attributes": (f"{classes[0][0]} ({classes[0][1]}); next {classes[1][0]} ({classes[1][1]})"
                               if len(classes) > 1 else "0"),
        "probes": f"{sum(probes(t) for t in trees.values())} in "
                  f"{sum(probes(t) > 0 for t in trees.values())} modules",
        "against_stages": str(len(against)) + (" (" + "; ".join(f"{_short(a)} → {_short(b)}" for a, b in against) + ")"
                                               if against else ""),
        "stale_references": str(len(stale)),
        "dead_items": str(len(dead)),
    }, {"stale": stale, "dead": dead}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=REPO, help="checkout to measure (default: this one)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="rewrite the figures in ROOT/docs/architecture.md")
    group.add_argument("--check", action="store_true", help="exit 1 if ROOT/docs/architecture.md is stale")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    values, lists = figures(root)
    for name, value in values.items():
        print(f"{name:>20}: {value}")
    for what, items in lists.items():
        for item in items:
            print(f"  {what}: {item}")
    if not (args.write or args.check):
        return 0
    doc = root / DOC
    text = doc.read_text(encoding="utf-8")
    new, missing = apply(text, values)
    if missing:
        print("markers this script does not compute:", ", ".join(missing), file=sys.stderr)
        return 1
    if args.check:
        if new != text:
            print(f"{DOC} is stale: run .venv/bin/python scripts/house_figures.py --write", file=sys.stderr)
            return 1
        return 0
    doc.write_text(new, encoding="utf-8")
    print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
