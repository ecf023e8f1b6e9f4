"""Parameter keys and batch members: the join between expression leaves and dataframe columns.

A key names one element of one parameter, in constrained (``value``) terms:
``covar_module.base_kernel.lengthscale[3]``. It is the module path, the
parameter name without GPyTorch's ``raw_`` prefix, and the element index within
one batch member (size-1 dimensions dropped, omitted for scalars).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from dataclasses import dataclass

import numpy as np
import torch
from gpytorch.constraints import Interval

from gpviz.errors import InputError, KeyMismatchError, UnsupportedError
from gpviz.values.tensors import require_values, to_numpy

# a name is an identifier, or a number: the parameters of a torch ParameterList are named 0, 1, ...
# (LCEAKernel with a batch shape keeps its per-member embeddings in one)
_KEY_RE = re.compile(r"^(?:(?P<path>.*)\.)?(?P<name>[A-Za-z_][A-Za-z0-9_]*|[0-9]+)(?:\[(?P<index>[0-9, ]+)\])?$")


def make_key(path: str, name: str, index: tuple[int, ...] = ()) -> str:
    """Builds a key, e.g. ``make_key("covar_module", "lengthscale", (3,))``."""
    base = f"{path}.{name}" if path else name
    if len(index) == 1:  # a vector parameter's element (the common case: ARD lengthscales)
        return f"{base}[{index[0]}]"
    return f"{base}[{','.join(str(i) for i in index)}]" if index else base


@functools.lru_cache(maxsize=1 << 16)  # a render parses each key in several places (values, labels, facts)
def parse_key(key: str) -> tuple[str, str, tuple[int, ...]]:
    """Splits a key into ``(module path, parameter name, element index)``.

    ``name`` is an identifier, or a number for a parameter of a ``torch.nn.ParameterList``
    (``emb_weight_matrix_list.0[2]``).

    Raises:
        InputError: if ``key`` is not of the form ``path.name[i,...]``.
    """
    m = _KEY_RE.match(key)
    if not m:
        raise InputError(f"malformed parameter key {key!r} (expected 'module.path.name', 'name[i]' or "
                         f"'parameter_list.0[i]')")
    index = tuple(int(i) for i in m.group("index").split(",")) if m.group("index") else ()
    return m.group("path") or "", m.group("name"), index


def join_path(path: str, child: str) -> str:
    """``join_path("covar_module", "base_kernel") == "covar_module.base_kernel"`` (an empty part is left out)."""
    return f"{path}.{child}" if path and child else (path or child)


@dataclass(frozen=True)
class ParamInfo:
    """Where a parameter lives and how its raw tensor maps to its value.

    Attributes:
        module: The owning module.
        name: Value name (``lengthscale``).
        raw_name: Name of the ``nn.Parameter`` (``raw_lengthscale``).
        raw: The raw parameter tensor.
        constraint: Its GPyTorch constraint, or ``None``.
        member_ndim: How many leading dimensions index batch members.
        elem_shape: Shape of one member's element block (with size-1 dims).
    """

    module: torch.nn.Module
    name: str
    raw_name: str
    raw: torch.Tensor
    constraint: Interval | None  # every GPyTorch constraint (Positive, GreaterThan, ...) is an Interval
    member_ndim: int
    elem_shape: tuple[int, ...]

    @property
    def squeezed_shape(self) -> tuple[int, ...]:
        """Element shape without size-1 dimensions: the shape key indices range over."""
        return tuple(s for s in self.elem_shape if s != 1)

    def indices(self) -> list[tuple[int, ...]]:
        """Element indices (over :attr:`squeezed_shape`) in row-major order."""
        shape = self.squeezed_shape
        return list(itertools.product(*(range(s) for s in shape))) if shape else [()]

    def flat_index(self, index: tuple[int, ...]) -> int:
        """Position of a squeezed index in the flattened element block."""
        shape = self.squeezed_shape
        if len(index) != len(shape) or any(not 0 <= i < s for i, s in zip(index, shape)):
            raise InputError(f"index {list(index)} out of range for parameter {self.name!r} of shape {list(shape)}")
        if len(shape) == 1:  # a vector parameter (ARD lengthscales): its index is the position
            return int(index[0])
        return int(np.ravel_multi_index(index, shape)) if shape else 0

    def bounds(self) -> tuple[float, float]:
        """The constraint's ``(lower, upper)`` bounds (infinite where there is none)."""
        c = self.constraint
        lower = getattr(c, "lower_bound", None) if c is not None else None
        upper = getattr(c, "upper_bound", None) if c is not None else None
        return (float(torch.as_tensor(lower).reshape(-1)[0]) if lower is not None else -math.inf,
                float(torch.as_tensor(upper).reshape(-1)[0]) if upper is not None else math.inf)

    def value(self) -> torch.Tensor:
        """The constrained value tensor (detached)."""
        with torch.no_grad():
            raw = self.raw.detach()
            if self.constraint is not None:
                return self.constraint.transform(raw)
            return raw


