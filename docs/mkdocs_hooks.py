"""mkdocs hooks (mkdocs.yml's ``hooks:``): the pages that are made from the repository, not written twice.

- one API reference page per name in ``gpviz.__all__`` (read from ``gpviz/__init__.py`` as
  text, so building the site imports no torch), each rendered by mkdocstrings from the
  docstrings, plus the public modules handler authors and testers import;
- the getting-started page: an install paragraph, then sections of README.md taken by
  their headings (a renamed heading fails the build instead of dropping the section);
- the changelog page: CHANGELOG.md;
- one page per notebook of ``notebooks/`` (mkdocs-jupyter, not executed: the notebooks
  are stored without outputs and run by tests/test_notebooks.py);
- the docstrings' Sphinx roles (``:func:`x```, ``:class:`~x```) shown as the code they name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

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
    for nb in notebooks():  # a plain file under the repository root: mkdocs-jupyter wraps only those
        files.append(File(f"notebooks/{nb.name}", src_dir=str(ROOT), dest_dir=config.site_dir,
                          use_directory_urls=config.use_directory_urls))
    return files


def on_page_content(html, page, config, files):
    """The docstrings are written for Sphinx and for reading in source; the page shows only the code a role names."""
    return ROLE.sub("<code>", html)
