"""The cache's identity is what the sweep fits: two priors never share cells, the same sweep resumes anywhere.

Each sweep read through a shared ``cache_dir`` is compared with a fresh sweep of the same
factory without a cache (the reference), bit for bit.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch
from botorch.models import SingleTaskGP
from gpytorch.priors import GammaPrior
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpviz.errors import CacheWarning, InputError
from gpviz.sweep.cache import CACHE_FORMAT, sweep_identity
from gpviz.sweep.identity import content_digest
from gpviz.sweep.runner import cv_sweep
from tests.sweep.identity_specs import NUS, PRIORS, STYLES, factory, matern_gp
from tests.sweep.scale import assert_same_sweep, make_data

FIT = {"optimizer_kwargs": {"options": {"maxiter": 20}}}
SIZES = [5, 7]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data():
    return make_data(12, d=2, seed=3)


@pytest.fixture(scope="module")
def reference(data):
    """Each prior's sweep without a cache: what a sweep with that prior must give."""
    X, Y = data
    return {p: cv_sweep(factory("closure", p), X, Y, SIZES, 1, progress=False, fit_kwargs=FIT) for p in PRIORS}


def test_the_two_priors_fit_differently(reference):
    # else the tests below could not tell a served cell from a fitted one
    a, b = (reference[p].scores["mse"].to_numpy() for p in PRIORS)
    assert (a != b).all()


def _module_factory(tmp_path: Path, params) -> object:
    """A factory reading a module-level ``LS_PRIOR``, the module written with ``params`` and (re)loaded."""
    (tmp_path / "study_priors.py").write_text(textwrap.dedent(f"""
        from gpytorch.priors import GammaPrior
        from tests.sweep.identity_specs import matern_gp
        LS_PRIOR = GammaPrior{tuple(params)!r}
        def make_model(tx, ty):
            return matern_gp(tx, ty, LS_PRIOR)
    """))
    sys.path.insert(0, str(tmp_path))
    try:
        importlib.invalidate_caches()
        module = importlib.reload(sys.modules["study_priors"]) if "study_priors" in sys.modules \
            else importlib.import_module("study_priors")
    finally:
        sys.path.remove(str(tmp_path))
    return module.make_model


@pytest.mark.parametrize("style", ["closure", "default", "object", "partial", "module"])
def test_two_priors_on_one_cache_dir_each_get_their_own_fit(style, data, reference, tmp_path):
    X, Y = data
    cache = tmp_path / "cells"
    make = (lambda p: _module_factory(tmp_path, p)) if style == "module" else (lambda p: factory(style, p))
    try:
        first = cv_sweep(make(PRIORS[0]), X, Y, SIZES, 1, progress=False, fit_kwargs=FIT, cache_dir=cache)
        second = cv_sweep(make(PRIORS[1]), X, Y, SIZES, 1, progress=False, fit_kwargs=FIT, cache_dir=cache)
        assert_same_sweep(reference[PRIORS[0]], first, cached=[False, False])
        assert_same_sweep(reference[PRIORS[1]], second, cached=[False, False])  # its own fit, not the first's
        assert len(list(cache.glob("sweep-*/manifest.json"))) == 2
        # and each resumes its own cells
        for p in PRIORS:
            again = cv_sweep(make(p), X, Y, SIZES, 1, progress=False, fit_kwargs=FIT, cache_dir=cache)
            assert_same_sweep(reference[p], again, cached=[True, True])
    finally:
        sys.modules.pop("study_priors", None)


def test_a_factory_that_picks_its_prior_by_size_is_matched_cell_by_cell(data, reference, tmp_path):
    X, Y = data
    cache = tmp_path / "cells"
    cv_sweep(factory("closure", PRIORS[0]), X, Y, SIZES, 1, progress=False, fit_kwargs=FIT, cache_dir=cache)

    def by_size(tx, ty):  # the same model as the first sweep's on small subsets, another prior at n=7
        return matern_gp(tx, ty, GammaPrior(*(PRIORS[1] if tx.shape[0] >= 7 else PRIORS[0])))

    with pytest.warns(CacheWarning, match=r"cell n=7, repeat 0 .* was fit for another model .* refit"):
        mixed = cv_sweep(by_size, X, Y, SIZES, 1, progress=False, fit_kwargs=FIT, cache_dir=cache)
    assert mixed.scores["cached"].tolist() == [True, False]
    ref = cv_sweep(by_size, X, Y, SIZES, 1, progress=False, fit_kwargs=FIT)
    assert_same_sweep(ref, mixed, cached=[True, False])
    assert mixed.scores["mse"].iloc[1] == reference[PRIORS[1]].scores["mse"].iloc[1]


