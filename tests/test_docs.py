"""The docs site (mkdocs.yml): an API page per public name from its docstring, the notebooks, the map.

The slow test runs ``mkdocs build --strict`` (a broken reference, a docstring that
documents a parameter the signature lacks, a dead link: each fails CI) into a temp
folder and reads the pages it wrote against references taken from gpviz itself
(``gpviz.__all__``, each object's docstring) and from the repository's files.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gpviz
from tests.extras import need

REPO = Path(__file__).resolve().parent.parent


def _hooks():
    need("mkdocs", "docs")
    spec = importlib.util.spec_from_file_location("gpviz_docs_hooks", REPO / "docs" / "mkdocs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config() -> dict:
    # mkdocs.yml holds no !!python tags; a loader that ignores unknown tags is enough to read it
    yaml = need("yaml", "docs")
    return yaml.load((REPO / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)


def test_every_public_name_and_notebook_gets_a_page():
    hooks = _hooks()
    assert hooks.public_names() == sorted(gpviz.__all__)
    for name, path in hooks.homes().items():  # the page documents the object gpviz.<name> is
        module, _, attr = path.rpartition(".")
        assert getattr(importlib.import_module(module), attr) is getattr(gpviz, name), (name, path)
    assert [p.name for p in hooks.notebooks()] == sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    for title in hooks.README_SECTIONS:
        assert hooks.readme_section(title).startswith(f"## {title}\n")
    with pytest.raises(ValueError, match="no section '## No such heading'"):
        hooks.readme_section("No such heading")


def test_the_build_fetches_nothing_and_writes_nothing_into_the_tree():
    config = _config()
    assert config["theme"]["name"] == "material" and config["theme"]["font"] == "false"
    plugins = {next(iter(p)) if isinstance(p, dict) else p for p in config["plugins"]}
    assert plugins == {"search", "mkdocs-jupyter", "mkdocstrings"}
    jupyter = next(p["mkdocs-jupyter"] for p in config["plugins"] if isinstance(p, dict) and "mkdocs-jupyter" in p)
    assert jupyter["execute"] == "false" and jupyter["cache"] == "false"
    assert "site/" in (REPO / ".gitignore").read_text().splitlines()


def _text(page: Path) -> str:
    """A page's visible words, lowercased, with every character but letters and digits removed."""
    body = re.sub(r"<script.*?</script>|<style.*?</style>", " ", page.read_text("utf-8"), flags=re.S)
    return re.sub(r"[^a-z0-9]", "", html.unescape(re.sub(r"<[^>]+>", " ", body)).lower())


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    need("mkdocs", "docs")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                           "-d", str(site)], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not (REPO / "site").exists() and not (tmp_path / ".cache").exists()

    for name in gpviz.__all__:
        page = site / "api" / name / "index.html"
        # the page shows a Sphinx role (:func:`~x`) as the code it names
        first_line = re.sub(r":\w+:`~?", "`", inspect.getdoc(getattr(gpviz, name)).splitlines()[0])
        assert re.sub(r"[^a-z0-9]", "", first_line.lower()) in _text(page), (name, first_line)
    for module in ("handlers", "testing", "datasets"):
        assert (site / "api" / f"gpviz.{module}" / "index.html").is_file()
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        assert (site / "notebooks" / nb.stem / "index.html").is_file(), nb.name
    assert "wheretoadd" in _text(site / "architecture" / "index.html")
    getting_started = _text(site / "getting-started" / "index.html")
    assert "apitour" in getting_started and "gpvizmodelexprmodelfeaturenamesnames" in getting_started
    assert "unreleased" in _text(site / "changelog" / "index.html")
    render_page = (site / "api" / "render" / "index.html").read_text("utf-8")
    assert ":func:" in inspect.getdoc(gpviz.render) and ":func:" not in render_page
    assert (site / "images" / "model.png").is_file()
    pages = "".join(p.read_text("utf-8") for p in site.rglob("*.html"))
    assert "fonts.googleapis" not in pages and "fonts.gstatic" not in pages
