"""Every BoTorch, GPyTorch and scipy internal gpviz relies on, each with a self-check.

gpviz reads a fit without changing it. To do that with no extra model evaluation
it needs a few things no public API gives:

- **frames**: which attempt of ``_fit_fallback`` is running, which member of the
  batched L-BFGS-B called back, how many iterations and evaluations the joint
  scipy L-BFGS-B made: read from the optimizer's own stack frames
  (``sys._getframe``) by the code objects of those functions;
- **patches**: for the duration of a ``trace_fit`` block, three BoTorch functions
  are swapped for wrappers that hand gpviz a zero-cost iteration marker
  (``minimize_with_timeout``, ``fmin_l_bfgs_b_batched``, ``torch_minimize``); for
  a ``trace_fits`` block, the two routines ``fit_gpytorch_mll`` hands each MLL to
  (``_fit_fallback``, ``_fit_fallback_approximate``) are wrapped so that every fit,
  whoever calls it, gets a tracer. Each works only because its caller looks the
  name up in a module at call time;
- **helpers**: scipy's ``_wrap_callback`` (it makes scipy pass the live
  ``OptimizeResult`` to a callback), the state layout of BoTorch's batched closure
  (``_trailing_sizes``), GPyTorch's private setters (``_set_lengthscale`` ...) that
  prior setting closures call, and a few private model attributes
  (``_num_outputs``, ``_task_feature``, ``_output_tasks``).

:data:`HOOKS` lists every point with what is lost without it. :func:`check_hooks`
verifies each one (the name exists, the caller still looks it up, the frame still
has the locals gpviz reads); the first trace of a process runs it and warns once
(:class:`~gpviz.errors.TracerWarning`) for any point that moved, naming the BoTorch
version and what will still be recorded. A moved point is skipped, never fatal: the
fit runs untouched. Nothing else in gpviz names these internals (a test checks).

It is one module of about 500 lines on purpose: every foreign internal in one
place, so that a BoTorch upgrade is checked by reading one file.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
import threading
import warnings
from dataclasses import dataclass
from types import FrameType
from typing import Any, Callable, Protocol

import numpy as np
from botorch.optim.closures import get_loss_closure

from gpviz.errors import TracerWarning

# --------------------------------------------------------------------------------------
# The hook points
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HookPoint:
    """One internal gpviz relies on.

    Attributes:
        key: Short name used in warnings and by :data:`MISSING`.
        module: Module that defines it.
        attr: Its name there (``Class.method`` for a method).
        kind: ``"frame"`` (a function whose frame locals are read), ``"patch"``
            (a function swapped during ``trace_fit``), or ``"helper"`` (called or read).
        needs: Frame locals read (``frame``), or attribute names the object must have.
        caller: ``(module, function)`` that must look ``attr`` up at call time (``patch``).
        lost: What gpviz does not record (or show) without it.
    """

    key: str
    module: str
    attr: str
    kind: str
    needs: tuple[str, ...] = ()
    caller: tuple[str, str] | None = None
    lost: str = ""


HOOKS: tuple[HookPoint, ...] = (
    HookPoint("fit_fallback", "botorch.fit", "_fit_fallback", "frame", ("attempt", "mll"),
              lost="retries are not told apart (i_attempt stays 0) and FitTracer() without an MLL cannot bind"),
    HookPoint("batched_lbfgsb_frame", "botorch.optim.batched_lbfgs_b", "_minimize_lbfgsb", "frame",
              ("i", "states"),
              lost="the callback form cannot tell which member of a batched fit stepped (no per-member rows)"),
    HookPoint("scipy_lbfgsb_frame", "scipy.optimize._lbfgsb_py", "_minimize_lbfgsb", "frame",
              ("n_iterations", "sf"), lost="the callback form records no evaluation counts on the joint scipy path"),
    HookPoint("fit_scipy_frame", "botorch.optim.fit", "fit_gpytorch_mll_scipy", "frame", ("mll",),
              lost="the callback form cannot find the MLL being fit on the scipy path"),
    HookPoint("fit_torch_frame", "botorch.optim.fit", "fit_gpytorch_mll_torch", "frame", ("mll",),
              lost="the callback form cannot find the MLL being fit on the torch path"),
    HookPoint("fit_independent_frame", "botorch.optim.fit", "_fit_gpytorch_mll_scipy_independent", "frame",
              ("mll",), lost="the callback form cannot find the MLL of a batched (per-member) fit"),
    HookPoint("minimize_with_timeout", "botorch.optim.core", "minimize_with_timeout", "patch",
              caller=("botorch.optim.core", "scipy_minimize"),
              lost="trace_fit records no steps on the joint scipy path (single models, summed loss)"),
    HookPoint("fmin_l_bfgs_b_batched", "botorch.optim.batched_lbfgs_b", "fmin_l_bfgs_b_batched", "patch",
              caller=("botorch.optim.fit", "_fit_gpytorch_mll_scipy_independent"),
              lost="trace_fit records no per-member steps of batched models (cross-validation folds)"),
    HookPoint("torch_minimize", "botorch.optim.fit", "torch_minimize", "patch",
              caller=("botorch.optim.fit", "fit_gpytorch_mll_torch"),
              lost="trace_fit records no steps of fit_gpytorch_mll_torch"),
    HookPoint("fit_fallback_entry", "botorch.fit", "_fit_fallback", "patch",
              caller=("botorch.fit", "fit_gpytorch_mll"),
              lost="trace_fits records no fits of exact GPs (the MLLs fit_gpytorch_mll hands to _fit_fallback)"),
    HookPoint("fit_fallback_approximate_entry", "botorch.fit", "_fit_fallback_approximate", "patch",
              caller=("botorch.fit", "fit_gpytorch_mll"),
              lost="trace_fits records no fits of approximate (variational) GPs"),
    HookPoint("wrap_callback", "scipy.optimize._optimize", "_wrap_callback", "helper",
              lost="trace_fit records no per-member steps of batched models (cross-validation folds)"),
    HookPoint("batched_closure_layout", "botorch.optim.closures.core", "BatchedNDarrayOptimizationClosure.__init__",
              "helper", ("_trailing_sizes", "batch_shape", "parameters"),
              lost="per-member steps are read from the model instead of the optimizer state (slower, same values)"),
)

#: Keys of hook points to treat as missing (tests simulate a BoTorch that moved them).
MISSING: set[str] = set()


def _resolve(module: str, attr: str):
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _code_of(point: HookPoint):
    """The code object of a ``frame`` point's function, or None if it moved."""
    if point.key in MISSING:
        return None
    try:
        code = _resolve(point.module, point.attr).__code__
    except Exception:  # another BoTorch/scipy version
        return None
    names = set(code.co_varnames) | set(code.co_cellvars)
    return code if all(n in names for n in point.needs) else None