def param_info(module: torch.nn.Module, name: str, batch_shape: torch.Size | None = None) -> ParamInfo:
    """Finds parameter ``name`` (value name or raw name) on ``module``.

    Args:
        module: The owning module.
        name: ``lengthscale`` or ``raw_lengthscale``.
        batch_shape: The batch shape of the root model, used when the module
            does not say its own (GPyTorch noise modules do not).

    Raises:
        KeyMismatchError: if the module has no such parameter.
    """
    value_name = name[4:] if name.startswith("raw_") else name
    raw_name, raw = None, None
    for cand in (f"raw_{value_name}", value_name):
        raw = module._parameters.get(cand)
        if raw is not None:
            raw_name = cand
            break
    if raw_name is None or raw is None:
        raise KeyMismatchError(
            f"{type(module).__name__} has no parameter {value_name!r} (has: {sorted(module._parameters)})")
    constraint = getattr(module, f"{raw_name}_constraint", None) if raw_name.startswith("raw_") else None
    own = getattr(module, "batch_shape", None)
    # A module that states its batch shape is believed (a non-batched 3-task index
    # kernel inside a 3-fold model must not be split into members); noise modules
    # state none, so the root's batch shape is matched against the leading dims.
    bs = own if isinstance(own, torch.Size) else batch_shape
    if _torch_layer(module):
        bs = torch.Size()  # e.g. LCEA's nn.Embedding: one table shared by every member, whatever its length
    member_ndim = 0
    if isinstance(bs, torch.Size) and len(bs) and tuple(raw.shape[: len(bs)]) == tuple(bs):
        member_ndim = len(bs)
    return ParamInfo(module, value_name, raw_name, raw, constraint, member_ndim, tuple(raw.shape[member_ndim:]))


def _torch_layer(module: torch.nn.Module) -> bool:
    """A torch.nn layer (``Embedding``, ``Linear``, ...): its weights have no batch dimensions.

    Containers (``ParameterList``, ``ParameterDict``) are not layers: they hold what their
    owner puts there, batched like it (LCEA's per-member embeddings).
    """
    mod = type(module).__module__
    return mod.startswith("torch.nn.modules.") and mod != "torch.nn.modules.container"


def resolve(root: torch.nn.Module, path: str) -> torch.nn.Module:
    """The submodule of ``root`` at dotted ``path`` ("" is the root itself).

    Raises:
        KeyMismatchError: if there is no module at that path.
    """
    if not path:
        return root
    try:
        return root.get_submodule(path)
    except AttributeError:
        raise KeyMismatchError(f"{type(root).__name__} has no submodule {path!r}") from None


def expand_members(t: torch.Tensor, member_ndim: int, batch_shape: torch.Size, name: str = "parameter"
                   ) -> torch.Tensor:
    """A per-member tensor ``members x ...`` expanded to the model's ``batch_shape x ...``.

    The one rule for which member a value belongs to: the tensor's ``member_ndim``
    leading dims are aligned with the *trailing* dims of ``batch_shape``, as torch
    broadcasting (and so GPyTorch) does, then expanded.

    Args:
        t: ``members x rest`` (``members`` = the first ``member_ndim`` dims).
        member_ndim: How many leading dims of ``t`` index members.
        batch_shape: The root model's batch shape.
        name: What ``t`` is, for error messages.

    Returns:
        ``batch_shape x rest`` (an expanded view; clone it before writing).

    Raises:
        InputError: if ``t`` has more member dims than the model.
        UnsupportedError: if its member dims do not broadcast to ``batch_shape``.
    """
    members = tuple(t.shape[:member_ndim])
    rest = tuple(t.shape[member_ndim:])
    if len(members) > len(batch_shape):
        raise InputError(f"{name} has batch shape {list(members)}, larger than the model's {list(batch_shape)}")
    t = t.reshape((1,) * (len(batch_shape) - len(members)) + members + rest)
    try:
        return t.expand(tuple(batch_shape) + rest)
    except RuntimeError:
        raise UnsupportedError(
            f"{name} has batch shape {list(members)}, which does not broadcast to the "
            f"model's batch shape {list(batch_shape)}") from None


