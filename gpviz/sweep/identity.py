"""Content digests: a SHA-256 of what an object holds, the same in every process and on every machine.

The sweep cache keys its namespaces and cells on these digests (:mod:`gpviz.sweep.cache`).
A digest never reads ``id()``, ``hash()`` or a ``repr`` (which may embed a memory
address or print ``GammaPrior()`` whatever its parameters), so it does not depend on
``PYTHONHASHSEED`` or on where objects live in memory:

- tensors and numpy arrays by dtype, shape, device type, ``requires_grad`` and bytes;
- numbers, strings, bytes, ``None``; lists and tuples in order, dicts and sets with their
  items sorted by their digests;
- ``torch.nn.Module``s by class, every parameter, buffer and submodule (by name) and every
  other field (a kernel's ``nu``, a prior's ``transform``, a constraint's transform);
- functions by module, qualified name, bytecode, constants (nested code too), argument
  names, defaults, closure contents and the *values* of the globals their code names;
  ``functools.partial`` by function, arguments and keywords; bound methods by function and
  object;
- classes by module and name, and, unless they come from an installed library, by their
  methods' code and class fields;
- callables and classes of installed libraries (the standard library, site-packages:
  torch, gpytorch, botorch, ...) by module, qualified name and the library's version;
- other objects by class and fields (``__dict__``, ``__slots__``) or their pickle reduction.

Whatever cannot be read by content (an open file, a lock, a generator) is an
:class:`~gpviz.errors.InputError` that names where it sits, e.g.
``fit_kwargs['callback'].__closure__[0]``.
"""

from __future__ import annotations

import builtins
import contextlib
import contextvars
import copyreg
import dataclasses
import enum
import fractions
import decimal
import functools
import hashlib
import importlib.metadata
import io
import logging
import os
import pathlib
import sys
import sysconfig
import types

import numpy as np
import pandas as pd
import torch

from gpviz.errors import InputError
from gpviz.values.tensors import to_numpy

#: The attributes every ``torch.nn.Module`` keeps for its own bookkeeping (hooks, parameter tables): the
#: tables are read by name below, the hooks hold weak references to their module and do not change a fit.
_MODULE_BOOKKEEPING = frozenset(torch.nn.Module().__dict__) - {"training"}

#: Objects that can never be read by content, and what they are.
_REFUSED = ((io.IOBase, "an open file or stream"), (types.GeneratorType, "a generator"),
            (types.CoroutineType, "a coroutine"), (types.FrameType, "a frame"))

_BUILDING = contextvars.ContextVar("gpviz_building_for_identity", default=False)


def building_for_identity() -> bool:
    """Whether gpviz is building a model only to digest it (``cv_sweep`` with a ``cache_dir``) or to see whether
    it carries the folds' batch shape (``cv_sweep(folds="auto")``, once per sweep).

    ``cv_sweep`` calls the model factory once more for each cell, in the calling process,
    to learn which model the cell fits; a factory with side effects (counting, logging)
    may skip them while this is ``True``.
    """
    return _BUILDING.get()


@contextlib.contextmanager
def identity_build():
    """Marks the block as a build for identity (see :func:`building_for_identity`)."""
    token = _BUILDING.set(True)
    try:
        yield
    finally:
        _BUILDING.reset(token)


@functools.lru_cache(maxsize=None)
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {os.path.join(sys.base_prefix, "lib"), os.path.join(sys.prefix, "lib")}
    return tuple(sorted(os.path.realpath(r) + os.sep for r in roots))