def _patchable(point: HookPoint) -> bool:
    """A ``patch`` point exists and its caller still looks it up by name at call time."""
    if point.key in MISSING or point.caller is None:  # a patch point without a caller is malformed
        return False
    try:
        _resolve(point.module, point.attr)
        caller = _resolve(*point.caller)
        code = getattr(caller, "__code__", None)
    except Exception:
        return False
    # a global or a function-local `from module import attr` both name it in co_names
    return code is not None and point.attr in code.co_names


def _helper_ok(point: HookPoint) -> bool:
    if point.key in MISSING:
        return False
    try:
        obj = _resolve(point.module, point.attr)
    except Exception:
        return False
    if point.needs:
        try:
            src = inspect.getsource(obj)
        except (OSError, TypeError):
            return False
        return all(f"self.{n}" in src for n in point.needs)
    return True


def check_hooks() -> dict[str, bool]:
    """Verifies every hook point: key -> whether it is usable in the installed BoTorch/scipy."""
    out = {}
    for p in HOOKS:
        if p.kind == "frame":
            out[p.key] = _code_of(p) is not None
        elif p.kind == "patch":
            out[p.key] = _patchable(p)
        else:
            out[p.key] = _helper_ok(p)
    return out


def _versions() -> str:
    parts = []
    for name in ("botorch", "gpytorch", "scipy"):
        mod = sys.modules.get(name)
        parts.append(f"{name} {getattr(mod, '__version__', '?')}")
    return ", ".join(parts)


_CHECKED: dict[str, bool] | None = None