def align_leading(t: torch.Tensor, batch_shape: torch.Size) -> np.ndarray:
    """A transform's per-member tensor (e.g. ``Normalize`` coefficients) as one float64 value per member.

    Transforms index their batch by the model's *leading* batch dims (the folds);
    a trailing output dim of a batched multi-output model shares them. A tensor with
    more dims than members is usable only when its element count equals the members'.

    Returns:
        ``batch_shape.numel()`` float64 values, in member order.

    Raises:
        InputError: the tensor's elements cannot be matched to the members (neither one
            value for all, nor one per member, nor leading dims that broadcast to
            ``batch_shape``): no member's value may stand in for another's.
    """
    t = t.detach().to(torch.float64)
    n = int(torch.Size(batch_shape).numel())
    if t.dim() > len(batch_shape):
        flat = t.reshape(-1)
        if flat.numel() in (1, n):
            return to_numpy(flat.expand(n))
    else:
        lead = t.reshape(tuple(t.shape) + (1,) * (len(batch_shape) - t.dim()))
        if all(a in (1, b) for a, b in zip(lead.shape, batch_shape)):
            return to_numpy(lead.expand(batch_shape).reshape(-1))
    raise InputError(f"a transform's per-member tensor of shape {list(t.shape)} cannot be matched to the model's "
                     f"{n} batch member(s) (batch shape {list(batch_shape)}): expected one value, one per member, "
                     f"or leading dims that broadcast to the batch shape")


def member_values(info: ParamInfo, index: tuple[int, ...], batch_shape: torch.Size) -> torch.Tensor:
    """One element's value for every batch member.

    Args:
        info: From :func:`param_info`.
        index: Squeezed element index.
        batch_shape: The root's batch shape; the result is expanded to it.

    Returns:
        A ``batch_shape`` float64 CPU tensor.
    """
    value = require_values(info.value(), f"parameter {info.name!r}")
    members = value.shape[: info.member_ndim]
    flat = value.reshape(tuple(members) + (-1,))[..., info.flat_index(index)]
    flat = flat.detach().to(device="cpu", dtype=torch.float64)
    return expand_members(flat, info.member_ndim, batch_shape, f"parameter {info.name!r}").clone()


def member_block(info: ParamInfo, indices, batch_shape: torch.Size, raw: bool = False) -> torch.Tensor:
    """Several elements' values for every batch member, from one constraint transform.

    Args:
        info: From :func:`param_info`.
        indices: Squeezed element indices (k of them).
        batch_shape: The root's batch shape; the result is expanded to it.
        raw: The raw (unconstrained) values instead.

    Returns:
        A ``(*batch_shape, k)`` float64 CPU tensor: column j equals ``member_values(info, indices[j], ...)``.
    """
    with torch.no_grad():
        tensor = info.raw.detach() if raw or info.constraint is None else info.value()
    value = require_values(tensor, f"parameter {info.name!r}")
    members = value.shape[: info.member_ndim]
    flat_idx = torch.as_tensor([info.flat_index(tuple(i)) for i in indices], dtype=torch.long, device=value.device)
    flat = value.reshape(tuple(members) + (-1,)).index_select(-1, flat_idx)
    flat = flat.detach().to(device="cpu", dtype=torch.float64)
    return expand_members(flat, info.member_ndim, batch_shape, f"parameter {info.name!r}").clone()


def read_member_values(root: torch.nn.Module, keys, batch_shape: torch.Size) -> dict[str, torch.Tensor]:
    """key -> ``batch_shape`` tensor of constrained values, for every key."""
    out = {}
    for key in keys:
        path, name, index = parse_key(key)
        info = param_info(resolve(root, path), name, batch_shape)
        out[key] = member_values(info, index, batch_shape)
    return out
