"""Kernel expressions: a walked tree bound to its module, printable, evaluable and displayable."""

from __future__ import annotations

import torch
from gpytorch.kernels import Kernel

from gpviz import display
from gpviz.errors import InputError, KeyMismatchError, UnsupportedError
from gpviz.tree.evaluate import EvalEnv, check_inputs, evaluate, required_width
from gpviz.tree.nodes import Node, Opaque, Role, iter_nodes, roles_of
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
        """Parameter keys in print order (the tree is walked once per tree, not on every access)."""
        return self._walked()[0]

    @property
    def roles(self) -> dict[str, Role]:
        """key -> role (``lengthscale``, ``noise``...)."""
        return dict(self._walked()[1])

    def _walked(self) -> tuple[tuple[str, ...], dict[str, Role]]:
        # A render asks for keys and roles several times; a 1,000-D ARD tree is ~30,000 nodes.
        # Cached per tree object: an expression whose tree is replaced (units.relabel) walks the new one.
        cached = self.__dict__.get("_walk_cache")
        if cached is None or cached[0] is not self.tree:
            roles = roles_of(self.tree)  # one walk: keys are its keys, in print order
            cached = (self.tree, tuple(roles), roles)
            self.__dict__["_walk_cache"] = cached
        return cached[1], cached[2]

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

    def evaluate(self, x1: torch.Tensor, x2: torch.Tensor | None = None, values=None, *,
                 transform_inputs: bool = False) -> torch.Tensor:
        """Evaluates the kernel expression numerically, from the tree alone.

        The expression works on the inputs the kernel sees: for a model with an
        input transform (``Normalize``...), those are the *transformed* inputs.
        By default ``x1`` and ``x2`` are taken as already transformed (as
        ``model.train_inputs`` are); ``transform_inputs=True`` applies the
        model's input transform first, as ``model.posterior(X)`` does.

        Args:
            x1: ``n x d`` or ``batch_shape x n x d`` floating-point inputs.
            x2: ``m x d`` inputs (default: ``x1``).
            values: ``None`` for the module's current values (all members), or a
                mapping / dataframe row key -> value (the same for all members).
            transform_inputs: Apply the model's input transform to ``x1`` and
                ``x2`` first (default ``False``: inputs are in the kernel's space).

        Returns:
            ``batch_shape x n x m`` kernel matrix, equal to ``kernel(x1, x2).to_dense()``
            (for a gradient kernel, its ``n x m`` value block; for an opaque
            root, whatever shape the module returns).

        Raises:
            InputError: if the inputs are not floating-point tensors of at least
                2 dimensions, have another number of columns than the expression's
                features, batch shapes that do not broadcast, or live on the meta
                device; or if ``transform_inputs`` is asked without an input transform.
            KeyMismatchError: if ``values`` lacks a key of the expression.
            UnsupportedError: if ``values`` is given and the tree has opaque kernels.
        """
        x2 = x1 if x2 is None else x2
        if transform_inputs:
            x1, x2 = self.transform_inputs(x1), self.transform_inputs(x2)
        return self._evaluate(x1, x2, values, self.input_width())

    #: The model's input transform (set by the model builder; a kernel has none).
    input_transform = None

    def transform_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` through the model's input transform as ``model.posterior`` applies it (eval mode).

        The transform is put in eval mode for the call (a learning ``Normalize``
        would otherwise update its bounds) and restored to its mode afterwards.

        Raises:
            InputError: if there is no input transform (a kernel, or a model without one).
        """
        it = self.input_transform
        if it is None:
            raise InputError(f"transform_inputs=True, but {type(self.module).__name__} has no input_transform; "
                             "pass inputs in the kernel's own space")
        was_training = it.training
        try:
            it.eval()
            with torch.no_grad():
                return it(x)
        finally:
            it.train(was_training)

    def input_width(self) -> int | None:
        """The number of input columns :meth:`evaluate` expects, when the features fix it."""
        return None if self.features is None else len(self.features)

    def _evaluate(self, x1: torch.Tensor, x2: torch.Tensor, values, width: int | None) -> torch.Tensor:
        tree = self.covariance_tree()
        check_inputs(x1, x2, width, required_width(tree))
        batch = torch.Size()
        if values is None:
            vals = read_member_values(self.module, self.keys, self.batch_shape)
            vals = {k: v.to(x1.dtype) for k, v in vals.items()}
            batch = self.batch_shape
        else:
            opaque = sorted({n.cls_name for n in iter_nodes(tree) if isinstance(n, Opaque)})
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
        try:
            batch = torch.broadcast_shapes(batch, x1.shape[:-2], x2.shape[:-2])
        except RuntimeError:
            raise InputError(
                f"batch shapes do not broadcast: x1 {list(x1.shape[:-2])}, x2 {list(x2.shape[:-2])}, "
                f"parameters {list(batch)} (expected shapes that broadcast, as in torch)") from None
        x1e = x1.expand(*batch, *x1.shape[-2:])
        x2e = x2.expand(*batch, *x2.shape[-2:])
        out = evaluate(tree, EvalEnv(x1e, x2e, vals, self.modules))
        shape = (x1.shape[-2], x2.shape[-2])
        if any(s not in (1, want) for s, want in zip(out.shape[-2:], shape)):
            # an opaque multi-task or gradient kernel returns more rows than points: keep its shape
            shape = tuple(out.shape[-2:])
        return out.expand(*batch, *shape)

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