def verified() -> dict[str, bool]:
    """:func:`check_hooks`, run once per process (again after :data:`MISSING` changes); warns once per result.

    Each hook point that moved gives one :class:`~gpviz.errors.TracerWarning` naming
    the BoTorch version, the point, and what will still be recorded.
    """
    global _CHECKED, _CODES, _CHECKED_MISSING
    if _CHECKED is None or _CHECKED_MISSING != frozenset(MISSING):
        _CHECKED = check_hooks()
        _CHECKED_MISSING = frozenset(MISSING)
        _CODES = None
        moved = [p for p in HOOKS if not _CHECKED[p.key]]
        if moved:
            lines = "; ".join(f"{p.module}.{p.attr} ({p.kind}): {p.lost}" for p in moved)
            warnings.warn(f"gpviz's fit tracer does not recognize {len(moved)} BoTorch/scipy internal(s) in "
                          f"{_versions()}: {lines}. Everything else is still recorded (losses and parameter "
                          f"values at each evaluation the fit makes); the fit itself runs untouched.",
                          TracerWarning, stacklevel=3)
    return _CHECKED


_CHECKED_MISSING: frozenset = frozenset()

# --------------------------------------------------------------------------------------
# Frames: where are we in BoTorch's fit?
# --------------------------------------------------------------------------------------


@dataclass
class FitContext:
    """What the stack says about the optimizer call in progress."""

    mll: object = None
    attempt: int | None = None
    member: int | None = None        # batched L-BFGS-B: the member calling back
    member_loss: float | None = None
    member_step: int | None = None
    member_evals: int | None = None
    scipy_step: int | None = None    # joint scipy L-BFGS-B: iterations and evaluations so far
    scipy_evals: int | None = None
    states: list | None = None       # batched L-BFGS-B: the per-member optimizer states


_CODES: dict[str, object] | None = None


def _codes() -> dict[str, object]:
    global _CODES
    if _CODES is None:
        _CODES = {p.key: _code_of(p) for p in HOOKS if p.kind == "frame"}
    return _CODES


def fit_context(max_depth: int = 80) -> FitContext:
    """Walks up the stack from the caller and reads BoTorch's and scipy's optimizer frames."""
    codes = _codes()
    fallback, batched, scipy_lbfgsb = codes["fit_fallback"], codes["batched_lbfgsb_frame"], codes["scipy_lbfgsb_frame"]
    fit_codes = {codes[k] for k in ("fit_scipy_frame", "fit_torch_frame", "fit_independent_frame")} - {None}
    ctx = FitContext()
    f: FrameType | None = sys._getframe(1)
    depth = 0
    while f is not None and depth < max_depth:
        code = f.f_code
        if code is batched and batched is not None and ctx.member is None:
            loc = f.f_locals
            i, states = loc.get("i"), loc.get("states")
            if i is not None and states is not None:
                s = states[int(i)]
                ctx.member = int(i)
                ctx.member_loss = float(s.f)
                ctx.member_step = int(s.n_iterations)
                ctx.member_evals = int(s.fun_calls)
                ctx.states = states
        elif code is scipy_lbfgsb and scipy_lbfgsb is not None and ctx.scipy_step is None:
            loc = f.f_locals
            ctx.scipy_step = loc.get("n_iterations")
            ctx.scipy_evals = getattr(loc.get("sf"), "nfev", None)
        elif code is fallback and fallback is not None:
            loc = f.f_locals
            ctx.attempt = loc.get("attempt")
            if ctx.mll is None:
                ctx.mll = loc.get("mll")
            break
        elif code in fit_codes and ctx.mll is None:
            ctx.mll = f.f_locals.get("mll")
        f = f.f_back
        depth += 1
    return ctx


# --------------------------------------------------------------------------------------
# Patches: zero-cost iteration markers for the context-manager form
# --------------------------------------------------------------------------------------


class Listener(Protocol):
    """What a recorder gives the patches (``gpviz.trace.recorder.TraceRecorder``; not on the public ``FitTracer``)."""

    def hook_matches(self, ctx: FitContext) -> bool: ...

    def hook_begin_run(self, ctx: FitContext, closure) -> None: ...

    def hook_scipy_step(self, xk) -> None: ...

    def hook_batched_step(self, result) -> None: ...

    def hook_torch_step(self, parameters, result) -> None: ...

    def hook_reset_run(self, closure) -> None: ...


_PATCH_LOCK = threading.RLock()
_ACTIVE: list = []
_ORIGINALS: dict[str, tuple[object, str, Callable[..., Any]]] = {}  # key -> (owner, attribute, original)
_LOCAL = threading.local()  # per thread: listeners of each optimizer run in progress (innermost last)