def test_the_manifest_says_what_the_namespace_holds(data, tmp_path):
    X, Y = data
    cv_sweep(factory("partial", PRIORS[0]), X, Y, [4], 1, progress=False, fit_kwargs=FIT, cache_dir=tmp_path)
    (manifest,) = tmp_path.glob("sweep-*/manifest.json")
    text = json.loads(manifest.read_text())
    assert text["format"] == CACHE_FORMAT == 3
    holds = text["holds"]
    assert holds["model"] == "botorch.models.gp_regression.SingleTaskGP"
    # each prior with its mode, by hand: Gamma(3, 6) peaks at (3 - 1) / 6
    assert "covar_module.base_kernel.lengthscale: GammaPrior(concentration=3, rate=6), mode 0.3333" in holds["priors"]
    assert holds["fit_kwargs"] == FIT
    assert holds["mll_cls"] == "gpytorch.mlls.exact_marginal_log_likelihood.ExactMarginalLogLikelihood"
    assert {"torch", "gpytorch", "botorch"} <= set(text["versions"])


RESUME = """
import json, sys, torch
torch.set_default_dtype(torch.float64)
from botorch.models import SingleTaskGP
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.priors import GammaPrior
import gpviz
from tests.sweep.scale import make_data

X, Y = make_data(12, d=2, seed=3)
history = []

def make_model(tx, ty):
    priors = [GammaPrior(c, r) for c, r in [(3.0, 6.0), (2.0, 4.0)]]  # a list comprehension
    pick = lambda ps: ps[0]                                             # a lambda

    def kernel():                                                       # a nested function
        batch = tx.shape[:-2]
        return ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=tx.shape[-1], batch_shape=batch,
                                        lengthscale_prior=pick(priors)), batch_shape=batch)
    return SingleTaskGP(tx, ty, covar_module=kernel())

fit = {"optimizer_kwargs": {"options": {"maxiter": 20}, "callback": lambda *state: history.append(1)}}
sw = gpviz.cv_sweep(make_model, X, Y, [4, 6], 1, progress=False, fit_kwargs=fit, cache_dir=sys.argv[1])
print(json.dumps({"cached": sw.scores["cached"].tolist(), "mse": sw.scores["mse"].tolist(),
                  "status": sw.scores["status"].tolist(), "callback_calls": len(history)}))
"""


def _run(script: Path, *args, hashseed: str) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_rerun_in_a_fresh_process_resumes_with_lambdas_comprehensions_and_a_callback(tmp_path):
    script = tmp_path / "study.py"
    script.write_text(RESUME)
    first = _run(script, tmp_path / "cells", hashseed="1")
    assert first["cached"] == [False, False] and first["status"] == ["ok", "ok"] and first["callback_calls"] > 0
    second = _run(script, tmp_path / "cells", hashseed="2")
    assert second["cached"] == [True, True] and second["mse"] == first["mse"]


def test_a_fit_argument_that_cannot_be_read_by_content_is_an_input_error_naming_it(data, tmp_path):
    X, Y = data
    lock = threading.Lock()

    def callback(params, result):
        with lock:
            pass

    with pytest.raises(InputError, match=r"fit_kwargs\['optimizer_kwargs'\]\['callback'\]\.__closure__\[0\] .*"
                                         r"\(_thread\.lock\).*cache_dir=None"):
        cv_sweep(SingleTaskGP, X, Y, [4], 1, progress=False, cache_dir=tmp_path,
                 fit_kwargs={"optimizer_kwargs": {"callback": callback}})
    with open(tmp_path / "log.txt", "w") as log:
        with pytest.raises(InputError, match=r"fit_kwargs\['log'\] is an open file"):
            sweep_identity(X, Y, SingleTaskGP, {"log": log}, object, True)


