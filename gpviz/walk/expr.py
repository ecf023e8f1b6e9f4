"""Kernel expressions: a walked tree bound to its module, printable, evaluable and displayable."""

from __future__ import annotations

import torch
from gpytorch.kernels import Kernel

from gpviz import display
from gpviz.errors import InputError, KeyMismatchError, UnsupportedError
from gpviz.tree.evaluate import EvalEnv, evaluate
from gpviz.tree.nodes import Node, Opaque, Role, iter_nodes, keys_of, roles_of
from gpviz.tree.ops import simplify
from gpviz.tree.printer import fmt_number, to_text
from gpviz.values.keys import read_member_values
from gpviz.walk.walker import Feature, Walker, infer_num_features, root_features



class Expr:
    """Common behaviour of kernel and model expressions.

    Attributes:
        tree: The expression tree (structure only).
        module: The module the tree was made from (values are read from it).
        batch_shape: Batch members of the module.
    """

    tree: Node
    module: torch.nn.Module
    batch_shape: torch.Size
    modules: dict

    @property
    def keys(self) -> tuple[str, ...]:
        """Parameter keys in print order."""
        return keys_of(self.tree)

    @property
    def roles(self) -> dict[str, Role]:
        """key -> role (``lengthscale``, ``noise``...)."""
        return roles_of(self.tree)

    def values(self, member: int = 0) -> dict[str, float]:
        """key -> current value of batch member ``member``.

        Raises:
            InputError: if ``member`` is not one of the ``batch_shape`` members.
        """
        count = int(torch.Size(self.batch_shape).numel())
        if isinstance(member, bool) or not isinstance(member, int) or not 0 <= member < count:
            raise InputError(f"member must be an integer in [0, {count}) for this batch of {count}, got {member!r}")
        vals = read_member_values(self.module, self.keys, self.batch_shape)
        return {k: float(v.reshape(-1)[member]) for k, v in vals.items()}

    def text(self, member: int = 0, width: int = 88) -> str:
        """Pseudocode with the values of batch member ``member``."""
        vals = self.values(member) if self.keys else {}
        return to_text(self.tree, lambda p: fmt_number(vals[p.key]), width)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {type(self.module).__name__}: {len(self.keys)} parameter keys>"

    def _repr_html_(self) -> str:
        return display.render(self)._repr_html_()

    def evaluate(self, x1: torch.Tensor, x2: torch.Tensor | None = None, values=None) -> torch.Tensor:
        """Evaluates the kernel expression numerically, from the tree alone.

        Args:
            x1: ``n x d`` or ``batch_shape x n x d`` inputs.
            x2: ``m x d`` inputs (default: ``x1``).
            values: ``None`` for the module's current values (all members), or a
                mapping / dataframe row key -> value (the same for all members).

        Returns:
            ``batch_shape x n x m`` kernel matrix, equal to ``kernel(x1, x2).to_dense()``.

        Raises:
            InputError: if the inputs are not tensors of at least 2 dimensions.
            KeyMismatchError: if ``values`` lacks a key of the expression.
            UnsupportedError: if ``values`` is given and the tree has opaque kernels.
        """
        x2 = x1 if x2 is None else x2
        if not isinstance(x1, torch.Tensor) or not isinstance(x2, torch.Tensor):
            raise InputError(f"x1 and x2 must be tensors, got {type(x1).__name__} and {type(x2).__name__}")
        if x1.dim() < 2 or x2.dim() < 2:
            raise InputError(f"x1 and x2 must be at least 2-D (n x d), got shapes {list(x1.shape)}, {list(x2.shape)}")
        if values is None:
            vals = read_member_values(self.module, self.keys, self.batch_shape)
            vals = {k: v.to(x1.dtype) for k, v in vals.items()}
            batch = torch.broadcast_shapes(self.batch_shape, x1.shape[:-2], x2.shape[:-2])
        else:
            opaque = sorted({n.cls_name for n in iter_nodes(self.covariance_tree()) if isinstance(n, Opaque)})
            if opaque:
                # an opaque kernel is computed by its module, at the module's own values
                raise UnsupportedError(
                    f"evaluate(values=...) cannot set the parameters of opaque kernels {opaque}; register "
                    f"handlers for them or evaluate at the module's current values (values=None)")
            if hasattr(values, "to_dict"):
                values = values.to_dict()
            vals = {}
            for k in self.keys:
                if k not in values:
                    raise KeyMismatchError(f"values has no entry for parameter key {k!r}")
                vals[k] = torch.tensor(float(values[k]), dtype=x1.dtype)
            batch = torch.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
        x1e = x1.expand(*batch, *x1.shape[-2:])
        x2e = x2.expand(*batch, *x2.shape[-2:])
        tree = self.covariance_tree()
        out = evaluate(tree, EvalEnv(x1e, x2e, vals, self.modules))
        return out.expand(*batch, x1.shape[-2], x2.shape[-2])

    def covariance_tree(self) -> Node:
        """The part of the tree that :meth:`evaluate` computes."""
        return self.tree


class KernelExpr(Expr):
    """The expression of a GPyTorch kernel (see :func:`kernel_expr`)."""

    def __init__(self, tree: Node, module: Kernel, batch_shape: torch.Size, modules: dict,
                 features: tuple[Feature, ...] | None):
        self.tree = tree
        self.module = module
        self.batch_shape = batch_shape
        self.modules = modules
        self.features = features


def kernel_expr(kernel: Kernel, feature_names=None, *, strict: bool = False, tasks=None) -> KernelExpr:
    """Builds the runnable, printable expression of a GPyTorch kernel.

    Args:
        kernel: Any ``gpytorch.kernels.Kernel`` (batched or not).
        feature_names: Names of the input columns (list, or a DataFrame whose
            columns are used); default ``x0, x1, ...``.
        strict: Re-raise errors of kernel handlers (for tests) instead of
            showing an opaque node with a warning.
        tasks: Display names of tasks for index kernels.

    Returns:
        A :class:`KernelExpr`; ``print`` it, ``.evaluate(x1, x2)`` it, read ``.keys``.

    Raises:
        InputError: if ``kernel`` is not a kernel or ``feature_names`` has the wrong length.
    """
    if not isinstance(kernel, Kernel):
        raise InputError(f"kernel_expr expects a gpytorch.kernels.Kernel, got {type(kernel).__module__}."
                         f"{type(kernel).__name__}")
    features = root_features(feature_names, infer_num_features(kernel), "the kernel")
    walker = Walker(features, kernel.batch_shape, strict=strict, tasks=tuple(tasks or ()))
    tree = simplify(walker(kernel, ""))
    return KernelExpr(tree, kernel, kernel.batch_shape, walker.modules, features)