def _runs() -> list[list]:
    runs = getattr(_LOCAL, "runs", None)
    if runs is None:
        runs = _LOCAL.runs = []
    return runs


def _contained(fn, *args):
    """Calls a listener; its errors are its own (it warns itself) and never reach the fit."""
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - a tracer bug must not abort a user's fit
        return None


@contextlib.contextmanager
def _run(closure=None):
    """An optimizer run: one stack walk finds the MLL and attempt, for the whole run."""
    try:
        ctx = fit_context()
    except Exception:  # noqa: BLE001 - no context: nothing is matched, the fit runs untouched
        ctx = FitContext()
    for tr in list(_ACTIVE):
        _contained(tr.hook_reset_run, closure)
    mine = [tr for tr in list(_ACTIVE) if _contained(tr.hook_matches, ctx)]
    for tr in mine:
        _contained(tr.hook_begin_run, ctx, closure)
    runs = _runs()
    runs.append(mine)
    try:
        yield
    finally:
        runs.pop()


def _current() -> list:
    runs = _runs()
    return runs[-1] if runs else []


def _chain_x(user_cb):
    """A scipy-style ``cb(xk)`` that marks the step, then calls the user's callback (if any)."""
    def cb(xk):
        marked = np.copy(xk)  # scipy reuses its x buffer
        for tr in _current():
            _contained(tr.hook_scipy_step, marked)
        if user_cb is not None:
            return user_cb(xk)
        return None
    return cb


def _patched_minimize_with_timeout(*args, **kwargs):
    orig = _ORIGINALS["minimize_with_timeout"][2]
    try:
        bound = inspect.signature(orig).bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
    except TypeError:  # let the original report its own argument error
        return orig(*args, **kwargs)
    if arguments.get("method") not in (None, "L-BFGS-B"):
        return orig(*args, **kwargs)  # other scipy methods: per-evaluation accounting only
    arguments["callback"] = _chain_x(arguments.get("callback"))
    with _run(arguments.get("fun")):
        return orig(**arguments)


def _patched_fmin_l_bfgs_b_batched(*args, **kwargs):
    orig = _ORIGINALS["fmin_l_bfgs_b_batched"][2]
    wrap_callback = _resolve("scipy.optimize._optimize", "_wrap_callback")  # installed only if verified
    user = kwargs.get("callback")
    wrapped_user = wrap_callback(user) if user is not None else None

    def cb(intermediate_result):  # this exact parameter name makes scipy pass the live OptimizeResult
        for tr in _current():
            _contained(tr.hook_batched_step, intermediate_result)
        if wrapped_user is not None:
            return wrapped_user(intermediate_result)
        return None

    kwargs["callback"] = cb
    with _run(kwargs.get("func", args[0] if args else None)):
        return orig(*args, **kwargs)


def _patched_torch_minimize(*args, **kwargs):
    orig = _ORIGINALS["torch_minimize"][2]
    user = kwargs.get("callback")

    def cb(parameters, result):
        for tr in _current():
            _contained(tr.hook_torch_step, parameters, result)
        if user is not None:
            return user(parameters, result)
        return None

    kwargs["callback"] = cb
    with _run():
        return orig(*args, **kwargs)


_PATCHES: dict[str, Callable] = {
    "minimize_with_timeout": _patched_minimize_with_timeout,
    "fmin_l_bfgs_b_batched": _patched_fmin_l_bfgs_b_batched,
    "torch_minimize": _patched_torch_minimize,
}


def install(listener: Listener) -> None:
    """Adds a listener; the first one swaps in the patches (each verified first)."""
    ok = verified()
    with _PATCH_LOCK:
        if not _ACTIVE:
            for p in HOOKS:
                if p.kind != "patch" or p.key not in _PATCHES or not _usable(p.key, ok):
                    continue  # (the fit entry points are wrapped by wrap_fit_entries, for trace_fits only)
                mod = importlib.import_module(p.module)
                _ORIGINALS[p.key] = (mod, p.attr, getattr(mod, p.attr))
                setattr(mod, p.attr, _PATCHES[p.key])
        _ACTIVE.append(listener)