@functools.lru_cache(maxsize=None)
def library_version(module_name: str) -> str | None:
    """``"torch==2.5.1"`` for a module of an installed library, ``"python==3.12.3"`` for the standard library,
    ``None`` for the user's own code (a script, a notebook, a project checkout)."""
    top = module_name.split(".")[0]
    module = sys.modules.get(top)
    if module_name in sys.builtin_module_names or top in sys.builtin_module_names:
        return f"python=={sys.version.split()[0]}"
    path = getattr(module, "__file__", None)
    if module is None or path is None:
        return None  # __main__ without a file (a notebook), or a namespace package: the user's own
    real = os.path.realpath(path)
    if not real.startswith(_library_roots()):
        return None
    if "site-packages" not in real and "dist-packages" not in real:
        return f"python=={sys.version.split()[0]}"
    # the distribution is most often named as its top-level package (torch, gpytorch, botorch, numpy, scipy);
    # packages_distributions() would find the others but scans every installed package (seconds)
    with contextlib.suppress(importlib.metadata.PackageNotFoundError, ValueError):
        return f"{top}=={importlib.metadata.version(top)}"
    return f"{top}=={getattr(module, '__version__', 'unknown version')}"


def _resolves(obj) -> bool:
    """Whether ``module.qualname`` names ``obj`` itself (it does not for a lambda or a class made at run time)."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    qualname = getattr(obj, "__qualname__", None)
    if module is None or not qualname or "<" in qualname:
        return False
    found: object = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            return False
    return found is obj or getattr(found, "__func__", None) is obj


def _library_of(obj) -> str | None:
    """The library version that names ``obj`` (a function or class defined at a library's top level), else None."""
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str) or not _resolves(obj):
        return None
    return library_version(module)


