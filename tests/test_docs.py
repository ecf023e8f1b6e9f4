"""The docs site (mkdocs.yml): an API page per public name from its docstring, the notebooks with their
outputs, the map.

The slow tests run ``mkdocs build --strict`` once (a broken reference, a docstring that
documents a parameter the signature lacks, a dead link, a notebook that fails: each fails
CI; about 2 minutes, nearly all of it running the notebooks) into a temp folder and read the
pages it wrote against references taken from gpviz itself (``gpviz.__all__``, each object's
docstring) and from the repository's files; one opens the notebooks' pages in Chromium.
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


def _tree() -> set[str]:
    """The files of notebooks/ (where a notebook run in place would save what it writes)."""
    return {str(p.relative_to(REPO)) for p in (REPO / "notebooks").rglob("*")}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once by ``mkdocs build --strict`` (the notebooks run: the slow part)."""
    need("mkdocs", "docs")
    need("nbclient", "docs")
    cwd = tmp_path_factory.mktemp("docs")
    site = cwd / "site"
    before = _tree()
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env.pop("GPVIZ_DOCS_NOTEBOOKS", None)  # the default: the notebooks run
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                           "-d", str(site)], cwd=cwd, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not (REPO / "site").exists() and not (cwd / ".cache").exists()
    assert _tree() == before  # the notebooks ran in a temporary folder: nothing saved into the tree
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        assert f"ran notebooks/{nb.name} in" in proc.stderr, nb.name
    return site


def test_widget_outputs_keep_their_text_and_the_page_no_widget_manager():
    nbformat = need("nbformat", "docs")
    hooks = _hooks()
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    cell = nbformat.v4.new_code_cell("bar")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        hooks.WIDGET_VIEW: {"model_id": "abc"}, "text/plain": "100%|##########| 6/6"})]
    nb.cells = [cell, nbformat.v4.new_markdown_cell("text")]
    hooks._static(nb)
    assert "widgets" not in nb.metadata
    assert nb.cells[0].outputs[0]["data"] == {"text/plain": "100%|##########| 6/6"}


@pytest.mark.slow
def test_a_failing_notebook_stops_the_build_and_is_named(tmp_path):
    nbformat = need("nbformat", "docs")
    need("nbclient", "docs")
    from mkdocs.exceptions import PluginError

    hooks = _hooks()
    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")]), good)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")]), bad)
    seconds = hooks.run_notebooks([good], tmp_path / "out")
    assert list(seconds) == ["good.ipynb"]
    ran = nbformat.read(tmp_path / "out" / "good.ipynb", as_version=4)
    assert ran.cells[0].outputs[0]["text"] == "42\n"
    with pytest.raises(PluginError, match=r"(?s)notebooks/bad.ipynb failed.*ZeroDivisionError: division by zero"):
        hooks.run_notebooks([good, bad], tmp_path / "out2")


@pytest.mark.slow
def test_mkdocs_build_strict(site):

    for name in gpviz.__all__:
        page = site / "api" / name / "index.html"
        # the page shows a Sphinx role (:func:`~x`) as the code it names
        first_line = re.sub(r":\w+:`~?", "`", inspect.getdoc(getattr(gpviz, name)).splitlines()[0])
        assert re.sub(r"[^a-z0-9]", "", first_line.lower()) in _text(page), (name, first_line)
    for module in ("handlers", "testing", "datasets"):
        assert (site / "api" / f"gpviz.{module}" / "index.html").is_file()
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        page = (site / "notebooks" / nb.stem / "index.html").read_text("utf-8")
        # shown with its outputs: gpviz's figures (their charts' placeholders) and the scripts that draw them
        assert 'class="gpviz-param' in page and "gpvizMount" in page, nb.name
    assert "wheretoadd" in _text(site / "architecture" / "index.html")
    getting_started = _text(site / "getting-started" / "index.html")
    assert "apitour" in getting_started and "gpvizmodelexprmodelfeaturenamesnames" in getting_started
    assert "unreleased" in _text(site / "changelog" / "index.html")
    render_page = (site / "api" / "render" / "index.html").read_text("utf-8")
    assert ":func:" in inspect.getdoc(gpviz.render) and ":func:" not in render_page
    assert (site / "images" / "model.png").is_file()
    pages = "".join(p.read_text("utf-8") for p in site.rglob("*.html"))
    assert "fonts.googleapis" not in pages and "fonts.gstatic" not in pages
    # no page loads a script from elsewhere (mkdocs-jupyter's widget manager comes from unpkg.com)
    assert not re.findall(r"<script[^>]*src=[\"']https?:", pages) and "unpkg.com" not in pages


@pytest.mark.slow
@pytest.mark.browser
def test_the_notebook_pages_draw_their_charts(site, open_page):
    """Each notebook's page, opened from disk in Chromium: every chart drawn, no console error."""
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        loaded = open_page(site / "notebooks" / nb.stem / "index.html")
        rows = loaded.eval("""() => [...document.querySelectorAll('.gpviz-param')].map(e => ({
            drawn: e.dataset.drawn, canvas: !!e.querySelector('canvas')}))""")
        assert rows and all(r["drawn"] == "1" and r["canvas"] for r in rows), (nb.name, rows)
        assert not loaded.console_errors, (nb.name, loaded.console_errors)
