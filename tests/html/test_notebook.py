"""Which notebook output carries gpviz's scripts: once per session, again when its cell reruns or is deleted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpviz.errors import InputError
from gpviz.html import notebook as nb
from gpviz.html.assets import asset_html
from tests.extras import need

REPO = Path(__file__).resolve().parents[2]


def test_the_first_output_carries_each_asset_and_later_ones_reuse_it():
    c = nb.Carriers()
    assert c.to_carry(("core",), nb.Request("m1", "cell-a")) == ("core",)
    assert c.to_carry(("core",), nb.Request("m1", "cell-a")) == ()  # a second figure in the same run
    assert c.to_carry(("time", "core"), nb.Request("m2", "cell-b")) == ("time",)  # core is on the page
    assert c.to_carry(("time", "core"), nb.Request("m3", "cell-c")) == ()


def test_a_carrier_cell_that_runs_again_or_is_deleted_hands_its_assets_on():
    c = nb.Carriers()
    c.to_carry(("core",), nb.Request("m1", "cell-a"))
    # cell-a runs again: the front end clears its outputs, so its new output must carry the scripts again
    assert c.to_carry(("core",), nb.Request("m2", "cell-a")) == ("core",)
    assert c.to_carry(("core",), nb.Request("m3", "cell-b")) == ()
    # cell-a is deleted: the next output carries them
    assert c.to_carry(("core",), nb.Request("m4", "cell-c", deleted=("cell-a",))) == ("core",)
    assert c.by_asset["core"].cell_id == "cell-c"


def test_without_cell_ids_the_session_s_first_output_carries():
    c = nb.Carriers()  # nbclient sends no cellId
    assert c.to_carry(("core",), nb.Request("m1", None)) == ("core",)
    assert c.to_carry(("core",), nb.Request("m2", None)) == ()


def test_outside_a_kernel_every_output_is_self_contained():
    assert nb.kernel_request() is None  # pytest runs no IPython kernel
    assert nb.assets_to_carry(("time", "core")) == ("time", "core")
    assert nb.assets_to_carry(("core",)) == ("core",)
    with pytest.raises(InputError, match="unknown page asset 'css'"):
        asset_html("css")


@pytest.mark.slow
def test_a_real_kernel_carries_the_scripts_once_and_again_when_their_cell_reruns(tmp_path):
    """Execute requests as JupyterLab sends them (``cellId``, ``deletedCells``) to a real IPython kernel."""
    need("ipykernel", "test")
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")  # this interpreter (jupyter_client's native kernel)
    try:
        updates: list[str] = []  # what display updates replaced outputs with

        def run(code: str, cell: str, deleted=()) -> list[str]:
            msg = kc.session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                                     "user_expressions": {}, "allow_stdin": False},
                                 metadata={"cellId": cell, "deletedCells": list(deleted)})
            kc.shell_channel.send(msg)
            html = []
            while True:
                out = kc.get_iopub_msg(timeout=120)
                if out["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
                    continue
                if out["msg_type"] == "error":
                    raise AssertionError("\n".join(out["content"]["traceback"]))
                if out["msg_type"] in ("display_data", "execute_result"):
                    html.append(out["content"]["data"].get("text/html", ""))
                if out["msg_type"] == "update_display_data":
                    updates.append(out["content"]["data"].get("text/html", ""))
                if out["msg_type"] == "status" and out["content"]["execution_state"] == "idle":
                    return html

        run(f"import sys; sys.path.insert(0, {json.dumps(str(REPO))})\n"  # the gpviz under test
            "import gpytorch.kernels as gk, gpviz\nk = gk.RBFKernel()", "setup")
        carries = lambda html: ["var VERSION = " in h for h in html]  # noqa: E731
        assert carries(run("gpviz.render(k)", "a")) == [True]
        assert carries(run("gpviz.render(k)", "b")) == [False]
        assert carries(run("from IPython.display import display\ndisplay(gpviz.render(k)); gpviz.render(k)",
                           "c")) == [False, False]
        assert carries(run("gpviz.render(k)", "a")) == [True]  # its cell ran again: its output was replaced
        assert carries(run("gpviz.render(k)", "d", deleted=["a"])) == [True]
        assert carries(run("gpviz.render(k)", "e")) == [False]
        # a traced fit shown live is one output (updated in place), and so is showing it after the fit
        run("import torch\nfrom botorch.models import SingleTaskGP\nfrom botorch.fit import fit_gpytorch_mll\n"
            "from gpytorch.mlls import ExactMarginalLogLikelihood\ntorch.set_default_dtype(torch.float64)\n"
            "X = torch.rand(6, 1, generator=torch.Generator().manual_seed(0)); m = SingleTaskGP(X, X.sin())\n"
            "mll = ExactMarginalLogLikelihood(m.likelihood, m)", "fit-setup")
        live = run("with gpviz.trace_fit(mll) as tracer:\n    live = tracer.show()\n"
                   "    fit_gpytorch_mll(mll, optimizer_kwargs={'options': {'maxiter': 5}})\nlive", "fit")
        assert len(live) == 1 and "var r2p = (function" in live[0] and "fit ended" not in live[0]
        # the last update is the finished fit's page, with the time control the first display brought
        assert "fit ended" in updates[-1] and "var r2p = (function" in updates[-1]
        assert all("var r2p = (function" not in u for u in updates[:-1])  # the page has it meanwhile
        assert len(run("tracer.show()", "after")) == 1
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