def uninstall(listener: Listener) -> None:
    """Removes a listener (in any order); the last one restores BoTorch's functions exactly."""
    with _PATCH_LOCK:
        if listener in _ACTIVE:
            _ACTIVE.remove(listener)
        if not _ACTIVE:
            for mod, attr, orig in _ORIGINALS.values():
                setattr(mod, attr, orig)
            _ORIGINALS.clear()


#: The routines ``fit_gpytorch_mll`` hands each MLL to, wrapped for ``trace_fits`` (not for ``trace_fit``).
FIT_ENTRIES = ("fit_fallback_entry", "fit_fallback_approximate_entry")
_ENTRY_ORIGINALS: dict[str, tuple[object, str, Callable]] = {}


def wrap_fit_entries(make_wrapper: Callable[[Callable], Callable]) -> tuple[str, ...]:
    """Swaps each fit entry routine for ``make_wrapper(original)``; returns the keys wrapped.

    A routine that moved is skipped (:func:`verified` has warned): its fits run untraced.
    """
    ok = verified()
    with _PATCH_LOCK:
        for p in HOOKS:
            if p.key in FIT_ENTRIES and p.key not in _ENTRY_ORIGINALS and _usable(p.key, ok):
                mod = importlib.import_module(p.module)
                orig = getattr(mod, p.attr)
                _ENTRY_ORIGINALS[p.key] = (mod, p.attr, orig)
                setattr(mod, p.attr, make_wrapper(orig))
        return tuple(_ENTRY_ORIGINALS)


def unwrap_fit_entries() -> None:
    """Puts BoTorch's own fit entry routines back."""
    with _PATCH_LOCK:
        for mod, attr, orig in _ENTRY_ORIGINALS.values():
            setattr(mod, attr, orig)
        _ENTRY_ORIGINALS.clear()


def missing_patches() -> tuple[str, ...]:
    """Keys of the ``patch`` points that cannot be installed (their paths get no iteration markers)."""
    ok = verified()
    return tuple(p.key for p in HOOKS if p.kind == "patch" and not _usable(p.key, ok))


#: Patch points that are useless without a helper (the batched marker needs scipy's callback wrapper).
_NEEDS = {"fmin_l_bfgs_b_batched": ("wrap_callback",)}


def _usable(key: str, ok: dict[str, bool]) -> bool:
    return bool(ok.get(key)) and all(ok.get(k) for k in _NEEDS.get(key, ()))


def in_marked_run() -> bool:
    """Whether an optimizer run with gpviz's iteration markers is in progress on this thread."""
    return bool(_runs())


def active_listeners() -> tuple:
    """The listeners installed now (innermost last)."""
    return tuple(_ACTIVE)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def batched_closure_layout(closure):
    """``(parameters, trailing sizes, batch_shape)`` of BoTorch's batched closure, or None if unknown."""
    if not verified().get("batched_closure_layout"):
        return None
    params = getattr(closure, "parameters", None)
    sizes = getattr(closure, "_trailing_sizes", None)
    batch = getattr(closure, "batch_shape", None)
    if not isinstance(params, dict) or not isinstance(sizes, dict) or batch is None:
        return None
    return params, sizes, batch


def loss_closure(mll):
    """BoTorch's loss closure of ``mll`` (the negative MLL, as its fit evaluates it)."""
    return get_loss_closure(mll)


# GPyTorch's private setters: prior *setting closures* must be picklable module-level functions
# (sweep workers receive the model factory), and these are what GPyTorch's own priors call.
def set_lengthscale(module, value) -> None:
    """``module.lengthscale = value`` through GPyTorch's setter (a prior's setting closure)."""
    module._set_lengthscale(value)


def set_outputscale(module, value) -> None:
    """``module.outputscale = value`` through GPyTorch's setter (a prior's setting closure)."""
    module._set_outputscale(value)


def set_noise(module, value) -> None:
    """``module.noise = value`` through GPyTorch's setter (a prior's setting closure)."""
    module._set_noise(value)


# BoTorch model attributes without a public accessor.
def num_outputs(model, default: int = 1) -> int:
    """Outputs of a BoTorch model (``default`` when it does not say)."""
    return int(getattr(model, "_num_outputs", default) or 1)


def task_feature(model) -> int | None:
    """The input column holding the task index of a multi-task model, or None."""
    t = getattr(model, "_task_feature", None)
    return None if t is None else int(t)


def output_tasks(model):
    """The task values a multi-task model predicts, or None."""
    return getattr(model, "_output_tasks", None)
