"""mkdocs hooks (mkdocs.yml's ``hooks:``): the pages that are made from the repository, not written twice.

- one API reference page per name in ``gpviz.__all__`` (read from ``gpviz/__init__.py`` as
  text, so building the site imports no torch), each rendered by mkdocstrings from the
  docstrings, plus the public modules handler authors and testers import;
- the getting-started page: an install paragraph, then sections of README.md taken by
  their headings (a renamed heading fails the build instead of dropping the section);
- the changelog page: CHANGELOG.md;
- one page per notebook of ``notebooks/``, with its outputs: the notebooks are stored without
  outputs, so the build runs each one top to bottom (:func:`run_notebooks`, in a kernel of the
  interpreter that builds, in a temporary folder: nothing is written into the tree) and
  mkdocs-jupyter shows the executed copy. ``GPVIZ_DOCS_NOTEBOOKS=stored`` shows them as stored
  instead (a quick build while writing docs); a notebook that fails stops the build;
- the docstrings' Sphinx roles (``:func:`x```, ``:class:`~x```) shown as the code they name.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
#: A Sphinx role before the ``<code>`` Markdown made of its backticks (``~`` keeps only the last part in Sphinx).
ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|exc|obj):<code>~?")
#: README sections the getting-started page carries, in this order.
README_SECTIONS = ("API tour", "One set of options", "Reading the notation")
#: Public modules (beside the names of ``gpviz.__all__``) with an API page of their own.
PUBLIC_MODULES = ("gpviz.handlers", "gpviz.testing", "gpviz.datasets")
INSTALL = """# Getting started

gpviz needs Python 3.11+, PyTorch, GPyTorch and BoTorch. Install a CPU build of torch
first if you do not want pip to choose one for you, then:

```bash
pip install gpviz                 # the core
pip install "gpviz[ax]"           # + Ax: the models Ax fits, the experiment over time
pip install "gpviz[dask]"         # + sweeps on a Dask cluster
pip install "gpviz[fully-bayesian]"   # + the SAAS fully Bayesian model (jax, numpyro)
```

`gpviz demo` runs the tour on built-in data and writes its pages into `./gpviz-demo`;
`gpviz --version` prints the version. The sections below are the README's.

"""


def _init() -> ast.Module:
    return ast.parse((ROOT / "gpviz" / "__init__.py").read_text(encoding="utf-8"))


def public_names() -> list[str]:
    """The names of ``gpviz.__all__``, read from ``gpviz/__init__.py`` without importing it."""
    for node in _init().body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return sorted(ast.literal_eval(node.value))
    raise ValueError("gpviz/__init__.py defines no __all__")


def homes() -> dict[str, str]:
    """Each public name's defining path (``render`` -> ``gpviz.rendering.render``).

    mkdocstrings is pointed at the object where it is defined: a name ``gpviz/__init__.py``
    imports or loads lazily (``explore``) is documented from its own module.

    Raises:
        ValueError: for a name of ``__all__`` that ``gpviz/__init__.py`` does not import.
    """
    imported = {alias.asname or alias.name: f"{node.module}.{alias.name}"
                for node in _init().body if isinstance(node, ast.ImportFrom) and node.module
                for alias in node.names}
    for node in _init().body:  # names loaded on first use: _LAZY = {name: module}
        if (isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict)
                and any(getattr(t, "id", None) == "_LAZY" for t in getattr(node, "targets", [getattr(node, "target", None)]))):
            imported.update({name: f"{module}.{name}" for name, module in ast.literal_eval(node.value).items()})
    missing = [name for name in public_names() if name not in imported]
    if missing:
        raise ValueError(f"gpviz/__init__.py does not import {missing} from a module (docs/mkdocs_hooks.py)")
    return {name: imported[name] for name in public_names()}


def notebooks() -> list[Path]:
    """The repository's notebooks, in name order."""
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


log = logging.getLogger("mkdocs.plugins.gpviz")
#: Temporary folders of a build (the executed notebooks), removed when it ends.
_TEMP: list[Path] = []
#: ``GPVIZ_DOCS_NOTEBOOKS``: ``run`` (default: the notebooks with their outputs) or ``stored`` (as in the tree).
NOTEBOOKS_ENV = "GPVIZ_DOCS_NOTEBOOKS"
#: Seconds one cell may take before the build gives up on its notebook.
CELL_TIMEOUT = 300


