"""The wheel a user gets from ``pip install gpviz``: built, installed outside the source tree, and used.

The main venv holds gpviz in editable mode, which would hide a wheel that lacks a file
(package data is the classic way a wheel breaks). The slow test builds the sdist and,
from it, the wheel; installs the wheel into a fresh venv that sees the main venv's
torch/gpytorch/botorch through a plain path line (not a site dir: the editable
install's import hook is not run there); and runs a smoke script with ``python -I``
from a temp folder. Its references are read without gpviz: the repository's
``gpviz/static`` files and rows2prose's own browser bundle.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from tests.extras import need

REPO = Path(__file__).resolve().parent.parent
SMOKE = '''
import importlib.metadata, json, sys
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood
import gpviz

torch.manual_seed(0)
X = torch.rand(8, 2, dtype=torch.float64)
Y = torch.sin(6 * X[:, :1]) + 0.1 * torch.randn(8, 1, dtype=torch.float64)
model = SingleTaskGP(X, Y)
mll = ExactMarginalLogLikelihood(model.likelihood, model)
with gpviz.trace_fit(mll, feature_names=["a", "b"]) as tracer:
    fit_gpytorch_mll(mll)
gpviz.render(model, feature_names=["a", "b"]).save("model.html")
tracer.render().save("fit.html")
print(json.dumps({"file": gpviz.__file__, "version": gpviz.__version__,
                  "metadata": importlib.metadata.version("gpviz"), "path": sys.path}))
'''


def _source_version() -> str:
    """``__version__`` as written in ``gpviz/__init__.py`` (read as text, not imported)."""
    found = re.findall(r'^__version__ = "([^"]+)"$', (REPO / "gpviz" / "__init__.py").read_text(), re.M)
    assert len(found) == 1, found
    return found[0]


def test_the_version_has_one_source():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "gpviz.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", _source_version())


def test_py_typed_and_static_files_are_package_data():
    assert (REPO / "gpviz" / "py.typed").is_file()
    cfg = (REPO / "setup.cfg").read_text()
    assert re.search(r"^gpviz = py\.typed$", cfg, re.M) and re.search(r"^gpviz\.static = \*\.js, \*\.css$", cfg, re.M)


def test_the_changelog_has_the_current_version_and_an_unreleased_section():
    text = (REPO / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert headings[0] == "Unreleased" and _source_version() in headings, headings
    assert "keepachangelog.com" in text and "semver.org" in text


def _run(cmd: list[str], cwd: Path, timeout: int = 300) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
def test_the_wheel_installed_outside_the_tree_renders_pages_with_their_assets(tmp_path):
    need("build", "test")
    version = _source_version()
    dist = tmp_path / "dist"
    # sdist first, then the wheel from the unpacked sdist (python -m build's default): a file the
    # sdist forgets is missing from the wheel too, and no stale build/ folder of the tree leaks in.
    # --no-isolation: run.sh's first step installs the build backend (setuptools, wheel) in this venv.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(REPO)], cwd=tmp_path)
    wheels = sorted(dist.glob("*.whl"))
    assert [w.name for w in wheels] == [f"gpviz-{version}-py3-none-any.whl"]
    with zipfile.ZipFile(wheels[0]) as z:
        names = set(z.namelist())
        metadata = z.read(f"gpviz-{version}.dist-info/METADATA").decode()
    assert {"gpviz/py.typed", "gpviz/static/gpviz.js", "gpviz/static/gpviz.css"} <= names
    assert f"\nVersion: {version}\n" in metadata and "Classifier: Typing :: Typed" in metadata
    assert not any(n.startswith("tests/") for n in names)

    env = tmp_path / "env"
    venv.create(env, with_pip=False)  # this venv's pip installs into it (--python): no ensurepip, ~10 s less
    py = env / "bin" / "python"
    # pip runs before the main venv is visible to the new one, so it can neither skip nor uninstall the
    # main venv's editable gpviz
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index",
          "--disable-pip-version-check", "--force-reinstall", str(wheels[0])], cwd=tmp_path)
    site = Path(_run([str(py), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).strip())
    (site / "main_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "work"
    work.mkdir()
    (work / "smoke.py").write_text(SMOKE)
    out = json.loads(_run([str(py), "-I", "smoke.py"], cwd=work).strip().splitlines()[-1])
    assert Path(out["file"]).is_relative_to(site), out["file"]
    assert out["version"] == out["metadata"] == version
    assert not any(Path(p).resolve() == REPO for p in out["path"] if p)

    gpviz_js = (REPO / "gpviz" / "static" / "gpviz.js").read_text("utf-8")
    gpviz_css = (REPO / "gpviz" / "static" / "gpviz.css").read_text("utf-8")
    r2p_dir = Path(sysconfig.get_paths()["purelib"]) / "rows2prose" / "package_data"
    r2p_js = (r2p_dir / "rows2prose.browser.js").read_text("utf-8")
    d3_js = (r2p_dir / "d3.min.js").read_text("utf-8")
    model_page = (work / "model.html").read_text("utf-8")
    fit_page = (work / "fit.html").read_text("utf-8")
    for page in (model_page, fit_page):
        assert gpviz_js in page and gpviz_css in page
    # the fit's time control is rows2prose's bundle (without its d3 copy); a model page needs none
    assert r2p_js.strip()[:5000] in fit_page and r2p_js.strip()[-5000:] in fit_page
    assert r2p_js.strip()[:5000] not in model_page and d3_js[:2000] not in fit_page

    for cmd in ([str(env / "bin" / "gpviz"), "--version"], [str(py), "-I", "-m", "gpviz", "--version"]):
        assert _run(cmd, cwd=work).strip() == f"gpviz {version}"