def test_a_namespace_of_an_older_format_is_never_read_silently(data, reference, tmp_path):
    X, Y = data
    cache = tmp_path / "cells"
    cv_sweep(factory("closure", PRIORS[0]), X, Y, SIZES, 1, progress=False, fit_kwargs=FIT, cache_dir=cache)
    (folder,) = cache.glob("sweep-*")
    old = cache / "sweep-0123456789abcdef"  # as format 2 left it: its own key, an older manifest, finished cells
    folder.rename(old)
    manifest = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**manifest, "format": 2}))
    with pytest.warns(CacheWarning, match=r"holds 1 sweep folder\(s\) of an older gpviz cache format \(format 2\).*"
                                          r"not read .*fit anew .*sweep-0123456789abcdef"):
        again = cv_sweep(factory("closure", PRIORS[0]), X, Y, SIZES, 1, progress=False, fit_kwargs=FIT,
                         cache_dir=cache)
    assert_same_sweep(reference[PRIORS[0]], again, cached=[False, False])


# -- the identity itself: equal exactly when the built models and fit arguments are ----------------------------

SPEC = st.tuples(st.sampled_from(STYLES), st.sampled_from(PRIORS), st.sampled_from(NUS),
                 st.sampled_from([10, 20]))


def _identity(data, spec) -> dict:
    style, params, nu, maxiter = spec
    X, Y = data
    fit = {"optimizer_kwargs": {"options": {"maxiter": maxiter}}}
    return sweep_identity(X, Y, factory(style, params, nu), fit, object, True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=SPEC, b=SPEC)
def test_two_factories_share_a_namespace_exactly_when_their_models_and_fit_arguments_are_equal(data, a, b):
    same = a[1:] == b[1:]  # prior, nu and fit arguments: what the fit sees; the style is how it was written
    assert (_identity(data, a) == _identity(data, b)) == same


PRINT_IDS = """
import json, sys
import torch
torch.set_default_dtype(torch.float64)
from tests.sweep.identity_specs import NUS, PRIORS, STYLES, factory
from tests.sweep.scale import make_data
from gpviz.sweep.cache import sweep_identity
X, Y = make_data(12, d=2, seed=3)
out = {}
for style in STYLES:
    for params in PRIORS:
        fit = {"optimizer_kwargs": {"options": {"maxiter": 10}, "callback": lambda p, r: None}}
        out[f"{style} {params}"] = sweep_identity(X, Y, factory(style, params, 1.5), fit, object, True)
print(json.dumps(out, sort_keys=True))
"""


def test_identities_are_the_same_in_every_process(tmp_path):
    script = tmp_path / "ids.py"
    script.write_text(PRINT_IDS)
    one, two = (_run(script, hashseed=s) for s in ("0", "12345"))
    assert one == two
    by_prior = {}
    for name, ident in one.items():
        by_prior.setdefault(name.split(" ", 1)[1], set()).add(json.dumps(ident, sort_keys=True))
    assert len(by_prior) == 2 and all(len(v) == 1 for v in by_prior.values())  # every style of one prior agrees
    assert len(set.union(*by_prior.values())) == 2                              # the two priors do not


def test_content_digest_reads_past_reprs():
    # a prior prints GammaPrior() whatever its parameters; a long tensor prints with "..."
    assert repr(GammaPrior(3.0, 6.0)) == repr(GammaPrior(1.125, 0.375))
    assert content_digest(GammaPrior(3.0, 6.0)) != content_digest(GammaPrior(1.125, 0.375))
    a, b = torch.zeros(5000), torch.zeros(5000)
    b[2500] = 1.0
    assert repr(a) == repr(b) and content_digest(a) != content_digest(b)
    assert content_digest({"x": 1, "y": [1.0, "a"]}) == content_digest({"y": [1.0, "a"], "x": 1})
    assert content_digest(1) != content_digest(1.0) != content_digest(True)