def _kernel_manager(kernels: Path):
    """A kernel of this interpreter (the one building), whatever kernels Jupyter knows of elsewhere."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec = kernels / "gpviz-docs"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "gpviz docs", "language": "python",
        # the notebooks' small models fit faster on one thread (and CI has 2 cores)
        "env": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    }))
    return KernelManager(kernel_name="gpviz-docs", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))


#: Jupyter widgets' output type: the page would need the widget manager, which mkdocs-jupyter loads from a CDN.
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _static(nb) -> None:
    """Makes an executed notebook static: widget outputs keep their text fallback (a progress bar's last
    line, the explorer's repr) and the widget state goes, so the page loads no widget manager from a CDN."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                data.pop(WIDGET_VIEW)


def _run_one(path: Path, out: Path) -> float:
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    work = out / f"work-{path.stem}"
    work.mkdir(parents=True, exist_ok=True)
    client = nbclient.NotebookClient(nb, km=_kernel_manager(out / f"kernels-{path.stem}"), kernel_name="gpviz-docs",
                                     timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(work)}})
    start = time.perf_counter()
    try:
        client.execute()
    except Exception as exc:  # CellExecutionError, a timeout, a dead kernel
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # the traceback's terminal colours
        raise PluginError(f"notebooks/{path.name} failed while building the docs: "
                          f"{type(exc).__name__}: {text[-2000:]}") from exc
    seconds = time.perf_counter() - start
    _static(nb)
    nbformat.write(nb, out / path.name)
    return seconds


def run_notebooks(paths: list[Path], out: Path, workers: int = 2) -> dict[str, float]:
    """Runs each notebook top to bottom and writes the executed copy to ``out/<name>``.

    Each runs in its own kernel with ``out/work-<stem>`` as its working folder (what a
    notebook saves lands there, not in the tree); ``workers`` kernels at a time (each on one
    thread: two halve the wait on CI's two cores), the longest notebooks first.

    Returns:
        Seconds each notebook took, by file name.

    Raises:
        PluginError: naming the (first) notebook that failed and its failing cell's error.
    """
    out.mkdir(parents=True, exist_ok=True)
    by_size = sorted(paths, key=lambda p: p.stat().st_size, reverse=True)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        seconds = dict(zip((p.name for p in by_size), pool.map(lambda p: _run_one(p, out), by_size)))
    return {p.name: seconds[p.name] for p in paths}


def readme_section(title: str) -> str:
    """The README's ``## title`` section, its heading included, up to the next ``## `` heading.

    Raises:
        ValueError: if the README has no such heading.
    """
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not m:
        raise ValueError(f"README.md has no section '## {title}' (docs/mkdocs_hooks.py takes it)")
    return m.group(0)


def _api_page(title: str, path: str) -> str:
    return f"# `{title}`\n\n::: {path}\n"


def on_config(config):
    """The navigation: home, getting started, the API pages, the notebooks, the architecture map, changes."""
    api = [{name: f"api/{name}.md"} for name in public_names()]
    api += [{module: f"api/{module}.md"} for module in PUBLIC_MODULES]
    config.nav = [
        {"Home": "index.md"},
        {"Getting started": "getting-started.md"},
        {"API reference": api},
        {"Notebooks": [{nb.stem: f"notebooks/{nb.name}"} for nb in notebooks()]},
        {"Architecture": "architecture.md"},
        {"Changelog": "changelog.md"},
    ]
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns the notebooks into pages
def on_files(files, config):
    """Adds the generated pages and the notebooks to the site's files."""
    pages = {f"api/{name}.md": _api_page(f"gpviz.{name}", path) for name, path in homes().items()}
    pages.update({f"api/{module}.md": _api_page(module, module) for module in PUBLIC_MODULES})
    pages["getting-started.md"] = INSTALL + "\n".join(readme_section(t) for t in README_SECTIONS)
    pages["changelog.md"] = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    mode = os.environ.get(NOTEBOOKS_ENV, "run")
    if mode not in ("run", "stored"):
        raise PluginError(f"{NOTEBOOKS_ENV} must be 'run' or 'stored', got {mode!r}")
    src = ROOT / "notebooks"
    if mode == "run":
        temp = Path(tempfile.mkdtemp(prefix="gpviz-docs-"))
        _TEMP.append(temp)
        src = temp / "notebooks"
        for name, seconds in run_notebooks(notebooks(), src).items():
            log.info("gpviz docs: ran notebooks/%s in %.1f s", name, seconds)
    for nb in notebooks():  # a plain file on disk: mkdocs-jupyter wraps only those
        files.append(File(f"notebooks/{nb.name}", src_dir=str(src.parent), dest_dir=config.site_dir,
                          use_directory_urls=config.use_directory_urls))
    return files


def on_post_build(config):
    """Removes the executed notebooks' temporary folder."""
    while _TEMP:
        shutil.rmtree(_TEMP.pop(), ignore_errors=True)


def on_build_error(error):
    """Removes it after a failed build too."""
    on_post_build(None)


def on_page_content(html, page, config, files):
    """The docstrings are written for Sphinx and for reading in source; the page shows only the code a role names."""
    return ROLE.sub("<code>", html)
