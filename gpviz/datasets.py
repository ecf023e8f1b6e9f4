"""Built-in synthetic data sets, made in code (no downloads) and seeded, for the demo, notebooks and tests."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd
import torch

from gpviz.errors import InputError
from gpviz.values.tensors import to_numpy


@dataclass(frozen=True)
class Dataset:
    """A regression problem with named inputs.

    Every input column lies in the unit cube ``[0, 1]``: log-scaled settings
    are already mapped through their logarithm (as Ax and BoTorch users
    normalize search spaces), and the categorical column holds its category
    code divided by ``(K - 1)``, so each category is a distinct value in
    ``[0, 1]``. :meth:`frame` converts back to the original units.

    Attributes:
        name: Short name of the problem.
        X: ``n x d`` float64 inputs in the unit cube.
        Y: ``n x 1`` float64 outputs (noisy observations of :attr:`f`).
        feature_names: ``d`` column names, in column order.
        relevant: Names of the inputs the function depends on.
        irrelevant: Names of the inputs it ignores (they exist to be
            discovered by ARD lengthscales).
        log_scaled: Names of inputs whose unit-cube value is a position on a
            log axis (see :attr:`ranges`).
        categorical: Name -> category labels of categorical inputs.
        ranges: Name -> ``(low, high)`` of the setting in original units.
        f: The noise-free function, ``n x d`` unit-cube inputs -> ``n x 1``.
        noise_std: Standard deviation of the observation noise in ``Y``.
        description: One sentence on what the problem models.
    """

    name: str
    X: torch.Tensor
    Y: torch.Tensor
    feature_names: tuple[str, ...]
    relevant: tuple[str, ...]
    irrelevant: tuple[str, ...]
    log_scaled: tuple[str, ...] = ()
    categorical: dict = field(default_factory=dict)
    ranges: dict = field(default_factory=dict)
    f: Callable[[torch.Tensor], torch.Tensor] | None = None
    noise_std: float = 0.0
    description: str = ""

    @property
    def cat_dims(self) -> list[int]:
        """Column indices of categorical inputs (for ``MixedSingleTaskGP(cat_dims=...)``)."""
        return [self.feature_names.index(n) for n in self.categorical]

    def frame(self, original: bool = False) -> pd.DataFrame:
        """The data as a DataFrame: one column per input, then ``y``.

        Args:
            original: Convert inputs to their original units (log-scaled
                settings exponentiated and named without their ``log_``
                prefix, categories as labels).
        """
        data = {}
        for j, name in enumerate(self.feature_names):
            col = to_numpy(self.X[:, j])
            if original and name in self.categorical:
                labels = self.categorical[name]
                codes = (col * (len(labels) - 1)).round().astype(int)
                data[name] = pd.Categorical([labels[c] for c in codes], categories=list(labels))
                continue
            if original and name in self.ranges:
                lo, hi = self.ranges[name]
                if name in self.log_scaled:
                    col = 10 ** (math.log10(lo) + col * (math.log10(hi) - math.log10(lo)))
                    data[name[4:] if name.startswith("log_") else name] = col
                    continue
                col = lo + col * (hi - lo)
            data[name] = col
        data["y"] = to_numpy(self.Y[:, 0])
        return pd.DataFrame(data)

    def subset(self, n: int, seed: int = 0) -> "Dataset":
        """A random subset of ``n`` rows (seeded), with the same metadata."""
        if not 1 <= n <= self.X.shape[0]:
            raise InputError(f"subset size must be between 1 and {self.X.shape[0]}, got {n}")
        g = torch.Generator().manual_seed(int(seed))
        idx = torch.randperm(self.X.shape[0], generator=g)[:n]
        return Dataset(self.name, self.X[idx], self.Y[idx], self.feature_names, self.relevant, self.irrelevant,
                       self.log_scaled, self.categorical, self.ranges, self.f, self.noise_std, self.description)

    def __repr__(self) -> str:
        return (f"<Dataset {self.name!r}: n={self.X.shape[0]}, d={self.X.shape[1]}, "
                f"relevant={list(self.relevant)}, irrelevant={list(self.irrelevant)}>")


def _check(n: int, seed: int, noise_std: float) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an integer, got {seed!r}")
    if not (isinstance(noise_std, (int, float)) and math.isfinite(noise_std) and noise_std >= 0):
        raise InputError(f"noise_std must be a finite number >= 0, got {noise_std!r}")


def _sobol(n: int, d: int, seed: int) -> torch.Tensor:
    # Sobol points, as hyperparameter searches often use: spread out, so the
    # model is never forced to explain two nearby observations with noise.
    return torch.quasirandom.SobolEngine(d, scramble=True, seed=seed).draw(n, dtype=torch.float64)


# -- the hyperparameter landscape ---------------------------------------------

_LANDSCAPE_FEATURES = (
    # name, log-scaled, (low, high) in original units, relevant
    ("log_learning_rate", True, (1e-5, 1e-1), True),
    ("log_batch_size", True, (16.0, 1024.0), True),
    ("log_weight_decay", True, (1e-6, 1e-2), True),
    ("dropout", False, (0.0, 0.5), True),
    ("momentum", False, (0.8, 0.99), False),
    ("log_warmup_pct", True, (1e-3, 0.3), False),
    ("log_beta2", True, (0.9, 0.9999), False),
    ("label_smoothing", False, (0.0, 0.2), False),
    ("log_channels", True, (16.0, 256.0), False),
)
_OPTIMIZERS = ("sgd", "adam", "adamw")
LANDSCAPE_FEATURE_NAMES = tuple(f[0] for f in _LANDSCAPE_FEATURES) + ("optimizer",)


def _landscape_f(X: torch.Tensor) -> torch.Tensor:
    """Validation error of an imaginary training run, from unit-cube settings.

    ``y = 2 (lr - lr*)^2 + 0.5 bs + 0.2 wd + 0.3 (dropout - 0.3)^2 / 0.49 + offset(optimizer)``,
    where the best learning rate ``lr*`` depends on the optimizer.
    Only learning rate, batch size, weight decay, dropout and the optimizer
    matter; the other five inputs are ignored.

    Args:
        X: ``... x n x 10`` unit-cube inputs in :data:`LANDSCAPE_FEATURE_NAMES` order.

    Returns:
        ``... x n x 1`` noise-free outputs.
    """
    if X.shape[-1] != len(LANDSCAPE_FEATURE_NAMES):
        raise InputError(f"the landscape has {len(LANDSCAPE_FEATURE_NAMES)} inputs, got X with shape "
                         f"{list(X.shape)}")
    lr, bs, wd, drop = X[..., 0], X[..., 1], X[..., 2], X[..., 3]
    opt = (X[..., 9] * (len(_OPTIMIZERS) - 1)).round()
    # The best learning rate moves with the optimizer (adaptive ones like it lower).
    best_lr = torch.where(opt == 0, torch.full_like(lr, 0.65), torch.full_like(lr, 0.4))
    # Smooth, slowly varying effects: the truth has long lengthscales, which a
    # strong lengthscale prior keeps a model from learning with little data.
    y = 2.0 * (lr - best_lr) ** 2
    y = y + 0.5 * bs
    y = y + 0.2 * wd
    y = y + 0.3 * (drop - 0.3) ** 2 / 0.49
    offset = torch.tensor([0.15, 0.0, -0.1], dtype=X.dtype, device=X.device)
    y = y + offset[opt.long()]
    return y.unsqueeze(-1)


def hyperparameter_landscape(n: int = 120, seed: int = 0, noise_std: float = 0.02) -> Dataset:
    """A 10-input "hyperparameter landscape": the kind of problem a BO user's GP models.

    Inputs: nine training settings (six of them log-scaled) and one
    categorical optimizer choice (``sgd``/``adam``/``adamw``); outputs: a
    validation error. Only ``log_learning_rate``, ``log_batch_size``,
    ``log_weight_decay``, ``dropout`` and ``optimizer`` matter, so a good ARD
    model learns long lengthscales for the five others — which a strong
    lengthscale prior (e.g. Gamma(3, 6)) prevents when data is scarce.

    Args:
        n: Number of observations (Sobol points; the categorical column is
            drawn uniformly).
        seed: Seed of the points and the noise; the same seed gives the same data.
        noise_std: Standard deviation of Gaussian observation noise.

    Returns:
        A :class:`Dataset` with ``X``: ``n x 10`` and ``Y``: ``n x 1`` (float64).

    Raises:
        InputError: ``n``, ``seed`` or ``noise_std`` of the wrong type or range.
    """
    _check(n, seed, noise_std)
    d = len(LANDSCAPE_FEATURE_NAMES)
    g = torch.Generator().manual_seed(seed)
    X = _sobol(n, d, seed)
    codes = torch.randint(len(_OPTIMIZERS), (n,), generator=g).to(torch.float64)
    X[:, -1] = codes / (len(_OPTIMIZERS) - 1)
    Y = _landscape_f(X) + noise_std * torch.randn(n, 1, generator=g, dtype=torch.float64)
    relevant = tuple(f[0] for f in _LANDSCAPE_FEATURES if f[3]) + ("optimizer",)
    irrelevant = tuple(f[0] for f in _LANDSCAPE_FEATURES if not f[3])
    return Dataset(
        name="landscape", X=X, Y=Y, feature_names=LANDSCAPE_FEATURE_NAMES, relevant=relevant,
        irrelevant=irrelevant, log_scaled=tuple(f[0] for f in _LANDSCAPE_FEATURES if f[1]),
        categorical={"optimizer": _OPTIMIZERS}, ranges={f[0]: f[2] for f in _LANDSCAPE_FEATURES},
        f=_landscape_f, noise_std=float(noise_std),
        description="validation error of a training run vs 9 settings and the optimizer; 5 inputs are irrelevant")


# -- a smooth low-dimensional function ------------------------------------------


def _smooth_f(X: torch.Tensor) -> torch.Tensor:
    """``sin(2π x0) · cos(π x1) + 0.5 x0`` (and, for d > 2, ``+ 0.3 sin(π x_j)`` per further input j)."""
    y = torch.sin(2 * math.pi * X[..., 0]) * torch.cos(math.pi * X[..., 1]) + 0.5 * X[..., 0]
    for j in range(2, X.shape[-1]):
        y = y + 0.3 * torch.sin(math.pi * X[..., j])
    return y.unsqueeze(-1)


def smooth(n: int = 40, d: int = 2, seed: int = 0, noise_std: float = 0.01) -> Dataset:
    """A smooth function of ``d`` inputs on the unit cube, every input relevant.

    Args:
        n: Number of observations (Sobol points).
        d: Number of inputs, 2 to 6.
        seed: Seed of the points and the noise.
        noise_std: Standard deviation of Gaussian observation noise.

    Returns:
        A :class:`Dataset` with ``X``: ``n x d`` and ``Y``: ``n x 1`` (float64),
        features ``x0 .. x{d-1}``.
    """
    _check(n, seed, noise_std)
    if isinstance(d, bool) or not isinstance(d, int) or not 2 <= d <= 6:
        raise InputError(f"d must be an integer from 2 to 6, got {d!r}")
    g = torch.Generator().manual_seed(seed)
    X = _sobol(n, d, seed)
    Y = _smooth_f(X) + noise_std * torch.randn(n, 1, generator=g, dtype=torch.float64)
    names = tuple(f"x{j}" for j in range(d))
    return Dataset(name="smooth", X=X, Y=Y, feature_names=names, relevant=names, irrelevant=(),
                   ranges={nm: (0.0, 1.0) for nm in names}, f=_smooth_f, noise_std=float(noise_std),
                   description=f"sin(2πx0)·cos(πx1) + 0.5·x0 on [0, 1]^{d}")


DATASETS: dict[str, Callable[..., Dataset]] = {"landscape": hyperparameter_landscape, "smooth": smooth}


def load(name: str, **kwargs) -> Dataset:
    """A built-in data set by name: ``"landscape"`` or ``"smooth"`` (keyword arguments go to its maker).

    Raises:
        InputError: an unknown name (the message lists the valid ones).
    """
    if name not in DATASETS:
        raise InputError(f"unknown data set {name!r} (must be one of {sorted(DATASETS)})")
    return DATASETS[name](**kwargs)


__all__ = ["Dataset", "hyperparameter_landscape", "smooth", "load", "DATASETS", "LANDSCAPE_FEATURE_NAMES"]