class _Digester:
    """One digest run: a memo of finished objects and the path of objects being digested (for cycles)."""

    def __init__(self):
        self.memo: dict[int, str] = {}
        self.keep: list = []  # memo keys are ids: keep their objects alive for the run
        self.stack: dict[int, int] = {}

    def __call__(self, obj, where: str) -> str:
        key = id(obj)
        if key in self.memo:
            return self.memo[key]
        if key in self.stack:  # a cycle: refer to the object by its depth on the path, a stable position
            return _h("cycle", str(len(self.stack) - self.stack[key]))
        self.stack[key] = len(self.stack)
        try:
            out = self._digest(obj, where)
        finally:
            del self.stack[key]
        self.memo[key] = out
        self.keep.append(obj)
        return out

    # the handlers, most specific first -----------------------------------------------------------

    def _digest(self, obj, where: str) -> str:  # noqa: C901 (one dispatch over the kinds of value)
        if obj is None or obj is Ellipsis or obj is NotImplemented:
            return _h("const", repr(obj))
        t = type(obj)
        if t is bool:
            return _h("bool", str(obj))
        if t is int:
            return _h("int", str(obj))
        if t is float:
            return _h("float", obj.hex())
        if t is complex:
            return _h("complex", obj.real.hex(), obj.imag.hex())
        if t is str:
            return _h("str", obj)
        if t in (bytes, bytearray):
            return _h(t.__name__, obj)
        if isinstance(obj, torch.Tensor):
            return self._tensor(obj, where)
        if isinstance(obj, (torch.dtype, torch.device, torch.layout, torch.memory_format)):
            return _h("torch", t.__name__, str(obj))
        if isinstance(obj, np.ndarray):
            return self._array(obj, where)
        if isinstance(obj, np.generic):
            return _h("np.scalar", obj.dtype.str, np.asarray(obj).tobytes())
        if isinstance(obj, np.dtype):
            return _h("np.dtype", obj.str)
        if isinstance(obj, (pd.DataFrame, pd.Series, pd.Index)):
            return self._pandas(obj, where)
        if isinstance(obj, enum.Enum):
            return _h("enum", self(t, where + ".__class__"), obj.name)
        if isinstance(obj, (pathlib.PurePath, decimal.Decimal, fractions.Fraction, range, slice)):
            return _h("value", t.__qualname__, str(obj))
        if isinstance(obj, torch.nn.Module):
            return self._module(obj, where)
        if isinstance(obj, types.ModuleType):
            return _h("module", obj.__name__, library_version(obj.__name__) or "")
        if isinstance(obj, type):
            return self._class(obj, where)
        if isinstance(obj, functools.partial):
            return _h("partial", self(obj.func, where + ".func"), self(obj.args, where + ".args"),
                      self(obj.keywords, where + ".keywords"), self._fields(obj, where))
        if isinstance(obj, types.MethodType):
            return _h("method", self(obj.__func__, where + ".__func__"), self(obj.__self__, where + ".__self__"))
        if isinstance(obj, types.FunctionType):
            return self._function(obj, where)
        if isinstance(obj, types.CodeType):
            return self._code(obj, where)
        if isinstance(obj, (staticmethod, classmethod)):
            return _h(t.__name__, self(obj.__func__, where + ".__func__"))
        if isinstance(obj, property):
            return _h("property", *(self(getattr(obj, a), f"{where}.{a}") for a in ("fget", "fset", "fdel")))
        if isinstance(obj, (types.BuiltinFunctionType, types.WrapperDescriptorType, types.MethodDescriptorType,
                            types.MethodWrapperType, types.GetSetDescriptorType, types.MemberDescriptorType,
                            types.ClassMethodDescriptorType)):
            return self._builtin(obj, where)
        if isinstance(obj, logging.Logger):  # its handlers hold locks; logging does not change a fit
            return _h("logger", obj.name)
        for refused, what in _REFUSED:
            if isinstance(obj, refused):
                raise _refuse(obj, where, what)
        if t in (list, tuple):
            return _h(t.__name__, *(self(v, f"{where}[{i}]") for i, v in enumerate(obj)))
        if t in (dict, set, frozenset):
            return self._unordered(obj, where)
        if isinstance(obj, (list, tuple, dict, set, frozenset)):  # a subclass: its class, items and fields
            items = (self._unordered(obj, where) if isinstance(obj, (dict, set, frozenset))
                     else _h("seq", *(self(v, f"{where}[{i}]") for i, v in enumerate(obj))))
            return _h("container", self(t, where + ".__class__"), items, self._fields(obj, where))
        return self._object(obj, where)

    def _tensor(self, t: torch.Tensor, where: str) -> str:
        if t.layout != torch.strided or t.device.type == "meta" or getattr(t, "is_quantized", False):
            raise _refuse(t, where, f"a {t.layout} tensor on {t.device.type!r} (only dense tensors with values "
                                    f"are read)")
        flat = t.detach().reshape(-1).contiguous()
        raw = flat.view(torch.uint8) if flat.numel() and flat.dtype != torch.bool else flat.to(torch.uint8)
        return _h("tensor", type(t).__qualname__, str(t.dtype), str(list(t.shape)), t.device.type,
                  str(bool(t.requires_grad)), to_numpy(raw, dtype=None).tobytes())

    def _array(self, a: np.ndarray, where: str) -> str:
        if a.dtype.hasobject:
            return _h("np.objects", str(list(a.shape)), self(a.reshape(-1).tolist(), where))
        return _h("np.array", a.dtype.str, str(list(a.shape)), np.ascontiguousarray(a).tobytes())

    def _pandas(self, obj, where: str) -> str:
        if isinstance(obj, pd.Index):
            return _h("pd.index", str(obj.dtype), self(np.asarray(obj), where))
        if isinstance(obj, pd.Series):
            return _h("pd.series", str(obj.dtype), self(obj.name, where), self(obj.index, where + ".index"),
                      self(obj.to_numpy(), where))
        return _h("pd.frame", self(obj.index, where + ".index"),
                  *(self(obj.iloc[:, i], f"{where}[{c!r}]") for i, c in enumerate(obj.columns)))

    def _unordered(self, obj, where: str) -> str:
        if isinstance(obj, dict):
            items = [_h("item", self(k, f"{where}.keys()"), self(v, f"{where}[{k!r}]")) for k, v in obj.items()]
        else:
            items = [self(v, f"{where} item") for v in obj]
        return _h("unordered", *sorted(items))

    def _module(self, m: torch.nn.Module, where: str) -> str:
        tables = []
        for table in ("_parameters", "_buffers", "_modules"):
            entries = getattr(m, table, None) or {}
            tables.append(_h(table, *(_h(name, self(v, f"{where}.{name}")) for name, v in sorted(entries.items()))))
        fields = {k: v for k, v in vars(m).items() if k not in _MODULE_BOOKKEEPING}
        return _h("nn.Module", self(type(m), where + ".__class__"), *tables,
                  *(_h(k, self(v, f"{where}.{k}")) for k, v in sorted(fields.items())))

    def _class(self, cls: type, where: str) -> str:
        version = _library_of(cls)
        if version is not None:
            return _h("library class", cls.__module__, cls.__qualname__, version)
        meta = type(cls)
        parts = [self(b, f"{where}.__bases__[{i}]") for i, b in enumerate(cls.__bases__)]
        skip = {"__dict__", "__weakref__", "__module__", "__doc__", "__qualname__"}
        for name, value in sorted(vars(cls).items()):
            if name not in skip:
                parts.append(_h(name, self(value, f"{where}.{name}")))
        return _h("class", cls.__module__, cls.__qualname__, "" if meta is type else self(meta, where + ".__class__"),
                  *parts)

    def _builtin(self, obj, where: str) -> str:
        owner = getattr(obj, "__objclass__", None) or getattr(obj, "__self__", None)
        module = getattr(obj, "__module__", None) or getattr(owner, "__module__", None) or ""
        bound = ""
        if getattr(obj, "__self__", None) is not None and not isinstance(obj.__self__, types.ModuleType):
            bound = self(obj.__self__, where + ".__self__")  # e.g. list.append bound to a list: its contents
        return _h("builtin", module, getattr(obj, "__qualname__", getattr(obj, "__name__", "")),
                  library_version(module.split(".")[0]) if module else "", bound)

    def _function(self, fn: types.FunctionType, where: str) -> str:
        version = _library_of(fn)
        if version is not None:
            return _h("library function", fn.__module__, fn.__qualname__, version)
        code = fn.__code__
        cells = []
        for i, cell in enumerate(fn.__closure__ or ()):
            try:
                value = cell.cell_contents
            except ValueError:  # a cell not yet filled
                cells.append(_h("empty cell"))
                continue
            cells.append(self(value, f"{where}.__closure__[{i}]  ({code.co_freevars[i]})"))
        names = sorted(_global_names(code))
        glob = fn.__globals__
        found = []
        for name in names:
            if name in glob:
                value = glob[name]
                if isinstance(value, types.ModuleType) and library_version(value.__name__) is None:
                    # the user's own module: the attributes this code may read from it, not all of it
                    found.append(_h(name, "module", value.__name__, *(
                        _h(a, self(getattr(value, a), f"{where}.__globals__[{name!r}].{a}"))
                        for a in names if a in vars(value))))
                else:
                    found.append(_h(name, self(value, f"{where}.__globals__[{name!r}]")))
            elif hasattr(builtins, name):
                found.append(_h(name, "builtin"))
        return _h("function", str(fn.__module__), fn.__qualname__, self._code(code, where + ".__code__"),
                  self(fn.__defaults__, where + ".__defaults__"), self(fn.__kwdefaults__, where + ".__kwdefaults__"),
                  *cells, *found, self._fields(fn, where))

    def _code(self, code: types.CodeType, where: str) -> str:
        consts = [self._code(c, where) if isinstance(c, types.CodeType) else self(c, f"{where}.co_consts[{i}]")
                  for i, c in enumerate(code.co_consts)]
        return _h("code", code.co_code, str(code.co_argcount), str(code.co_posonlyargcount),
                  str(code.co_kwonlyargcount), str(code.co_flags), *code.co_names, "|", *code.co_varnames, "|",
                  *code.co_freevars, "|", *code.co_cellvars, "|", *consts)

    def _fields(self, obj, where: str) -> str:
        """The instance fields of ``obj``: its ``__dict__`` and ``__slots__`` values, by name."""
        fields = dict(getattr(obj, "__dict__", None) or {})
        for klass in type(obj).__mro__:
            slots = vars(klass).get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                    fields.setdefault(name, getattr(obj, name))
        return _h("fields", *(_h(k, self(v, f"{where}.{k}")) for k, v in sorted(fields.items())))

    def _object(self, obj, where: str) -> str:
        t = type(obj)
        has_state = hasattr(obj, "__dict__") or any("__slots__" in vars(k) for k in t.__mro__[:-1])
        reduce_ex = getattr(t, "__reduce_ex__", None)
        custom_reduce = (reduce_ex is not object.__reduce_ex__ or getattr(t, "__reduce__", None)
                         is not object.__reduce__)
        if dataclasses.is_dataclass(obj) or (has_state and not custom_reduce):
            return _h("object", self(t, where + ".__class__"), self._fields(obj, where))
        if custom_reduce or has_state:
            try:
                reduced = obj.__reduce_ex__(4)
            except Exception as exc:  # e.g. "cannot pickle '_thread.lock' object"
                raise _refuse(obj, where, f"an object that cannot be pickled ({type(exc).__name__}: {exc})") from None
            if isinstance(reduced, str):  # a module-level singleton, pickled by name
                return _h("global", self(t, where + ".__class__"), reduced)
            func, args, *rest = reduced
            # typeshed's copyreg stub omits __newobj__ (there at run time: pickle protocol 2+ uses it)
            newobj = copyreg.__newobj__  # type: ignore[attr-defined]
            if func is newobj or getattr(func, "__name__", "") == "__newobj__":
                func = t
            return _h("reduced", self(t, where + ".__class__"), self(func, where + ".__reduce__()[0]"),
                      self(args, where + ".__reduce__()[1]"),
                      *(self(list(r) if isinstance(r, types.GeneratorType) or hasattr(r, "__next__") else r,
                             f"{where}.__reduce__()[{i + 2}]") for i, r in enumerate(rest)))
        raise _refuse(obj, where, "an object with no fields and no pickle reduction")


