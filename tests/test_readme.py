"""The README names only things that exist, and its code parses."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text(encoding="utf-8")


def _resolve(dotted: str):
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, name in enumerate(parts[1:], 1):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: i + 1]))
    return obj


def test_every_gpviz_name_in_the_readme_exists():
    names = set(re.findall(r"\bgpviz(?:\.[A-Za-z_][A-Za-z0-9_]*)+", TEXT))
    assert "gpviz.cv_sweep" in names and "gpviz.prior_pull" in names
    for dotted in sorted(names):
        if dotted.endswith(("_html", "_png")):
            continue
        try:
            _resolve(dotted)
        except (ImportError, AttributeError) as exc:
            pytest.fail(f"README names {dotted}, which does not exist ({exc})")


def test_python_blocks_parse_and_import_real_names():
    blocks = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
    assert blocks
    for block in blocks:
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gpviz"):
                mod = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(mod, alias.name), f"from {node.module} import {alias.name}"


def test_the_two_quickstart_commands_are_jobs_of_run_sh():
    assert "bash scripts/run.sh demo" in TEXT and "bash scripts/run.sh test" in TEXT
    run_sh = (README.parent / "scripts" / "run.sh").read_text()
    assert re.search(r"^\s*demo\)", run_sh, flags=re.M) and re.search(r"^\s*test\)", run_sh, flags=re.M)


def test_readme_images_exist_and_are_small():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", TEXT)
    assert len(images) >= 4
    for rel in images:
        path = README.parent / rel
        assert path.exists(), rel
        assert path.stat().st_size < 300_000, rel
