"""Every notebook in notebooks/ runs top to bottom in a kernel of this interpreter, without errors."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from tests.extras import need

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
#: Notebooks the tour ships; each must exist (the test fails if one goes missing).
TOUR = {"quickstart.ipynb", "cv_sweep.ipynb", "prior_strength.ipynb", "batched_training.ipynb",
        "custom_kernels.ipynb", "trace_fit_live.ipynb", "ax.ipynb"}


def test_the_tour_notebooks_exist_and_are_stored_without_outputs():
    assert TOUR <= {p.name for p in NOTEBOOKS}
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell.get("outputs") == [] and cell.get("execution_count") is None, path.name


@pytest.fixture(scope="module")
def kernel_manager_factory(tmp_path_factory):
    """Kernels that run this interpreter (the venv), wherever the tests run."""
    need("ipykernel", "test")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    kernels = tmp_path_factory.mktemp("kernels")
    spec = kernels / "gpviz-nb"
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "gpviz notebooks", "language": "python",
        # the notebooks' tiny matrices run faster on one thread (and CI has 2 cores)
        "env": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    }))
    ksm = KernelSpecManager(kernel_dirs=[str(kernels)])
    return lambda: KernelManager(kernel_name="gpviz-nb", kernel_spec_manager=ksm)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, kernel_manager_factory, tmp_path):
    nbformat = need("nbformat", "test")
    nbclient = need("nbclient", "test")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, km=kernel_manager_factory(), kernel_name="gpviz-nb", timeout=240,
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    seconds = time.perf_counter() - start
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # a notebook that teaches must not show a gpviz warning about its own example (e.g. a failed sweep cell)
    streams = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "GpvizWarning" not in streams, streams[-2000:]
    # every notebook shows something gpviz drew
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("gpviz" in h for h in html), path.name
    print(f"{path.name}: {seconds:.1f} s")