def _h(*parts) -> str:
    """SHA-256 of length-prefixed parts (strings as UTF-8): no two part lists give the same bytes."""
    h = hashlib.sha256()
    for p in parts:
        b = p if isinstance(p, (bytes, bytearray)) else str(p).encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def _global_names(code: types.CodeType) -> set[str]:
    """Every name a code object (and the code nested in it: lambdas, comprehensions) may look up globally."""
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _global_names(c)
    return names


def _refuse(obj, where: str, what: str) -> InputError:
    return InputError(f"{where} is {what} ({type(obj).__module__}.{type(obj).__qualname__}): the sweep cache "
                      f"cannot tell by content whether two sweeps hold the same; pass a value made of tensors, "
                      f"numbers, strings, containers, functions or objects with plain fields (or cache_dir=None)")


def content_digest(obj: object, where: str = "make_model") -> str:
    """The SHA-256 (hex) of what ``obj`` holds, by the rules of this module.

    Args:
        obj: Any value: a model, a model factory, fit arguments, a tensor.
        where: How the caller names ``obj`` (the start of the path in an error message).

    Returns:
        64 hex digits, equal for two objects exactly when they hold the same content, in any process.

    Raises:
        InputError: for a part that cannot be read by content, naming where it sits and what it is.
    """
    return _Digester()(obj, where)


def describe_value(obj: object, depth: int = 0) -> object:
    """A readable, JSON-able account of a value for a cache manifest (never used as a key).

    Numbers and strings as they are, containers item by item, tensors by dtype and shape,
    callables and classes by ``module.qualname``, other objects by their class.
    """
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else str(obj)
    if depth > 6:
        return "..."
    if isinstance(obj, torch.Tensor):
        return f"tensor {str(obj.dtype).replace('torch.', '')} {list(obj.shape)}"
    if isinstance(obj, dict):
        return {str(k): describe_value(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [describe_value(v, depth + 1) for v in obj]
    if isinstance(obj, functools.partial):
        return {"partial": describe_value(obj.func, depth + 1), "args": describe_value(obj.args, depth + 1),
                "keywords": describe_value(obj.keywords, depth + 1)}
    if isinstance(obj, type) or callable(obj) and hasattr(obj, "__qualname__"):
        return f"{getattr(obj, '__module__', '?')}.{obj.__qualname__}"
    return f"a {type(obj).__module__}.{type(obj).__qualname__}"


__all__ = ["building_for_identity", "content_digest", "describe_value", "identity_build", "library_version"]
